/**
 * The local Gaussian transformation of R2N2 (docs/method.md). Step t adds
 * `l_t(p) = w_t · exp(−(a dx² + 2b dx dy + c dy²))`, `dx = p_x − c_x`, `dy = p_y − c_y`, with
 *
 *   a =  cos²φ/(2σx²) + sin²φ/(2σy²)
 *   b = −sin2φ/(4σx²) + sin2φ/(4σy²)
 *   c =  sin²φ/(2σx²) + cos²φ/(2σy²)
 *
 * all in normalised coordinates (`linspace(−1, 1, n)` per axis). A step is 7 numbers:
 * position (c_x, c_y), shape (σx, σy), weight (w_x, w_y), rotation φ. Batched: `[B, …]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Geometry, type Point, indexToPhysical, physicalToIndex } from '../image/geometry.js';
import type { Flip } from '../image/resample.js';

export const PARAMS_PER_STEP = 7;

/** Gaussian parameters of one step for a batch: position `[B,2]`, sigma `[B,2]`, weight `[B,2]`, phi `[B,1]`. */
export interface GaussianStep {
  position: tf.Tensor2D;
  sigma: tf.Tensor2D;
  weight: tf.Tensor2D;
  phi: tf.Tensor2D;
}

/**
 * Maps the parameter network's 5 raw outputs `[B, 5]` (σx, σy, wx, wy, φ) to the Gaussian's
 * shape: `σ = σ_max·sigmoid + 1e-5`, `w = tanh`, `φ = π·sigmoid`.
 */
export function mapRawParameters(raw: tf.Tensor2D, sigmaMax = 0.25): { sigma: tf.Tensor2D; weight: tf.Tensor2D; phi: tf.Tensor2D } {
  return tf.tidy(() => {
    const B = raw.shape[0];
    const s = tf.add(tf.mul(tf.sigmoid(tf.slice(raw, [0, 0], [B, 2])), tf.scalar(sigmaMax)), tf.scalar(1e-5)) as tf.Tensor2D;
    const w = tf.tanh(tf.slice(raw, [0, 2], [B, 2])) as tf.Tensor2D;
    const phi = tf.mul(tf.sigmoid(tf.slice(raw, [0, 4], [B, 1])), tf.scalar(Math.PI)) as tf.Tensor2D;
    return { sigma: s, weight: w, phi };
  });
}

/** Normalised coordinate grids `[1, H, W]` (x varies along columns, y along rows). */
export function coordinateGrids(H: number, W: number): { x: tf.Tensor3D; y: tf.Tensor3D } {
  return tf.tidy(() => {
    const xs = tf.linspace(-1, 1, W);
    const ys = tf.linspace(-1, 1, H);
    const x = tf.tile(tf.reshape(xs, [1, 1, W]), [1, H, 1]) as tf.Tensor3D;
    const y = tf.tile(tf.reshape(ys, [1, H, 1]), [1, 1, W]) as tf.Tensor3D;
    return { x, y };
  });
}

/**
 * The displacement `[B, 2, H, W]` (normalised units, channel 0 = x) of one Gaussian step on an
 * H×W grid. Differentiable w.r.t. every parameter. `grids` may be passed to reuse them.
 */
export function gaussianDisplacement(step: GaussianStep, H: number, W: number, grids?: { x: tf.Tensor3D; y: tf.Tensor3D }): tf.Tensor4D {
  return tf.tidy(() => {
    const B = step.position.shape[0];
    const g = grids ?? coordinateGrids(H, W);
    const col = (t: tf.Tensor2D, k: number) => tf.reshape(tf.slice(t, [0, k], [B, 1]), [B, 1, 1]);
    const dx = tf.sub(g.x, col(step.position, 0));
    const dy = tf.sub(g.y, col(step.position, 1));
    const sx2 = tf.square(col(step.sigma, 0));
    const sy2 = tf.square(col(step.sigma, 1));
    const phi = col(step.phi, 0);
    const cos2 = tf.square(tf.cos(phi));
    const sin2 = tf.square(tf.sin(phi));
    const sin2phi = tf.sin(tf.mul(phi, tf.scalar(2)));
    const a = tf.add(tf.div(cos2, tf.mul(sx2, tf.scalar(2))), tf.div(sin2, tf.mul(sy2, tf.scalar(2))));
    const b = tf.add(tf.neg(tf.div(sin2phi, tf.mul(sx2, tf.scalar(4)))), tf.div(sin2phi, tf.mul(sy2, tf.scalar(4))));
    const c = tf.add(tf.div(sin2, tf.mul(sx2, tf.scalar(2))), tf.div(cos2, tf.mul(sy2, tf.scalar(2))));
    const q = tf.add(tf.add(tf.mul(a, tf.square(dx)), tf.mul(tf.mul(b, tf.scalar(2)), tf.mul(dx, dy))), tf.mul(c, tf.square(dy)));
    const e = tf.exp(tf.neg(q)); // [B, H, W]
    const wx = tf.mul(col(step.weight, 0), e);
    const wy = tf.mul(col(step.weight, 1), e);
    return tf.stack([wx, wy], 1) as tf.Tensor4D;
  });
}

/** The quadratic form's a, b, c for shape (σx, σy) and rotation φ (the formulas above). */
export function gaussianCoefficients(sx: number, sy: number, phi: number): [number, number, number] {
  const cos2 = Math.cos(phi) ** 2;
  const sin2 = Math.sin(phi) ** 2;
  const s2p = Math.sin(2 * phi);
  return [cos2 / (2 * sx * sx) + sin2 / (2 * sy * sy), -s2p / (4 * sx * sx) + s2p / (4 * sy * sy), sin2 / (2 * sx * sx) + cos2 / (2 * sy * sy)];
}

