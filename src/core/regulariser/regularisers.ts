/**
 * Regularisers of a displacement field `u` of shape `[2, H, W]` (normalised units, channel 0 =
 * x, 1 = y; docs/method.md). Each returns the *unweighted* scalar; the caller multiplies by λ.
 * `spacing` = `[sx, sy]` weights the squared differences along rows (i) and columns (j) as in
 * AirLab (docs/method.md's iso-TV formula); `[1, 1]` for an isotropic grid.
 */
import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from '../tensors.js';

import { REGULARISER_NAMES, type RegulariserName } from './names.js';
export { type RegulariserName, REGULARISER_NAMES } from './names.js';

/** `(u[i+1,j+1] − u[i,j+1])²·sx + (u[i+1,j+1] − u[i+1,j])²·sy`, shape `[2, H−1, W−1]`. */
function squaredDifferences(u: tf.Tensor3D, spacing: [number, number]): tf.Tensor3D {
  const [C, H, W] = u.shape;
  const a = tf.slice(u, [0, 1, 1], [C, H - 1, W - 1]);
  const up = tf.slice(u, [0, 0, 1], [C, H - 1, W - 1]);
  const left = tf.slice(u, [0, 1, 0], [C, H - 1, W - 1]);
  return tf.add(tf.mul(tf.square(tf.sub(a, up)), tf.scalar(spacing[0])), tf.mul(tf.square(tf.sub(a, left)), tf.scalar(spacing[1]))) as tf.Tensor3D;
}

/**
 * Isotropic total variation, AirLab form: `v = sqrt(squaredDifferences)` where it is > 0 and 0
 * elsewhere (the square root has no gradient at 0), padded back to H×W with zeros, mean over
 * all `2·H·W` entries.
 */
export function isoTv(u: tf.Tensor3D, spacing: [number, number] = [1, 1]): tf.Scalar {
  return tf.tidy(() => {
    const [C, H, W] = u.shape;
    const v = squaredDifferences(u, spacing);
    const positive = tf.greater(stopGradient(v), tf.scalar(0));
    const root = tf.where(positive, tf.sqrt(tf.where(positive, v, tf.onesLike(v))), tf.zerosLike(v));
    return tf.div(tf.sum(root), tf.scalar(C * H * W)) as tf.Scalar;
  });
}

/**
 * `isoTv` as one op computed in plain JS with its analytic gradient (value and gradient equal
 * `isoTv`'s to float rounding; tested): for backends whose tensors live in host memory (wasm,
 * cpu), where the dozen small tfjs ops of `isoTv` and their gradients cost more than the
 * arithmetic. The gradient at an entry where the root is 0 is 0, as in `isoTv`.
 */
