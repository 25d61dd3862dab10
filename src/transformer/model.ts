/**
 * The masked token transformer of Muse: token embedding (codebook + [MASK]) and learned 2-D
 * positions, pre-LN bidirectional self-attention blocks with cross-attention to the text
 * embeddings, and a head to codebook logits. Activations stay 2-D, [B·N, width].
 */
import * as tf from '@tensorflow/tfjs';
import { Block, LayerNorm, Linear, addPositions } from '../nn/layers.js';
import { ParamStore } from '../nn/params.js';
import { tensorValues } from '../nn/values.js';
import { PAD_BIAS } from '../text/common.js';
import type { TransformerConfig } from './config.js';

/** What the transformer attends to: text embeddings [B·L, textDim] and their key bias [B, L]. */
export interface TextContext {
  embeddings: tf.Tensor2D;
  keyBias: tf.Tensor2D;
}

/** The causal self-attention bias [T, T] (row-major): 0 where key ≤ query, PAD_BIAS above the diagonal. */
export function causalBias(t: number): Float32Array {
  const out = new Float32Array(t * t);
  for (let q = 0; q < t; q++) out.fill(PAD_BIAS, q * t + q + 1, (q + 1) * t);
  return out;
}

/** `causalBias(t)` once per batch item: [B, T, T], as the compiled graphs take it. */
export function causalBiasBatch(t: number, batch: number): Float32Array {
  const one = causalBias(t);
  const all = new Float32Array(batch * t * t);
  for (let b = 0; b < batch; b++) all.set(one, b * t * t);
  return all;
}

export class MaskedTransformer {
  readonly params: ParamStore;
  readonly maskId: number;
  readonly tokens: number;
  private readonly embed: tf.Variable;
  private readonly rowPos: tf.Variable;
  private readonly colPos: tf.Variable;
  private readonly blocks: Block[];
  private readonly norm: LayerNorm;
  private readonly head: Linear;

  constructor(readonly config: TransformerConfig, seed = 0) {
    const c = config;
    const p = (this.params = new ParamStore(seed));
    this.maskId = c.codebookSize;
    this.tokens = c.grid * c.grid;
    this.embed = p.get('embed', [c.codebookSize + 1, c.width], { normal: 0.02 });
    // 2-D positions: a row table and a column table, summed per grid cell.
    this.rowPos = p.get('pos.row', [c.grid, 1, c.width], { normal: 0.02 });
    this.colPos = p.get('pos.col', [1, c.grid, c.width], { normal: 0.02 });
    this.blocks = Array.from({ length: c.depth }, (_, i) => new Block(p.scope(`blocks.${i}`), c.width, c.heads, c.mlpRatio, c.depth, c.textDim));
    this.norm = new LayerNorm(p.scope('norm'), c.width);
    this.head = new Linear(p.scope('head'), c.width, c.codebookSize);
  }

  /**
   * tokens [B, N] int32 (maskId where masked) → logits [B·N, K]. `crossBias` [B, N, L], when given,
   * is added to every block's cross-attention logits (image token × text token) on top of the
   * text's key bias: paint-with-words.
   */
  /** Each grid position's embedding, row + column: [N, width], row-major (the compiled graphs bake its values: `positionValues`). */
  positions(): tf.Tensor2D {
    return tf.tidy(() => tf.reshape(tf.add(this.rowPos, this.colPos), [this.tokens, this.config.width]));
  }

  /** `positions()` as values, read outside tf.tidy. */
  positionValues(): Float32Array {
    return tensorValues(() => this.positions()) as Float32Array;
  }

  logits(tokens: tf.Tensor2D, text: TextContext, crossBias?: tf.Tensor3D): tf.Tensor2D {
    const b = tokens.shape[0];
    return tf.tidy(() => {
      const pos = this.positions();
      let h = addPositions(tf.gather(this.embed, tf.reshape(tokens, [-1])) as tf.Tensor2D, pos, b);
      const L = text.keyBias.shape[1];
      const bias = crossBias ? tf.add(crossBias, tf.reshape(text.keyBias, [b, 1, L])) as tf.Tensor3D : text.keyBias;
      const causal = this.config.objective === 'autoregressive' ? tf.tile(tf.tensor3d(causalBias(this.tokens), [1, this.tokens, this.tokens]), [b, 1, 1]) as tf.Tensor3D : undefined;
      for (const block of this.blocks) h = block.apply(h, b, text.embeddings, bias, causal);
      return this.head.apply(this.norm.apply(h));
    });
  }

  variables(): Record<string, tf.Variable> {
    return this.params.variables();
  }

  dispose(): void {
    this.params.dispose();
  }
}
