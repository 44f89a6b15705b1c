/**
 * XXH3-128 from hash-wasm, imported by file-hash.ts when it is first set up, and only this one of
 * hash-wasm's functions, so a bundle carries no others.
 */
export { createXXHash128 } from 'hash-wasm';
