/**
 * Stochastic sampling for a B-spline level (`--samples N`, elastix's random-coordinate idea on
 * the pixel grid): each iteration draws N pixel positions (uniformly, with replacement, among the
 * pixels of the fixed mask; seeded, so a run is reproducible) and evaluates the field, the warp,
 * the similarity and the regulariser there only. The cost of an iteration is then independent of
 * the image size: the field at a pixel needs only the (order+1)² control points whose basis
 * functions reach it (a sparse row, applied in plain JS with its scatter-add gradient).
 *
 * Field at a pixel (i, j): `u_c(i, j) = By[i, :] · P_c · Bx[j, :]ᵀ` (kernel.ts's basis rows).
 * Regulariser at a pixel: the same forward differences as core/regulariser/regularisers.ts, taken through
 * the basis (`By[i+1] − By[i]` for the row difference, likewise for columns), so the sampled
 * estimate has the dense regulariser's scale (a mean over pixels and channels).
 *
 * Units: positions in level pixels, fields in normalised units (one pixel = 2/(n−1)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { EDGE_TOL, bilinearInto } from '../core/transformation/warp.js';
import { stopGradient } from '../core/tensors.js';
import { type BsplineGrid, basisMatrix, sparseBasis } from './kernel.js';
import type { LossName } from '../core/loss/losses.js';
import type { RegulariserName } from '../core/regulariser/regularisers.js';

/** Losses that are a mean over independent pixels (no neighbourhood), so sampling applies. */
export const SAMPLED_LOSSES: LossName[] = ['mse', 'ncc'];
export const SAMPLED_REGULARISERS: RegulariserName[] = ['tv', 'diffusion', 'none'];

/** A PRNG in [0, 1). */
export type Rng = () => number;

/** mulberry32: a small, fast, seeded PRNG (bit-identical everywhere). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The moving image sampled bilinearly at `(X, Y)` (level pixels), as `warpSamples` does for a
 * dense grid: value, inside-mask and ∂value/∂X, ∂value/∂Y. Outside (beyond EDGE_TOL) → 0, mask 0.
 * With `movingMask`, a sample whose nearest pixel lies outside that mask gets mask 0 too.
 */
export function samplePoints(image: ArrayLike<number>, H: number, W: number, X: ArrayLike<number>, Y: ArrayLike<number>, movingMask?: Uint8Array) {
  const S = X.length;
  const out = new Float32Array(S);
  const mask = new Float32Array(S);
  const gx = new Float32Array(S);
  const gy = new Float32Array(S);
  for (let k = 0; k < S; k++) {
    const x = X[k];
    const y = Y[k];
    // the moving mask at the nearest pixel of the clamped position
    if (
      movingMask &&
      !(
        x >= -EDGE_TOL &&
        y >= -EDGE_TOL &&
        x <= W - 1 + EDGE_TOL &&
        y <= H - 1 + EDGE_TOL &&
        movingMask[Math.round(Math.min(Math.max(y, 0), H - 1)) * W + Math.round(Math.min(Math.max(x, 0), W - 1))]
      )
    )
      continue;
    if (bilinearInto(image, H, W, x, y, k, out, gx, gy, 1, 1)) mask[k] = 1;
  }
  return { out, mask, gx, gy };
}

export interface SampledLevelInput {
  /** Fixed and moving level images `[h, w]` (normalised intensities). */
  fixed: Float32Array;
  moving: Float32Array;
  h: number;
  w: number;
  grid: BsplineGrid;
  /** The coarser levels' total field `[2, h, w]` at this level, or null. */
  prev: Float32Array | null;
  samples: number;
  rng: Rng;
  loss: LossName;
  regulariser: RegulariserName;
  regulariserSpacing: [number, number];
  /** Where the similarity counts: fixed-grid pixels (nonzero = in); moving mask checked at the warped position. */
  fixedMask?: Uint8Array | null;
  movingMask?: Uint8Array | null;
}

/**
 * A sparse linear map from the control points to S values per channel: value k is
 * Σ_m w[k·K + m] · P_c[idx[k·K + m]] (P_c flattened `[cpH·cpW]`). A cubic B-spline row has 4
 * nonzero weights and a difference of two rows 5, so K is small (25 here, zero-padded).
 */
interface SparseRows {
  K: number;
  idx: Int32Array;
  w: Float32Array;
}

/** One iteration's sample set (plain arrays). */
interface Draw {
  field: SparseRows;
  /** The row (i) and column (j) forward differences of the field. */
  di: SparseRows;
  dj: SparseRows;
  fixedS: Float32Array;
  xs: Float32Array;
  ys: Float32Array;
  prevS: Float32Array | null; // [2, S]
}

