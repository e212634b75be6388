import { type Geometry, type Point, indexToPhysical, physicalToIndex } from '../image/geometry.js';
import { type Flip, type Matrix2, affineImage, flipImage } from '../image/resample.js';

/**
 * A dense 2D displacement field on a grid, in physical units (mm).
 *
 * `data` holds `2·W·H` numbers, pixel-interleaved in ITK's vector-image order:
 * `data[2·(row·W + col) + 0]` = x component, `+ 1` = y component (physical axes, not index
 * axes). The transformation is `T(p) = p + u(p)`: a point p of the fixed image maps to the
 * moving image at `T(p)` (the ITK / transformix `-def all` convention).
 */
export interface DisplacementField {
  geometry: Geometry;
  data: Float32Array;
}

/**
 * Bilinear interpolation of a 2-component pixel-interleaved grid at a continuous index
 * `[col, row]`. Indices outside the grid are clamped to the border (nearest edge value).
 */
export function sampleVectorBilinear(data: ArrayLike<number>, width: number, height: number, idx: Point): Point {
  const x = Math.min(Math.max(idx[0], 0), width - 1);
  const y = Math.min(Math.max(idx[1], 0), height - 1);
  const x0 = Math.min(Math.floor(x), Math.max(width - 2, 0));
  const y0 = Math.min(Math.floor(y), Math.max(height - 2, 0));
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const fx = x - x0;
  const fy = y - y0;
  const out: Point = [0, 0];
  for (let c = 0; c < 2; c++) {
    const a = data[2 * (y0 * width + x0) + c];
    const b = data[2 * (y0 * width + x1) + c];
    const d = data[2 * (y1 * width + x0) + c];
    const e = data[2 * (y1 * width + x1) + c];
    const top = a + (b - a) * fx;
    const bot = d + (e - d) * fx;
    out[c] = top + (bot - top) * fy;
  }
  return out;
}

/** `T(p) = p + u(p)` for a physical point p (mm), u interpolated bilinearly (clamped at the border). */
export function mapPoint(field: DisplacementField, p: Point): Point {
  const g = field.geometry;
  const u = sampleVectorBilinear(field.data, g.size[0], g.size[1], physicalToIndex(g, p));
  return [p[0] + u[0], p[1] + u[1]];
}

/** Whether a physical point lies inside the grid's pixel centres (inclusive). */
export function insideGrid(g: Geometry, p: Point): boolean {
  const [i, j] = physicalToIndex(g, p);
  return i >= -0.5 && j >= -0.5 && i <= g.size[0] - 0.5 && j <= g.size[1] - 0.5;
}

/**
 * A field `u` `[2, H, W]` in normalised units (docs/method.md: channel 0 = x/column, one pixel =
 * 2/(n−1)) as a physical displacement field on `geometry`: index displacement
 * `(u_x·(W−1)/2, u_y·(H−1)/2)` pixels, times spacing, rotated by the direction matrix.
 */
export function fieldFromNormalised(u: ArrayLike<number>, geometry: Geometry): DisplacementField {
  const [W, H] = geometry.size;
  const N = W * H;
  if (u.length !== 2 * N) throw new Error(`field holds ${u.length} values, expected 2×${H}×${W}`);
  const [sx, sy] = geometry.spacing;
  const [d00, d01, d10, d11] = geometry.direction;
  const cx = ((W - 1) / 2) * sx;
  const cy = ((H - 1) / 2) * sy;
  const data = new Float32Array(2 * N);
  for (let p = 0; p < N; p++) {
    const a = u[p] * cx;
    const b = u[N + p] * cy;
    data[2 * p] = d00 * a + d01 * b;
    data[2 * p + 1] = d10 * a + d11 * b;
  }
  return { geometry, data };
}

/**
 * The inverse of `fieldFromNormalised`: a physical field (mm, pixel-interleaved) as `[2, H, W]`
 * in normalised units of its own grid (geometry.ts `physicalToIndex` without the origin, then
 * divided by (n−1)/2 per axis). Throws on a singular direction matrix or a grid of one pixel.
 */
