#!/usr/bin/env node
// `npm run package`: the plugins as standalone binaries that need no Node on the host.
//
//   node scripts/package.mjs                     build dist/cni-ts-<version>-linux-<arch>.tgz and
//                                                dist/package/ (the tarball installed in place)
//   node scripts/package.mjs install [--dir D] [--links]
//                                                run the tarball's install.sh from dist/package
//
// One multi-call binary, `cni-ts`: a Node single-executable application (SEA; Node 20's flow:
// `node --experimental-sea-config` writes a blob with the bundled code and its V8 code cache,
// postject injects it into a stripped copy of this node binary). It carries every plugin and
// picks one by the name it is started as (lib/self/multicall.ts), and `cni-ts serve` is the
// per-host service of served mode (lib/serve). Beside it, one bash stub per plugin
// (scripts/stub.mjs): it hands the call to the service when one runs, else runs
// `<its dir>/cni-ts <plugin>` in-process, after dropping the caller's NODE_OPTIONS (a SEA still
// obeys it: a --require preload would run inside it) and NODE_EXTRA_CA_CERTS (parsed at every
// start). The stubs find cni-ts beside themselves, so the tarball's stubs work wherever installed.
//
// The tarball is flat like the reference's cni-plugins-linux-<arch>-<version>.tgz (`./<plugin>`
// executables at the top, owner 0), plus cni-ts, install.sh, README.md and the licenses.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { build } from 'esbuild';
import { BUNDLE_OPTIONS } from './bundle-options.mjs';
import { buildId } from './build-id.mjs';
import { checkFailpoints } from './failpoints.mjs';
import { multicallEntry } from './multicall.mjs';
import { pluginEntries } from './plugin-entries.mjs';
import { stubText } from './stub.mjs';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const ARCH = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }[process.arch] ?? process.arch;
const NAME = 'cni-ts';
const DEFAULT_DIR = '/opt/cni/bin';
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const dist = join(root, 'dist');
const work = join(dist, '.package-work');
const stage = join(work, 'stage');
const installed = join(dist, 'package');
const tarball = join(dist, `${NAME}-${version}-linux-${ARCH}.tgz`);

function sh(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: opts.quiet ? 'pipe' : ['ignore', 'inherit', 'inherit'], encoding: 'utf8', ...opts });
  if (r.error) throw new Error(`${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}${opts.quiet ? `: ${(r.stderr || r.stdout).trim().slice(0, 2000)}` : ''}`);
  return r.stdout;
}

function installScript(plugins) {
  // POSIX sh only: it runs on the target host, which needs no node.
  return `#!/bin/sh
# Installs the ${NAME} ${version} CNI plugins into /opt/cni/bin or --dir DIR: the multi-call
# binary ${NAME}, plus one executable per plugin named after it, which is either the served-mode
# stub beside this script (the default: it hands calls to the per-host service, or runs DIR/${NAME})
# or, with --links, a symlink to ${NAME} (in-process only; NODE_OPTIONS and NODE_EXTRA_CA_CERTS of
# the caller then apply to the plugin). Files are replaced by rename, so a plugin running
# meanwhile keeps its old copy; a running service sees its binary change and makes way.
# Plugins of the same names already in DIR (e.g. the reference's) are replaced.
set -eu
PLUGINS="${plugins.join(' ')}"
usage() { echo "usage: $0 [--dir DIR] [--links]   (default DIR: ${DEFAULT_DIR})"; }
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
dir=${DEFAULT_DIR}
links=0
while [ $# -gt 0 ]; do
  case $1 in
    --dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; dir=$2; shift 2 ;;
    --dir=*) dir=\${1#--dir=}; shift ;;
    --links) links=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[ -f "$here/${NAME}" ] || { echo "$0: $here/${NAME} not found" >&2; exit 1; }
mkdir -p -- "$dir"
dir=$(CDPATH= cd -- "$dir" && pwd -P)
if ! [ "$here/${NAME}" -ef "$dir/${NAME}" ]; then
  cp -- "$here/${NAME}" "$dir/.${NAME}.new.$$"
  chmod 755 "$dir/.${NAME}.new.$$"
  mv -f -- "$dir/.${NAME}.new.$$" "$dir/${NAME}"
fi
for p in $PLUGINS; do
  [ ! -d "$dir/$p" ] || { echo "$0: $dir/$p is a directory" >&2; exit 1; }
  [ "$here/$p" -ef "$dir/$p" ] && continue
  tmp="$dir/.$p.new.$$"
  rm -f -- "$tmp"
  if [ $links = 1 ]; then
    ln -s ${NAME} "$tmp"
  else
    cp -- "$here/$p" "$tmp"
    chmod 755 "$tmp"
  fi
  mv -f -- "$tmp" "$dir/$p"
done
# The installed plugins must answer.
if ! out=$(CNI_COMMAND=VERSION "$dir/loopback" </dev/null 2>&1) || [ "\${out#*supportedVersions}" = "$out" ]; then
  echo "$0: $dir/loopback does not answer VERSION: $out" >&2
  exit 1
fi
echo "installed ${NAME} ${version} into $dir ($([ $links = 1 ] && echo links || echo stubs)): $PLUGINS"
`;
}

