/**
 * The R2N2 registration sequence at the network's image size n (`imageSize`: netSize ·
 * inputBlock) (docs/method.md): for t = 1..T, warp the moving image by the field so far, run one
 * network step on (F, M∘T_{t−1}, x, y), add the step's Gaussian to the field. Training loss =
 * mean over steps of the masked MSE between F and M∘T_t, plus λ·iso-TV(u_T). Images are
 * `[n, n]` Float32Arrays with normalised intensities.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Compute, DEFAULT_COMPUTE, sumTensors } from '../tensors.js';
import { warpBilinear, warpBilinearBatch, warpSamples } from '../transformation/warp.js';
import { normaliseIntensity } from '../image/intensity.js';
import { gaussianBlur, resampleAligned } from '../image/resample.js';
import { maskedMseBatch } from '../loss/losses.js';
import { isoTv } from '../regulariser/regularisers.js';
import { addGaussianInPlace, coordinateGrids, gaussianDisplacement, mapRawParameters, PARAMS_PER_STEP } from '../transformation/gaussian.js';
import { type R2N2Config, type Weights, type WeightNoise, type State, imageSize, initialState, step } from './network.js';

/**
 * A frame `[H, W]` as the network sees it: intensities normalised at full size, blurred
 * (σ = factor/2) and resampled with aligned corners to n×n.
 */
export function networkImage(data: Float32Array, H: number, W: number, n: number): Float32Array {
  const z = normaliseIntensity(data);
  const factor = Math.max(W, H) / n;
  const blurred = factor > 1 ? gaussianBlur(z, H, W, factor / 2) : z;
  return resampleAligned(blurred, 1, H, W, n, n);
}

/**
 * How the re-warps are computed: `host` = the typed-array op (`warpBilinear`, fastest where
 * tensors live in host memory: wasm, cpu), `tensor` = tensor ops only (`warpBilinearBatch`, no
 * read-back: for GPU backends). Default: `compute.hostOps`.
 */
export type WarpImpl = 'host' | 'tensor';

/** The re-warp of a run: `warp` where given, else by `compute` (core/tensors.ts). */
function warpImpl(o: { warp?: WarpImpl; compute?: Compute }): WarpImpl {
  return o.warp ?? ((o.compute ?? DEFAULT_COMPUTE).hostOps ? 'host' : 'tensor');
}

export interface SequenceOptions {
  steps: number;
  warp?: WarpImpl;
  /** How the ops run on the active backend (the re-warp, tanh); default `DEFAULT_COMPUTE`. */
  compute?: Compute;
  /** iso-TV weight on the final field (training loss). */
  lambda: number;
  noise?: WeightNoise;
  /**
   * Compute the image loss on these images `[size·size]` (the same pairs at another size, e.g.
   * the frames' full resolution) instead of at the network's size: the Gaussians are evaluated
   * on the size×size grid and the moving image warped there. The network still observes (and
   * re-warps) the n×n pair; iso-TV stays on the n×n field.
   */
  lossImages?: { fixed: Float32Array[]; moving: Float32Array[]; size: number };
  /**
   * Distillation from a teacher registration: per item the target field `[2·n·n]` (normalised
   * units on the network's grid, channel 0 = x), and the term's weight μ. Adds
   * μ · mean((u_T − u*)²) (the final field, `steps: 'final'`, the default) or μ · mean over
   * steps t of mean((u_t − u*)²) (`'all'`), the difference in network pixels ((netSize − 1)/2 per
   * normalised unit), to the loss. An item whose field is null (no teacher for that pair: a
   * real series in a batch with synthetic pairs) is left out of the term's mean.
   */
  teacher?: { fields: (Float32Array | null)[]; weight: number; steps?: 'all' | 'final' };
}

/** Item b of a batch tensor, by slicing (tfjs's unstack gradient fails when an item gets no gradient). */
function item<T extends tf.Tensor>(x: tf.Tensor, b: number): T {
  const [, ...rest] = x.shape;
  return tf.reshape(tf.slice(x, [b, ...rest.map(() => 0)], [1, ...rest]), rest) as T;
}

