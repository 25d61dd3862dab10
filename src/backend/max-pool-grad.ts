/**
 * MaxPoolGrad as a plain loop over typed arrays, shared by the wasm and onnx backends: the first
 * maximum of each window (as on the cpu backend) gets dy. The cpu backend's own kernel is correct
 * but ~50× slower (it walks a generic buffer per element); the wasm one mishandles all-negative
 * windows.
 */
import * as tf from '@tensorflow/tfjs';

export interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Adds dy into dx (NHWC, zeroed by the caller) at each window's first maximum of x. */
export function maxPoolGradInto(xs: Float32Array, dys: Float32Array, dx: Float32Array, inputShape: number[], attrs: MaxPoolGradAttrs): void {
  const info = tf.backend_util.computePool2DInfo(inputShape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const { effectiveFilterHeight: eH, effectiveFilterWidth: eW } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  for (let b = 0; b < N; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * sH - top;
      for (let ow = 0; ow < OW; ow++) {
        const w0 = ow * sW - left;
        const dyOff = ((b * OH + oh) * OW + ow) * C;
        for (let c = 0; c < C; c++) {
          let best = Number.NEGATIVE_INFINITY;
          let at = -1;
          for (let kh = 0; kh < eH; kh += dH) {
            const ih = h0 + kh;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < eW; kw += dW) {
              const iw = w0 + kw;
              if (iw < 0 || iw >= W) continue;
              const i = ((b * H + ih) * W + iw) * C + c;
              if (xs[i]! > best || at < 0) {
                best = xs[i]!;
                at = i;
              }
            }
          }
          if (at >= 0) dx[at]! += dys[dyOff + c]!;
        }
      }
    }
  }
}
