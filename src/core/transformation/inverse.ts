/**
 * The inverse of a displacement field (fixed-point iteration solved by Newton steps) (docs/method.md's convention: a fixed
 * point p maps to the moving frame at T(p) = p + u(p)).
 *
 * The inverse T⁻¹(q) = q + v(q) lives on the same grid (a series' frames share one grid) and
 * solves v(q) = −u(q + v(q)), pixel by pixel: Newton's method on g(v) = v + u(q + v) with u
 * bilinear (clamped at the border), which converges wherever the map does not fold (det ∇T > 0),
 * also where it expands and the plain fixed-point step v ← −u(q + v) would diverge. Where a
 * registration folds there is no inverse: the residual says how far off it is. Work is in index
 * units (pixels), so tolerances and residuals are in pixels.
 *
 * Residual at q: |T(T⁻¹(q)) − q| = |v(q) + u(q + v(q))| (px), over the pixels whose T⁻¹(q)
 * lies inside the grid (elsewhere u is extrapolated by its edge values, and an inverse is not
 * defined by the data).
 */
import type { DisplacementField } from './field.js';
import type { Geometry } from '../image/geometry.js';
import { sampleLinear } from '../image/resample.js';

export interface InverseOptions {
  /** Most iterations per pixel (default 200). */
  iterations?: number;
  /** A pixel stops when its v changed by at most this (px, default 1e-5). */
  tolerance?: number;
}

export interface InverseResult {
  field: DisplacementField;
  /** The most iterations any pixel took. */
  iterations: number;
  /** |T(T⁻¹(q)) − q| over the pixels mapped inside, px. */
  residualMeanPx: number;
  residualMaxPx: number;
  /** Pixels where T⁻¹(q) falls outside the grid (not counted in the residual). */
  outside: number;
}

/** Index displacement `[2, N]` (x then y, px) of a physical field (mm, pixel-interleaved). */
export function indexDisplacement(f: DisplacementField): Float64Array {
  const g = f.geometry;
  const N = g.size[0] * g.size[1];
  const [d0, d1, d2, d3] = g.direction;
  const det = d0 * d3 - d1 * d2;
  if (!(Math.abs(det) > 1e-12)) throw new Error("the field's direction matrix is singular");
  const out = new Float64Array(2 * N);
  for (let p = 0; p < N; p++) {
    const vx = f.data[2 * p];
    const vy = f.data[2 * p + 1];
    out[p] = (d3 * vx - d1 * vy) / det / g.spacing[0];
    out[N + p] = (-d2 * vx + d0 * vy) / det / g.spacing[1];
  }
  return out;
}

/** The physical field (mm, interleaved) of an index displacement `[2, N]` (px) on `g`. */
export function physicalDisplacement(a: ArrayLike<number>, g: Geometry): DisplacementField {
  const N = g.size[0] * g.size[1];
  const [d0, d1, d2, d3] = g.direction;
  const data = new Float32Array(2 * N);
  for (let p = 0; p < N; p++) {
    const x = a[p] * g.spacing[0];
    const y = a[N + p] * g.spacing[1];
    data[2 * p] = d0 * x + d1 * y;
    data[2 * p + 1] = d2 * x + d3 * y;
  }
  return { geometry: g, data };
}

/**
 * Bilinear u (both channels) at (x, y), clamped at the border, and its partial derivatives:
 * out = [ux, uy, ∂ux/∂x, ∂ux/∂y, ∂uy/∂x, ∂uy/∂y] (zero across a clamped axis).
 */
