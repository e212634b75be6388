/**
 * Plain-JS resampling on the normalised ("align corners") grid of docs/method.md, backend-free:
 * Gaussian blur, image pyramid levels and field up-sampling. Arrays are row-major `[H, W]`, or
 * `[C, H, W]` channel-first for several channels.
 */

/** 1-D Gaussian kernel of std `sigma`, length `2·ceil(2σ)+1` (docs/method.md's pyramid), sum 1. */
export function gaussianKernel1d(sigma: number): Float64Array {
  const r = Math.ceil(2 * sigma);
  const k = new Float64Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= s;
  return k;
}

/**
 * Separable Gaussian blur of `[H, W]`; the border is handled by renormalising the kernel over
 * the pixels that exist (no dark rim from zero padding).
 */
export function gaussianBlur(data: ArrayLike<number>, H: number, W: number, sigma: number): Float32Array {
  if (!(sigma > 0)) return Float32Array.from(data);
  const k = gaussianKernel1d(sigma);
  const r = (k.length - 1) / 2;
  const tmp = new Float32Array(H * W);
  const out = new Float32Array(H * W);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      let s = 0;
      let w = 0;
      for (let t = -r; t <= r; t++) {
        const jj = j + t;
        if (jj < 0 || jj >= W) continue;
        s += k[t + r] * data[i * W + jj];
        w += k[t + r];
      }
      tmp[i * W + j] = s / w;
    }
  }
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      let s = 0;
      let w = 0;
      for (let t = -r; t <= r; t++) {
        const ii = i + t;
        if (ii < 0 || ii >= H) continue;
        s += k[t + r] * tmp[ii * W + j];
        w += k[t + r];
      }
      out[i * W + j] = s / w;
    }
  }
  return out;
}

/**
 * Bilinear sampling of `C` channels `[C, h, w]` on a separable grid: output (c, i, j) samples
 * channel c at row `ys[i]`, column `xs[j]` (continuous indices within [0, h−1] and [0, w−1]).
 * Output `[C, ys.length, xs.length]`. The column taps are computed once, not once per row.
 */
function sampleSeparable(data: ArrayLike<number>, C: number, h: number, w: number, ys: ArrayLike<number>, xs: ArrayLike<number>): Float32Array {
  const H = ys.length;
  const W = xs.length;
  const out = new Float32Array(C * H * W);
  const x0s = new Int32Array(W);
  const x1s = new Int32Array(W);
  const fxs = new Float64Array(W);
  for (let j = 0; j < W; j++) {
    x0s[j] = Math.min(Math.floor(xs[j]), Math.max(w - 2, 0));
    x1s[j] = Math.min(x0s[j] + 1, w - 1);
    fxs[j] = xs[j] - x0s[j];
  }
  for (let i = 0; i < H; i++) {
    const y = ys[i];
    const y0 = Math.min(Math.floor(y), Math.max(h - 2, 0));
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = y - y0;
    for (let j = 0; j < W; j++) {
      const x0 = x0s[j];
      const x1 = x1s[j];
      const fx = fxs[j];
      for (let c = 0; c < C; c++) {
        const o = c * h * w;
        const a = data[o + y0 * w + x0];
        const b = data[o + y0 * w + x1];
        const d = data[o + y1 * w + x0];
        const e = data[o + y1 * w + x1];
        const top = a + (b - a) * fx;
        const bot = d + (e - d) * fx;
        out[c * H * W + i * W + j] = top + (bot - top) * fy;
      }
    }
  }
  return out;
}

/**
 * Bilinear resampling of `C` channels `[C, h, w]` onto `[C, H, W]` with corners aligned: output
 * pixel (i, j) samples input (i·(h−1)/(H−1), j·(w−1)/(W−1)). Normalised-unit fields need no
 * rescaling (that is the point of the convention).
 */
export function resampleAligned(data: ArrayLike<number>, C: number, h: number, w: number, H: number, W: number): Float32Array {
  const ry = H > 1 ? (h - 1) / (H - 1) : 0;
  const rx = W > 1 ? (w - 1) / (W - 1) : 0;
  return sampleSeparable(
    data,
    C,
    h,
    w,
    Float64Array.from({ length: H }, (_, i) => i * ry),
    Float64Array.from({ length: W }, (_, j) => j * rx),
  );
}

/** Size of a pyramid level at down-sampling `factor`: `ceil(n/factor)` per axis (AirLab's stride). */
export const levelSize = (n: number, factor: number): number => Math.max(2, Math.ceil(n / factor));

/**
 * One pyramid level of `[H, W]`: Gaussian blur with σ = factor/2 (docs/method.md), then resampled
 * with aligned corners to `levelSize`, so the level covers the same normalised square.
 */
export function pyramidLevel(data: ArrayLike<number>, H: number, W: number, factor: number): { data: Float32Array; H: number; W: number } {
  if (factor <= 1) return { data: Float32Array.from(data), H, W };
  const h = levelSize(H, factor);
  const w = levelSize(W, factor);
  return { data: resampleAligned(gaussianBlur(data, H, W, factor / 2), 1, H, W, h, w), H: h, W: w };
}

/**
 * The down-sampling of the finest pyramid level for a `[W, H]` image: the smallest power of two
 * `f` with `max(W, H) / f ≤ maxSize` (0 or undefined: no limit, 1). Large images then register
 * on fewer pixels, and the field is up-sampled to full resolution (normalised units, aligned
 * corners, so no rescaling).
 */
