/**
 * A tensor's values read out of a tidy scope. `tf.tidy(() => t.dataSync())` looks the same but costs
 * far more: tidy walks whatever its function returns to keep the tensors in it, and a typed array is
 * walked element by element into a Set (1.4 s of the emoji transformer's graph build on one thread,
 * spent baking its weights).
 */
import * as tf from '@tensorflow/tfjs';

/** The values of the tensor `make` computes (in a tidy scope: its intermediates are freed), then the tensor is disposed. */
export function tensorValues(make: () => tf.Tensor): tf.TypedArray {
  const t = tf.tidy(make);
  return valuesOf(t);
}

/** The values of `t` (a tensor of the caller's, which this disposes). */
export function valuesOf(t: tf.Tensor): tf.TypedArray {
  try {
    return t.dataSync() as tf.TypedArray;
  } finally {
    t.dispose();
  }
}