function sampleGrad(a: Float64Array, W: number, H: number, x: number, y: number, out: Float64Array): void {
  const cx = Math.min(Math.max(x, 0), W - 1);
  const cy = Math.min(Math.max(y, 0), H - 1);
  const x0 = Math.min(Math.floor(cx), Math.max(W - 2, 0));
  const y0 = Math.min(Math.floor(cy), Math.max(H - 2, 0));
  const x1 = Math.min(x0 + 1, W - 1);
  const y1 = Math.min(y0 + 1, H - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const inX = x > 0 && x < W - 1 ? 1 : 0;
  const inY = y > 0 && y < H - 1 ? 1 : 0;
  for (let c = 0; c < 2; c++) {
    const o = c * W * H;
    const p00 = a[o + y0 * W + x0];
    const p01 = a[o + y0 * W + x1];
    const p10 = a[o + y1 * W + x0];
    const p11 = a[o + y1 * W + x1];
    const top = p00 + (p01 - p00) * fx;
    const bot = p10 + (p11 - p10) * fx;
    out[c] = top + (bot - top) * fy;
    out[2 + 2 * c] = inX * ((1 - fy) * (p01 - p00) + fy * (p11 - p10));
    out[3 + 2 * c] = inY * (bot - top);
  }
}

/** T⁻¹ of `f` on its own grid, with its residual (see the module comment). */
export function invertField(f: DisplacementField, o: InverseOptions = {}): InverseResult {
  const [W, H] = f.geometry.size;
  const N = W * H;
  const maxIt = o.iterations ?? 200;
  const tol = o.tolerance ?? 1e-5;
  const u = indexDisplacement(f);
  const v = new Float64Array(2 * N);
  for (let p = 0; p < 2 * N; p++) v[p] = -u[p];
  // each pixel's iteration involves only its own v: solve g(v) = v + u(q + v) = 0 pixel by
  // pixel, by Newton's method on the bilinear u (converges where the map expands, where the plain
  // fixed-point step v ← −u(q + v) does not), the fixed-point step where I + ∇u is singular
  let it = 0;
  const s = new Float64Array(6);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const p = i * W + j;
      let k = 0;
      while (k < maxIt) {
        k++;
        sampleGrad(u, W, H, j + v[p], i + v[N + p], s);
        const gx = v[p] + s[0];
        const gy = v[N + p] + s[1];
        // I + ∇u: [[1 + ∂ux/∂x, ∂ux/∂y], [∂uy/∂x, 1 + ∂uy/∂y]]
        const a = 1 + s[2];
        const b = s[3];
        const c = s[4];
        const d = 1 + s[5];
        const det = a * d - b * c;
        let dx: number;
        let dy: number;
        if (det > 1e-3) {
          dx = (d * gx - b * gy) / det;
          dy = (-c * gx + a * gy) / det;
        } else {
          dx = gx;
          dy = gy;
        }
        // backtracking: halve the step until |g| decreases (at most 8 times)
        const g0 = Math.hypot(gx, gy);
        let t = 1;
        for (let h = 0; h < 8; h++) {
          sampleGrad(u, W, H, j + v[p] - t * dx, i + v[N + p] - t * dy, s);
          if (Math.hypot(v[p] - t * dx + s[0], v[N + p] - t * dy + s[1]) < g0) break;
          t /= 2;
        }
        v[p] -= t * dx;
        v[N + p] -= t * dy;
        if (Math.max(Math.abs(t * dx), Math.abs(t * dy)) <= tol) break;
      }
      if (k > it) it = k;
    }
  }
  const r = residual(u, v, W, H);
  return { field: physicalDisplacement(v, f.geometry), iterations: it, residualMeanPx: r.meanPx, residualMaxPx: r.maxPx, outside: r.outside };
}

/**
 * |T(S(q)) − q| = |b(q) + a(q + b(q))| (px) for index displacements a (of T) and b (of S), both
 * `[2, H, W]`, over the pixels whose q + b(q) lies inside the grid; a bilinear, clamped.
 */
function residual(a: Float64Array, b: Float64Array, W: number, H: number): { meanPx: number; maxPx: number; outside: number } {
  const N = W * H;
  const ax = a.subarray(0, N);
  const ay = a.subarray(N);
  let sum = 0;
  let max = 0;
  let n = 0;
  let outside = 0;
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const p = i * W + j;
      const x = j + b[p];
      const y = i + b[N + p];
      if (!(x >= 0 && y >= 0 && x <= W - 1 && y <= H - 1)) {
        outside++;
        continue;
      }
      const r = Math.hypot(b[p] + sampleLinear(ax, W, H, x, y), b[N + p] + sampleLinear(ay, W, H, x, y));
      sum += r;
      if (r > max) max = r;
      n++;
    }
  }
  return { meanPx: n ? sum / n : 0, maxPx: max, outside };
}

/**
 * |T(S(q)) − q| (px) of two fields on one grid, S(q) = q + s(q), T(p) = p + t(p), over the
 * pixels whose S(q) lies inside: forward ∘ inverse with (t, s) = (u, v), inverse ∘ forward
 * with (v, u). Returns the mean and max.
 */
export function compositionResidual(t: DisplacementField, s: DisplacementField): { meanPx: number; maxPx: number } {
  const [W, H] = t.geometry.size;
  const r = residual(indexDisplacement(t), indexDisplacement(s), W, H);
  return { meanPx: r.meanPx, maxPx: r.maxPx };
}
