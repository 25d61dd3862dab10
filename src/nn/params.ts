/**
 * Named trainable parameters. A model asks its ParamStore for each weight by a dotted name
 * ("enc.blocks.0.attn.qkv.w"); the store creates it once, initialised from its seeded Rng, and keeps
 * the name so that checkpoints and optimizers can address it.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random.js';

export type Init = 'zeros' | 'ones' | { normal: number } | { uniform: number };

let storeCount = 0;

export class ParamStore {
  readonly vars: Map<string, tf.Variable>;
  private readonly rng: Rng;
  /** tfjs wants variable names unique per process; ours are unique per store, so tfjs gets `store<n>/<name>`. */
  private readonly engineTag: string;

  constructor(seed: number, private readonly prefix = '', parent?: ParamStore) {
    this.rng = parent ? parent.rng : new Rng(seed);
    this.vars = parent ? parent.vars : new Map();
    this.engineTag = parent ? parent.engineTag : `store${storeCount++}`;
  }

  /** A view of the same store that prefixes every name with `name.`. */
  scope(name: string): ParamStore {
    return new ParamStore(0, this.prefix + name + '.', this);
  }

  /** The variable called `name` (made on first call). */
  get(name: string, shape: number[], init: Init, trainable = true): tf.Variable {
    const full = this.prefix + name;
    const existing = this.vars.get(full);
    if (existing) return existing;
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (init === 'ones') values.fill(1);
    else if (init !== 'zeros') {
      if ('normal' in init) for (let i = 0; i < size; i++) values[i] = this.rng.normal() * init.normal;
      else for (let i = 0; i < size; i++) values[i] = (this.rng.next() * 2 - 1) * init.uniform;
    }
    const v = tf.variable(tf.tensor(values, shape, 'float32'), trainable, `${this.engineTag}/${full}`);
    this.vars.set(full, v);
    return v;
  }

  /** The variables whose names start with this scope's prefix, by full name. */
  variables(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (const [name, v] of this.vars) if (name.startsWith(this.prefix)) out[name] = v;
    return out;
  }

  /**
   * The value of `f` and its gradients with respect to this scope's variables, keyed by our names.
   * The value is a scalar the caller disposes.
   */
  valueAndGrads(f: () => tf.Scalar): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
    return valueAndGrads(f, this.variables());
  }

  /** Number of scalars held under this scope. */
  size(): number {
    return Object.values(this.variables()).reduce((n, v) => n + v.size, 0);
  }

  dispose(): void {
    for (const [name, v] of [...this.vars]) {
      if (name.startsWith(this.prefix)) {
        v.dispose();
        this.vars.delete(name);
      }
    }
  }
}

/**
 * The value of `f` and its gradients with respect to `vars`, keyed like `vars` (our names, not the
 * engine's). The value is a scalar the caller disposes.
 */
export function valueAndGrads(f: () => tf.Scalar, vars: Record<string, tf.Variable>): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const byEngineName = new Map(Object.entries(vars).map(([name, v]) => [v.name, name]));
  const { value, grads } = tf.variableGrads(f, Object.values(vars));
  const out: Record<string, tf.Tensor> = {};
  for (const [engineName, g] of Object.entries(grads)) out[byEngineName.get(engineName)!] = g;
  return { value, grads: out };
}
