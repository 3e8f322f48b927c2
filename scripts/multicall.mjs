// The entry of the multi-call program (lib/self/multicall.ts): the binary of scripts/package.mjs
// and the bundle dist/served/cni-ts of build.mjs are built from this same source.
export function multicallEntry(plugins, version, withKeys) {
  // Each entry names the plugin's own config keys (a per-plugin bundle gets them by a define;
  // the multi-call program holds every plugin). require() keeps each plugin lazy: esbuild wraps
  // the modules it reaches that way in init functions, so a start evaluates only the plugin it
  // is (and the lib it uses); the service (`cni-ts serve`) loads them all.
  const keysOf = (n) => (withKeys.has(n) ? `keys.${n.replace(/\W/g, '_')}` : 'NETCONF_KEYS');
  const table = plugins.map((p) => `  ${JSON.stringify(p.name)}: { keys: ${keysOf(p.name)}, load: () => require(${JSON.stringify(p.path)}) },`).join('\n');
  return `import { multicallMain } from './lib/self/multicall';\nimport { NETCONF_KEYS } from './lib/schema/keys';\nimport * as keys from './lib/generated/keys';\nmulticallMain({\n${table}\n}, ${JSON.stringify(version)});\n`;
}
