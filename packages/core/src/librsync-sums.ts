/**
 * librsync's strong sums (BLAKE2b-256 and MD4) from hash-wasm. Imported by strong-sum.ts only when
 * one of them is set up, and only these two of hash-wasm's functions, so a bundle carries no others.
 */
export { createBLAKE2b, createMD4 } from 'hash-wasm';