/**
 * `[2, S]` = the sparse rows applied to each channel of P `[2, cpH, cpW]`, one tfjs op with its
 * analytic gradient (a scatter-add into the control points), in plain JS: P is small, so its
 * read-back is cheap, and the work is S·K per channel instead of S·cpH·cpW.
 */
export function applySparse(P: tf.Tensor3D, r: SparseRows, S: number): tf.Tensor2D {
  const n = P.shape[1] * P.shape[2];
  const op = tf.customGrad(((p: tf.Tensor) => {
    const pd = p.dataSync();
    const out = new Float32Array(2 * S);
    for (let c = 0; c < 2; c++) {
      const base = c * n;
      for (let k = 0; k < S; k++) {
        let v = 0;
        for (let m = k * r.K; m < (k + 1) * r.K; m++) v += r.w[m] * pd[base + r.idx[m]];
        out[c * S + k] = v;
      }
    }
    return {
      value: tf.tensor2d(out, [2, S]),
      gradFunc: (dy: tf.Tensor) => {
        const g = dy.dataSync();
        const grad = new Float32Array(2 * n);
        for (let c = 0; c < 2; c++) {
          const base = c * n;
          for (let k = 0; k < S; k++) {
            const gk = g[c * S + k];
            if (gk === 0) continue;
            for (let m = k * r.K; m < (k + 1) * r.K; m++) grad[base + r.idx[m]] += gk * r.w[m];
          }
        }
        return tf.tensor3d(grad, P.shape as [number, number, number]);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(P) as tf.Tensor2D;
}

/**
 * The sampled objective of one level. `draw()` then `objective(P, d)` inside `tf.variableGrads`
 * returns `similarity + λ·regulariser` at that draw.
 */
export function sampledLevel(o: SampledLevelInput) {
  if (!SAMPLED_LOSSES.includes(o.loss)) throw new Error(`sampling works with the ${SAMPLED_LOSSES.join(' and ')} losses, not ${o.loss}`);
  if (!SAMPLED_REGULARISERS.includes(o.regulariser))
    throw new Error(`sampling works with the ${SAMPLED_REGULARISERS.join(', ')} regularisers, not ${o.regulariser}`);
  const { h, w, grid } = o;
  const cpH = grid.y.cp;
  const cpW = grid.x.cp;
  const by = Float32Array.from(basisMatrix(grid.y)); // [h, cpH]
  const bx = Float32Array.from(basisMatrix(grid.x)); // [w, cpW]
  // forward differences of the basis rows (the last row's difference is 0, as the dense
  // regulariser has no difference beyond the border)
  const diff = (b: Float32Array, n: number, cp: number) => {
    const d = new Float32Array(n * cp);
    for (let i = 0; i + 1 < n; i++) for (let g = 0; g < cp; g++) d[i * cp + g] = b[(i + 1) * cp + g] - b[i * cp + g];
    return d;
  };
  const dby = diff(by, h, cpH);
  const dbx = diff(bx, w, cpW);
  // a row has order+1 nonzero weights, a difference of two neighbouring rows one more
  const width = grid.y.order + 2;
  const rowsY = sparseBasis(by, h, cpH, width);
  const rowsX = sparseBasis(bx, w, cpW, width);
  const drowsY = sparseBasis(dby, h, cpH, width);
  const drowsX = sparseBasis(dbx, w, cpW, width);
  const candidates: number[] = [];
  for (let p = 0; p < h * w; p++) if (!o.fixedMask || o.fixedMask[p]) candidates.push(p);
  if (candidates.length === 0) throw new Error('the fixed mask holds no pixel at this level');
  const S = o.samples;
  const sx = (w - 1) / 2;
  const sy = (h - 1) / 2;
  const K = width * width;

  /** Sample k's weights: the outer product of row i of `ry` and row j of `rx`. */
  const outer = (out: SparseRows, k: number, ry: { idx: Int32Array; w: Float32Array }, i: number, rx: { idx: Int32Array; w: Float32Array }, j: number) => {
    let m = k * K;
    for (let a = 0; a < width; a++) {
      const wy = ry.w[i * width + a];
      const gy = ry.idx[i * width + a];
      for (let b = 0; b < width; b++) {
        out.w[m] = wy * rx.w[j * width + b];
        out.idx[m] = gy * cpW + rx.idx[j * width + b];
        m++;
      }
    }
  };

  function draw(): Draw {
    const xs = new Float32Array(S);
    const ys = new Float32Array(S);
    const make = (): SparseRows => ({ K, idx: new Int32Array(S * K), w: new Float32Array(S * K) });
    const field = make();
    const di = make();
    const dj = make();
    const f = new Float32Array(S);
    const prevS = o.prev ? new Float32Array(2 * S) : null;
    const N = h * w;
    for (let k = 0; k < S; k++) {
      const p = candidates[Math.floor(o.rng() * candidates.length)];
      const i = Math.floor(p / w);
      const j = p - i * w;
      xs[k] = j;
      ys[k] = i;
      outer(field, k, rowsY, i, rowsX, j);
      outer(di, k, drowsY, i, rowsX, j);
      outer(dj, k, rowsY, i, drowsX, j);
      f[k] = o.fixed[p];
      if (prevS && o.prev) {
        prevS[k] = o.prev[p];
        prevS[S + k] = o.prev[N + p];
      }
    }
    return { field, di, dj, fixedS: f, xs, ys, prevS };
  }

  /** The warp of the moving image at the samples, differentiable w.r.t. the total field `[2, S]`. */
  function warpAt(d: Draw, u: tf.Tensor2D): { warped: tf.Tensor1D; mask: tf.Tensor1D } {
    let maskData: Float32Array | null = null;
    const op = tf.customGrad(((ut: tf.Tensor) => {
      const ud = ut.dataSync();
      const X = new Float32Array(S);
      const Y = new Float32Array(S);
      for (let k = 0; k < S; k++) {
        X[k] = d.xs[k] + ud[k] * sx;
        Y[k] = d.ys[k] + ud[S + k] * sy;
      }
      const s = samplePoints(o.moving, h, w, X, Y, o.movingMask ?? undefined);
      maskData = s.mask;
      return {
        value: tf.tensor1d(s.out),
        gradFunc: (dy: tf.Tensor) => {
          const g = dy.dataSync();
          const grad = new Float32Array(2 * S);
          for (let k = 0; k < S; k++) {
            grad[k] = g[k] * s.gx[k] * sx * s.mask[k];
            grad[S + k] = g[k] * s.gy[k] * sy * s.mask[k];
          }
          return tf.tensor2d(grad, [2, S]);
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    const warped = op(u) as tf.Tensor1D;
    return { warped, mask: tf.tensor1d(maskData as unknown as Float32Array) };
  }

  function similarity(f: tf.Tensor1D, m: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
    const n = tf.maximum(tf.sum(mask), tf.scalar(1));
    const mean = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, mask)), n);
    if (o.loss === 'mse') return mean(tf.square(tf.sub(f, m))) as tf.Scalar;
    // ncc: 1 − NCC over the samples inside
    const fc = tf.mul(tf.sub(f, mean(f)), mask);
    const mc = tf.mul(tf.sub(m, mean(m)), mask);
    const num = tf.sum(tf.mul(fc, mc));
    const den = tf.sqrt(tf.add(tf.mul(tf.sum(tf.square(fc)), tf.sum(tf.square(mc))), tf.scalar(1e-8)));
    return tf.sub(tf.scalar(1), tf.div(num, den)) as tf.Scalar;
  }

  function regularise(P: tf.Tensor3D, d: Draw): tf.Scalar {
    // row (i) and column (j) forward differences of this level's B-spline field at the samples
    const di = applySparse(P, d.di, S);
    const dj = applySparse(P, d.dj, S);
    const [wr, wc] = o.regulariserSpacing;
    const v = tf.add(tf.mul(tf.square(di), tf.scalar(wr)), tf.mul(tf.square(dj), tf.scalar(wc)));
    if (o.regulariser === 'diffusion') return tf.mean(v) as tf.Scalar;
    const positive = tf.greater(stopGradient(v), tf.scalar(0));
    const root = tf.where(positive, tf.sqrt(tf.where(positive, v, tf.onesLike(v))), tf.zerosLike(v));
    return tf.mean(root) as tf.Scalar;
  }

  return {
    draw,
    /** similarity + λ·regulariser at draw `d` (call inside tf.variableGrads). */
    objective(P: tf.Tensor3D, d: Draw, lambda: number): tf.Scalar {
      const b = applySparse(P, d.field, S);
      const u = d.prevS ? (tf.add(b, tf.tensor2d(d.prevS, [2, S])) as tf.Tensor2D) : b;
      const { warped, mask } = warpAt(d, u);
      const sim = similarity(tf.tensor1d(d.fixedS), warped, mask);
      return lambda > 0 && o.regulariser !== 'none' ? (tf.add(sim, tf.mul(regularise(P, d), tf.scalar(lambda))) as tf.Scalar) : sim;
    },
    /** Nothing to free: a draw holds plain arrays (kept so callers need not know). */
    release(_d: Draw) {},
  };
}
