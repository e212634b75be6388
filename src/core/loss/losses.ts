/**
 * Image similarity losses between the fixed image F and the warped moving image W, each a
 * tfjs scalar to minimise, computed only where the warp's sample lay inside the moving image.
 *
 * Shapes: `fixed`, `warped`, `mask` are `[H, W]`; `mask` is a constant of 0/1 and `fixed` a
 * constant. Every loss is 0 for a perfect match (or its minimum, stated per loss) and has
 * gradients w.r.t. `warped` only. Intensities are expected normalised (core/image/intensity.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { maskedMse, maskedMseBatch } from '../transformation/warp.js';

export { maskedMse, maskedMseBatch };

import { LOSS_NAMES, type LossName } from './names.js';
export { type LossName, LOSS_NAMES } from './names.js';

export interface LossOptions {
  /** LNCC: square window side in pixels (odd), default 9 (VoxelMorph). */
  window?: number;
  /** MI: number of histogram bins, default 32. */
  bins?: number;
  /** MI: Parzen window std in bins, default 1. */
  parzenSigma?: number;
  /** MI: intensity range mapped onto the bins, default [-2, 2] (the normalised range). */
  range?: [number, number];
  /** NGF: edge parameter ε (intensity per pixel); default: mean |∇F| of the fixed image. */
  epsilon?: number;
}

export type LossFn = (fixed: tf.Tensor2D, warped: tf.Tensor2D, mask: tf.Tensor2D) => tf.Scalar;

const EPS = 1e-8;

/** Masked mean of `x` (any shape equal to mask's). */
function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), tf.scalar(1))) as tf.Scalar;
}

/**
 * Global normalised cross-correlation over the mask, as `1 − NCC` (0 for a perfect linear
 * match, 2 for an inverted one).
 */
export function nccLoss(fixed: tf.Tensor2D, warped: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const f = tf.sub(fixed, maskedMean(fixed, mask));
    const w = tf.sub(warped, maskedMean(warped, mask));
    const cov = tf.sum(tf.mul(mask, tf.mul(f, w)));
    const vf = tf.sum(tf.mul(mask, tf.square(f)));
    const vw = tf.sum(tf.mul(mask, tf.square(w)));
    return tf.sub(tf.scalar(1), tf.div(cov, tf.sqrt(tf.add(tf.mul(vf, vw), tf.scalar(EPS))))) as tf.Scalar;
  });
}

/** Box sum over a `k×k` window ('same', zero padded), separable: `[H, W]` → `[H, W]`. */
function boxSum(x: tf.Tensor2D, k: number): tf.Tensor2D {
  const [H, W] = x.shape;
  const row = tf.ones([1, k, 1, 1]) as tf.Tensor4D;
  const col = tf.ones([k, 1, 1, 1]) as tf.Tensor4D;
  const y = tf.conv2d(tf.conv2d(tf.reshape(x, [1, H, W, 1]) as tf.Tensor4D, row, 1, 'same'), col, 1, 'same');
  return tf.reshape(y, [H, W]) as tf.Tensor2D;
}

/**
 * Local (windowed) NCC, VoxelMorph's squared form: for each pixel, `cc = cov² / (var_F·var_W)`
 * over the masked `window×window` neighbourhood; loss `1 − mean_mask(cc)` (0 at a perfect local
 * linear match). Windows only count pixels inside the mask.
 */
export function lnccLoss(fixed: tf.Tensor2D, warped: tf.Tensor2D, mask: tf.Tensor2D, window = 9): tf.Scalar {
  if (!(window >= 1 && window % 2 === 1)) throw new Error(`LNCC window must be an odd number ≥ 1, got ${window}`);
  return tf.tidy(() => {
    const I = tf.mul(fixed, mask) as tf.Tensor2D;
    const J = tf.mul(warped, mask) as tf.Tensor2D;
    const n = tf.maximum(boxSum(mask, window), tf.scalar(1));
    const sI = boxSum(I, window);
    const sJ = boxSum(J, window);
    const sII = boxSum(tf.mul(I, I) as tf.Tensor2D, window);
    const sJJ = boxSum(tf.mul(J, J) as tf.Tensor2D, window);
    const sIJ = boxSum(tf.mul(I, J) as tf.Tensor2D, window);
    const cross = tf.sub(sIJ, tf.div(tf.mul(sI, sJ), n));
    const vI = tf.sub(sII, tf.div(tf.square(sI), n));
    const vJ = tf.sub(sJJ, tf.div(tf.square(sJ), n));
    const cc = tf.div(tf.square(cross), tf.add(tf.mul(vI, vJ), tf.scalar(1e-5)));
    return tf.sub(tf.scalar(1), maskedMean(cc, mask)) as tf.Scalar;
  });
}

/**
 * Parzen-window soft-histogram weights of `values` (flat, length N): `[N, bins]`, each row a
 * Gaussian in bin units (std `sigma`) centred at the value's bin position, normalised to sum 1.
 */