/** Re-warps the B moving images by u `[B, 2, n, n]`; `Mt` (the images as `[B, n, n]`) selects the tensor path. */
function warpBatch(moving: Float32Array[], Mt: tf.Tensor3D | null, n: number, u: tf.Tensor4D): { warped: tf.Tensor3D; mask: tf.Tensor3D } {
  if (Mt) return warpBilinearBatch(Mt, u);
  const us = moving.map((_, b) => item<tf.Tensor3D>(u, b));
  const w: tf.Tensor2D[] = [];
  const m: tf.Tensor2D[] = [];
  us.forEach((ub, b) => {
    const r = warpBilinear(moving[b], n, n, ub);
    w.push(r.warped);
    m.push(r.mask);
  });
  return { warped: tf.stack(w) as tf.Tensor3D, mask: tf.stack(m) as tf.Tensor3D };
}

/**
 * The CoordConv input `[B, n, n, 4]` (fixed, warped moving, x, y) is `base + warped ⊗ slot`:
 * `base` holds the fixed image and the coordinates with a zero second channel and is built once
 * per sequence, `slot` is the one-hot `[1, 1, 1, 4]` (0, 1, 0, 0). Exact (adds zeros, multiplies
 * by one and zero) and, on wasm, ≈30× cheaper per step than tiling the coordinates and stacking
 * the four channels (an innermost-axis interleave) every step.
 */
export function inputBase(fixed: tf.Tensor3D, grids: { x: tf.Tensor3D; y: tf.Tensor3D }): { base: tf.Tensor4D; slot: tf.Tensor4D } {
  return tf.tidy(() => {
    const B = fixed.shape[0];
    const X = tf.tile(grids.x, [B, 1, 1]);
    const Y = tf.tile(grids.y, [B, 1, 1]);
    return { base: tf.stack([fixed, tf.zerosLike(fixed), X, Y], 3) as tf.Tensor4D, slot: tf.tensor4d([0, 1, 0, 0], [1, 1, 1, 4]) };
  });
}

export function networkInput(input: { base: tf.Tensor4D; slot: tf.Tensor4D }, warped: tf.Tensor3D, gradientOf?: tf.Tensor3D): tf.Tensor4D {
  const x = tf.add(input.base, tf.mul(tf.expandDims(warped, 3), input.slot)) as tf.Tensor4D;
  return gradientOf ? (tf.concat([x, mismatchGradient(gradientOf, warped)], 3) as tf.Tensor4D) : x;
}

/**
 * The image loss's gradient with respect to the displacement, per pixel: (W − F)·∂W/∂x and
 * (W − F)·∂W/∂y as `[B, n, n, 2]`, ∂ by central differences in pixels (one-sided at the border,
 * edge values replicated). `F` fixed, `W` the moving frame warped so far, both `[B, n, n]`.
 */
export function mismatchGradient(F: tf.Tensor3D, W: tf.Tensor3D): tf.Tensor4D {
  return tf.tidy(() => {
    const [B, H, Wd] = W.shape;
    // the edges replicated: the padded border takes its neighbour's value
    const padded = tf.mirrorPad(
      W,
      [
        [0, 0],
        [1, 1],
        [1, 1],
      ],
      'symmetric',
    );
    const gx = tf.div(tf.sub(tf.slice(padded, [0, 1, 2], [B, H, Wd]), tf.slice(padded, [0, 1, 0], [B, H, Wd])), 2);
    const gy = tf.div(tf.sub(tf.slice(padded, [0, 2, 1], [B, H, Wd]), tf.slice(padded, [0, 0, 1], [B, H, Wd])), 2);
    const d = tf.sub(W, F);
    return tf.stack([tf.mul(d, gx), tf.mul(d, gy)], 3) as tf.Tensor4D;
  });
}

/** Flattens one step's parameters to 7 numbers per batch item: cx, cy, σx, σy, wx, wy, φ → `[B, 7]`. */
function stepParams(position: tf.Tensor2D, sigma: tf.Tensor2D, weight: tf.Tensor2D, phi: tf.Tensor2D): tf.Tensor2D {
  return tf.concat([position, sigma, weight, phi], 1) as tf.Tensor2D;
}

/**
 * The training loss of a batch (call inside `tf.variableGrads`). `fixed`, `moving`: B images
 * `[n·n]`. Returns the scalar loss; the per-step image losses are reported through `onStep`
 * after the fact by the caller if needed.
 */
