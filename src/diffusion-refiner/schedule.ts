/**
 * The diffusion schedule and its arithmetic, as pure functions: the cosine schedule of Nichol &
 * Dhariwal (2021), noising q(x_t | x_0), v-prediction (Salimans & Ho, 2022) and its conversions, the
 * timesteps a DDIM sampler visits and one deterministic DDIM step (Song et al., 2021, η = 0), and
 * classifier-free guidance's combination. Everything works on plain numbers or typed arrays so tests
 * can pin it; the model code maps the same formulas onto tensors.
 */

/**
 * ᾱ_t for t = 0 … T−1 of the cosine schedule: f(t) = cos²(((t/T) + s)/(1 + s) · π/2), ᾱ_t = f(t+1)/f(0),
 * with each β_t = 1 − ᾱ_t/ᾱ_{t−1} clipped to `maxBeta` so the last steps stay finite.
 */
export function cosineAlphasCumprod(timesteps: number, s = 0.008, maxBeta = 0.999): Float64Array {
  if (!Number.isInteger(timesteps) || timesteps < 1) throw new Error(`timesteps must be a positive integer, got ${timesteps}`);
  const f = (t: number) => Math.cos(((t / timesteps + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  const out = new Float64Array(timesteps);
  let prev = 1;
  for (let t = 0; t < timesteps; t++) {
    const beta = Math.min(maxBeta, 1 - f(t + 1) / f(t));
    prev *= 1 - beta;
    out[t] = prev;
  }
  return out;
}

/** x_t = √ᾱ·x0 + √(1−ᾱ)·ε, elementwise. */
export function addNoise(x0: ArrayLike<number>, eps: ArrayLike<number>, alphaBar: number): Float32Array {
  const a = Math.sqrt(alphaBar);
  const b = Math.sqrt(1 - alphaBar);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < out.length; i++) out[i] = a * x0[i]! + b * eps[i]!;
  return out;
}

/** The v-prediction target: v = √ᾱ·ε − √(1−ᾱ)·x0. */
export function velocity(x0: ArrayLike<number>, eps: ArrayLike<number>, alphaBar: number): Float32Array {
  const a = Math.sqrt(alphaBar);
  const b = Math.sqrt(1 - alphaBar);
  const out = new Float32Array(x0.length);
  for (let i = 0; i < out.length; i++) out[i] = a * eps[i]! - b * x0[i]!;
  return out;
}

/** From x_t and v: x0 = √ᾱ·x_t − √(1−ᾱ)·v and ε = √(1−ᾱ)·x_t + √ᾱ·v. */
export function fromVelocity(xt: ArrayLike<number>, v: ArrayLike<number>, alphaBar: number): { x0: Float32Array; eps: Float32Array } {
  const a = Math.sqrt(alphaBar);
  const b = Math.sqrt(1 - alphaBar);
  const x0 = new Float32Array(xt.length);
  const eps = new Float32Array(xt.length);
  for (let i = 0; i < xt.length; i++) {
    x0[i] = a * xt[i]! - b * v[i]!;
    eps[i] = b * xt[i]! + a * v[i]!;
  }
  return { x0, eps };
}

/**
 * The timesteps a `steps`-step DDIM sampler visits, from the noisiest down: evenly spaced over
 * [0, T−1], always starting at T−1 and ending at 0, strictly decreasing.
 */
export function ddimTimesteps(timesteps: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`sampler steps must be a positive integer, got ${steps}`);
  if (steps > timesteps) throw new Error(`sampler steps (${steps}) cannot exceed the schedule's ${timesteps} timesteps`);
  if (steps === 1) return [timesteps - 1];
  const out: number[] = [];
  for (let i = 0; i < steps; i++) out.push(Math.round(((timesteps - 1) * (steps - 1 - i)) / (steps - 1)));
  return out;
}

/**
 * One deterministic DDIM step (η = 0) from x_t to x_prev given the model's v: predict x0 and ε, then
 * x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε. With `alphaBarPrev` = 1 it returns x0 itself.
 */
export function ddimStep(xt: ArrayLike<number>, v: ArrayLike<number>, alphaBar: number, alphaBarPrev: number): Float32Array {
  const { x0, eps } = fromVelocity(xt, v, alphaBar);
  return addNoise(x0, eps, alphaBarPrev);
}

/** Classifier-free guidance: uncond + s·(cond − uncond), elementwise (s = 1 is the conditional model, 0 the unconditional). */
export function guide(cond: ArrayLike<number>, uncond: ArrayLike<number>, scale: number): Float32Array {
  if (cond.length !== uncond.length) throw new Error(`guidance: ${cond.length} conditional values vs ${uncond.length} unconditional`);
  const out = new Float32Array(cond.length);
  for (let i = 0; i < out.length; i++) out[i] = uncond[i]! + scale * (cond[i]! - uncond[i]!);
  return out;
}

/**
 * The sinusoidal embedding of a scalar (a timestep or a noise level) as in the Transformer/DDPM:
 * [sin(x·ω_0), …, cos(x·ω_0), …] with ω_i = maxPeriod^(−i/(dim/2)).
 */
export function sinusoidalEmbedding(values: ArrayLike<number>, dim: number, maxPeriod = 10000): Float32Array {
  if (dim % 2 !== 0) throw new Error(`embedding width must be even, got ${dim}`);
  const half = dim / 2;
  const out = new Float32Array(values.length * dim);
  for (let r = 0; r < values.length; r++) {
    for (let i = 0; i < half; i++) {
      const arg = values[r]! * Math.pow(maxPeriod, -i / half);
      out[r * dim + i] = Math.sin(arg);
      out[r * dim + half + i] = Math.cos(arg);
    }
  }
  return out;
}
