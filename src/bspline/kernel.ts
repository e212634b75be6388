/**
 * The B-spline transformation of AirLab (docs/method.md), per axis:
 *
 * - kernel: a box of `s` ones convolved with itself `order` times (full padding), divided by
 *   `s` each time; length `K = (order+1)·s − order`. Shifted copies at stride s sum to 1.
 * - control grid: `cp = ceil(n/s) + 2` points.
 * - dense field: `conv2dTranspose(params, kernel, stride s, padding (K−1)/2)` per channel, then
 *   cropped to exactly n pixels (`cropWindow`).
 *
 * `referenceField` does exactly that with tfjs's conv2dTranspose (the reference). The fast path
 * writes the same linear map as a basis matrix `B` `[n, cp]` per axis, so the field of the
 * `[2, cpH, cpW]` parameters is `B_y · P · B_xᵀ` (two matMuls): `basisMatrix`/`denseField`,
 * tested equal to the reference.
 */
import * as tf from '@tensorflow/tfjs-core';

/** 1-D B-spline kernel of `order` for control spacing `s` pixels (float64). */
export function bsplineKernel1d(s: number, order = 3): Float64Array {
  if (!(Number.isInteger(s) && s >= 1)) throw new Error(`control-point spacing must be a positive integer, got ${s}`);
  if (!(Number.isInteger(order) && order >= 0 && order <= 5)) throw new Error(`B-spline order must be 0..5, got ${order}`);
  let k: Float64Array = new Float64Array(s).fill(1);
  for (let o = 0; o < order; o++) {
    const out = new Float64Array(k.length + s - 1);
    for (let i = 0; i < k.length; i++) for (let j = 0; j < s; j++) out[i + j] += k[i] / s;
    k = out;
  }
  return k;
}

export interface AxisGrid {
  /** Image pixels along the axis. */
  n: number;
  /** Control-point spacing, pixels. */
  s: number;
  order: number;
  /** Kernel length `(order+1)·s − order`. */
  K: number;
  /** Control points: `ceil(n/s) + 2`. */
  cp: number;
  /** conv-transpose padding `floor((K−1)/2)`. */
  pad: number;
  /** Index of the first kept sample of the padded conv-transpose output. */
  start: number;
}

/**
 * AirLab's crop: `inner = s·ceil(n/s) − (s−1)`, `diff = inner − n`,
 * `start = floor(|diff|/2)·sign(diff) + (diff mod 2)·sign(diff)` (non-negative modulo),
 * `end = floor(|diff|/2)·sign(diff)`, both offset by s. Returns where the n kept samples start
 * in the padded conv-transpose output, and the output's length.
 */
export function cropWindow(n: number, s: number, order = 3): { start: number; end: number; outLength: number } {
  const K = (order + 1) * s - order;
  const cpInner = Math.ceil(n / s);
  const cp = cpInner + 2;
  const pad = Math.floor((K - 1) / 2);
  const outLength = (cp - 1) * s - 2 * pad + K;
  const inner = s * cpInner - (s - 1);
  const diff = inner - n;
  const sign = Math.sign(diff);
  const half = Math.floor(Math.abs(diff) / 2) * sign;
  const mod = ((diff % 2) + 2) % 2;
  const cropStart = half + mod * sign;
  const cropEnd = half;
  return { start: s + cropStart, end: outLength - (s + cropEnd), outLength };
}

/** The per-axis grid of a B-spline with spacing s on n pixels; throws when the crop cannot give n. */
export function axisGrid(n: number, s: number, order = 3): AxisGrid {
  const K = (order + 1) * s - order;
  if (K % 2 === 0) throw new Error(`a B-spline of order ${order} needs an odd control-point spacing (kernel length ${K} is even for spacing ${s})`);
  if (s > n) throw new Error(`control-point spacing ${s} px exceeds the image size ${n} px`);
  const { start, end } = cropWindow(n, s, order);
  if (end - start !== n) throw new Error(`internal: B-spline crop gives ${end - start} samples for n=${n}, s=${s}`);
  return { n, s, order, K, cp: Math.ceil(n / s) + 2, pad: Math.floor((K - 1) / 2), start };
}

/**
 * Basis matrix `[n, cp]` (row-major, float64): column g is the cropped conv-transpose of the
 * unit vector e_g, i.e. `B[i, g] = kernel[i + start + pad − g·s]` (0 outside the kernel).
 */
export function basisMatrix(a: AxisGrid): Float64Array {
  const k = bsplineKernel1d(a.s, a.order);
  const B = new Float64Array(a.n * a.cp);
  for (let i = 0; i < a.n; i++) {
    for (let g = 0; g < a.cp; g++) {
      const t = i + a.start + a.pad - g * a.s;
      if (t >= 0 && t < a.K) B[i * a.cp + g] = k[t];
    }
  }
  return B;
}

