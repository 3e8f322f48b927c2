// The served-mode stub: the executable a runtime runs for each plugin in the served layouts
// (dist/served of build.mjs, the tarball of scripts/package.mjs). bash, because on its fast path
// it must start and talk to the per-host service in a few ms with no process but one mkfifo(1);
// the protocol is described in lib/serve/protocol.ts. Whenever no service takes the call, it
// runs the multi-call program beside it as the plugin, in-process, with the same stdin.
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
  [ /proc/self/ns/net -ef "/proc/$s/ns/net" ] && [ /proc/self/ns/mnt -ef "/proc/$s/ns/mnt" ]; then
  IFS= read -r -d '' c
  r=$d/q/$$
  if printf '%s' "$c" 2>/dev/null >"$r.in" && mkfifo -m 600 "$r.out" 2>/dev/null && exec 3<>"$r.out" 4<>"$d/requests.$s"; then
    # fd 4 stays open until the answer: a FIFO drops its data once nobody holds it open.
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
      # The service died: if it had taken the call (it deletes the .in file), undo its half.
      [ -e "$r.in" ] || export CNI_TS_RECOVER=1
      break
    done
    exec 3<&- 4>&-
  fi
  rm -f "$r.in" "$r.out"
  exec "$b" "$p" <<<"$c"
fi
exec "$b" "$p" "$@"
`;
}
