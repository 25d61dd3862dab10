import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  float16ToFloat32,
  float32ToFloat16,
  loadSafetensors,
  saveSafetensors,
  toFloat32,
  type NamedArray,
} from '../src/io/safetensors.js';

const u64 = (buf: Uint8Array) => {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
};
const headerOf = (buf: Uint8Array) => JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + u64(buf))));

/** A safetensors file put together by hand, the way another tool might write it. */
function handMade(header: object, data: number[]): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function sample(): Record<string, NamedArray> {
  return {
    'w.f32': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, -0.25, 1e-30]) },
    'w.f16': { dtype: 'F16', shape: [3], data: float32ToFloat16(new Float32Array([1, -2, 0.5])) },
    'w.i32': { dtype: 'I32', shape: [2, 2], data: new Int32Array([1, -1, 2147483647, -2147483648]) },
    'w.u8': { dtype: 'U8', shape: [5], data: new Uint8Array([0, 1, 127, 128, 255]) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
}

describe('safetensors encode/decode', () => {
  it('round-trips every dtype, with metadata', () => {
    const tensors = sample();
    const buf = encodeSafetensors(tensors, { format: 'pt', note: 'hello' });
    // decode from a view that does not start at the beginning of its buffer (like a Node Buffer)
    const host = new Uint8Array(buf.length + 3);
    host.set(buf, 3);
    const back = decodeSafetensors(host.subarray(3), 'mem');
    expect(back.metadata).toEqual({ format: 'pt', note: 'hello' });
    expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.tensors[name]!;
      expect(b.dtype).toBe(t.dtype);
      expect(b.shape).toEqual(t.shape);
      expect(b.data.constructor).toBe(t.data.constructor);
      expect(Array.from(b.data)).toEqual(Array.from(t.data));
    }
  });

  it('without metadata decodes to empty metadata and writes no __metadata__', () => {
    const buf = encodeSafetensors({ a: { dtype: 'U8', shape: [1], data: new Uint8Array([7]) } });
    expect(headerOf(buf).__metadata__).toBeUndefined();
    expect(decodeSafetensors(buf).metadata).toEqual({});
  });

  it('pads the header to 8 bytes and aligns every tensor to its element size', () => {
    const tensors: Record<string, NamedArray> = {
      a: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
      b: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
      c: { dtype: 'F32', shape: [1], data: new Float32Array([1]) },
      d: { dtype: 'I32', shape: [1], data: new Int32Array([5]) },
    };
    for (const meta of [undefined, { x: 'y' }, { x: 'yy' }, { x: 'yyy' }]) {
      const buf = encodeSafetensors(tensors, meta);
      const n = u64(buf);
      expect(n % 8).toBe(0);
      const text = new TextDecoder().decode(buf.subarray(8, 8 + n));
      expect(text).toMatch(/^\{.*\} *$/);
      const header = headerOf(buf);
      const size = { U8: 1, F16: 2, F32: 4, I32: 4 } as const;
      let end = 0;
      for (const [name, e] of Object.entries(header) as [string, { dtype: keyof typeof size; data_offsets: [number, number] }][]) {
        if (name === '__metadata__') continue;
        expect((8 + n + e.data_offsets[0]) % size[e.dtype]).toBe(0);
        end = Math.max(end, e.data_offsets[1]);
      }
      expect(buf.length).toBe(8 + n + end); // the data fills the rest exactly
    }
  });

  it('matches a hand-built file byte for byte', () => {
    const buf = encodeSafetensors({ a: { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) } });
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes → padded to 56
    const expected = new Uint8Array([
      56, 0, 0, 0, 0, 0, 0, 0, // header length, u64 little-endian
      ...new TextEncoder().encode(json + '  '),
      0x00, 0x00, 0x80, 0x3f, // 1.0f
      0x00, 0x00, 0x00, 0xc0, // -2.0f
    ]);
    expect(Array.from(buf)).toEqual(Array.from(expected));
  });

  it('reads files laid out by other writers (any order, unaligned offsets, no padding)', () => {
    const f = new Uint8Array(new Float32Array([1.5, -3]).buffer);
    const buf = handMade(
      {
        z: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
        a: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
        __metadata__: { format: 'pt' },
      },
      [9, 8, 7, ...f],
    );
    const { tensors, metadata } = decodeSafetensors(buf, 'other.safetensors');
    expect(metadata).toEqual({ format: 'pt' });
    expect(Array.from(tensors.z!.data)).toEqual([9, 8, 7]);
    expect(Array.from(tensors.a!.data)).toEqual([1.5, -3]);
  });

  it('refuses truncated and garbled files with a UserError naming where', () => {
    const buf = encodeSafetensors(sample(), { a: 'b' });
    for (const cut of [0, 5, 8, 20, u64(buf) + 8 - 1, buf.length - 1]) {
      const f = () => decodeSafetensors(buf.subarray(0, cut), 'runs/x/model.safetensors');
      expect(f).toThrow(UserError);
      expect(f).toThrow(/^runs\/x\/model\.safetensors: .*truncated/);
    }
    const huge = new Uint8Array(buf);
    new DataView(huge.buffer).setUint32(4, 7, true);
    expect(() => decodeSafetensors(huge, 'w.bin')).toThrow(/^w\.bin: not a valid safetensors file/);
    const garbled = new Uint8Array(buf);
    garbled[9] = 0x7b; // '{{...'
    expect(() => decodeSafetensors(garbled, 'w.bin')).toThrow(/^w\.bin: .*header is not JSON/);
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    expect(() => decodeSafetensors(png, 'img.png')).toThrow(UserError);
  });

  it('refuses inconsistent entries and dtypes it does not read', () => {
    expect(() => decodeSafetensors(handMade({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Array(8).fill(0)), 'f')).toThrow(
      /^f: .*tensor 'a' is F32 \[3\] but spans 8 bytes/,
    );
    expect(() => decodeSafetensors(handMade({ a: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, [0, 0]), 'f')).toThrow(
      /^f: tensor 'a' has dtype BF16, which maskgen does not read/,
    );
    expect(() => decodeSafetensors(handMade({ a: { dtype: 'F32', shape: [1] } }, [0, 0, 0, 0]), 'f')).toThrow(UserError);
  });

  it('refuses inconsistent input to the encoder (a programming error, not a UserError)', () => {
    expect(() => encodeSafetensors({ a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).toThrow(/shape \[3\] but 2 values/);
    expect(() => encodeSafetensors({ a: { dtype: 'F16', shape: [1], data: new Float32Array(1) } })).toThrow(/F16/);
  });
});

describe('float16', () => {
  const h = (x: number) => float32ToFloat16(new Float32Array([x]))[0]!;
  const f = (bits: number) => float16ToFloat32(new Uint16Array([bits]))[0]!;

  it('converts known values', () => {
    expect(h(1)).toBe(0x3c00);
    expect(h(-2)).toBe(0xc000);
    expect(h(0.5)).toBe(0x3800);
    expect(h(65504)).toBe(0x7bff); // largest half
    expect(h(6.103515625e-5)).toBe(0x0400); // smallest normal
    expect(h(6.1e-5)).toBe(0x03ff); // just below it: the largest subnormal
    expect(h(5.96e-8)).toBe(0x0001); // smallest subnormal, 2^-24
    expect(h(2 ** -25)).toBe(0x0000); // exactly half of it: ties to even (zero)
    expect(h(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(h(0)).toBe(0x0000);
    expect(h(-0)).toBe(0x8000);
    expect(h(Infinity)).toBe(0x7c00);
    expect(h(-Infinity)).toBe(0xfc00);
    expect(h(1e6)).toBe(0x7c00); // overflow
    expect(h(65519)).toBe(0x7bff); // rounds down to the largest half
    expect(h(65520)).toBe(0x7c00); // halfway to 65536: ties to even, which is inf
    const nan = h(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('rounds to nearest, ties to even', () => {
    expect(h(1 + 2 ** -11)).toBe(0x3c00); // tie between 0x3c00 and 0x3c01 → even
    expect(h(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 0x3c01 and 0x3c02 → even
    expect(h(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(h(2049)).toBe(0x6800); // 2048 (even) not 2050
    expect(h(2051)).toBe(0x6802); // 2052 (even) not 2050
    expect(h(0.1)).toBe(0x2e66);
    expect(h(3 * 2 ** -25)).toBe(0x0002); // subnormal tie 1.5 → 2
    expect(h(5 * 2 ** -25)).toBe(0x0002); // subnormal tie 2.5 → 2
  });

  it('converts back exactly, including subnormals, infinities and NaN', () => {
    expect(f(0x3c00)).toBe(1);
    expect(f(0xc000)).toBe(-2);
    expect(f(0x7bff)).toBe(65504);
    expect(f(0x0400)).toBe(6.103515625e-5);
    expect(f(0x0001)).toBe(2 ** -24);
    expect(Object.is(f(0x8000), -0)).toBe(true);
    expect(f(0x7c00)).toBe(Infinity);
    expect(f(0xfc00)).toBe(-Infinity);
    expect(f(0x7e00)).toBeNaN();
    // every half survives half → float → half
    const all = new Uint16Array(65536).map((_, i) => i);
    expect(float32ToFloat16(float16ToFloat32(all))).toEqual(all);
  });

  it('toFloat32 handles every dtype', () => {
    expect(Array.from(toFloat32({ dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) }))).toEqual([1, -2]);
    expect(Array.from(toFloat32({ dtype: 'I32', shape: [2], data: new Int32Array([3, -4]) }))).toEqual([3, -4]);
    expect(Array.from(toFloat32({ dtype: 'U8', shape: [1], data: new Uint8Array([200]) }))).toEqual([200]);
    const a = new Float32Array([1.25]);
    expect(toFloat32({ dtype: 'F32', shape: [1], data: a })).toBe(a);
  });
});

describe('safetensors files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'maskgen-st-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('saves and loads (atomically: no temp files left)', async () => {
    const file = path.join(dir, 'sub', 'w.safetensors');
    await saveSafetensors(file, sample(), { step: '3' });
    const { tensors, metadata } = await loadSafetensors(file);
    expect(metadata).toEqual({ step: '3' });
    expect(Array.from(tensors['w.f32']!.data)).toEqual(Array.from(sample()['w.f32']!.data));
    expect(await readdir(path.dirname(file))).toEqual(['w.safetensors']);
  });

  it('a missing file is a UserError naming it', async () => {
    const file = path.join(dir, 'nope.safetensors');
    await expect(loadSafetensors(file)).rejects.toThrow(UserError);
    await expect(loadSafetensors(file)).rejects.toThrow(`${file}: no such file`);
  });

  it('a truncated file is a UserError naming it', async () => {
    const file = path.join(dir, 'cut.safetensors');
    const buf = encodeSafetensors(sample());
    await writeFile(file, buf.subarray(0, buf.length - 3));
    await expect(loadSafetensors(file)).rejects.toThrow(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}: .*truncated`));
  });
});