export function isoTvHost(u: tf.Tensor3D, spacing: [number, number] = [1, 1]): tf.Scalar {
  const [C, H, W] = u.shape;
  const op = tf.customGrad(((x: tf.Tensor) => {
    const d = x.dataSync();
    const value = isoTvArrays(d, C, H, W, spacing);
    return {
      value: tf.scalar(value),
      gradFunc: (dy: tf.Tensor) => {
        const grad = new Float32Array(C * H * W);
        isoTvGradArrays(d, C, H, W, spacing, dy.dataSync()[0], grad);
        return tf.tensor3d(grad, [C, H, W]);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(u) as tf.Scalar;
}

/** `isoTv` of `d` (`[C, H, W]` values) on plain arrays, summed in double precision. */
export function isoTvArrays(d: ArrayLike<number>, C: number, H: number, W: number, spacing: [number, number]): number {
  const [sx, sy] = spacing;
  let sum = 0;
  for (let c = 0; c < C; c++) {
    const o = c * H * W;
    for (let i = 0; i + 1 < H; i++) {
      for (let j = 0; j + 1 < W; j++) {
        const a = d[o + (i + 1) * W + j + 1];
        const du = a - d[o + i * W + j + 1];
        const dl = a - d[o + (i + 1) * W + j];
        const v = du * du * sx + dl * dl * sy;
        if (v > 0) sum += Math.sqrt(v);
      }
    }
  }
  return sum / (C * H * W);
}

/** Adds `scale` × the gradient of `isoTvArrays` at `d` into `grad` (`[C, H, W]`); 0 where the root is 0. */
export function isoTvGradArrays(
  d: ArrayLike<number>,
  C: number,
  H: number,
  W: number,
  spacing: [number, number],
  scale: number,
  grad: { [i: number]: number },
): void {
  const [sx, sy] = spacing;
  const g = scale / (C * H * W);
  for (let c = 0; c < C; c++) {
    const o = c * H * W;
    for (let i = 0; i + 1 < H; i++) {
      for (let j = 0; j + 1 < W; j++) {
        const ia = o + (i + 1) * W + j + 1;
        const iu = o + i * W + j + 1;
        const il = o + (i + 1) * W + j;
        const du = d[ia] - d[iu];
        const dl = d[ia] - d[il];
        const v = du * du * sx + dl * dl * sy;
        if (!(v > 0)) continue;
        const r = g / Math.sqrt(v);
        grad[ia] += r * (du * sx + dl * sy);
        grad[iu] -= r * du * sx;
        grad[il] -= r * dl * sy;
      }
    }
  }
}

/** Diffusion (AirLab): the same squared differences without the root, mean over `2·H·W`. */
export function diffusion(u: tf.Tensor3D, spacing: [number, number] = [1, 1]): tf.Scalar {
  return tf.tidy(() => {
    const [C, H, W] = u.shape;
    return tf.div(tf.sum(squaredDifferences(u, spacing)), tf.scalar(C * H * W)) as tf.Scalar;
  });
}

/**
 * Bending energy: `u_xx² + 2·u_xy² + u_yy²` by central second differences on the interior
 * (per grid step, scaled by the spacing weights as `u_xx²·sy²`, `u_yy²·sx²`, `u_xy²·sx·sy`),
 * mean over all `2·H·W` entries.
 */
export function bending(u: tf.Tensor3D, spacing: [number, number] = [1, 1]): tf.Scalar {
  return tf.tidy(() => {
    const [C, H, W] = u.shape;
    const s = (i: number, j: number) => tf.slice(u, [0, i, j], [C, H - 2, W - 2]);
    const c = s(1, 1);
    const two = tf.scalar(2);
    const uxx = tf.add(tf.sub(s(1, 2), tf.mul(two, c)), s(1, 0));
    const uyy = tf.add(tf.sub(s(2, 1), tf.mul(two, c)), s(0, 1));
    const uxy = tf.mul(tf.sub(tf.add(s(2, 2), s(0, 0)), tf.add(s(2, 0), s(0, 2))), tf.scalar(0.25));
    const [sx, sy] = spacing;
    const e = tf.add(
      tf.add(tf.mul(tf.square(uxx), tf.scalar(sy * sy)), tf.mul(tf.square(uyy), tf.scalar(sx * sx))),
      tf.mul(tf.square(uxy), tf.scalar(2 * sx * sy)),
    );
    return tf.div(tf.sum(e), tf.scalar(C * H * W)) as tf.Scalar;
  });
}

/** `host`: compute TV with `isoTvHost` (the caller knows its tensors live in host memory). */
export function regulariser(name: RegulariserName, u: tf.Tensor3D, spacing: [number, number] = [1, 1], host = false): tf.Scalar {
  switch (name) {
    case 'tv':
      return host ? isoTvHost(u, spacing) : isoTv(u, spacing);
    case 'diffusion':
      return diffusion(u, spacing);
    case 'bending':
      return bending(u, spacing);
    case 'none':
      return tf.scalar(0);
    default:
      throw new Error(`unknown regulariser "${name as string}" (choose ${REGULARISER_NAMES.join(', ')})`);
  }
}
