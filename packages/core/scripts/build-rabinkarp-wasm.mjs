// Assembles src/wasm/rabinkarp.wat (its constants filled in) and prints the module as base64, the
// string src/rabinkarp-wasm.ts embeds. Needs the `wabt` package: node scripts/build-rabinkarp-wasm.mjs
// (the tests run it too, when wabt is installed, and compare its output with the embedded module).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const M = 0x08104225;
/** M^n mod 2^32, as a signed 32-bit integer (as .wat writes i32 literals). */
function power(n) {
  let result = 1;
  let base = M;
  for (let e = n; e > 0; e = Math.floor(e / 2)) {
    if (e & 1) result = Math.imul(result, base);
    base = Math.imul(base, base);
  }
  return result | 0;
}

export async function assembleRabinKarp() {
  const { default: wabtInit } = await import('wabt');
  const lanes = (...exponents) => exponents.map(power).join(' ');
  const source = readFileSync(fileURLToPath(new URL('../src/wasm/rabinkarp.wat', import.meta.url)), 'utf8')
    .replace(/@MULT16@/g, String(power(16)))
    .replace(/@MULT@/g, String(M | 0))
    .replace(/@C0@/g, lanes(15, 14, 13, 12))
    .replace(/@C1@/g, lanes(11, 10, 9, 8))
    .replace(/@C2@/g, lanes(7, 6, 5, 4))
    .replace(/@C3@/g, lanes(3, 2, 1, 0));
  const wabt = await wabtInit();
  const module = wabt.parseWat('rabinkarp.wat', source, { simd: true });
  try {
    return Buffer.from(module.toBinary({}).buffer).toString('base64');
  } finally {
    module.destroy();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await assembleRabinKarp());