/** The same in plain double-precision JS for one step (tests, fields from a sequence): `[2, H, W]`. */
export function gaussianDisplacementJs(
  p: { cx: number; cy: number; sx: number; sy: number; wx: number; wy: number; phi: number },
  H: number,
  W: number,
): Float64Array {
  const out = new Float64Array(2 * H * W);
  const [a, b, c] = gaussianCoefficients(p.sx, p.sy, p.phi);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const dx = (W > 1 ? -1 + (2 * j) / (W - 1) : 0) - p.cx;
      const dy = (H > 1 ? -1 + (2 * i) / (H - 1) : 0) - p.cy;
      const g = Math.exp(-(a * dx * dx + 2 * b * dx * dy + c * dy * dy));
      out[i * W + j] = p.wx * g;
      out[H * W + i * W + j] = p.wy * g;
    }
  }
  return out;
}

/**
 * Adds one step (7 numbers from `steps[at]`: cx, cy, σx, σy, wx, wy, φ) to the field `u`
 * (`[2, H, W]` float32, normalised units) in place: each value is evaluated in double precision
 * and added once, so the result is `gaussianDisplacementJs`'s added to `u`, bit for bit, without
 * the intermediate array.
 */
export function addGaussianInPlace(u: Float32Array, steps: ArrayLike<number>, at: number, H: number, W: number): void {
  if (u.length !== 2 * H * W) throw new Error(`field has ${u.length} values, expected 2×${H}×${W}`);
  const cx = steps[at];
  const cy = steps[at + 1];
  const wx = steps[at + 4];
  const wy = steps[at + 5];
  const [a, b, c] = gaussianCoefficients(steps[at + 2], steps[at + 3], steps[at + 6]);
  const N = H * W;
  for (let i = 0; i < H; i++) {
    const dy = (H > 1 ? -1 + (2 * i) / (H - 1) : 0) - cy;
    for (let j = 0; j < W; j++) {
      const dx = (W > 1 ? -1 + (2 * j) / (W - 1) : 0) - cx;
      const g = Math.exp(-(a * dx * dx + 2 * b * dx * dy + c * dy * dy));
      u[i * W + j] += wx * g;
      u[N + i * W + j] += wy * g;
    }
  }
}

/** Sum of a whole sequence (7 numbers per step: cx, cy, σx, σy, wx, wy, φ) on an H×W grid, `[2, H, W]` float32. */
export function sequenceField(steps: ArrayLike<number>, H: number, W: number): Float32Array {
  const out = new Float32Array(2 * H * W);
  for (let k = 0; k + PARAMS_PER_STEP <= steps.length; k += PARAMS_PER_STEP) addGaussianInPlace(out, steps, k, H, W);
  return out;
}

/** The sequence's displacement (normalised units) at one normalised point (x, y). */
export function sequenceAt(steps: ArrayLike<number>, x: number, y: number): [number, number] {
  let ux = 0;
  let uy = 0;
  for (let k = 0; k + PARAMS_PER_STEP <= steps.length; k += PARAMS_PER_STEP) {
    const [cx, cy, sx, sy, wx, wy, phi] = Array.from({ length: 7 }, (_, i) => steps[k + i]);
    const [a, b, c] = gaussianCoefficients(sx, sy, phi);
    const dx = x - cx;
    const dy = y - cy;
    const g = Math.exp(-(a * dx * dx + 2 * b * dx * dy + c * dy * dy));
    ux += wx * g;
    uy += wy * g;
  }
  return [ux, uy];
}

/** A physical point p (mm) of the fixed grid `g` mapped through the sequence: p + u(p), in mm. */
export function sequenceMapPoint(steps: ArrayLike<number>, g: Geometry, p: Point): Point {
  const [W, H] = g.size;
  const [i, j] = physicalToIndex(g, p);
  const [ux, uy] = sequenceAt(steps, (2 * i) / (W - 1) - 1, (2 * j) / (H - 1) - 1);
  return indexToPhysical(g, [i + (ux * (W - 1)) / 2, j + (uy * (H - 1)) / 2]);
}

/**
 * A sequence estimated on mirrored images, mapped back to the unmirrored grid. If the network
 * saw F∘M and M'∘M (M the mirror, normalised coordinates) and answered u', the unmirrored field
 * is u(q) = M·u'(M·q): each Gaussian keeps its shape, its centre and weight are mirrored
 * (c → M·c, w → M·w), and a one-axis mirror turns the rotation φ into π − φ (φ stays in [0, π]);
 * both axes (a 180° rotation) leave φ as it is. `scale` multiplies every weight (1/V when V
 * passes are averaged). 7 numbers per step, as everywhere.
 */
export function unflipSequence(steps: ArrayLike<number>, flip: Flip, scale = 1): Float32Array {
  const out = Float32Array.from(steps);
  const fx = flip === 'x' || flip === 'xy';
  const fy = flip === 'y' || flip === 'xy';
  for (let k = 0; k + PARAMS_PER_STEP <= out.length; k += PARAMS_PER_STEP) {
    if (fx) {
      out[k] = -out[k];
      out[k + 4] = -out[k + 4];
    }
    if (fy) {
      out[k + 1] = -out[k + 1];
      out[k + 5] = -out[k + 5];
    }
    if (fx !== fy) out[k + 6] = Math.PI - out[k + 6];
    out[k + 4] *= scale;
    out[k + 5] *= scale;
  }
  return out;
}