/** Both axes of a B-spline on an H×W image (control spacing `[sx, sy]` px). */
export interface BsplineGrid {
  x: AxisGrid;
  y: AxisGrid;
  /** Parameter count `2·cpH·cpW`. */
  parameters: number;
}

export function bsplineGrid(H: number, W: number, spacing: [number, number], order = 3): BsplineGrid {
  const x = axisGrid(W, spacing[0], order);
  const y = axisGrid(H, spacing[1], order);
  return { x, y, parameters: 2 * x.cp * y.cp };
}

/** Fast-path operands: `By` tiled to `[2, H, cpH]` and `BxT` to `[2, cpW, W]` (dispose them). */
export function basisTensors(g: BsplineGrid): { By: tf.Tensor3D; BxT: tf.Tensor3D } {
  const by = basisMatrix(g.y);
  const bx = basisMatrix(g.x);
  const H = g.y.n,
    cpH = g.y.cp,
    W = g.x.n,
    cpW = g.x.cp;
  const By = new Float32Array(2 * H * cpH);
  By.set(by);
  By.set(by, H * cpH);
  const BxT = new Float32Array(2 * cpW * W);
  for (let j = 0; j < W; j++) for (let g2 = 0; g2 < cpW; g2++) BxT[g2 * W + j] = bx[j * cpW + g2];
  BxT.copyWithin(cpW * W, 0, cpW * W);
  return { By: tf.tensor3d(By, [2, H, cpH]), BxT: tf.tensor3d(BxT, [2, cpW, W]) };
}

/** Dense field `[2, H, W]` = `By · P · BxT` for parameters `P` `[2, cpH, cpW]` (fast path). */
export function denseField(P: tf.Tensor3D, By: tf.Tensor3D, BxT: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => tf.matMul(tf.matMul(By, P), BxT));
}

/**
 * The reference: AirLab's conv2dTranspose with the 2-D kernel (outer product of the 1-D
 * kernels), stride s, padding (K−1)/2, then the crop. `P` `[2, cpH, cpW]` → `[2, H, W]`.
 */
export function referenceField(P: tf.Tensor3D, g: BsplineGrid): tf.Tensor3D {
  return tf.tidy(() => {
    const kx = bsplineKernel1d(g.x.s, g.x.order);
    const ky = bsplineKernel1d(g.y.s, g.y.order);
    const k2 = new Float32Array(ky.length * kx.length);
    for (let i = 0; i < ky.length; i++) for (let j = 0; j < kx.length; j++) k2[i * kx.length + j] = ky[i] * kx[j];
    const filter = tf.tensor4d(k2, [ky.length, kx.length, 1, 1]);
    // 'valid' transpose conv = the full output; AirLab's padding p drops p samples each side
    const fullH = (g.y.cp - 1) * g.y.s + g.y.K;
    const fullW = (g.x.cp - 1) * g.x.s + g.x.K;
    const x = tf.reshape(P, [2, g.y.cp, g.x.cp, 1]) as tf.Tensor4D;
    const full = tf.conv2dTranspose(x, filter, [2, fullH, fullW, 1], [g.y.s, g.x.s], 'valid');
    const out = tf.slice(full, [0, g.y.pad + g.y.start, g.x.pad + g.x.start, 0], [2, g.y.n, g.x.n, 1]);
    return tf.reshape(out, [2, g.y.n, g.x.n]) as tf.Tensor3D;
  });
}

/** The nonzero entries of each row of a basis matrix `[n, cp]`: `[n, width]` indices and weights (0-padded). */
export interface SparseBasis {
  n: number;
  cp: number;
  width: number;
  idx: Int32Array;
  w: Float32Array;
}

export function sparseBasis(b: ArrayLike<number>, n: number, cp: number, width: number): SparseBasis {
  const idx = new Int32Array(n * width);
  const w = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    let m = 0;
    for (let g = 0; g < cp; g++) {
      const v = b[i * cp + g];
      if (v === 0) continue;
      if (m >= width) throw new Error(`internal: a basis row has more than ${width} nonzero weights`);
      idx[i * width + m] = g;
      w[i * width + m] = v;
      m++;
    }
  }
  return { n, cp, width, idx, w };
}

/** Both axes' sparse bases of a grid (a row of order k has k+1 nonzero weights). */
export function sparseGrid(g: BsplineGrid): { y: SparseBasis; x: SparseBasis } {
  const wy = g.y.order + 1;
  const wx = g.x.order + 1;
  return { y: sparseBasis(basisMatrix(g.y), g.y.n, g.y.cp, wy), x: sparseBasis(basisMatrix(g.x), g.x.n, g.x.cp, wx) };
}

