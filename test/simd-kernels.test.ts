/**
 * The optimizer's WebAssembly SIMD loops (src/backend/onnx/kernels/simd.ts): the committed module is
 * what simd.wat assembles to, and each loop gives, to the bit, the float32 formula computed one
 * rounded operation at a time in JS, on lengths that end mid-vector and mid-chunk.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { adamwInto, emaInto, type AdamWNumbers } from '../src/backend/onnx/kernels/simd.js';
import { SIMD_WASM_BASE64 } from '../src/backend/onnx/kernels/simd-wasm.js';
import { Rng } from '../src/random.js';
import { assembleSimdWat } from '../scripts/wasm-assemble.js';

const f = Math.fround;
// past one chunk (16,384), ending mid-vector and mid-chunk
const LENGTHS = [1, 3, 4, 7, 16384, 16387, 40001];

function randomArray(rng: Rng, n: number, scale: number, positive = false): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (positive ? rng.next() : rng.next() - 0.5) * scale;
  return out;
}

function adamwReference(p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, c: AdamWNumbers): void {
  for (let i = 0; i < p.length; i++) {
    const gi = f(g[i]! * c.gs);
    const mi = f(f(m[i]! * c.b1) + f(gi * c.ob1));
    const vi = f(f(v[i]! * c.b2) + f(f(gi * gi) * c.ob2));
    const pi = p[i]!;
    m[i] = mi;
    v[i] = vi;
    p[i] = f(pi - f(f(f(mi * c.step) / f(f(Math.sqrt(f(vi * c.ib2))) + c.eps)) + f(pi * c.decay)));
  }
}

describe('WebAssembly SIMD optimizer loops', () => {
  it('the committed module is simd.wat assembled (run scripts/build-wasm.ts after editing it)', async () => {
    const wat = fs.readFileSync(new URL('../src/backend/onnx/kernels/simd.wat', import.meta.url), 'utf8');
    const bytes = await assembleSimdWat(wat);
    expect(Buffer.from(bytes).toString('base64')).toBe(SIMD_WASM_BASE64);
  });

  it('AdamW in place equals the float32 formula to the bit', () => {
    const rng = new Rng(3);
    const c: AdamWNumbers = { gs: f(0.7), b1: f(0.9), ob1: f(0.1), b2: f(0.96), ob2: f(0.04), step: f(3e-4), ib2: f(1.7), eps: f(1e-8), decay: f(3e-5) };
    for (const n of LENGTHS) {
      const [p, m, v, g] = [randomArray(rng, n, 2), randomArray(rng, n, 0.1), randomArray(rng, n, 0.01, true), randomArray(rng, n, 1)];
      const want = [p.slice(), m.slice(), v.slice()] as [Float32Array, Float32Array, Float32Array];
      adamwReference(...want, g, c);
      adamwInto(p, m, v, g, c);
      expect([Array.from(p), Array.from(m), Array.from(v)], `n = ${n}`).toEqual(want.map((a) => Array.from(a)));
    }
  });

  it('AdamW moves every weight against its gradient, tails included', () => {
    const n = 16387;
    const p = new Float32Array(n);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    const g = Float32Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 1 : -1));
    adamwInto(p, m, v, g, { gs: 1, b1: f(0.9), ob1: f(0.1), b2: f(0.99), ob2: f(0.01), step: f(0.01 / 0.1), ib2: f(1 / 0.01), eps: f(1e-8), decay: 0 });
    // first step of Adam: Δp = −lr·sign(g)
    for (let i = 0; i < n; i++) expect(p[i]).toBeCloseTo(i % 2 === 0 ? -0.01 : 0.01, 6);
  });

  it('the moving average in place equals a·d + w·(1 − d) in float32, to the bit', () => {
    const rng = new Rng(5);
    const d = f(0.999);
    const od = f(1 - 0.999);
    for (const n of LENGTHS) {
      const a = randomArray(rng, n, 2);
      const w = randomArray(rng, n, 2);
      const want = Array.from(a, (x, i) => f(f(x * d) + f(w[i]! * od)));
      emaInto(a, w, d, od);
      expect(Array.from(a), `n = ${n}`).toEqual(want);
    }
  });

  it('refuses arrays of different lengths', () => {
    const a = new Float32Array(4);
    expect(() => adamwInto(a, a.slice(), a.slice(), new Float32Array(3), { gs: 1, b1: 1, ob1: 0, b2: 1, ob2: 0, step: 0, ib2: 1, eps: 1, decay: 0 })).toThrow(/adamw: arrays of 4, 4, 4 and 3/);
    expect(() => emaInto(a, new Float32Array(5), 0.5, 0.5)).toThrow(/ema: arrays of 4 and 5/);
  });
});
