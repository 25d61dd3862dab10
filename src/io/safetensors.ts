/**
 * The safetensors format (https://github.com/huggingface/safetensors), so that other tools can read
 * maskgen's weights:
 *
 *   8 bytes   little-endian u64 N, the header's length in bytes
 *   N bytes   UTF-8 JSON: { "__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}, ... }
 *             padded with spaces so that the data starts at a multiple of 8
 *   rest      the tensors' raw little-endian bytes; offsets are relative to the start of this part
 *
 * Tensors are laid out like the reference implementation does: by alignment (largest dtype first),
 * then by name, so that every tensor starts at a multiple of its element size.
 */
import * as fsp from 'node:fs/promises';
import { endianness } from 'node:os';
import { UserError } from '../errors.js';
import { fsError, writeFileAtomic } from './atomic.js';

export type DType = 'F32' | 'F16' | 'I32' | 'U8';

/** One tensor as plain data. F16 is held as its raw IEEE half-precision bits. */
export interface NamedArray {
  dtype: DType;
  shape: number[];
  data: Float32Array | Uint16Array | Int32Array | Uint8Array;
}

export const DTYPE_SIZE: Record<DType, number> = { F32: 4, F16: 2, I32: 4, U8: 1 };
const DTYPES = Object.keys(DTYPE_SIZE) as DType[];
const ARRAY_TYPE = { F32: Float32Array, F16: Uint16Array, I32: Int32Array, U8: Uint8Array } as const;
const KNOWN_OTHER_DTYPES = new Set(['BOOL', 'I8', 'I16', 'U16', 'BF16', 'U32', 'F64', 'I64', 'U64', 'F8_E4M3', 'F8_E5M2']);
/** The reference implementation refuses headers above 100 MB; so do we (it also catches garbage). */
const MAX_HEADER = 100_000_000;
const BIG_ENDIAN_HOST = endianness() === 'BE';

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Swaps bytes in place for a big-endian host; the file is always little-endian. */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/** Encodes tensors (and optional string metadata) as a safetensors file. */
export function encodeSafetensors(tensors: Record<string, NamedArray>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name]!;
    if (name === '__metadata__' || name.length === 0) throw new Error(`safetensors: invalid tensor name '${name}'`);
    if (!DTYPES.includes(t.dtype)) throw new Error(`safetensors: tensor '${name}' has unsupported dtype ${String(t.dtype)}`);
    if (!(t.data instanceof ARRAY_TYPE[t.dtype])) {
      throw new Error(`safetensors: tensor '${name}' is ${t.dtype} but its data is a ${t.data.constructor.name}`);
    }
    if (!t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`safetensors: tensor '${name}' has invalid shape [${t.shape.join(',')}]`);
    }
    if (numel(t.shape) !== t.data.length) {
      throw new Error(`safetensors: tensor '${name}' has shape [${t.shape.join(',')}] but ${t.data.length} values`);
    }
  }
  // Largest alignment first, then by name (as the reference implementation does).
  const order = [...names].sort((a, b) => {
    const d = DTYPE_SIZE[tensors[b]!.dtype] - DTYPE_SIZE[tensors[a]!.dtype];
    return d !== 0 ? d : a < b ? -1 : a > b ? 1 : 0;
  });

  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of order) {
    const t = tensors[name]!;
    const end = offset + t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const headerBytes = new Uint8Array(padded).fill(0x20);
  headerBytes.set(json);
  json = headerBytes;

  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true);
  view.setUint32(4, Math.floor(json.length / 2 ** 32), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of order) {
    const d = tensors[name]!.data;
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    out.set(bytes, pos);
    if (BIG_ENDIAN_HOST) swapBytes(out.subarray(pos, pos + bytes.length), d.BYTES_PER_ELEMENT);
    pos += bytes.length;
  }
  return out;
}

/**
 * Decodes a safetensors file. A truncated or garbled file, or a dtype maskgen does not handle, is a
 * UserError naming `where`. The returned arrays are copies (they do not share memory with `buf`).
 */