function readmeText(plugins) {
  return `# ${NAME} ${version} (linux-${ARCH})

CNI plugins in TypeScript, drop-in replacements for the reference plugins, packaged as one
standalone executable: no Node.js is needed on the host.

- \`${NAME}\`: the multi-call binary (Node.js ${process.versions.node} single-executable application)
  with every plugin: ${plugins.join(', ')}.
- one executable per plugin, named after it: a bash stub that hands the call to the per-host
  service (\`${NAME} serve\`, started on demand; \`CNI_TS_SERVICE=off\` in the runtime's
  environment turns that off) or else runs \`${NAME} <plugin>\` from its own directory, without
  the caller's \`NODE_OPTIONS\` and \`NODE_EXTRA_CA_CERTS\`.
- \`install.sh\`: \`./install.sh [--dir DIR] [--links]\` installs into ${DEFAULT_DIR} or DIR
  (\`--links\`: symlinks to \`${NAME}\` instead of stubs: in-process only).

Unpacking straight into ${DEFAULT_DIR} (\`tar -C ${DEFAULT_DIR} -xzf ...\`) also works. The stubs need bash.
The plugins drive the host's \`ip\`, \`nsenter\`, \`nft\`/\`iptables\`, \`tc\` (and \`dnsmasq\` for dnsname).

License: Apache-2.0. The binary contains Node.js; its license is in LICENSE.node.
`;
}

async function bundleMulticall(plugins, outfile, id) {
  await build({
    stdin: { contents: multicallEntry(plugins, version), resolveDir: root, sourcefile: 'multicall-entry.ts', loader: 'ts' },
    outfile,
    ...BUNDLE_OPTIONS,
    define: { ...BUNDLE_OPTIONS.define, __CNI_TS_BUILD_ID__: JSON.stringify(id) },
  });
}

/** The injected binary at `out`: blob (with code cache) + stripped copy of this node + postject. */
function makeBinary(js, out) {
  if (spawnSync('strip', ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error('strip not found: install binutils (scripts/install-deps.sh)');
  const postject = join(root, 'node_modules/.bin/postject');
  if (!existsSync(postject)) throw new Error('postject not installed: run npm install (it is a devDependency)');
  const blob = join(work, 'sea.blob');
  const config = join(work, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main: js, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }, null, 2));
  sh([process.execPath, '--experimental-sea-config', config], { quiet: true, cwd: work });
  copyFileSync(process.execPath, out);
  chmodSync(out, 0o755);
  // Strip first: postject adds the blob as a note the stripped sections no longer hide.
  sh(['strip', out], { quiet: true });
  // postject (LIEF) warns about section names of the stripped file; the result runs (checked below).
  sh([postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { quiet: true });
}

function nodeLicense() {
  const candidates = [join(dirname(process.execPath), '../share/doc/node/LICENSE'), '/usr/share/doc/nodejs/LICENSE', '/usr/share/doc/nodejs/copyright'];
  return candidates.find((p) => existsSync(p));
}

async function packageAll() {
  const t0 = Date.now();
  sh([process.execPath, join(root, 'build.mjs')], { quiet: true });
  const plugins = pluginEntries(root);
  const names = plugins.map((p) => p.name);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  const js = join(work, `${NAME}.js`);
  const id = buildId(root);
  await bundleMulticall(plugins, js, id);
  checkFailpoints(root, [js]); // a release: no failpoint may be left in it
  const bin = join(stage, NAME);
  makeBinary(js, bin);
  for (const n of names) {
    writeFileSync(join(stage, n), stubText(n, id, version), { mode: 0o755 });
  }
  writeFileSync(join(stage, 'install.sh'), installScript(names), { mode: 0o755 });
  writeFileSync(join(stage, 'README.md'), readmeText(names));
  writeFileSync(join(stage, 'LICENSE'), `${NAME} is licensed under the Apache License, Version 2.0 (SPDX: Apache-2.0).\nThe ${NAME} binary contains Node.js ${process.versions.node}; see LICENSE.node.\n`);
  const lic = nodeLicense();
  if (lic) copyFileSync(lic, join(stage, 'LICENSE.node'));
  else console.warn('warning: no Node.js LICENSE file found next to this node; LICENSE.node left out');
  // Flat, ./-prefixed, owner 0, sorted: the reference's release layout (tar -C bin --owner=0 --group=0 -caf).
  rmSync(tarball, { force: true });
  sh(['tar', '-C', stage, '--owner=0', '--group=0', '--numeric-owner', '--sort=name', '-czf', tarball, '.']);
  const sum = createHash('sha256').update(readFileSync(tarball)).digest('hex');
  writeFileSync(`${tarball}.sha256`, `${sum}  ${tarball.split('/').pop()}\n`);
  // dist/package: the tarball's install.sh run on a fresh unpack, so every build tests it.
  rmSync(installed, { recursive: true, force: true });
  const unpack = join(work, 'unpack');
  mkdirSync(unpack, { recursive: true });
  sh(['tar', '-C', unpack, '-xzf', tarball]);
  sh(['sh', join(unpack, 'install.sh'), '--dir', installed], { quiet: true });
  copyFileSync(join(unpack, 'install.sh'), join(installed, 'install.sh'));
  chmodSync(join(installed, 'install.sh'), 0o755);
  const mib = (p) => (statSync(p).size / 2 ** 20).toFixed(1);
  const binMib = mib(bin);
  rmSync(work, { recursive: true, force: true }); // two more copies of the binary
  console.log(
    `packaged ${names.length} plugins in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${relative(root, tarball)} (${mib(tarball)} MiB; binary ${binMib} MiB, node ${mib(process.execPath)} MiB unstripped); installed with stubs into ${relative(root, installed)}/`,
  );
}

function install(args) {
  const script = join(installed, 'install.sh');
  if (!existsSync(script)) throw new Error('dist/package/install.sh missing: run `npm run package` first');
  sh(['sh', script, ...args]);
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === undefined) await packageAll();
  else if (cmd === 'install') install(rest);
  else throw new Error(`unknown command ${cmd}; usage: node scripts/package.mjs [install [--dir DIR] [--links]]`);
} catch (e) {
  console.error(`package: ${e.message}`);
  process.exit(1);
}