function parzenWeights(values: tf.Tensor1D, bins: number, sigma: number, range: [number, number]): tf.Tensor2D {
  const [lo, hi] = range;
  const pos = tf.mul(tf.sub(tf.clipByValue(values, lo, hi), tf.scalar(lo)), tf.scalar((bins - 1) / (hi - lo)));
  const centres = tf.range(0, bins, 1, 'float32');
  const d = tf.sub(tf.reshape(pos, [-1, 1]), tf.reshape(centres, [1, bins]));
  const g = tf.exp(tf.mul(tf.square(d), tf.scalar(-1 / (2 * sigma * sigma))));
  return tf.div(g, tf.add(tf.sum(g, 1, true), tf.scalar(EPS))) as tf.Tensor2D;
}

/**
 * Mutual information with Parzen windowing (Mattes/AirLab style): the joint histogram is
 * `Pfᵀ·Pw / n` over masked pixels; loss `−MI` in nats (minimum −log(bins)).
 */
export function miLoss(fixed: tf.Tensor2D, warped: tf.Tensor2D, mask: tf.Tensor2D, bins = 32, sigma = 1, range: [number, number] = [-2, 2]): tf.Scalar {
  if (!(bins >= 2)) throw new Error(`MI needs at least 2 bins, got ${bins}`);
  if (!(range[1] > range[0])) throw new Error(`MI range [${range}] is empty`);
  return tf.tidy(() => {
    const m = tf.reshape(mask, [-1, 1]);
    const pf = tf.mul(parzenWeights(tf.reshape(fixed, [-1]) as tf.Tensor1D, bins, sigma, range), m);
    const pw = parzenWeights(tf.reshape(warped, [-1]) as tf.Tensor1D, bins, sigma, range);
    const n = tf.maximum(tf.sum(mask), tf.scalar(1));
    const joint = tf.div(tf.matMul(pf, pw, true, false), n); // [bins, bins]
    const mf = tf.sum(joint, 1, true);
    const mw = tf.sum(joint, 0, true);
    const ratio = tf.div(tf.add(joint, tf.scalar(EPS)), tf.add(tf.mul(mf, mw), tf.scalar(EPS)));
    return tf.neg(tf.sum(tf.mul(joint, tf.log(ratio)))) as tf.Scalar;
  });
}

/** Forward differences of `[H, W]` on the `[H−1, W−1]` interior: `[dx, dy]`. */
function forwardGrad(x: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  const [H, W] = x.shape;
  const a = tf.slice(x, [0, 0], [H - 1, W - 1]);
  const dx = tf.sub(tf.slice(x, [0, 1], [H - 1, W - 1]), a) as tf.Tensor2D;
  const dy = tf.sub(tf.slice(x, [1, 0], [H - 1, W - 1]), a) as tf.Tensor2D;
  return [dx, dy];
}

/** NGF's default ε: mean |∇F| (|dx| + |dy|, forward differences) of the fixed image, as AirLab. */
export function ngfEpsilon(fixed: tf.Tensor2D): number {
  return tf
    .tidy(() => {
      const [dx, dy] = forwardGrad(fixed);
      return tf.mean(tf.add(tf.abs(dx), tf.abs(dy)));
    })
    .arraySync() as number;
}

/**
 * Normalised gradient fields (Haber & Modersitzki): `1 − (n_F·n_W)²` with
 * `n = ∇I / sqrt(|∇I|² + ε²)`, mean over interior pixels inside the mask (0 when all edges align).
 */
export function ngfLoss(fixed: tf.Tensor2D, warped: tf.Tensor2D, mask: tf.Tensor2D, epsilon: number): tf.Scalar {
  return tf.tidy(() => {
    const [H, W] = fixed.shape;
    const e2 = tf.scalar(epsilon * epsilon);
    const [fx, fy] = forwardGrad(fixed);
    const [wx, wy] = forwardGrad(warped);
    const dot = tf.add(tf.mul(fx, wx), tf.mul(fy, wy));
    const nf = tf.add(tf.add(tf.square(fx), tf.square(fy)), e2);
    const nw = tf.add(tf.add(tf.square(wx), tf.square(wy)), e2);
    const v = tf.sub(tf.scalar(1), tf.div(tf.square(dot), tf.mul(nf, nw)));
    return maskedMean(v, tf.slice(mask, [0, 0], [H - 1, W - 1]));
  });
}

/** The loss by name with its options bound (NGF's ε from the fixed image when not given). */
export function makeLoss(name: LossName, fixed: tf.Tensor2D, o: LossOptions = {}): LossFn {
  switch (name) {
    case 'mse':
      return maskedMse as LossFn;
    case 'ncc':
      return nccLoss;
    case 'lncc':
      return (f, w, m) => lnccLoss(f, w, m, o.window ?? 9);
    case 'mi':
      return (f, w, m) => miLoss(f, w, m, o.bins ?? 32, o.parzenSigma ?? 1, o.range ?? [-2, 2]);
    case 'ngf': {
      const eps = o.epsilon ?? Math.max(ngfEpsilon(fixed), 1e-6);
      return (f, w, m) => ngfLoss(f, w, m, eps);
    }
    default:
      throw new Error(`unknown loss "${name as string}" (choose ${LOSS_NAMES.join(', ')})`);
  }
}
