/**
 * Entry of the multi-call binary (scripts/package.mjs generates the table of plugins). It finds
 * which plugin this start is, makes process.argv look as it does for a bundle
 * ([exec, /path/to/<plugin>, ...args]), loads only that plugin's code and runs its definition
 * with pluginMain: the verb, or the hidden mode argv asks for (lib/self/self.ts).
 *
 * In a Node single-executable application process.argv is [execPath, argv0, ...args], argv0
 * being the name it was started by. The binary can be reached as:
 * - a link named after the plugin (`/opt/cni/bin/bridge -> cni-ts`): argv0 is the link;
 * - a stub `#!/usr/bin/env -S -u NODE_OPTIONS -u NODE_EXTRA_CA_CERTS /opt/cni/bin/cni-ts`
 *   named after the plugin: env runs `cni-ts /opt/cni/bin/bridge`, the stub's path comes first;
 * - by hand or by selfArgv: `cni-ts bridge [args]`.
 */
import { basename } from 'node:path';
import { MULTICALL_NAME, isBinary, setMulticallPath, setPluginName } from './self';
import { pluginMain, type Plugin } from '../skel/dispatch';

/** Plugin name → its definition, loaded on demand (so a start loads only the plugin it is). */
export type PluginTable = Record<string, () => Plugin>;

/** Which plugin argv asks for, and argv as that plugin's code should see it (or undefined). */
export function resolveMulticall(argv: readonly string[], plugins: Readonly<Record<string, unknown>>): { name: string; argv: string[] } | undefined {
  const has = (n: string) => Object.prototype.hasOwnProperty.call(plugins, n);
  const first = argv[1] ?? '';
  if (has(basename(first))) return { name: basename(first), argv: [argv[0]!, first, ...argv.slice(2)] };
  const second = argv[2];
  if (second !== undefined && has(basename(second))) return { name: basename(second), argv: [argv[0]!, second, ...argv.slice(3)] };
  return undefined;
}

/** Dispatches this start to one plugin; with no plugin named, prints the usage and exits 1. */
export function multicallMain(plugins: PluginTable, version: string): void {
  const hit = resolveMulticall(process.argv, plugins);
  if (!hit) {
    const names = Object.keys(plugins).sort();
    const asked = process.argv[2];
    if (asked === 'serve') {
      // The per-host service of served mode (lib/serve), loaded only here.
      setMulticallPath(isBinary() ? process.execPath : (process.argv[1] ?? ''));
      import('../serve/service')
        .then((m) => m.serviceMain(plugins))
        .catch((e: unknown) => {
          process.stderr.write(`${MULTICALL_NAME} serve: ${(e as Error).message}\n`);
          process.exit(1);
        });
      return;
    }
    if (asked === '--version') process.stdout.write(`${MULTICALL_NAME} ${version}\n`);
    else if (asked === '--list') process.stdout.write(names.join('\n') + '\n');
    else {
      process.stderr.write(
        `${MULTICALL_NAME} ${version}: CNI plugins in one executable. Run it through a link or stub named after a plugin, or as \`${MULTICALL_NAME} <plugin>\`.\nplugins: ${names.join(', ')}\n`,
      );
      process.exitCode = asked === '--help' ? 0 : 1;
    }
    return;
  }
  const script = process.argv[1] ?? '';
  process.argv = hit.argv;
  setPluginName(hit.name, isBinary() ? process.execPath : script);
  pluginMain(plugins[hit.name]!());
}