export function sequenceLoss(c: R2N2Config, weights: Weights, fixed: Float32Array[], moving: Float32Array[], o: SequenceOptions): tf.Scalar {
  const n = imageSize(c);
  const B = fixed.length;
  const grids = coordinateGrids(n, n);
  const F = tf.tensor3d(concatArrays(fixed), [B, n, n]);
  let state: State = initialState(c, B);
  let u = tf.zeros([B, 2, n, n]) as tf.Tensor4D;
  let warped = tf.tensor3d(concatArrays(moving), [B, n, n]);
  const Mt = warpImpl(o) === 'tensor' ? warped : null;
  const input = inputBase(F, grids);
  const L = o.lossImages;
  if (
    L &&
    (L.fixed.length !== B || L.moving.length !== B || L.fixed.some((x) => x.length !== L.size * L.size) || L.moving.some((x) => x.length !== L.size * L.size))
  ) {
    throw new Error(`lossImages must hold ${B} fixed and ${B} moving images of ${L?.size}×${L?.size}`);
  }
  const gridsL = L ? coordinateGrids(L.size, L.size) : null;
  const FL = L ? tf.tensor3d(concatArrays(L.fixed), [B, L.size, L.size]) : null;
  const MtL = L && Mt ? tf.tensor3d(concatArrays(L.moving), [B, L.size, L.size]) : null;
  let uL = L ? (tf.zeros([B, 2, L.size, L.size]) as tf.Tensor4D) : null;
  const T = o.teacher;
  if (T && (T.fields.length !== B || T.fields.some((f) => f !== null && f.length !== 2 * n * n) || !(T.weight >= 0))) {
    throw new Error(`teacher must hold ${B} fields of 2×${n}×${n} (or null) and a weight ≥ 0`);
  }
  const taught = T ? T.fields.filter((f) => f !== null).length : 0;
  const Ut = T && T.weight > 0 && taught > 0 ? tf.tensor4d(concatArrays(T.fields.map((f) => f ?? new Float32Array(2 * n * n))), [B, 2, n, n]) : null;
  /** Items without a field weigh 0; the mean is over the others (B/taught rescales tf.mean's 1/B). */
  const taughtMask =
    Ut && T && taught < B
      ? tf.tensor4d(
          T.fields.map((f) => (f ? B / taught : 0)),
          [B, 1, 1, 1],
        )
      : null;
  const pxScale = ((c.netSize - 1) / 2) ** 2; // network pixels, whatever the input block
  const teacherLosses: tf.Scalar[] = [];
  const losses: tf.Scalar[] = [];
  for (let t = 0; t < o.steps; t++) {
    const out = step(c, weights, networkInput(input, warped, c.inputGradient ? F : undefined), state, o.noise, o.compute);
    state = out.state;
    const { sigma, weight, phi } = mapRawParameters(out.raw, c.sigmaMax);
    const g = { position: out.position, sigma, weight, phi };
    u = tf.add(u, gaussianDisplacement(g, n, n, grids)) as tf.Tensor4D;
    if (Ut && (T?.steps === 'all' || t === o.steps - 1)) {
      const sq = tf.square(tf.sub(u, Ut));
      teacherLosses.push(tf.mul(tf.mean(taughtMask ? tf.mul(sq, taughtMask) : sq), tf.scalar(pxScale)) as tf.Scalar);
    }
    const w = warpBatch(moving, Mt, n, u);
    warped = w.warped;
    if (L && uL && FL && gridsL) {
      uL = tf.add(uL, gaussianDisplacement(g, L.size, L.size, gridsL)) as tf.Tensor4D;
      const wl = warpBatch(L.moving, MtL, L.size, uL);
      losses.push(maskedMseBatch(FL, wl.warped, wl.mask));
    } else {
      losses.push(maskedMseBatch(F, w.warped, w.mask));
    }
  }
  let loss = tf.div(sumTensors(losses), tf.scalar(o.steps)) as tf.Scalar;
  if (o.lambda > 0) {
    // the batch mean of the items' iso-TV: the items' channels stacked (isoTv averages over all of them)
    const tv = isoTv(tf.reshape(u, [2 * B, n, n]) as tf.Tensor3D);
    loss = tf.add(loss, tf.mul(tv, tf.scalar(o.lambda))) as tf.Scalar;
  }
  if (Ut && T) loss = tf.add(loss, tf.mul(sumTensors(teacherLosses), tf.scalar(T.weight / teacherLosses.length))) as tf.Scalar;
  return loss;
}

