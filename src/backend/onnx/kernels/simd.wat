;; maskgen's element-wise optimizer loops in WebAssembly SIMD (f32x4), for the onnx backend
;; (simd.ts). Assembled into simd-wasm.ts by `npx tsx scripts/build-wasm.ts`; a test fails when the
;; two differ. Every operation is IEEE float32, rounded after each op, in the order written here
;; (simd.ts has the same formulas in JS, rounded with Math.fround, and the tests hold the two to the bit).
;;
;; Pointers are byte offsets into this module's own memory (4 pages: simd.ts copies chunks of up
;; to 16,384 floats of each array in and out); n is a count of floats.
(module
  (memory (export "memory") 4)

  ;; AdamW, in place on p, m, v:
  ;;   g' = g·gs,  m' = m·b1 + g'·ob1,  v' = v·b2 + (g'·g')·ob2,
  ;;   p' = p − ((m'·step) / (√(v'·ib2) + eps) + p·decay)
  (func (export "adamw")
    (param $p i32) (param $m i32) (param $v i32) (param $g i32) (param $n i32)
    (param $gs f32) (param $b1 f32) (param $ob1 f32) (param $b2 f32) (param $ob2 f32)
    (param $step f32) (param $ib2 f32) (param $eps f32) (param $decay f32)
    (local $i i32) (local $end i32) (local $o i32)
    (local $gi v128) (local $mi v128) (local $vi v128) (local $pi v128)
    (local $Vgs v128) (local $Vb1 v128) (local $Vob1 v128) (local $Vb2 v128) (local $Vob2 v128)
    (local $Vstep v128) (local $Vib2 v128) (local $Veps v128) (local $Vdecay v128)
    (local $sg f32) (local $sm f32) (local $sv f32) (local $sp f32)
    (local.set $Vgs (f32x4.splat (local.get $gs)))
    (local.set $Vb1 (f32x4.splat (local.get $b1)))
    (local.set $Vob1 (f32x4.splat (local.get $ob1)))
    (local.set $Vb2 (f32x4.splat (local.get $b2)))
    (local.set $Vob2 (f32x4.splat (local.get $ob2)))
    (local.set $Vstep (f32x4.splat (local.get $step)))
    (local.set $Vib2 (f32x4.splat (local.get $ib2)))
    (local.set $Veps (f32x4.splat (local.get $eps)))
    (local.set $Vdecay (f32x4.splat (local.get $decay)))
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    ;; four floats at a time
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $gi (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $o))) (local.get $Vgs)))
        (local.set $mi (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $o))) (local.get $Vb1))
                                  (f32x4.mul (local.get $gi) (local.get $Vob1))))
        (local.set $vi (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $o))) (local.get $Vb2))
                                  (f32x4.mul (f32x4.mul (local.get $gi) (local.get $gi)) (local.get $Vob2))))
        (local.set $pi (v128.load (i32.add (local.get $p) (local.get $o))))
        (v128.store (i32.add (local.get $m) (local.get $o)) (local.get $mi))
        (v128.store (i32.add (local.get $v) (local.get $o)) (local.get $vi))
        (v128.store (i32.add (local.get $p) (local.get $o))
          (f32x4.sub (local.get $pi)
            (f32x4.add
              (f32x4.div (f32x4.mul (local.get $mi) (local.get $Vstep))
                         (f32x4.add (f32x4.sqrt (f32x4.mul (local.get $vi) (local.get $Vib2))) (local.get $Veps)))
              (f32x4.mul (local.get $pi) (local.get $Vdecay)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vec)))
    ;; the last n mod 4, one at a time
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (local.set $sg (f32.mul (f32.load (i32.add (local.get $g) (local.get $o))) (local.get $gs)))
        (local.set $sm (f32.add (f32.mul (f32.load (i32.add (local.get $m) (local.get $o))) (local.get $b1))
                                (f32.mul (local.get $sg) (local.get $ob1))))
        (local.set $sv (f32.add (f32.mul (f32.load (i32.add (local.get $v) (local.get $o))) (local.get $b2))
                                (f32.mul (f32.mul (local.get $sg) (local.get $sg)) (local.get $ob2))))
        (local.set $sp (f32.load (i32.add (local.get $p) (local.get $o))))
        (f32.store (i32.add (local.get $m) (local.get $o)) (local.get $sm))
        (f32.store (i32.add (local.get $v) (local.get $o)) (local.get $sv))
        (f32.store (i32.add (local.get $p) (local.get $o))
          (f32.sub (local.get $sp)
            (f32.add
              (f32.div (f32.mul (local.get $sm) (local.get $step))
                       (f32.add (f32.sqrt (f32.mul (local.get $sv) (local.get $ib2))) (local.get $eps)))
              (f32.mul (local.get $sp) (local.get $decay)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))

  ;; A moving average, in place on a: a' = a·d + w·od
  (func (export "ema")
    (param $a i32) (param $w i32) (param $n i32) (param $d f32) (param $od f32)
    (local $i i32) (local $end i32) (local $o i32) (local $Vd v128) (local $Vod v128)
    (local.set $Vd (f32x4.splat (local.get $d)))
    (local.set $Vod (f32x4.splat (local.get $od)))
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $vec
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (v128.store (i32.add (local.get $a) (local.get $o))
          (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $a) (local.get $o))) (local.get $Vd))
                     (f32x4.mul (v128.load (i32.add (local.get $w) (local.get $o))) (local.get $Vod))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $vec)))
    (block $tdone
      (loop $tail
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $o (i32.shl (local.get $i) (i32.const 2)))
        (f32.store (i32.add (local.get $a) (local.get $o))
          (f32.add (f32.mul (f32.load (i32.add (local.get $a) (local.get $o))) (local.get $d))
                   (f32.mul (f32.load (i32.add (local.get $w) (local.get $o))) (local.get $od))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail))))
)
