/** MaxPoolGrad as a typed-array loop (the cpu backend's is ~50× slower; see ../../max-pool-grad.ts). */
import { maxPoolGradInto, type MaxPoolGradAttrs } from '../../max-pool-grad.js';
import { sizeOf, valuesOf, type KernelArgs, type OnnxKernel } from './util.js';

function maxPoolGrad({ inputs, backend, attrs }: KernelArgs) {
  const { dy, input } = inputs as { dy: import('@tensorflow/tfjs').TensorInfo; input: import('@tensorflow/tfjs').TensorInfo };
  if (input.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const dx = new Float32Array(sizeOf(input.shape));
  maxPoolGradInto(valuesOf(backend, input) as Float32Array, valuesOf(backend, dy) as Float32Array, dx, input.shape, attrs as unknown as MaxPoolGradAttrs);
  return backend.makeTensorInfo(input.shape, 'float32', dx);
}

export const poolKernels: OnnxKernel[] = [{ name: 'MaxPoolGrad', run: maxPoolGrad }];