/** The sizes, indices and weights of both sparse bases as locals for the loops below. */
function unpackGrid(s: { y: SparseBasis; x: SparseBasis }) {
  return { H: s.y.n, W: s.x.n, cpH: s.y.cp, cpW: s.x.cp, yi: s.y.idx, yw: s.y.w, xi: s.x.idx, xw: s.x.w, ky: s.y.width, kx: s.x.width };
}

/**
 * The dense field `[2, H, W]` = `By · P · Bxᵀ` on plain arrays over the sparse basis rows
 * (order+1 nonzero weights each): (order+1)·(cpH·W + H·W) multiply-adds per channel instead of
 * the dense products' cpH·cpW·H + cpH·H·W, accumulated in double precision. `p`: `[2, cpH, cpW]`;
 * `into`: a buffer of 2·H·W values to overwrite instead of a new one.
 */
export function bsplineFieldArrays(p: ArrayLike<number>, s: { y: SparseBasis; x: SparseBasis }, into?: Float32Array): Float32Array {
  const { H, W, cpH, cpW, yi, yw, xi, xw, ky, kx } = unpackGrid(s);
  if (into && into.length !== 2 * H * W) throw new Error(`internal: the field buffer does not hold 2×${H}×${W} values`);
  const out = into ?? new Float32Array(2 * H * W);
  const T = new Float64Array(cpH * W);
  const acc = new Float64Array(W);
  for (let c = 0; c < 2; c++) {
    const pc = c * cpH * cpW;
    // T = P_c · Bxᵀ  [cpH, W]
    for (let g = 0; g < cpH; g++) {
      const pg = pc + g * cpW;
      const tg = g * W;
      for (let j = 0; j < W; j++) {
        let v = 0;
        for (let m = j * kx, e = m + kx; m < e; m++) v += p[pg + xi[m]] * xw[m];
        T[tg + j] = v;
      }
    }
    // u_c = By · T  [H, W]: one row of T per nonzero weight
    const oc = c * H * W;
    for (let i = 0; i < H; i++) {
      acc.fill(0);
      for (let m = i * ky, e = m + ky; m < e; m++) {
        const wy = yw[m];
        if (wy === 0) continue;
        const t = yi[m] * W;
        for (let j = 0; j < W; j++) acc[j] += wy * T[t + j];
      }
      out.set(acc, oc + i * W);
    }
  }
  return out;
}

/** The gradient of `bsplineFieldArrays`: `dP = Byᵀ · G · Bx` for `G` `[2, H, W]`; returns `[2, cpH, cpW]`. */
export function bsplineFieldGradArrays(G: ArrayLike<number>, s: { y: SparseBasis; x: SparseBasis }): Float32Array {
  const { H, W, cpH, cpW, yi, yw, xi, xw, ky, kx } = unpackGrid(s);
  const grad = new Float32Array(2 * cpH * cpW);
  const dT = new Float64Array(cpH * W);
  for (let c = 0; c < 2; c++) {
    dT.fill(0);
    const oc = c * H * W;
    // dT = Byᵀ · G_c  [cpH, W]
    for (let i = 0; i < H; i++) {
      const row = oc + i * W;
      for (let m = i * ky, e = m + ky; m < e; m++) {
        const wy = yw[m];
        if (wy === 0) continue;
        const t = yi[m] * W;
        for (let j = 0; j < W; j++) dT[t + j] += wy * G[row + j];
      }
    }
    // dP_c = dT · Bx  [cpH, cpW]
    const pc = c * cpH * cpW;
    for (let g = 0; g < cpH; g++) {
      const pg = pc + g * cpW;
      const tg = g * W;
      for (let j = 0; j < W; j++) {
        const d = dT[tg + j];
        if (d === 0) continue;
        for (let m = j * kx, e = m + kx; m < e; m++) grad[pg + xi[m]] += d * xw[m];
      }
    }
  }
  return grad;
}

/**
 * `By · P · Bxᵀ` as one tfjs op over `bsplineFieldArrays`, with its analytic gradient
 * `bsplineFieldGradArrays`: for backends whose tensors live in host memory (equal to
 * `denseField` to float rounding; tested).
 */
export function denseFieldHost(P: tf.Tensor3D, s: { y: SparseBasis; x: SparseBasis }): tf.Tensor3D {
  const H = s.y.n;
  const W = s.x.n;
  const cpH = s.y.cp;
  const cpW = s.x.cp;
  if (P.shape[0] !== 2 || P.shape[1] !== cpH || P.shape[2] !== cpW) throw new Error(`parameters ${P.shape} are not [2, ${cpH}, ${cpW}]`);
  const op = tf.customGrad(((x: tf.Tensor) => ({
    value: tf.tensor3d(bsplineFieldArrays(x.dataSync(), s), [2, H, W]),
    gradFunc: (dy: tf.Tensor) => tf.tensor3d(bsplineFieldGradArrays(dy.dataSync(), s), [2, cpH, cpW]),
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(P) as tf.Tensor3D;
}
