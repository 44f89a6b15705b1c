// Bundles the CLI and everything it imports into one file, dist/deltacast.cjs, and the small
// `deltacast` executable, dist/deltacast.mjs, that runs it from V8's code cache
// (src/launch/code-cache.ts). One file to load instead of a few hundred modules halved start-up
// (about 0.25 s to 0.13 s here); the code cache takes another ~60 ms off, which every sync and every
// rdiff-style command pays. A code cache needs a classic script, hence CommonJS (and no top-level
// await anywhere in the bundle). Run after tsc (see "build").
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createRequire } from 'node:module';

// hash-wasm as core resolves it, its ES module build (core depends on it; this package may not).
const hashWasmModule = createRequire(fileURLToPath(import.meta.resolve('@deltacast/core'))).resolve('hash-wasm/dist/index.esm.js');

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const bundle = here('./dist/deltacast.cjs');
const launcher = here('./dist/deltacast.mjs');
/**
 * ssh2's index loads its HTTP(S)-over-SSH agents, and with them node:http, node:https and node:tls:
 * ~8 ms of every start, for classes deltacast never uses. They are left out of the bundle.
 */
const withoutSsh2HttpAgents = {
  name: 'without-ssh2-http-agents',
  setup(builder) {
    builder.onResolve({ filter: /^\.\/http-agents\.js$/ }, (args) =>
      /[\\/]ssh2[\\/]lib[\\/]index\.js$/.test(args.importer) ? { path: 'ssh2-http-agents', namespace: 'deltacast-omitted' } : undefined,
    );
    builder.onLoad({ filter: /.*/, namespace: 'deltacast-omitted' }, () => ({
      loader: 'js',
      contents:
        "function omitted() { throw new Error('ssh2 HTTPAgent and HTTPSAgent are not part of the deltacast bundle'); }\n" +
        'module.exports = { SSHTTPAgent: omitted, SSHTTPSAgent: omitted };',
    }));
  },
};
/** What both builds share: one file for Node 20, with everything it imports. */
const shared = { bundle: true, platform: 'node', target: 'node20', legalComments: 'none', logLevel: 'warning' };

await build({
  ...shared,
  entryPoints: [here('./dist/bin.js')],
  outfile: bundle,
  format: 'cjs',
  // hash-wasm's ES module build, which esbuild tree-shakes to the two hashes core uses; its "main"
  // (UMD) carries every algorithm's WebAssembly, 260 KB more to parse.
  alias: { 'hash-wasm': hashWasmModule },
  // ssh2's optional native pieces: loaded in try/catch, with pure-JS fallbacks.
  external: ['*.node', 'cpu-features'],
  // The ES modules' import.meta.url, as the bundle's own URL.
  // The version, so the bundle needs no package.json beside it (a pull runs it alone on another host).
  define: { 'import.meta.url': '__deltacastBundleUrl', __DELTACAST_VERSION__: JSON.stringify(JSON.parse(readFileSync(here('./package.json'), 'utf8')).version) },
  banner: { js: "var __deltacastBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  plugins: [withoutSsh2HttpAgents],
});
const source = readFileSync(bundle, 'utf8');
// vm.Script, which runs the bundle, has no loader for import(): the bundle must not need one.
if (/[^\w$.]import\(/.test(source)) throw new Error('build-bundle: the CLI bundle has a dynamic import(), which the code-cache launcher cannot run');
if (/require\("(node:)?(https|tls)"\)/.test(source)) throw new Error('build-bundle: the CLI bundle loads node:https or node:tls at start (ssh2\'s HTTP agents are meant to be left out)');
const buildId = createHash('sha256').update(source).digest('hex').slice(0, 32);

await build({
  ...shared,
  entryPoints: [here('./dist/launch/bin.js')],
  outfile: launcher,
  format: 'esm',
  define: { __DELTACAST_BUILD_ID__: JSON.stringify(buildId) },
});
chmodSync(launcher, 0o755);
// The agent that local syncs run as a child and remote ones upload sits beside the bundle.
copyFileSync(fileURLToPath(new URL('./agent.bundle.mjs', import.meta.resolve('@deltacast/transport'))), here('./dist/agent.bundle.mjs'));
console.log(`build-bundle: ${bundle} (${statSync(bundle).size} bytes, build ${buildId}), ${launcher} (${statSync(launcher).size} bytes)`);
