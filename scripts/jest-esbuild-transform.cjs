// Jest transformer: TypeScript (and ESM-only dependencies) to CommonJS with esbuild.
// One small file instead of ts-jest/babel: esbuild is already our bundler.
const { transformSync } = require('esbuild');

module.exports = {
  process(source, filename) {
    const loader = filename.endsWith('.ts') ? 'ts' : 'js';
    const out = transformSync(source, {
      loader,
      format: 'cjs',
      target: 'node20',
      sourcemap: 'inline',
      sourcefile: filename,
      // ESM dependencies may read import.meta.url; give them the file's URL.
      define: { 'import.meta.url': JSON.stringify('file://' + filename) },
    });
    return { code: out.code };
  },
};
