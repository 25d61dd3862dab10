/**
 * Choosing and preparing the TensorFlow.js backend. Every command takes `--backend`; `auto` picks
 * the fastest engine that is installed: tfjs-node-gpu, tfjs-node, then onnx (ONNX Runtime's native
 * kernels), then wasm, then the pure-JS cpu backend. The same model code runs on all of them.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors.js';
import type { BackendOptions } from './options.js';

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'onnx', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export type { BackendOptions } from './options.js';

async function tryTensorflow(): Promise<string | null> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (await tf.setBackend('tensorflow')) return pkg;
    } catch {
      // not installed here (they download libtensorflow at install time): try the next one
    }
  }
  return null;
}

async function tryOnnx(opts: BackendOptions): Promise<boolean> {
  try {
    const onnx = await import('./onnx/index.js');
    await onnx.registerOnnxBackend(opts);
    return await tf.setBackend('onnx');
  } catch (err) {
    if (process.env.MASKGEN_DEBUG) console.error(err);
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    const { registerWasmKernels } = await import('./wasm-kernels.js');
    registerWasmKernels();
    return await tf.setBackend('wasm');
  } catch (err) {
    if (process.env.MASKGEN_DEBUG) console.error(err);
    return false;
  }
}

/**
 * Makes `choice` the active backend and returns the name of the one it got ('tensorflow', 'onnx',
 * 'wasm' or 'cpu'). An explicit choice that cannot be had is a UserError.
 */
export async function initBackend(choice: BackendChoice = 'auto', opts: BackendOptions = {}): Promise<string> {
  let ok = false;
  switch (choice) {
    case 'tensorflow':
      ok = (await tryTensorflow()) !== null;
      break;
    case 'onnx':
      ok = await tryOnnx(opts);
      break;
    case 'wasm':
      ok = await tryWasm();
      break;
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      ok = await tf.setBackend('cpu');
      break;
    case 'auto':
      ok =
        (await tryTensorflow()) !== null ||
        (await tryOnnx(opts)) ||
        (await tryWasm()) ||
        (await tf.setBackend('cpu'));
      break;
    default:
      throw new UserError(`unknown backend '${String(choice)}' (choose one of ${BACKEND_CHOICES.join(', ')})`);
  }
  if (!ok) throw new UserError(`backend '${choice}' is not available on this machine`);
  await tf.ready();
  return tf.getBackend();
}
