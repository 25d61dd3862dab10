/**
 * Conv2D (and FusedConv2D), Conv2DBackpropInput and Conv2DBackpropFilter on ONNX Runtime.
 *
 * tfjs keeps activations NHWC and filters [fh, fw, in, out]; ONNX's Conv is NCHW with weights
 * [out, in, fh, fw], so each graph transposes around the convolution (cheap next to the conv).
 * - forward: Conv with tfjs's top/left padding and a bottom/right padding that gives tfjs's output size;
 * - input gradient: ConvTranspose with the same weights (ConvTranspose reads them as [C_in=out, C_out=in,
 *   fh, fw]) and output_padding for strides that leave rows over;
 * - filter gradient: a convolution of x with dy, batch and channels swapped: x as [in, N, H, W],
 *   dy as weights [out, N, oh, ow], dilation = the forward stride; the result [in, out, fh', fw'] is
 *   cropped to [fh, fw] and transposed to [fh, fw, in, out].
 */
import * as tf from '@tensorflow/tfjs';
import { ints, type GraphSpec, type InitializerSpec, type NodeSpec, type ValueSpec } from '../graphs.js';
import { activationNodes } from './matmul.js';
import { dimsKey, runToTensor, sizeOf, valuesOf, type KernelArgs, type OnnxKernel, type Values } from './util.js';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

interface ConvGeometry {
  info: tf.backend_util.Conv2DInfo;
  /** ONNX pads [top, left, bottom, right]. */
  pads: [number, number, number, number];
  channelsLast: boolean;
}

/** Forward geometry with ONNX pads that reproduce tfjs's output size exactly, or null. */
function geometry(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Pad,
  rounding: Rounding,
  dataFormat: 'NHWC' | 'NCHW' | undefined,
): ConvGeometry | null {
  if (xShape.length !== 4 || filterShape.length !== 4) return null;
  const channelsLast = (dataFormat ?? 'NHWC') === 'NHWC';
  let info: tf.backend_util.Conv2DInfo;
  try {
    info = tf.backend_util.computeConv2DInfo(
      xShape as [number, number, number, number],
      filterShape as [number, number, number, number],
      strides,
      dilations,
      pad,
      rounding,
      false,
      channelsLast ? 'channelsLast' : 'channelsFirst',
    );
  } catch {
    return null;
  }
  const { inHeight: h, inWidth: w, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  if (top < 0 || left < 0 || oh <= 0 || ow <= 0 || info.batchSize === 0 || info.inChannels === 0 || info.outChannels === 0) return null;
  const bottom = Math.max(0, (oh - 1) * sh + info.effectiveFilterHeight - h - top);
  const right = Math.max(0, (ow - 1) * sw + info.effectiveFilterWidth - w - left);
  const onnxOh = Math.floor((h + top + bottom - info.effectiveFilterHeight) / sh) + 1;
  const onnxOw = Math.floor((w + left + right - info.effectiveFilterWidth) / sw) + 1;
  if (onnxOh !== oh || onnxOw !== ow) return null;
  return { info, pads: [top, left, bottom, right], channelsLast };
}

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];
const HWIO_TO_OIHW = [3, 2, 0, 1];

function convAttrs(g: ConvGeometry) {
  const i = g.info;
  return {
    strides: ints([i.strideHeight, i.strideWidth]),
    dilations: ints([i.dilationHeight, i.dilationWidth]),
    pads: ints(g.pads),
    kernel_shape: ints([i.filterHeight, i.filterWidth]),
  };
}

