/** Pictures of fields for reports (grey 0..255 arrays, row-major). */
import type { DisplacementField } from './field.js';
import type { Mosaic } from './qc.js';

/** Field displacement at pixel k in index units (columns, rows): S⁻¹·Dᵀ·u. */
function indexDisplacement(f: DisplacementField, k: number): [number, number] {
  const [sx, sy] = f.geometry.spacing;
  const [d00, d01, d10, d11] = f.geometry.direction;
  const ux = f.data[2 * k];
  const uy = f.data[2 * k + 1];
  return [(d00 * ux + d10 * uy) / sx, (d01 * ux + d11 * uy) / sy];
}

/**
 * The deformed grid: lines every `step` pixels of the fixed grid drawn at p + magnify·u(p) over
 * the dimmed fixed image (magnify > 1 makes sub-pixel motion visible; say so in captions).
 */
export function deformationGrid(fixed: Float32Array, f: DisplacementField, step = 8, magnify = 1): Mosaic {
  const [W, H] = f.geometry.size;
  let lo = Infinity, hi = -Infinity;
  for (const v of fixed) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi > lo ? hi - lo : 1;
  const data = Float32Array.from(fixed, (v) => ((v - lo) / span) * 110);
  const put = (x: number, y: number) => {
    const i = Math.round(y), j = Math.round(x);
    if (i >= 0 && j >= 0 && i < H && j < W) data[i * W + j] = 255;
  };
  const draw = (i: number, j: number) => {
    const [dx, dy] = indexDisplacement(f, i * W + j);
    put(j + magnify * dx, i + magnify * dy);
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

/** Grey picture of an image windowed to its 1st–99th percentile; differences on [0, span/2]. */
export function greyPicture(img: Float32Array, H: number, W: number, window?: [number, number]): Mosaic {
  let lo = window?.[0];
  let hi = window?.[1];
  if (lo === undefined || hi === undefined) {
    const s = Float32Array.from(img).sort();
    lo = s[Math.floor(0.01 * (s.length - 1))];
    hi = s[Math.ceil(0.99 * (s.length - 1))];
  }
  const span = hi > lo ? hi - lo : 1;
  return { data: Float32Array.from(img, (v) => Math.min(255, Math.max(0, ((v - (lo as number)) / span) * 255))), H, W };
}

export function checkerboard(a: Float32Array, b: Float32Array, H: number, W: number, cells = 8): Float32Array {
  const cell = Math.max(4, Math.round(Math.min(H, W) / cells));
  const out = new Float32Array(H * W);
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) out[i * W + j] = (Math.floor(i / cell) + Math.floor(j / cell)) % 2 ? b[i * W + j] : a[i * W + j];
  return out;
}
