/**
 * Training augmentations that make a network less tied to one scanner's look (all off by default;
 * `r2n2 train --augment-*`). They act on a training pair at the network's size, after the
 * network's normalisation (intensities z-scored and clamped to ±2):
 *
 * - random convolution (the modality-agnostic idea of MAD): with probability p, both frames are
 *   filtered by the same random 3 × 3 kernel (Gaussian weights), then normalised again: a new
 *   "contrast" that keeps the geometry, so the motion to find is unchanged;
 * - bias field: each frame multiplied (on its [0, 1] intensity scale) by its own smooth field
 *   `exp(a·(c₁x + c₂y + c₃xy))`, x, y ∈ [−1, 1], a ~ U(0, A), c ~ U(−1, 1);
 * - gamma: each frame's [0, 1] intensities raised to its own `exp(U(−g, g))`;
 * - noise: Gaussian noise of std s added to each frame.
 *
 * Every random number comes from `rng` in a fixed order, and none is drawn for an option that is
 * off, so a run without augmentations draws what it drew before (a resumed run stays bit for bit).
 */
import { normaliseIntensity } from '../image/intensity.js';
import { gauss } from '../random.js';

export interface AugmentOptions {
  /** Probability of a random convolution of the pair (0 = off). */
  randomConv: number;
  /** Largest bias-field amplitude A (0 = off). */
  bias: number;
  /** Largest |log γ| (0 = off). */
  gamma: number;
  /** Noise std in normalised intensity units (0 = off). */
  noise: number;
}

export const AUGMENT_OFF: AugmentOptions = { randomConv: 0, bias: 0, gamma: 0, noise: 0 };

export const augmentOn = (o: AugmentOptions): boolean => o.randomConv > 0 || o.bias > 0 || o.gamma > 0 || o.noise > 0;

/** `img` (n × n) filtered by the 3 × 3 kernel `k` (row-major), edges replicated. */
export function convolve3(img: Float32Array, n: number, k: number[]): Float32Array {
  const out = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let a = -1; a <= 1; a++) {
        const ii = Math.min(n - 1, Math.max(0, i + a));
        for (let b = -1; b <= 1; b++) v += k[(a + 1) * 3 + b + 1] * img[ii * n + Math.min(n - 1, Math.max(0, j + b))];
      }
      out[i * n + j] = v;
    }
  }
  return out;
}

/**
 * The pair (F, M), each `n × n` normalised, augmented as `o` says with draws from `rng`; the
 * inputs are not changed. With every option off, the same arrays come back and nothing is drawn.
 */
export function augmentPair(F: Float32Array, M: Float32Array, n: number, rng: () => number, o: AugmentOptions): [Float32Array, Float32Array] {
  if (!augmentOn(o)) return [F, M];
  let f = F;
  let m = M;
  if (o.randomConv > 0 && rng() < o.randomConv) {
    const k = Array.from({ length: 9 }, () => gauss(rng));
    f = normaliseIntensity(convolve3(f, n, k));
    m = normaliseIntensity(convolve3(m, n, k));
  }
  const photometric = (img: Float32Array): Float32Array => {
    let out = img;
    if (o.bias > 0) {
      const a = o.bias * rng();
      const [c1, c2, c3] = [2 * rng() - 1, 2 * rng() - 1, 2 * rng() - 1];
      out = Float32Array.from(out, (v, p) => {
        const x = (2 * (p % n)) / (n - 1) - 1;
        const y = (2 * Math.floor(p / n)) / (n - 1) - 1;
        const u = (v + 2) / 4;
        return Math.min(2, Math.max(-2, 4 * u * Math.exp(a * (c1 * x + c2 * y + c3 * x * y)) - 2));
      });
    }
    if (o.gamma > 0) {
      const g = Math.exp(o.gamma * (2 * rng() - 1));
      out = Float32Array.from(out, (v) => 4 * Math.pow(Math.min(1, Math.max(0, (v + 2) / 4)), g) - 2);
    }
    if (o.noise > 0) out = Float32Array.from(out, (v) => v + o.noise * gauss(rng));
    return out;
  };
  return [photometric(f), photometric(m)];
}
