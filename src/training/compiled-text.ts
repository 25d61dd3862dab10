/**
 * A compiled training step for a model that attends to a text encoder (the masked transformer, the
 * refiner's denoiser): the prompts are encoded, the step runs as one ONNX Runtime session from that
 * encoding, and a trainable encoder takes its gradient from the session's gradient of the text
 * embeddings — the encoding is made on the tfjs tape, and the encoder's gradient is the product of
 * its Jacobian with the session's (a vector-Jacobian product). A frozen encoder is just run.
 */
import * as tf from '@tensorflow/tfjs';
import type { KnownSquares } from '../nn/optim.js';
import { valueAndGrads } from '../nn/params.js';
import type { TextEncoder, TextEncoding } from '../text/encoder.js';

/** What a compiled step gives back: its weight gradients, their sum of squares, and d loss / d embeddings when asked. */
export interface CompiledStepGrads {
  grads: Record<string, tf.Tensor>;
  sumSquares: number;
  textGrad?: tf.Tensor;
}

/**
 * Runs `run` on the encoding of `prompts` and returns its output with every gradient keyed like the
 * trainer's variables: the session's under `prefix` + its weight name, a trainable encoder's under
 * the `text/` names of `vars`. `squares` covers the session's gradients, for clipping.
 */
export function compiledStepWithText<T extends CompiledStepGrads>(
  text: TextEncoder,
  vars: Record<string, tf.Variable>,
  prompts: string[],
  prefix: string,
  run: (enc: TextEncoding) => T,
): { out: T; grads: Record<string, tf.Tensor>; squares: KnownSquares } {
  let out!: T;
  let textGrads: Record<string, tf.Tensor> = {};
  if (text.trainable) {
    const textVars = Object.fromEntries(Object.entries(vars).filter(([k]) => k.startsWith('text/')));
    const { value, grads } = valueAndGrads(() => {
      const enc = text.encode(prompts);
      out = run(enc);
      for (const g of Object.values(out.grads)) tf.keep(g); // the session's weight gradients outlive the tape's clean-up
      return tf.sum(tf.mul(enc.embeddings, out.textGrad!)) as tf.Scalar;
    }, textVars);
    value.dispose();
    textGrads = grads;
  } else {
    const enc = text.encode(prompts);
    out = run(enc);
    tf.dispose([enc.embeddings, enc.keyBias]);
  }
  const grads: Record<string, tf.Tensor> = {};
  for (const [k, g] of Object.entries(out.grads)) grads[`${prefix}${k}`] = g;
  return { out, grads: { ...grads, ...textGrads }, squares: { sum: out.sumSquares, names: new Set(Object.keys(grads)) } };
}