export interface InferenceOptions {
  steps: number;
  warp?: WarpImpl;
  /** How the ops run on the active backend (the re-warp, tanh); default `DEFAULT_COMPUTE`. */
  compute?: Compute;
  /** Stop an item at the first step whose weight norm |w_t| is below this (0 = never). */
  stopThreshold?: number;
  /**
   * Stop an item at the first step that does not lower its image loss (MSE between F and M∘T at
   * the network's size against the loss before the step, both over the pixels that the step's
   * warp and the last kept one map inside the moving frame: `stepLowersLoss`): that step is dropped, so the sequence never ends worse than where it
   * stood, and a pair the network cannot improve gets no step at all.
   */
  stopWhenWorse?: boolean;
  /** Multiplicative weight noise (network.ts `sampleWeightNoise`): one stochastic pass (MC DropConnect). */
  noise?: WeightNoise;
  onStep?: (t: number) => void;
}

/** Σ mask·(a − b)² / Σ mask over plain arrays (mask null: every pixel); 0 for an empty mask. */
export function maskedMseArrays(a: ArrayLike<number>, b: ArrayLike<number>, mask: ArrayLike<number> | null): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const m = mask ? mask[i] : 1;
    if (!m) continue;
    s += m * (a[i] - b[i]) ** 2;
    n += m;
  }
  return n > 0 ? s / n : 0;
}

/**
 * The never-worse guard's test: does the candidate warp match `fixed` better than the last kept
 * one? Both are compared on the same pixels, those that both map inside the moving frame (a null
 * mask: every pixel), so a step cannot gain by pushing badly matched pixels out of view.
 */
export function stepLowersLoss(
  fixed: ArrayLike<number>,
  last: { warped: ArrayLike<number>; mask: ArrayLike<number> | null },
  candidate: { warped: ArrayLike<number>; mask: ArrayLike<number> },
): boolean {
  const lm = last.mask;
  const both = lm ? Float32Array.from(candidate.mask, (v, i) => v * lm[i]) : candidate.mask;
  return maskedMseArrays(fixed, candidate.warped, both) < maskedMseArrays(fixed, last.warped, both);
}

/**
 * Runs the sequence without gradients (async: one read-back per step, which GPU backends can
 * only do asynchronously); returns per batch item the 7·T' step parameters
 * (T' ≤ T when stopped early) in normalised units.
 *
 * With the host warp (CPU backends) only the network runs in tfjs: each step's 7 numbers are read
 * back (needed anyway for the result), added to the item's field as a Gaussian in plain JS
 * (`addGaussianInPlace`) and the moving image re-warped there (`warpSamples`); one upload of the
 * warped batch per step. That skips the batched field arithmetic in tfjs, the field's read-back
 * per item and the unused masks: most of a step's cost beyond the network at B·`netSize` pixels
 * (docs/cli.md, "--input-block"). The field is float32 either way; the Gaussian is evaluated in double
 * precision here (float32 in tfjs), so results agree to float32 rounding, not bit for bit.
 */