export function finestFactor(W: number, H: number, maxSize?: number): number {
  if (!maxSize || maxSize <= 0) return 1;
  let f = 1;
  while (Math.max(W, H) / f > maxSize) f *= 2;
  return f;
}

/**
 * The finest level of `[H, W]` at down-sampling `factor` with a Gaussian blur of `sigma` pixels
 * of the full image first (at least factor/2 when down-sampled, as a pyramid level); `sigma` 0
 * at factor 1 is the image itself.
 */
export function finestLevel(data: ArrayLike<number>, H: number, W: number, factor: number, sigma: number): { data: Float32Array; H: number; W: number } {
  const s = factor > 1 ? Math.max(sigma, factor / 2) : sigma;
  const blurred = s > 0 ? gaussianBlur(data, H, W, s) : Float32Array.from(data);
  if (factor <= 1) return { data: blurred, H, W };
  const h = levelSize(H, factor);
  const w = levelSize(W, factor);
  return { data: resampleAligned(blurred, 1, H, W, h, w), H: h, W: w };
}

/** Mirror axes of an image: none, left–right (x), up–down (y), or both (xy, a 180° rotation). */
export type Flip = 'none' | 'x' | 'y' | 'xy';

/** The H×W image `data` (row-major) mirrored along `flip`'s axes; a new array (a copy for 'none'). */
export function flipImage(data: ArrayLike<number>, H: number, W: number, flip: Flip): Float32Array {
  const out = new Float32Array(H * W);
  const fx = flip === 'x' || flip === 'xy';
  const fy = flip === 'y' || flip === 'xy';
  for (let i = 0; i < H; i++) {
    const si = fy ? H - 1 - i : i;
    for (let j = 0; j < W; j++) out[i * W + j] = data[si * W + (fx ? W - 1 - j : j)];
  }
  return out;
}

/**
 * The image translated by (dx, dy) pixels, sub-pixel allowed: out(i, j) = in(i − dy, j − dx),
 * bilinear, coordinates clamped to the image (edges replicated). [H·W] row-major in and out.
 * Integer shifts copy values exactly.
 */
export function shiftImage(data: ArrayLike<number>, H: number, W: number, dx: number, dy: number): Float32Array {
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  return sampleSeparable(
    data,
    1,
    H,
    W,
    Float64Array.from({ length: H }, (_, i) => clamp(i - dy, H - 1)),
    Float64Array.from({ length: W }, (_, j) => clamp(j - dx, W - 1)),
  );
}

/** A 2×2 matrix `[a, b, c, d]` = [[a, b], [c, d]] acting on normalised coordinates (x, y) ∈ [−1, 1]². */
export type Matrix2 = [number, number, number, number];

/**
 * The image seen through the linear map `A` about its centre: out(q) = in(A·q), q in normalised
 * coordinates with corners aligned (x = 2j/(W−1) − 1, y = 2i/(H−1) − 1), so the same `A` acts
 * alike on the same image at any size. Bilinear, coordinates clamped to the image (edges
 * replicated). The identity copies values exactly; a 90° rotation of a square image permutes them.
 * `[C, H, W]` row-major in and out.
 */
export function affineImage(data: ArrayLike<number>, C: number, H: number, W: number, A: Matrix2): Float32Array {
  const [a, b, c, d] = A;
  const out = new Float32Array(C * H * W);
  const N = H * W;
  const channels = Array.from({ length: C }, (_, k) =>
    data instanceof Float32Array ? data.subarray(k * N, (k + 1) * N) : Float32Array.from({ length: N }, (_, p) => data[k * N + p]),
  );
  const sx = W > 1 ? 2 / (W - 1) : 0;
  const sy = H > 1 ? 2 / (H - 1) : 0;
  for (let i = 0; i < H; i++) {
    const y = i * sy - 1;
    for (let j = 0; j < W; j++) {
      const x = j * sx - 1;
      // A·q back to pixel indices; round-off of an exact index (63.00000000001) must not leave it
      const px = W > 1 ? ((a * x + b * y + 1) * (W - 1)) / 2 : 0;
      const py = H > 1 ? ((c * x + d * y + 1) * (H - 1)) / 2 : 0;
      const qx = Math.abs(px - Math.round(px)) < 1e-9 ? Math.round(px) : px;
      const qy = Math.abs(py - Math.round(py)) < 1e-9 ? Math.round(py) : py;
      for (let k = 0; k < C; k++) out[k * N + i * W + j] = sampleLinear(channels[k], W, H, qx, qy);
    }
  }
  return out;
}

/** Bilinear value of `data` (W×H) at (x, y), clamped to the border. */
export function sampleLinear(data: ArrayLike<number>, W: number, H: number, x: number, y: number): number {
  const cx = Math.min(Math.max(x, 0), W - 1);
  const cy = Math.min(Math.max(y, 0), H - 1);
  const x0 = Math.min(Math.floor(cx), Math.max(W - 2, 0));
  const y0 = Math.min(Math.floor(cy), Math.max(H - 2, 0));
  const x1 = Math.min(x0 + 1, W - 1);
  const y1 = Math.min(y0 + 1, H - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const top = data[y0 * W + x0] * (1 - fx) + data[y0 * W + x1] * fx;
  const bot = data[y1 * W + x0] * (1 - fx) + data[y1 * W + x1] * fx;
  return top * (1 - fy) + bot * fy;
}
