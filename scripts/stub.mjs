// The served-mode stub: the executable a runtime runs for each plugin in the served layouts
// (dist/served of build.mjs, the tarball of scripts/package.mjs). bash, because on its fast path
// it must start and talk to the per-host service in a few ms and spawn no process at all: its
// answer channel is a pipe made by a here-string (bash >= 5.1 makes one for a short document;
// an older bash makes a file, and the stub then runs every call itself). The protocol is
// described in lib/serve/protocol.ts. Whenever no service takes the call, it runs the multi-call
// program beside it as the plugin, in-process, with its stdin untouched.
const STUB_MARKER = '# cni-ts plugin: '; // lib/self/self.ts STUB_MARKER

export function stubText(plugin, buildId, version) {
  if (!/^[A-Za-z0-9._-]+$/.test(plugin) || !/^[A-Za-z0-9]+$/.test(buildId)) throw new Error(`bad stub parameters ${plugin} ${buildId}`);
  return `#!/bin/bash
${STUB_MARKER}${plugin}
# cni-ts ${version} (build ${buildId}): the "${plugin}" CNI plugin. This front hands the call to the
# per-host cni-ts service when one runs (CNI_TS_SERVICE=off: never), else runs it here with the
# multi-call program beside it: cni-ts ${plugin}. See the README, "Served mode".
unset NODE_OPTIONS NODE_EXTRA_CA_CERTS
p=${plugin} i=${buildId} d=\${CNI_TS_SERVICE_DIR:-/run/cni-ts}
case $0 in */*) b=\${0%/*}/cni-ts ;; *) b=./cni-ts ;; esac
case \${CNI_TS_SERVICE:-auto} in off|OFF|0|false|no) exec "$b" "$p" "$@" ;; esac
export CNI_TS_VIA_STUB=$d
if [ $# -eq 0 ] && [ -n "$CNI_COMMAND" ] && [ "$CNI_COMMAND" != VERSION ] && [ -z "$CNI_TS_FAILPOINT$CNI_TS_IPAM_EXEC$CNI_TS_RECOVER" ] &&
  read -r s 2>/dev/null <"$d/service.pid" && [ -p "$d/requests.$s" ] &&
  [ /proc/self/ns/net -ef "/proc/$s/ns/net" ] && [ /proc/self/ns/mnt -ef "/proc/$s/ns/mnt" ] &&
  { exec 3<<<'' 3<>/proc/self/fd/3; } 2>/dev/null && [ -p /proc/self/fd/3 ] && read -r -u 3 && exec 4<>"$d/requests.$s"; then
  # fd 3, read-write, never reads as ended: it waits for the answer (the service writes to
  # /proc/<our pid>/fd/3). fd 4 stays open until then too: a FIFO drops its data once nobody
  # holds it open. A socket for stdin (a caller written in Node) cannot be opened through /proc:
  # its config goes to a file that becomes our stdin (the service sweeps it after us).
  if [ -S /proc/self/fd/0 ]; then
    IFS= read -r -d '' c
    { printf '%s' "$c" >"$d/q/$$.stdin" && exec 0<"$d/q/$$.stdin"; } 2>/dev/null || exec "$b" "$p" <<<"$c" 3<&- 4>&-
  fi
  # The request is written with our stdout pointing at the FIFO for a moment (printf >&4 is a
  # dup2 over fd 1): the service writes the result to fd 5, a copy of stdout that never moves.
  exec 5>&1
  printf '%s %s %s\\n' $$ "$p" "$i" >&4
  o=
  while :; do
    IFS= read -r -d '' -t 0.5 -u 3 x
    t=$?
    o+=$x
    if [ $t -eq 0 ]; then
      case $o in [0-9]*)
        [ -z "\${o#* }" ] || printf '%s\\n' "\${o#* }"
        exit "\${o%% *}" ;;
      esac
      break
    fi
    [ $t -gt 128 ] && [ /proc/self/ns/net -ef "/proc/$s/ns/net" ] && continue
    # The service died: what it left in q/ says how far it got (lib/serve/protocol.ts).
    r=$d/q/$$
    exec 3<&- 4>&- 5>&-
    if [ -e "$r.done" ]; then
      printf 'cni-ts: the per-host service died while writing the result of this %s\\n' "$CNI_COMMAND" >&2
      exit 1
    elif [ -s "$r.in" ]; then
      CNI_TS_RECOVER=1 exec "$b" "$p" <"$r.in"
    elif [ -e "$r.in" ]; then
      printf '{"cniVersion":"1.0.0","code":11,"msg":"the cni-ts service died while reading this call; try again"}\\n'
      exit 1
    fi
    break
  done
  exec 3<&- 4>&- 5>&-
fi
exec "$b" "$p" "$@"
`;
}
