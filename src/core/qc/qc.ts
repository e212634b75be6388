/**
 * Quality-control mosaics (plain arrays, 0..255 grey values ready for an 8-bit PNG).
 *
 * Registration QC, 3×2 tiles of the fixed grid:
 *   fixed            | moving              | warped moving
 *   |fixed − moving| | |fixed − warped|    | checkerboard fixed / warped
 * Images share one window (the fixed frame's 1st–99th percentile); differences are shown on
 * [0, half that window] (0 where the warp left the moving frame), so "darker after" means "better".
 */
import { type Mosaic, checkerboard, percentileWindow, toGrey } from './render.js';
import { gaussianCoefficients } from '../transformation/gaussian.js';

export type { Mosaic };

/** Tiles `[H, W]` images (row-major) into a grid of `cols` columns with a `gap`-pixel border. */
export function tile(images: Float32Array[], H: number, W: number, cols: number, gap = 2, background = 0): Mosaic {
  const rows = Math.ceil(images.length / cols);
  const MW = cols * W + (cols + 1) * gap;
  const MH = rows * H + (rows + 1) * gap;
  const data = new Float32Array(MW * MH).fill(background);
  images.forEach((img, k) => {
    const r = Math.floor(k / cols);
    const c = k % cols;
    const y0 = gap + r * (H + gap);
    const x0 = gap + c * (W + gap);
    for (let i = 0; i < H; i++) data.set(img.subarray(i * W, (i + 1) * W), (y0 + i) * MW + x0);
  });
  return { data, H: MH, W: MW };
}

/** `inside` (optional, 1/0): where the warp sampled inside the moving frame; differences are 0 elsewhere. */
export function registrationQc(
  fixed: Float32Array,
  moving: Float32Array,
  warped: Float32Array,
  H: number,
  W: number,
  inside?: ArrayLike<number>,
  checker = 8,
): Mosaic {
  const window = percentileWindow(fixed);
  const half: [number, number] = [0, (window[1] > window[0] ? window[1] - window[0] : 1) / 2];
  const grey = (x: Float32Array) => toGrey(x, window);
  const diff = (a: Float32Array, b: Float32Array) =>
    toGrey(
      Float32Array.from(a, (v, i) => (inside && !inside[i] ? 0 : Math.abs(v - b[i]))),
      half,
    );
  return tile(
    [grey(fixed), grey(moving), grey(warped), diff(fixed, moving), diff(fixed, warped), grey(checkerboard(fixed, warped, H, W, checker))],
    H,
    W,
    3,
    2,
    128,
  );
}

/** Mean absolute difference of two images over the pixels where `mask` is 1 (all when absent). */
export function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, mask?: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (mask && !mask[i]) continue;
    s += Math.abs(a[i] - b[i]);
    n++;
  }
  return n ? s / n : NaN;
}

/**
 * The Gaussian sequence of an R2N2 registration over the fixed frame (the paper's Figure 7):
 * the frame darkened to grey levels 0–150, each step's 1σ ellipse (the level set
 * exp(−Q) = e^(−1/2), whatever the rotation convention) drawn with a brightness that grows with
 * its weight |w| relative to the sequence's largest, and its weight vector as a line from the
 * centre, lengthened `arrowScale`× so sub-pixel steps stay visible.
 * `steps`: rows of 7 numbers (cx, cy, σx, σy, wx, wy, φ) in normalised units.
 */
export function gaussianOverlay(fixed: Float32Array, H: number, W: number, steps: number[][], arrowScale = 10): Mosaic {
  const data = toGrey(fixed, percentileWindow(fixed)).map((v) => v * (150 / 255));
  const toPx = (x: number, y: number): [number, number] => [((x + 1) * (W - 1)) / 2, ((y + 1) * (H - 1)) / 2];
  const put = (x: number, y: number, g: number) => {
    const i = Math.round(y);
    const j = Math.round(x);
    if (i >= 0 && j >= 0 && i < H && j < W) data[i * W + j] = Math.max(data[i * W + j], g);
  };
  const wmax = Math.max(1e-12, ...steps.map((s) => Math.hypot(s[4], s[5])));
  for (const [cx, cy, sx, sy, wx, wy, phi] of steps) {
    const g = 170 + 85 * (Math.hypot(wx, wy) / wmax);
    const [a, b, c] = gaussianCoefficients(sx, sy, phi);
    const N = 180;
    for (let k = 0; k < N; k++) {
      const t = (2 * Math.PI * k) / N;
      const vx = Math.cos(t);
      const vy = Math.sin(t);
      const r = Math.sqrt(0.5 / (a * vx * vx + 2 * b * vx * vy + c * vy * vy));
      const [px, py] = toPx(cx + r * vx, cy + r * vy);
      put(px, py, g);
    }
    const [x0, y0] = toPx(cx, cy);
    const [x1, y1] = toPx(cx + arrowScale * wx, cy + arrowScale * wy);
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let k = 0; k <= n; k++) put(x0 + ((x1 - x0) * k) / n, y0 + ((y1 - y0) * k) / n, 255);
  }
  return { data, H, W };
}
