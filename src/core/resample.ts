/**
 * Plain-JS resampling on the normalised ("align corners") grid of METHOD.md, backend-free:
 * Gaussian blur, image pyramid levels and field up-sampling. Arrays are row-major `[H, W]`, or
 * `[C, H, W]` channel-first for several channels.
 */

/** 1-D Gaussian kernel of std `sigma`, length `2·ceil(2σ)+1` (METHOD.md's pyramid), sum 1. */
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
 * Bilinear resampling of `C` channels `[C, h, w]` onto `[C, H, W]` with corners aligned: output
 * pixel (i, j) samples input (i·(h−1)/(H−1), j·(w−1)/(W−1)). Normalised-unit fields need no
 * rescaling (that is the point of the convention).
 */
export function resampleAligned(data: ArrayLike<number>, C: number, h: number, w: number, H: number, W: number): Float32Array {
  const out = new Float32Array(C * H * W);
  const ry = H > 1 ? (h - 1) / (H - 1) : 0;
  const rx = W > 1 ? (w - 1) / (W - 1) : 0;
  for (let i = 0; i < H; i++) {
    const y = i * ry;
    const y0 = Math.min(Math.floor(y), Math.max(h - 2, 0));
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = y - y0;
    for (let j = 0; j < W; j++) {
      const x = j * rx;
      const x0 = Math.min(Math.floor(x), Math.max(w - 2, 0));
      const x1 = Math.min(x0 + 1, w - 1);
      const fx = x - x0;
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

/** Size of a pyramid level at down-sampling `factor`: `ceil(n/factor)` per axis (AirLab's stride). */
export const levelSize = (n: number, factor: number): number => Math.max(2, Math.ceil(n / factor));

/**
 * One pyramid level of `[H, W]`: Gaussian blur with σ = factor/2 (METHOD.md), then resampled
 * with aligned corners to `levelSize`, so the level covers the same normalised square.
 */
export function pyramidLevel(data: ArrayLike<number>, H: number, W: number, factor: number): { data: Float32Array; H: number; W: number } {
  if (factor <= 1) return { data: Float32Array.from(data), H, W };
  const h = levelSize(H, factor);
  const w = levelSize(W, factor);
  return { data: resampleAligned(gaussianBlur(data, H, W, factor / 2), 1, H, W, h, w), H: h, W: w };
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
  const out = new Float32Array(H * W);
  const clamp = (v: number, hi: number) => (v < 0 ? 0 : v > hi ? hi : v);
  for (let i = 0; i < H; i++) {
    const y = clamp(i - dy, H - 1);
    const y0 = Math.min(Math.floor(y), H - 2 < 0 ? 0 : H - 2);
    const fy = H > 1 ? y - y0 : 0;
    const y1 = Math.min(y0 + 1, H - 1);
    for (let j = 0; j < W; j++) {
      const x = clamp(j - dx, W - 1);
      const x0 = Math.min(Math.floor(x), W - 2 < 0 ? 0 : W - 2);
      const fx = W > 1 ? x - x0 : 0;
      const x1 = Math.min(x0 + 1, W - 1);
      const top = data[y0 * W + x0] * (1 - fx) + data[y0 * W + x1] * fx;
      const bottom = data[y1 * W + x0] * (1 - fx) + data[y1 * W + x1] * fx;
      out[i * W + j] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}