export function fieldToNormalised(field: DisplacementField): Float32Array {
  const g = field.geometry;
  const [W, H] = g.size;
  const N = W * H;
  if (field.data.length !== 2 * N) throw new Error(`field holds ${field.data.length} values, expected 2×${H}×${W}`);
  if (W < 2 || H < 2) throw new Error(`a field of ${W}×${H} pixels has no normalised units (needs ≥ 2 per axis)`);
  const [d00, d01, d10, d11] = g.direction;
  if (!(Math.abs(d00 * d11 - d01 * d10) > 1e-12)) throw new Error("the field's direction matrix is singular");
  // a displacement is a point relative to the origin: physicalToIndex of it, origin zero, is its index displacement
  const g0: Geometry = { ...g, origin: [0, 0] };
  const [cx, cy] = [(W - 1) / 2, (H - 1) / 2];
  const out = new Float32Array(2 * N);
  for (let p = 0; p < N; p++) {
    const [i, j] = physicalToIndex(g0, [field.data[2 * p], field.data[2 * p + 1]]);
    out[p] = i / cx;
    out[N + p] = j / cy;
  }
  return out;
}

/**
 * A normalised field `[2, H, W]` of a mirrored pair: if both images are mirrored along `flip`'s
 * axes (resample.ts `flipImage`), the field that registers them is u'(q) = M·u(M·q): the
 * components are mirrored spatially like the images and a mirrored axis's component changes sign.
 */
export function flipNormalisedField(u: ArrayLike<number>, H: number, W: number, flip: Flip): Float32Array {
  const N = H * W;
  if (u.length !== 2 * N) throw new Error(`field holds ${u.length} values, expected 2×${H}×${W}`);
  const fx = flip === 'x' || flip === 'xy';
  const fy = flip === 'y' || flip === 'xy';
  const a = Float32Array.from(u);
  const ux = flipImage(a.subarray(0, N), H, W, flip);
  const uy = flipImage(a.subarray(N), H, W, flip);
  const out = new Float32Array(2 * N);
  for (let p = 0; p < N; p++) {
    out[p] = fx ? -ux[p] : ux[p];
    out[N + p] = fy ? -uy[p] : uy[p];
  }
  return out;
}

/**
 * A normalised field `[2, H, W]` of a pair seen through the linear map `A` (resample.ts
 * `affineImage`: F'(q) = F(A·q), M'(q) = M(A·q)): if T(p) = p + u(p) registers M to F, then
 * T'(q) = A⁻¹·T(A·q) registers M' to F', so u'(q) = A⁻¹·u(A·q). `A` must be invertible.
 */
export function affineNormalisedField(u: ArrayLike<number>, H: number, W: number, A: Matrix2): Float32Array {
  const N = H * W;
  if (u.length !== 2 * N) throw new Error(`field holds ${u.length} values, expected 2×${H}×${W}`);
  const [a, b, c, d] = A;
  const det = a * d - b * c;
  if (!(Math.abs(det) > 1e-12)) throw new Error(`the matrix [${A.join(', ')}] is not invertible`);
  const s = affineImage(u, 2, H, W, A);
  const out = new Float32Array(2 * N);
  for (let p = 0; p < N; p++) {
    const x = s[p];
    const y = s[N + p];
    out[p] = (d * x - b * y) / det;
    out[N + p] = (-c * x + a * y) / det;
  }
  return out;
}

/** Continuous index `[col, row]` of T(p) = p + u(p) for the pixel (row i, col j) of the field's grid. */
export function mappedIndex(f: DisplacementField, i: number, j: number): Point {
  const k = i * f.geometry.size[0] + j;
  const p = indexToPhysical(f.geometry, [j, i]);
  return physicalToIndex(f.geometry, [p[0] + f.data[2 * k], p[1] + f.data[2 * k + 1]]);
}
