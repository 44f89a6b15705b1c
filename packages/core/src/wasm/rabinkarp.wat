;; RabinKarp block sums (librsync's weak sum, src/rabinkarp.ts) in WebAssembly SIMD: ~4 GB/s here
;; against ~1 GB/s for the JavaScript loop. Built into src/rabinkarp-wasm.ts by
;; scripts/build-rabinkarp-wasm.mjs; the tests check the result against the JavaScript definition.
(module
  (memory (export "memory") 1)
  ;; sums(p, L, count, out, mG): for k in [0, count), the i32 at out + 4k is the RabinKarp sum
  ;; (seed 1) of the L bytes at p + kL, L >= 16; mG is M^(16 * floor(L / 16)), the seed's term after
  ;; the whole 16-byte groups. Per group of bytes b0..b15, as four lanes of four bytes each:
  ;;   acc = acc * M^16 + (b0..b3) * (M^15..M^12) + (b4..b7) * (M^11..M^8) + (b8..b11) * (M^7..M^4)
  ;;         + (b12..b15) * (M^3..M^0)
  ;; so that the lanes' sum is sum(b_i * M^(n-1-i)) over the n bytes grouped; the bytes after the last
  ;; whole group are rolled in one at a time (h = h * M + b). The constants (M, M^16 and the powers
  ;; above, mod 2^32) are filled in by scripts/build-rabinkarp-wasm.mjs.
  (func (export "sums") (param $p i32) (param $L i32) (param $count i32) (param $out i32) (param $mG i32)
    (local $q i32) (local $stop i32) (local $end i32) (local $h i32) (local $v v128) (local $lo v128) (local $hi v128) (local $acc v128)
    (block $done
      (loop $blocks
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $q (local.get $p))
        (local.set $end (i32.add (local.get $p) (local.get $L)))
        (local.set $stop (i32.add (local.get $p) (i32.and (local.get $L) (i32.const -16))))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (block $vdone
          (loop $groups
            (br_if $vdone (i32.ge_u (local.get $q) (local.get $stop)))
            (local.set $v (v128.load (local.get $q)))
            (local.set $lo (i16x8.extend_low_i8x16_u (local.get $v)))
            (local.set $hi (i16x8.extend_high_i8x16_u (local.get $v)))
            (local.set $acc
              (i32x4.add
                (i32x4.add
                  (i32x4.mul (local.get $acc) (i32x4.splat (i32.const @MULT16@)))
                  (i32x4.add
                    (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $lo)) (v128.const i32x4 @C0@))
                    (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $lo)) (v128.const i32x4 @C1@))))
                (i32x4.add
                  (i32x4.mul (i32x4.extend_low_i16x8_u (local.get $hi)) (v128.const i32x4 @C2@))
                  (i32x4.mul (i32x4.extend_high_i16x8_u (local.get $hi)) (v128.const i32x4 @C3@)))))
            (local.set $q (i32.add (local.get $q) (i32.const 16)))
            (br $groups)))
        ;; h = M^(whole groups * 16) (the seed's term) + sum of the lanes, then the tail bytes one by one
        (local.set $h
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
            (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))
        (local.set $h (i32.add (local.get $h) (local.get $mG)))
        (block $tdone
          (loop $tail
            (br_if $tdone (i32.ge_u (local.get $q) (local.get $end)))
            (local.set $h (i32.add (i32.mul (local.get $h) (i32.const @MULT@)) (i32.load8_u (local.get $q))))
            (local.set $q (i32.add (local.get $q) (i32.const 1)))
            (br $tail)))
        (i32.store (local.get $out) (local.get $h))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (local.set $p (local.get $end))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $blocks)))))
