/**
 * Rigid, similarity and affine transformations in physical units about the image centre c:
 *
 *   T(p) = A·(p − c) + c + t        (p, t in mm; A 2×2)
 *
 * rigid: A = R(α) (3 parameters); similarity: A = e^s·R(α) (4); affine: A = I + B (6). The
 * translation is optimised as τ = t / L (L = half the larger physical extent) so that AMSGrad's
 * steps are balanced between angles and translations. Registration (`registerAffine`) uses the
 * same Gaussian pyramid, loss and optimiser as the B-spline, starting from the difference of the
 * images' centres of mass (first moments of |I − border median|) so large shifts converge.
 * Fields are produced in normalised units `[2, h, w]` on any level's aligned-corner grid.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DEFAULT_COMPUTE } from '../tensors.js';
import { type Geometry, indexToPhysical } from '../image/geometry.js';
import { warpBilinear, warpMseHost } from './warp.js';
import { makeLoss } from '../loss/losses.js';
import { AmsGrad } from '../optim.js';
import { normaliseIntensity } from '../image/intensity.js';
import { finestFactor, finestLevel, pyramidLevel } from '../image/resample.js';

import type { AffineKind, AffineOptions } from './affine-options.js';
export { type AffineKind, type InitKind, AFFINE_DEFAULTS, AFFINE_PARAMETERS, INIT_KINDS } from './affine-options.js';

export interface AffineTransform {
  kind: AffineKind;
  /** A, row-major [a00, a01, a10, a11]. */
  matrix: [number, number, number, number];
  /** t (mm). */
  translation: [number, number];
  /** c (mm). */
  centre: [number, number];
}

/** Physical centre of the image grid. */
export function gridCentre(g: Geometry): [number, number] {
  return indexToPhysical(g, [(g.size[0] - 1) / 2, (g.size[1] - 1) / 2]);
}

/** T(p) for a physical point. */
export function applyAffine(a: AffineTransform, p: [number, number]): [number, number] {
  const [m00, m01, m10, m11] = a.matrix;
  const x = p[0] - a.centre[0];
  const y = p[1] - a.centre[1];
  return [m00 * x + m01 * y + a.centre[0] + a.translation[0], m10 * x + m11 * y + a.centre[1] + a.translation[1]];
}

/**
 * Constants to turn (A, t) into a normalised field on an h×w level grid of an image with
 * geometry g: Q = P − c `[2, h·w]` (physical positions of the level's pixels, centred) and
 * N = diag(2/(W−1), 2/(H−1))·S⁻¹·D⁻¹ (mm → normalised units).
 */
function levelConstants(g: Geometry, h: number, w: number): { Q: Float32Array; N: [number, number, number, number] } {
  const [W, H] = g.size;
  const c = gridCentre(g);
  const Q = new Float32Array(2 * h * w);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const idx: [number, number] = [w > 1 ? (j * (W - 1)) / (w - 1) : 0, h > 1 ? (i * (H - 1)) / (h - 1) : 0];
      const p = indexToPhysical(g, idx);
      Q[i * w + j] = p[0] - c[0];
      Q[h * w + i * w + j] = p[1] - c[1];
    }
  }
  const [d00, d01, d10, d11] = g.direction;
  const det = d00 * d11 - d01 * d10;
  const inv = [d11 / det, -d01 / det, -d10 / det, d00 / det];
  const sx = 2 / ((W - 1) * g.spacing[0]);
  const sy = 2 / ((H - 1) * g.spacing[1]);
  return { Q, N: [sx * inv[0], sx * inv[1], sy * inv[2], sy * inv[3]] };
}

/** The affine field in normalised units `[2, h, w]` from A (2×2 tensor) and t (mm, [2,1] tensor). */
function affineFieldTensor(A: tf.Tensor2D, t: tf.Tensor2D, Q: tf.Tensor2D, N: tf.Tensor2D, h: number, w: number): tf.Tensor3D {
  return tf.tidy(() => {
    const disp = tf.add(tf.matMul(tf.sub(A, tf.eye(2)), Q), t); // [2, hw] mm: T(p) − p
    return tf.reshape(tf.matMul(N, disp), [2, h, w]) as tf.Tensor3D;
  });
}

