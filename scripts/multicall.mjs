// The entry of the multi-call program (lib/self/multicall.ts): the binary of scripts/package.mjs
// and the bundle dist/served/cni-ts of build.mjs are built from this same source.
export function multicallEntry(plugins, version) {
  // Each entry hands over the plugin's definition (its main.ts runs nothing on import, and the
  // definition carries its own config keys). require() keeps each plugin lazy: esbuild wraps
  // the modules it reaches that way in init functions, so a start evaluates only the plugin it
  // is (and the lib it uses); the service (`cni-ts serve`) loads them all.
  const table = plugins.map((p) => `  ${JSON.stringify(p.name)}: () => require(${JSON.stringify(p.path)}).plugin,`).join('\n');
  return `import { multicallMain } from './lib/self/multicall';\nmulticallMain({\n${table}\n}, ${JSON.stringify(version)});\n`;
}