export async function inferSequence(
  c: R2N2Config,
  weights: Weights,
  fixed: Float32Array[],
  moving: Float32Array[],
  o: InferenceOptions,
): Promise<Float32Array[]> {
  const n = imageSize(c);
  const B = fixed.length;
  const params: number[][] = fixed.map(() => []);
  const done = fixed.map(() => false);
  const host = warpImpl(o) !== 'tensor';
  const grids = coordinateGrids(n, n);
  const F = tf.tensor3d(concatArrays(fixed), [B, n, n]);
  let state: State = initialState(c, B);
  // the tensor path's field on the device; the host path's per item in JS
  let u: tf.Tensor4D | null = host ? null : (tf.zeros([B, 2, n, n]) as tf.Tensor4D);
  const uHost = host ? fixed.map(() => new Float32Array(2 * n * n)) : [];
  let warped = tf.tensor3d(concatArrays(moving), [B, n, n]);
  const Mt = host ? null : tf.clone(warped);
  const input = inputBase(F, grids);
  const worse = o.stopWhenWorse ?? false;
  // each item's last accepted warp and the pixels it mapped inside the moving frame (all at first):
  // a step is kept only if it lowers the loss on the pixels both warps map inside (the same pixels
  // before and after, so a step that pushes badly matched pixels out of view gains nothing by it)
  const lastWarped = host ? moving.map((m) => m) : [];
  const lastMask: (ArrayLike<number> | null)[] = fixed.map(() => null);
  let lastMaskT: tf.Tensor3D | null = !host && worse ? (tf.onesLike(warped) as tf.Tensor3D) : null;
  const rejected = fixed.map(() => false);
  try {
    for (let t = 0; t < o.steps && done.some((d) => !d); t++) {
      const next: { state: State; p: tf.Tensor2D; u?: tf.Tensor4D; warped?: tf.Tensor3D } = tf.tidy(() => {
        const out = step(c, weights, networkInput(input, warped, c.inputGradient ? F : undefined), state, o.noise, o.compute);
        const { sigma, weight, phi } = mapRawParameters(out.raw, c.sigmaMax);
        const p = stepParams(out.position, sigma, weight, phi);
        if (host) return { state: out.state, p };
        const u2 = tf.add(u!, gaussianDisplacement({ position: out.position, sigma, weight, phi }, n, n, grids)) as tf.Tensor4D;
        return { state: out.state, p, u: u2, warped: warpBilinearBatch(Mt!, u2).warped };
      });
      const p = await next.p.data();
      next.p.dispose();
      let w2 = next.warped;
      if (host) {
        const all = new Float32Array(B * n * n);
        for (let b = 0; b < B; b++) {
          if (!done[b]) {
            const before = worse ? Float32Array.from(uHost[b]) : null;
            addGaussianInPlace(uHost[b], p, b * PARAMS_PER_STEP, n, n);
            const w = warpSamples(moving[b], n, n, uHost[b]);
            if (before && !stepLowersLoss(fixed[b], { warped: lastWarped[b], mask: lastMask[b] }, { warped: w.out, mask: w.mask })) {
              uHost[b] = before; // the step is dropped: the item stays where it was
              rejected[b] = true;
            } else {
              lastMask[b] = w.mask;
              lastWarped[b] = w.out as Float32Array;
            }
          }
          all.set(lastWarped[b], b * n * n);
        }
        w2 = tf.tensor3d(all, [B, n, n]);
      } else if (worse) {
        // per-item losses read back (B numbers); a rejected item keeps its field and warp
        const newMask = tf.tidy(() => warpBilinearBatch(Mt!, next.u!).mask);
        const lossT = tf.tidy(() => {
          const m = tf.mul(newMask, lastMaskT!);
          const count = tf.maximum(tf.sum(m, [1, 2]), 1);
          const after = tf.div(tf.sum(tf.mul(m, tf.square(tf.sub(F, next.warped!))), [1, 2]), count);
          const before = tf.div(tf.sum(tf.mul(m, tf.square(tf.sub(F, warped))), [1, 2]), count);
          return tf.stack([after, before]);
        });
        const lb = await lossT.data();
        lossT.dispose();
        const keep = fixed.map((_, b) => done[b] || !(lb[b] < lb[B + b]));
        fixed.forEach((_, b) => {
          if (!done[b] && keep[b]) rejected[b] = true;
        });
        {
          const k = tf.tensor1d(
            keep.map((x) => (x ? 1 : 0)),
            'bool',
          );
          const m2 = tf.tidy(() => tf.where(tf.reshape(k, [B, 1, 1]), lastMaskT!, newMask) as tf.Tensor3D);
          tf.dispose([k, newMask, lastMaskT!]);
          lastMaskT = m2;
        }
        if (keep.some(Boolean)) {
          const k = tf.tensor1d(
            keep.map((x) => (x ? 1 : 0)),
            'bool',
          );
          const [u3, w3] = tf.tidy(() => [tf.where(tf.reshape(k, [B, 1, 1, 1]), u!, next.u!), tf.where(tf.reshape(k, [B, 1, 1]), warped, next.warped!)]);
          tf.dispose([k, next.u!, next.warped!]);
          next.u = u3 as tf.Tensor4D;
          w2 = w3 as tf.Tensor3D;
        }
      }
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        if (rejected[b]) {
          done[b] = true;
          continue;
        }
        const row = Array.from(p.subarray(b * PARAMS_PER_STEP, (b + 1) * PARAMS_PER_STEP));
        if (o.stopThreshold && Math.hypot(row[4], row[5]) < o.stopThreshold) {
          done[b] = true;
          continue;
        }
        params[b].push(...row);
      }
      tf.dispose([...state, warped, ...(u ? [u] : [])]);
      state = next.state;
      u = next.u ?? null;
      warped = w2!;
      o.onStep?.(t);
    }
  } finally {
    tf.dispose([...state, warped, F, grids.x, grids.y, input.base, input.slot, ...(u ? [u] : []), ...(Mt ? [Mt] : []), ...(lastMaskT ? [lastMaskT] : [])]);
  }
  return params.map((p) => Float32Array.from(p));
}

function concatArrays(xs: Float32Array[]): Float32Array {
  const out = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}