/** Same in plain JS (float32 output), for writing fields and composing with other fields. */
export function affineField(a: AffineTransform, g: Geometry, h = g.size[1], w = g.size[0]): Float32Array {
  const { Q, N } = levelConstants(g, h, w);
  const [m00, m01, m10, m11] = a.matrix;
  const out = new Float32Array(2 * h * w);
  const n = h * w;
  for (let k = 0; k < n; k++) {
    const qx = Q[k];
    const qy = Q[n + k];
    const dx = (m00 - 1) * qx + m01 * qy + a.translation[0];
    const dy = m10 * qx + (m11 - 1) * qy + a.translation[1];
    out[k] = N[0] * dx + N[1] * dy;
    out[n + k] = N[2] * dx + N[3] * dy;
  }
  return out;
}

/** Centre of mass (mm) of |I − median of the border pixels|. */
export function centreOfMass(data: ArrayLike<number>, g: Geometry): [number, number] {
  const [W, H] = g.size;
  const border: number[] = [];
  for (let j = 0; j < W; j++) border.push(data[j], data[(H - 1) * W + j]);
  for (let i = 0; i < H; i++) border.push(data[i * W], data[i * W + W - 1]);
  border.sort((a, b) => a - b);
  const bg = border[Math.floor(border.length / 2)];
  let s = 0,
    sx = 0,
    sy = 0;
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const m = Math.abs(data[i * W + j] - bg);
      s += m;
      sx += m * j;
      sy += m * i;
    }
  }
  if (!(s > 0)) return gridCentre(g);
  return indexToPhysical(g, [sx / s, sy / s]);
}

export type { AffineOptions } from './affine-options.js';

const pick = <T>(list: T[], l: number): T => (list.length === 1 ? list[0] : list[Math.min(l, list.length - 1)]);

/** A from the parameter vector (tf, differentiable). */
function matrixOf(kind: AffineKind, v: tf.Tensor1D): tf.Tensor2D {
  if (kind === 'affine') return tf.add(tf.eye(2), tf.reshape(tf.slice(v, [0], [4]), [2, 2])) as tf.Tensor2D;
  const a = tf.slice(v, [0], [1]);
  const scale = kind === 'similarity' ? tf.exp(tf.slice(v, [1], [1])) : tf.ones([1]);
  const c = tf.mul(tf.cos(a), scale);
  const s = tf.mul(tf.sin(a), scale);
  return tf.reshape(tf.concat([c, tf.neg(s), s, c]), [2, 2]) as tf.Tensor2D;
}

/**
 * Registers moving to fixed (`[H, W]` arrays on geometry g) with a global transformation;
 * returns it in physical units.
 */
