/** Pictures of images and fields (grey 0..255 arrays, row-major) for QC mosaics and reports. */
import { type DisplacementField, mappedIndex } from '../transformation/field.js';

export interface Mosaic {
  data: Float32Array;
  H: number;
  W: number;
}

/** The `[lo, hi]` percentiles (default 1st and 99th) of `values`, one sort. */
export function percentileWindow(values: ArrayLike<number>, lo = 1, hi = 99): [number, number] {
  const s = Float32Array.from(values).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.round((q / 100) * (s.length - 1))))];
  return [at(lo), at(hi)];
}

/** Values mapped linearly from `window` to 0..255 (clipped). */
export function toGrey(img: ArrayLike<number>, window: [number, number]): Float32Array {
  const [lo, hi] = window;
  const span = hi > lo ? hi - lo : 1;
  return Float32Array.from(img, (v) => Math.min(255, Math.max(0, ((v - lo) / span) * 255)));
}

/**
 * The deformed grid: lines every `step` pixels of the fixed grid drawn at p + magnify·u(p) over
 * the dimmed fixed image (magnify > 1 makes sub-pixel motion visible; say so in captions).
 */
export function deformationGrid(fixed: Float32Array, f: DisplacementField, step = 8, magnify = 1): Mosaic {
  const [W, H] = f.geometry.size;
  let lo = Infinity,
    hi = -Infinity;
  for (const v of fixed) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const span = hi > lo ? hi - lo : 1;
  const data = Float32Array.from(fixed, (v) => ((v - lo) / span) * 110);
  const put = (x: number, y: number) => {
    const i = Math.round(y),
      j = Math.round(x);
    if (i >= 0 && j >= 0 && i < H && j < W) data[i * W + j] = 255;
  };
  const draw = (i: number, j: number) => {
    const [x, y] = mappedIndex(f, i, j);
    put(j + magnify * (x - j), i + magnify * (y - i));
  };
  for (let i = 0; i < H; i += step) for (let j = 0; j < W; j++) draw(i, j);
  for (let j = 0; j < W; j += step) for (let i = 0; i < H; i++) draw(i, j);
  return { data, H, W };
}

/** det J as grey: `window` [lo, hi] (default [0, 2]: 1 = mid grey, folding black). */
export function determinantPicture(det: Float32Array, H: number, W: number, window: [number, number] = [0, 2]): Mosaic {
  const [lo, hi] = window;
  return { data: Float32Array.from(det, (d) => Math.min(255, Math.max(0, ((d - lo) / (hi - lo)) * 255))), H, W };
}

/** Grey picture of an image windowed to `window` (default its 1st–99th percentile). */
export function greyPicture(img: Float32Array, H: number, W: number, window: [number, number] = percentileWindow(img)): Mosaic {
  return { data: toGrey(img, window), H, W };
}

/** `a` and `b` in alternating square cells (about `cells` across the shorter side, ≥ 4 px). */
export function checkerboard(a: Float32Array, b: Float32Array, H: number, W: number, cells = 8): Float32Array {
  const cell = Math.max(4, Math.round(Math.min(H, W) / cells));
  const out = new Float32Array(H * W);
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) out[i * W + j] = (Math.floor(i / cell) + Math.floor(j / cell)) % 2 ? b[i * W + j] : a[i * W + j];
  return out;
}