export function decodeSafetensors(
  buf: Uint8Array,
  where = 'safetensors data',
): { tensors: Record<string, NamedArray>; metadata: Record<string, string> } {
  const bad = (why: string) => new UserError(`${where}: not a valid safetensors file (${why})`);
  if (buf.length < 8) throw bad(`truncated: ${buf.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER) throw bad(`header length field says ${n} bytes`);
  if (8 + n > buf.length) throw bad(`truncated: the header needs ${n} bytes but only ${buf.length - 8} follow`);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n)));
  } catch (err) {
    throw bad(`header is not JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');

  const data = buf.subarray(8 + n);
  const tensors: Record<string, NamedArray> = {};
  const metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null) continue;
      if (typeof entry !== 'object' || Array.isArray(entry)) throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(`__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null) throw bad(`entry '${name}' is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string') throw bad(`tensor '${name}' has no dtype`);
    if (!DTYPES.includes(dtype as DType)) {
      if (KNOWN_OTHER_DTYPES.has(dtype)) {
        throw new UserError(`${where}: tensor '${name}' has dtype ${dtype}, which maskgen does not read (it reads ${DTYPES.join(', ')})`);
      }
      throw bad(`tensor '${name}' has unknown dtype '${dtype}'`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`tensor '${name}' has an invalid shape`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[1] < offsets[0]
    ) {
      throw bad(`tensor '${name}' has invalid data_offsets`);
    }
    const dt = dtype as DType;
    const [begin, end] = offsets as [number, number];
    const count = numel(shape as number[]);
    if (end - begin !== count * DTYPE_SIZE[dt]) {
      throw bad(`tensor '${name}' is ${dt} [${shape.join(',')}] but spans ${end - begin} bytes`);
    }
    if (end > data.length) {
      throw bad(`truncated: tensor '${name}' ends at data byte ${end} but the file has ${data.length}`);
    }
    // A copy starting at offset 0 of its own buffer (so aligned). Not data.slice(): on a Node
    // Buffer that is a view into a shared pool, not a copy.
    const bytes = new Uint8Array(end - begin);
    bytes.set(data.subarray(begin, end));
    if (BIG_ENDIAN_HOST) swapBytes(bytes, DTYPE_SIZE[dt]);
    const arr = new ARRAY_TYPE[dt](bytes.buffer, 0, count);
    tensors[name] = { dtype: dt, shape: [...(shape as number[])], data: arr };
  }
  return { tensors, metadata };
}

// ---------------------------------------------------------------------------------------------
// float16 <-> float32

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** One float32 (given as its bits) to IEEE half bits, rounding to nearest, ties to even. */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  const exp = abs >>> 23;
  if (exp === 0xff) {
    // inf stays inf; NaN stays NaN, keeping the top of its payload (and never becoming inf)
    if (abs === 0x7f800000) return sign | 0x7c00;
    const payload = (abs >>> 13) & 0x3ff;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload);
  }
  if (exp >= 143) return sign | 0x7c00; // >= 65536: overflow to inf
  if (exp >= 113) {
    // normal half: rebias the exponent, round 23 mantissa bits to 10. A carry out of the mantissa
    // correctly bumps the exponent (and 65520 and up becomes inf).
    const h = ((exp - 112) << 10) | ((abs >>> 13) & 0x3ff);
    const rest = abs & 0x1fff;
    return sign | (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h);
  }
  if (exp < 102) return sign; // below 2^-25: rounds to (signed) zero
  // subnormal half: value = mant * 2^(exp-150), in units of 2^-24 that is mant >> (126 - exp)
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exp; // 14..24
  const h = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rest > half || (rest === half && (h & 1) === 1) ? h + 1 : h);
}

/** float32 → IEEE half bits, rounding to nearest even; keeps subnormals, infinities and NaN. */
export function float32ToFloat16(a: Float32Array): Uint16Array {
  const out = new Uint16Array(a.length);
  const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < a.length; i++) out[i] = halfBits(bits[i]!);
  return out;
}

/** float32 bits of every half, built on first use; copying bits (not numbers) keeps NaN payloads. */
let halfTable: Uint32Array | null = null;

function buildHalfTable(): Uint32Array {
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) t[h] = sign | 0x7f800000 | (mant << 13); // inf, NaN
    else if (exp !== 0) t[h] = sign | ((exp + 112) << 23) | (mant << 13); // normal
    else {
      f32[0] = mant * 2 ** -24; // zero or subnormal: exact as a float32
      t[h] = sign | u32[0]!;
    }
  }
  return t;
}

/** IEEE half bits → float32 (exact: every half is a float32). */
export function float16ToFloat32(a: Uint16Array): Float32Array {
  const table = (halfTable ??= buildHalfTable());
  const out = new Float32Array(a.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < a.length; i++) bits[i] = table[a[i]!]!;
  return out;
}

/** Any NamedArray's values as float32 (F32 data is returned as is, not copied). */
export function toFloat32(a: NamedArray): Float32Array {
  switch (a.dtype) {
    case 'F32':
      return a.data as Float32Array;
    case 'F16':
      return float16ToFloat32(a.data as Uint16Array);
    default:
      return Float32Array.from(a.data as Int32Array | Uint8Array);
  }
}

// ---------------------------------------------------------------------------------------------
// files

/** Writes a safetensors file atomically. */
export async function saveSafetensors(
  file: string,
  tensors: Record<string, NamedArray>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

/** Reads a safetensors file; a missing or unreadable file is a UserError naming it. */
export async function loadSafetensors(
  file: string,
): Promise<{ tensors: Record<string, NamedArray>; metadata: Record<string, string> }> {
  let buf: Uint8Array;
  try {
    buf = await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError(`${file}: no such file`);
    throw fsError(err, 'read', file);
  }
  return decodeSafetensors(buf, file);
}
