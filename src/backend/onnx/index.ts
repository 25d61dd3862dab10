/** The `onnx` backend (placeholder: being written). */
import type { BackendOptions } from '../index.js';
export async function registerOnnxBackend(_opts: BackendOptions): Promise<void> {
  throw new Error('the onnx backend is not built yet');
}
