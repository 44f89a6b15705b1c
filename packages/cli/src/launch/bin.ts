#!/usr/bin/env node
/**
 * The `deltacast` executable: runs the CLI bundle (dist/deltacast.cjs, built from ../bin.ts) from
 * V8's code cache (code-cache.ts). build-bundle.mjs bundles this file into dist/deltacast.mjs and
 * sets the bundle's build id.
 */
import { fileURLToPath } from 'node:url';
import { runCommonJsBundle } from './code-cache.js';

declare const __DELTACAST_BUILD_ID__: string | undefined;

runCommonJsBundle(fileURLToPath(new URL('./deltacast.cjs', import.meta.url)), {
  buildId: typeof __DELTACAST_BUILD_ID__ === 'string' ? __DELTACAST_BUILD_ID__ : 'unbuilt',
  argv: process.argv.slice(2),
});