function conv2d(args: KernelArgs, fused: boolean): tf.TensorInfo | null {
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const attrs = (args.attrs ?? {}) as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: 'NHWC' | 'NCHW';
    dilations?: number | [number, number];
    dimRoundingMode?: Rounding;
    activation?: string;
    leakyreluAlpha?: number;
  };
  if (!x || !filter || x.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const activation = (fused ? attrs.activation ?? 'linear' : 'linear') as Parameters<typeof activationNodes>[0];
  if (!['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu'].includes(activation)) return null;
  const g = geometry(x.shape, filter.shape, attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  if (!g) return null;
  const outC = g.info.outChannels;
  if (bias && (bias.dtype !== 'float32' || sizeOf(bias.shape) !== outC || bias.shape[bias.shape.length - 1] !== outC)) return null;
  if (fused && preluActivationWeights) return null;
  const alpha = attrs.leakyreluAlpha ?? 0.2;
  const key = `Conv2D|${dimsKey(x.shape)}|${dimsKey(filter.shape)}|${g.channelsLast ? 'l' : 'f'}|${dimsKey(g.pads)}|${g.info.strideHeight},${g.info.strideWidth}|${g.info.dilationHeight},${g.info.dilationWidth}|${bias ? 'b' : ''}|${activation}${activation === 'leakyrelu' ? alpha : ''}`;
  const build = (): GraphSpec => {
    const inputs: ValueSpec[] = [
      { name: 'x', dtype: 'float32', dims: x.shape },
      { name: 'w', dtype: 'float32', dims: filter.shape },
    ];
    const nodes: NodeSpec[] = [];
    const initializers: InitializerSpec[] = [];
    let xin = 'x';
    if (g.channelsLast) {
      nodes.push({ op: 'Transpose', inputs: ['x'], outputs: ['x_nchw'], attrs: { perm: ints(TO_NCHW) } });
      xin = 'x_nchw';
    }
    nodes.push({ op: 'Transpose', inputs: ['w'], outputs: ['w_oihw'], attrs: { perm: ints(HWIO_TO_OIHW) } });
    const convIn = [xin, 'w_oihw'];
    if (bias) {
      inputs.push({ name: 'bias', dtype: 'float32', dims: bias.shape });
      initializers.push({ name: 'bias_shape', dtype: 'int64', dims: [1], values: [outC] });
      nodes.push({ op: 'Reshape', inputs: ['bias', 'bias_shape'], outputs: ['bias_1d'] });
      convIn.push('bias_1d');
    }
    nodes.push({ op: 'Conv', inputs: convIn, outputs: ['conv'], attrs: convAttrs(g) });
    let cur = 'conv';
    if (g.channelsLast) {
      nodes.push({ op: 'Transpose', inputs: ['conv'], outputs: ['conv_nhwc'], attrs: { perm: ints(TO_NHWC) } });
      cur = 'conv_nhwc';
    }
    nodes.push(...activationNodes(activation, cur, 'y', alpha, initializers));
    return { nodes, inputs, outputs: [{ name: 'y', dtype: 'float32', dims: g.info.outShape }], initializers };
  };
  const backend = args.backend;
  const feeds: Values[] = [valuesOf(backend, x), valuesOf(backend, filter)];
  if (bias) feeds.push(valuesOf(backend, bias));
  return runToTensor(backend, key, build, feeds, [...g.info.outShape], 'float32');
}

function conv2dBackpropInput(args: KernelArgs): tf.TensorInfo | null {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: Rounding;
    inputShape: [number, number, number, number];
  };
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const g = geometry(attrs.inputShape, filter.shape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  if (!g) return null;
  const i = g.info;
  if (dy.shape.some((d, k) => d !== i.outShape[k])) return null;
  const [top, left, bottom, right] = g.pads;
  const opH = i.inHeight - (i.strideHeight * (i.outHeight - 1) + i.filterHeight - top - bottom);
  const opW = i.inWidth - (i.strideWidth * (i.outWidth - 1) + i.filterWidth - left - right);
  if (opH < 0 || opW < 0 || opH >= i.strideHeight && opH > 0 || opW >= i.strideWidth && opW > 0) return null;
  const key = `Conv2DBackpropInput|${dimsKey(dy.shape)}|${dimsKey(filter.shape)}|${dimsKey(attrs.inputShape)}|${g.channelsLast ? 'l' : 'f'}|${dimsKey(g.pads)}|${i.strideHeight},${i.strideWidth}`;
  const build = (): GraphSpec => {
    const nodes: NodeSpec[] = [];
    let dyIn = 'dy';
    if (g.channelsLast) {
      nodes.push({ op: 'Transpose', inputs: ['dy'], outputs: ['dy_nchw'], attrs: { perm: ints(TO_NCHW) } });
      dyIn = 'dy_nchw';
    }
    nodes.push({ op: 'Transpose', inputs: ['w'], outputs: ['w_oihw'], attrs: { perm: ints(HWIO_TO_OIHW) } });
    nodes.push({
      op: 'ConvTranspose',
      inputs: [dyIn, 'w_oihw'],
      outputs: [g.channelsLast ? 'dx_nchw' : 'y'],
      attrs: {
        strides: ints([i.strideHeight, i.strideWidth]),
        pads: ints(g.pads),
        kernel_shape: ints([i.filterHeight, i.filterWidth]),
        output_padding: ints([opH, opW]),
      },
    });
    if (g.channelsLast) nodes.push({ op: 'Transpose', inputs: ['dx_nchw'], outputs: ['y'], attrs: { perm: ints(TO_NHWC) } });
    return {
      nodes,
      inputs: [
        { name: 'dy', dtype: 'float32', dims: dy.shape },
        { name: 'w', dtype: 'float32', dims: filter.shape },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: attrs.inputShape }],
    };
  };
  const backend = args.backend;
  return runToTensor(backend, key, build, [valuesOf(backend, dy), valuesOf(backend, filter)], [...attrs.inputShape], 'float32');
}