export function registerAffine(fixed: Float32Array, moving: Float32Array, g: Geometry, o: AffineOptions): AffineTransform & { finalLoss: number } {
  const [W, H] = g.size;
  const F = (o.normalise ?? true) ? normaliseIntensity(fixed) : fixed;
  const M = (o.normalise ?? true) ? normaliseIntensity(moving) : moving;
  const c = gridCentre(g);
  const extent = Math.max((W - 1) * g.spacing[0], (H - 1) * g.spacing[1]) / 2 || 1;
  const nA = o.kind === 'affine' ? 4 : o.kind === 'similarity' ? 2 : 1;
  const t0 = (o.moments ?? true) ? ((cf, cm) => [cm[0] - cf[0], cm[1] - cf[1]])(centreOfMass(fixed, g), centreOfMass(moving, g)) : [0, 0];
  const initA = tf.zeros([nA]);
  const initT = tf.tensor2d([[t0[0] / extent], [t0[1] / extent]]);
  const vA = tf.variable(initA, true, `affine-A-${Math.random()}`);
  const vT = tf.variable(initT, true, `affine-t-${Math.random()}`);
  tf.dispose([initA, initT]);
  const opt = new AmsGrad({ learningRate: 1 });
  // MSE on a host-memory backend: warp and loss fused into one op (core/transformation/warp.ts warpMseHost)
  const fused = o.loss === 'mse' && (o.compute ?? DEFAULT_COMPUTE).hostOps;
  let last = NaN;
  try {
    const ff = finestFactor(W, H, o.maxSize);
    for (let l = 0; l < o.levels; l++) {
      const factor = 2 ** (o.levels - 1 - l) * ff;
      const finest = l === o.levels - 1;
      const fl = finest ? finestLevel(F, H, W, factor, o.finestSigma ?? 1) : pyramidLevel(F, H, W, factor);
      const ml = finest ? finestLevel(M, H, W, factor, o.finestSigma ?? 1) : pyramidLevel(M, H, W, factor);
      const { Q, N } = levelConstants(g, fl.H, fl.W);
      const Qt = tf.tensor2d(Q, [2, fl.H * fl.W]);
      const Nt = tf.tensor2d(N, [2, 2]);
      const fixedT = tf.tensor2d(fl.data, [fl.H, fl.W]);
      const lossFn = makeLoss(o.loss, fixedT, o.lossOptions);
      opt.learningRate = pick(o.learningRate, l);
      try {
        for (let it = 0; it < pick(o.iterations, l); it++) {
          const { value, grads } = tf.variableGrads(() => {
            const A = matrixOf(o.kind, vA as tf.Tensor1D);
            const u = affineFieldTensor(A, tf.mul(vT, tf.scalar(extent)) as tf.Tensor2D, Qt, Nt, fl.H, fl.W);
            if (fused) return warpMseHost(ml.data, fl.data, fl.H, fl.W, u);
            const { warped, mask } = warpBilinear(ml.data, fl.H, fl.W, u);
            return lossFn(fixedT, warped, mask);
          }, [vA, vT]);
          opt.apply([vA, vT], grads);
          last = value.dataSync()[0];
          tf.dispose([value, ...Object.values(grads)]);
          if (!Number.isFinite(last)) throw new Error(`the affine stage's loss became ${last}; lower its learning rate`);
          o.onIteration?.({ level: l, iteration: it, loss: last });
        }
      } finally {
        tf.dispose([Qt, Nt, fixedT]);
      }
    }
    const A = tf.tidy(() => matrixOf(o.kind, vA as tf.Tensor1D).dataSync());
    const t = vT.dataSync();
    return { kind: o.kind, matrix: [A[0], A[1], A[2], A[3]], translation: [t[0] * extent, t[1] * extent], centre: c, finalLoss: last };
  } finally {
    opt.dispose();
    vA.dispose();
    vT.dispose();
  }
}

/**
 * The total field of "pre-align with T_A, then register F to M∘T_A with field u" (normalised
 * `[2, H, W]`): T(p) = T_A(p + u(p)), i.e. u_total = u_A + L·u with L the linear part of T_A in
 * normalised units (N·A·N⁻¹, N: mm → normalised).
 */
export function composeAfterAffine(a: AffineTransform, g: Geometry, u: Float32Array): Float32Array {
  const [W, H] = g.size;
  const { N } = levelConstants(g, 1, 1);
  const detN = N[0] * N[3] - N[1] * N[2];
  const Ni = [N[3] / detN, -N[1] / detN, -N[2] / detN, N[0] / detN];
  const [m00, m01, m10, m11] = a.matrix;
  const mul = (x: number[], y: number[]) => [x[0] * y[0] + x[1] * y[2], x[0] * y[1] + x[1] * y[3], x[2] * y[0] + x[3] * y[2], x[2] * y[1] + x[3] * y[3]];
  const L = mul(mul(N, [m00, m01, m10, m11]), Ni);
  const out = affineField(a, g);
  const n = W * H;
  for (let k = 0; k < n; k++) {
    out[k] += L[0] * u[k] + L[1] * u[n + k];
    out[n + k] += L[2] * u[k] + L[3] * u[n + k];
  }
  return out;
}
