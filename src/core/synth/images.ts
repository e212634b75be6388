/**
 * Synthetic images and pairs with a known field (SynthMorph's idea: Hoffmann et al., IEEE TMI
 * 2022 — a network trained on random shapes of random contrast learns to register, not to
 * recognise one anatomy).
 *
 * `synthImage`: K random labels (10–40 by default) as the arg-max of K smooth random maps (noise
 * on a coarse g × g grid, g = 3–10, bilinearly upsampled), a random intensity per label, blurred
 * (σ 0.3–2 px: the random resolution), a smooth multiplicative bias field and a gamma. Noise is
 * added per frame by `renderPair`.
 *
 * `renderPair`: a reference image R (S × S) and a motion u (fields.ts) give the moving frame
 * M = R and the fixed frame F(q) = R(q + u(q)) (bilinear, at S), so that M(q + u(q)) = F(q):
 * u is the field that registers the pair, known exactly. Both frames are then made what the
 * network sees (`networkImage`: z-scored, clamped, blurred by the size ratio and resampled to
 * n × n), so rendering finer than n (S = 2n) hides which frame was interpolated; each frame gets
 * its own Gaussian noise (std up to `noise`, in normalised intensity units).
 */
import { gaussianBlur, sampleLinear } from '../image/resample.js';
import { networkImage } from '../r2n2/sequence.js';
import { gauss, uniform } from '../random.js';
import { type MotionFn, motionField } from './fields.js';

const U = uniform;

export interface SynthImageOptions {
  /** Range of the number of labels. */
  labels: [number, number];
}

export const SYNTH_IMAGE_DEFAULTS: SynthImageOptions = { labels: [10, 40] };

/** A random label image of S × S (row-major), intensities in [0, 1] before blur and bias. */
export function synthImage(S: number, rng: () => number, o: SynthImageOptions = SYNTH_IMAGE_DEFAULTS): Float32Array {
  const [k0, k1] = o.labels;
  const K = k0 + Math.floor(rng() * (k1 - k0 + 1));
  const g = 3 + Math.floor(rng() * 8);
  // per label: a (g+1)² noise grid; per pixel the label of the largest bilinear value
  const grids = Array.from({ length: K }, () => Float32Array.from({ length: (g + 1) * (g + 1) }, () => rng()));
  const intensity = Float32Array.from({ length: K }, () => rng());
  const best = new Float32Array(S * S).fill(-Infinity);
  const img = new Float32Array(S * S);
  const r = g / (S - 1);
  for (let k = 0; k < K; k++) {
    const grid = grids[k];
    for (let i = 0; i < S; i++) {
      const y = i * r;
      for (let j = 0; j < S; j++) {
        const v = sampleLinear(grid, g + 1, g + 1, j * r, y);
        const p = i * S + j;
        if (v > best[p]) {
          best[p] = v;
          img[p] = intensity[k];
        }
      }
    }
  }
  const sigma = U(rng, 0.3, 2);
  const blurred = gaussianBlur(img, S, S, sigma);
  // bias exp(a·(c₁x + c₂y + c₃xy)) and gamma
  const a = U(rng, 0, 0.5);
  const [c1, c2, c3] = [U(rng, -1, 1), U(rng, -1, 1), U(rng, -1, 1)];
  const gamma = Math.exp(U(rng, -0.4, 0.4));
  for (let i = 0; i < S; i++) {
    const y = -1 + (2 * i) / (S - 1);
    for (let j = 0; j < S; j++) {
      const x = -1 + (2 * j) / (S - 1);
      const p = i * S + j;
      blurred[p] = Math.pow(Math.max(blurred[p], 0), gamma) * Math.exp(a * (c1 * x + c2 * y + c3 * x * y));
    }
  }
  return blurred;
}

/** `R` (S × S) sampled at q + u(q) on its own grid: the fixed frame of a pair whose moving frame is R. */
export function warpByMotion(R: ArrayLike<number>, S: number, fn: MotionFn): Float32Array {
  const out = new Float32Array(S * S);
  const h = (S - 1) / 2;
  for (let i = 0; i < S; i++) {
    const y = -1 + i / h;
    for (let j = 0; j < S; j++) {
      const x = -1 + j / h;
      const u = fn(x, y);
      out[i * S + j] = sampleLinear(R, S, S, (x + u[0] + 1) * h, (y + u[1] + 1) * h);
    }
  }
  return out;
}

/** `M` (n × n) warped by a normalised field `[2, n, n]`: M(q + u(q)), bilinear, edge values outside. */
export function warpByField(M: ArrayLike<number>, n: number, field: ArrayLike<number>): Float32Array {
  const N = n * n;
  const out = new Float32Array(N);
  const h = (n - 1) / 2;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const p = i * n + j;
      out[p] = sampleLinear(M, n, n, j + field[p] * h, i + field[N + p] * h);
    }
  }
  return out;
}

export interface RenderedPair {
  /** Fixed and moving frames as the network sees them, n × n. */
  fixed: Float32Array;
  moving: Float32Array;
  /** The field that registers them, `[2, n, n]` normalised (M(q + u(q)) = F(q)). */
  field: Float32Array;
}

/** The pair of `R` (S × S) moved by `fn` at the network's size n (see the file's comment). */
export function renderPair(R: Float32Array, S: number, n: number, fn: MotionFn, rng: () => number, noise: number): RenderedPair {
  const F = networkImage(warpByMotion(R, S, fn), S, S, n);
  const M = networkImage(R, S, S, n);
  if (noise > 0) {
    for (const img of [F, M]) {
      const s = noise * rng();
      for (let p = 0; p < img.length; p++) img[p] += s * gauss(rng);
    }
  }
  return { fixed: F, moving: M, field: motionField(fn, n) };
}
