/**
 * Small ONNX models built in code with onnx-proto (protobufjs classes generated from onnx.proto):
 * one node, or a handful when an op needs its layout changed around it (e.g. NHWC ↔ NCHW for Conv).
 * Every input and output has a fixed shape; the session cache keys models by op, shapes, dtype and
 * attributes, so a model is built once per distinct call site shape.
 */
import onnxProto from 'onnx-proto';
import type { OrtDataType } from './binding.js';

const { onnx } = onnxProto;

/** Default-domain opset the models are written against. */
export const OPSET = 13;
/** ONNX Runtime's contrib domain (FusedMatMul: MatMul with transpose flags, no explicit Transpose). */
export const MS_DOMAIN = 'com.microsoft';

export interface ValueSpec {
  name: string;
  dtype: OrtDataType;
  dims: readonly number[];
  /** Leave the shape (rank included) open: the value's shape is known only when the model runs. */
  open?: boolean;
}

export type AttrValue = { i: number } | { f: number } | { ints: readonly number[] } | { floats: readonly number[] } | { s: string };

export interface NodeSpec {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: Record<string, AttrValue>;
  domain?: string;
}

/**
 * A constant baked into the model: a few `values` (e.g. the axes of a ReduceSum, the shape of a
 * Reshape), or a float32 array `raw` (a model's weights; stored as raw bytes).
 */
export type InitializerSpec =
  | { name: string; dtype: 'float32' | 'int64' | 'int32'; dims: readonly number[]; values: readonly number[] }
  | { name: string; dtype: 'float32'; dims: readonly number[]; raw: Float32Array };

export interface GraphSpec {
  nodes: readonly NodeSpec[];
  inputs: readonly ValueSpec[];
  outputs: readonly ValueSpec[];
  initializers?: readonly InitializerSpec[];
  /** Default-domain opset (default OPSET). */
  opset?: number;
}

export const int = (i: number): AttrValue => ({ i });
export const float = (f: number): AttrValue => ({ f });
export const ints = (v: readonly number[]): AttrValue => ({ ints: v });

const ELEM_TYPE: Record<OrtDataType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
};

function valueInfo(v: ValueSpec): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name: v.name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[v.dtype],
        ...(v.open ? {} : { shape: { dim: v.dims.map((d) => ({ dimValue: d })) } }),
      },
    },
  });
}

function attribute(name: string, v: AttrValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in v) return onnx.AttributeProto.create({ name, type: T.INT, i: v.i });
  if ('f' in v) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: v.f });
  if ('ints' in v) return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...v.ints] });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: [...v.floats] });
  return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(v.s) });
}

function initializer(t: InitializerSpec): InstanceType<typeof onnx.TensorProto> {
  const base = { name: t.name, dims: [...t.dims], dataType: ELEM_TYPE[t.dtype] };
  if ('raw' in t) {
    // little-endian float32 bytes, as ONNX stores raw_data
    const bytes = new Uint8Array(t.raw.byteLength);
    new Float32Array(bytes.buffer).set(t.raw);
    return onnx.TensorProto.create({ ...base, rawData: bytes });
  }
  if (t.dtype === 'float32') return onnx.TensorProto.create({ ...base, floatData: [...t.values] });
  if (t.dtype === 'int32') return onnx.TensorProto.create({ ...base, int32Data: [...t.values] });
  return onnx.TensorProto.create({ ...base, int64Data: [...t.values] });
}

/** Serialized ONNX ModelProto for `spec`. */
export function buildModel(spec: GraphSpec): Uint8Array {
  const usesMs = spec.nodes.some((n) => n.domain === MS_DOMAIN);
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'maskgen-onnx-backend',
    opsetImport: [{ domain: '', version: spec.opset ?? OPSET }, ...(usesMs ? [{ domain: MS_DOMAIN, version: 1 }] : [])],
    graph: {
      name: spec.nodes.map((n) => n.op).join('_'),
      node: spec.nodes.map((n, i) =>
        onnx.NodeProto.create({
          name: `n${i}_${n.op}`,
          opType: n.op,
          domain: n.domain ?? '',
          input: [...n.inputs],
          output: [...n.outputs],
          attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
        }),
      ),
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
      initializer: (spec.initializers ?? []).map(initializer),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The common case: one node reading graph inputs x0, x1, … and writing y. */
export function singleNode(
  op: string,
  inputs: readonly ValueSpec[],
  output: ValueSpec,
  attrs?: Record<string, AttrValue>,
  domain?: string,
): GraphSpec {
  return {
    nodes: [{ op, inputs: inputs.map((v) => v.name), outputs: [output.name], attrs, domain }],
    inputs,
    outputs: [output],
  };
}
