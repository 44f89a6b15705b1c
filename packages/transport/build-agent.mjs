// Bundles the agent entry point and everything it imports into dist/agent.bundle.mjs, the single file
// that is uploaded to hosts that have Node.js but not deltacast. Run after tsc (see "build").
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createRequire } from 'node:module';

// hash-wasm as core resolves it, its ES module build (core depends on it; this package may not).
const hashWasmModule = createRequire(fileURLToPath(import.meta.resolve('@deltacast/core'))).resolve('hash-wasm/dist/index.esm.js');

const entry = fileURLToPath(new URL('./dist/agent-main.js', import.meta.url));
const outfile = fileURLToPath(new URL('./dist/agent.bundle.mjs', import.meta.url));

if (!existsSync(entry)) {
  console.warn(`build-agent: ${entry} does not exist yet; skipping the agent bundle`);
  process.exit(0);
}

await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // hash-wasm's ES module build, which esbuild tree-shakes to the two hashes core uses; its "main"
  // (UMD) carries every algorithm's WebAssembly, 260 KB more to parse at every start.
  alias: { 'hash-wasm': hashWasmModule },
  // CommonJS dependencies call require(); an ES module has none, so give it one. And a bundle cached
  // on a host whose Node.js has since been replaced by an older one says so before anything else.
  banner: {
    js: [
      "import { createRequire as __deltacastCreateRequire } from 'node:module'; const require = __deltacastCreateRequire(import.meta.url);",
      'if (Number(process.versions.node.split(".")[0]) < 20) {',
      '  process.stderr.write(`deltacast agent: Node.js ${process.version} is too old; the agent needs Node.js 20 or later\\n`);',
      '  process.exit(1);',
      '}',
    ].join('\n'),
  },
  legalComments: 'none',
  logLevel: 'warning',
});
console.log(`build-agent: ${outfile} (${statSync(outfile).size} bytes)`);