function conv2dBackpropFilter(args: KernelArgs): tf.TensorInfo | null {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as {
    strides: number | [number, number];
    pad: Pad;
    dataFormat?: 'NHWC' | 'NCHW';
    dimRoundingMode?: Rounding;
    filterShape: [number, number, number, number];
  };
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const g = geometry(x.shape, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
  if (!g) return null;
  const i = g.info;
  if (dy.shape.some((d, k) => d !== i.outShape[k])) return null;
  const [top, left, bottom, right] = g.pads;
  // the swapped convolution's output size, ≥ the filter size; cropped to it below
  const kh = i.inHeight + top + bottom - i.strideHeight * (i.outHeight - 1);
  const kw = i.inWidth + left + right - i.strideWidth * (i.outWidth - 1);
  if (kh < i.filterHeight || kw < i.filterWidth) return null;
  const fh = i.filterHeight;
  const fw = i.filterWidth;
  const inC = i.inChannels;
  const outC = i.outChannels;
  const key = `Conv2DBackpropFilter|${dimsKey(x.shape)}|${dimsKey(dy.shape)}|${dimsKey(attrs.filterShape)}|${g.channelsLast ? 'l' : 'f'}|${dimsKey(g.pads)}|${i.strideHeight},${i.strideWidth}`;
  const build = (): GraphSpec => {
    const swap = g.channelsLast ? [3, 0, 1, 2] : [1, 0, 2, 3];
    const nodes: NodeSpec[] = [
      { op: 'Transpose', inputs: ['x'], outputs: ['x_cnhw'], attrs: { perm: ints(swap) } },
      { op: 'Transpose', inputs: ['dy'], outputs: ['dy_cnhw'], attrs: { perm: ints(swap) } },
      {
        op: 'Conv',
        inputs: ['x_cnhw', 'dy_cnhw'],
        outputs: ['dw_full'],
        attrs: {
          strides: ints([1, 1]),
          dilations: ints([i.strideHeight, i.strideWidth]),
          pads: ints(g.pads),
          kernel_shape: ints([i.outHeight, i.outWidth]),
        },
      },
    ];
    const initializers: InitializerSpec[] = [];
    let cur = 'dw_full';
    if (kh !== fh || kw !== fw) {
      initializers.push(
        { name: 'starts', dtype: 'int64', dims: [2], values: [0, 0] },
        { name: 'ends', dtype: 'int64', dims: [2], values: [fh, fw] },
        { name: 'axes', dtype: 'int64', dims: [2], values: [2, 3] },
      );
      nodes.push({ op: 'Slice', inputs: ['dw_full', 'starts', 'ends', 'axes'], outputs: ['dw'] });
      cur = 'dw';
    }
    // [in, out, fh, fw] → [fh, fw, in, out]
    nodes.push({ op: 'Transpose', inputs: [cur], outputs: ['y'], attrs: { perm: ints([2, 3, 0, 1]) } });
    return {
      nodes,
      inputs: [
        { name: 'x', dtype: 'float32', dims: x.shape },
        { name: 'dy', dtype: 'float32', dims: dy.shape },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: [fh, fw, inC, outC] }],
      initializers,
    };
  };
  const backend = args.backend;
  return runToTensor(backend, key, build, [valuesOf(backend, x), valuesOf(backend, dy)], [fh, fw, inC, outC], 'float32');
}

export const convKernels: OnnxKernel[] = [
  { name: 'Conv2D', run: (a) => conv2d(a, false) },
  { name: 'FusedConv2D', run: (a) => conv2d(a, true) },
  { name: 'Conv2DBackpropInput', run: conv2dBackpropInput },
  { name: 'Conv2DBackpropFilter', run: conv2dBackpropFilter },
];
