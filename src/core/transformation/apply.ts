/**
 * Applying a registration's transformation to other data (the `r2n2 apply` core, transformix's
 * job): a field u on the fixed grid maps a fixed point p to the moving frame at T(p) = p + u(p)
 * (mm). An image on the moving frame's side (same frame, any grid in the same physical space:
 * another contrast, a label map, a different resolution) is pulled onto the fixed grid by
 * sampling it at T(p); points go the other way round (core/transformation/inverse.ts for moving → fixed).
 *
 * Sampling is at the continuous index of T(p) in the image's own geometry. A position counts as
 * inside when it lies within the image's pixel centres (tolerance EDGE_TOL px, as the warped
 * frames of a registration); outside it is `fill` (default 0), label 0.
 */
import { type DisplacementField, mapPoint } from './field.js';
import { type Geometry, type Point, indexToPhysical, physicalToIndex } from '../image/geometry.js';
import { EDGE_TOL } from './warp.js';
import { sampleCubic } from '../phantom/simulate.js';
import { sampleLinear } from '../image/resample.js';

import { type Interpolation, type LabelInterpolation } from './interpolations.js';
export { type Interpolation, type LabelInterpolation, INTERPOLATIONS, LABEL_INTERPOLATIONS } from './interpolations.js';

/** Continuous index `[col, row]` in `target` of T(p) for every pixel p of the field's grid: `[2, N]` (x then y). */
export function mappedIndices(field: DisplacementField, target: Geometry): Float64Array {
  const g = field.geometry;
  const [W, H] = g.size;
  const N = W * H;
  const out = new Float64Array(2 * N);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const k = i * W + j;
      const p = indexToPhysical(g, [j, i]);
      const q = physicalToIndex(target, [p[0] + field.data[2 * k], p[1] + field.data[2 * k + 1]]);
      out[k] = q[0];
      out[N + k] = q[1];
    }
  }
  return out;
}

const insideAt = (x: number, y: number, W: number, H: number) => x >= -EDGE_TOL && y >= -EDGE_TOL && x <= W - 1 + EDGE_TOL && y <= H - 1 + EDGE_TOL;

/**
 * `image` (row-major, on `source`) sampled at T(p) for every pixel p of the field's grid:
 * nearest, bilinear, or Keys cubic (a = −0.5, interpolating; may overshoot at edges as any
 * cubic does). Returns the image on the field's grid and the inside mask.
 */
export function resampleThroughField(
  image: ArrayLike<number>,
  source: Geometry,
  field: DisplacementField,
  interp: Interpolation,
  fill = 0,
): { data: Float32Array; inside: Uint8Array } {
  const [W, H] = source.size;
  if (image.length !== W * H) throw new Error(`image holds ${image.length} values for a ${W}×${H} grid`);
  const idx = mappedIndices(field, source);
  const N = field.geometry.size[0] * field.geometry.size[1];
  const data = new Float32Array(N);
  const inside = new Uint8Array(N);
  for (let k = 0; k < N; k++) {
    const x = idx[k];
    const y = idx[N + k];
    if (!insideAt(x, y, W, H)) {
      data[k] = fill;
      continue;
    }
    inside[k] = 1;
    if (interp === 'nearest') data[k] = image[Math.min(H - 1, Math.max(0, Math.round(y))) * W + Math.min(W - 1, Math.max(0, Math.round(x)))];
    else if (interp === 'linear') data[k] = sampleLinear(image, W, H, x, y);
    else data[k] = sampleCubic(image, W, H, x, y);
  }
  return { data, inside };
}

/**
 * A label map (integer labels, 0 = background) sampled at T(p): `nearest`, or `linear`: each
 * label's indicator interpolated bilinearly and the largest taken per pixel (smoother edges,
 * no label invented between two others); ties go to the smaller label. Outside → 0.
 */
export function resampleLabels(labels: ArrayLike<number>, source: Geometry, field: DisplacementField, mode: LabelInterpolation): Int32Array {
  const [W, H] = source.size;
  if (labels.length !== W * H) throw new Error(`label map holds ${labels.length} values for a ${W}×${H} grid`);
  const N = field.geometry.size[0] * field.geometry.size[1];
  const out = new Int32Array(N);
  const rounded = Int32Array.from(labels, (v) => Math.round(v));
  if (mode === 'nearest') {
    const r = resampleThroughField(rounded, source, field, 'nearest');
    for (let k = 0; k < N; k++) out[k] = r.data[k];
    return out;
  }
  const idx = mappedIndices(field, source);
  const values = [...new Set(rounded)].sort((a, b) => a - b);
  const best = new Float32Array(N).fill(-1);
  const indicator = new Float32Array(W * H);
  for (const l of values) {
    for (let p = 0; p < W * H; p++) indicator[p] = rounded[p] === l ? 1 : 0;
    for (let k = 0; k < N; k++) {
      const x = idx[k];
      const y = idx[N + k];
      if (!insideAt(x, y, W, H)) continue;
      const w = sampleLinear(indicator, W, H, x, y);
      if (w > best[k]) {
        best[k] = w;
        out[k] = l;
      }
    }
  }
  return out;
}

/** Fixed-space points (mm) mapped into the moving frame: T(p) = p + u(p). */
export function mapPointsForward(points: Point[], field: DisplacementField): Point[] {
  return points.map((p) => mapPoint(field, p));
}

/** 1 where T(p) falls inside `target` (within its pixel centres, EDGE_TOL px), per pixel of the field's grid. */
export function insideMask(field: DisplacementField, target: Geometry = field.geometry): Uint8Array {
  const idx = mappedIndices(field, target);
  const [W, H] = target.size;
  const N = field.geometry.size[0] * field.geometry.size[1];
  const out = new Uint8Array(N);
  for (let k = 0; k < N; k++) if (insideAt(idx[k], idx[N + k], W, H)) out[k] = 1;
  return out;
}
