/**
 * Dice overlap of label maps after registration: the moving frame's labels are warped onto the
 * fixed grid with nearest-neighbour sampling through T(p) = p + u(p) (u physical, mm), then
 * compared label by label with the fixed frame's labels. Label 0 is background.
 */
import { type DisplacementField, mappedIndex } from '../transformation/field.js';

/** Nearest-neighbour warp of a label map defined on the same grid as the field; outside → 0. */
export function warpLabelsNearest(labels: ArrayLike<number>, f: DisplacementField): Int32Array {
  const [W, H] = f.geometry.size;
  const out = new Int32Array(W * H);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const k = i * W + j;
      const [x, y] = mappedIndex(f, i, j);
      const jj = Math.round(x);
      const ii = Math.round(y);
      out[k] = jj >= 0 && ii >= 0 && jj < W && ii < H ? Math.round(labels[ii * W + jj]) : 0;
    }
  }
  return out;
}

/** Dice per label present in either map (label 0 excluded): 2|A∩B| / (|A| + |B|). */
export function dicePerLabel(a: ArrayLike<number>, b: ArrayLike<number>): Map<number, number> {
  const inter = new Map<number, number>();
  const na = new Map<number, number>();
  const nb = new Map<number, number>();
  for (let k = 0; k < a.length; k++) {
    const la = Math.round(a[k]);
    const lb = Math.round(b[k]);
    if (la) na.set(la, (na.get(la) ?? 0) + 1);
    if (lb) nb.set(lb, (nb.get(lb) ?? 0) + 1);
    if (la && la === lb) inter.set(la, (inter.get(la) ?? 0) + 1);
  }
  const out = new Map<number, number>();
  for (const l of [...new Set([...na.keys(), ...nb.keys()])].sort((x, y) => x - y))
    out.set(l, (2 * (inter.get(l) ?? 0)) / ((na.get(l) ?? 0) + (nb.get(l) ?? 0)));
  return out;
}

/**
 * The boundary of label `l` on a W×H grid: its pixels with a 4-neighbour of another label or
 * on the image edge, as `[col, row]` pairs (flat: col0, row0, col1, row1, …).
 */
export function labelBoundary(labels: ArrayLike<number>, W: number, H: number, l: number): Int32Array {
  const pts: number[] = [];
  const at = (i: number, j: number) => Math.round(labels[i * W + j]) === l;
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      if (!at(i, j)) continue;
      if (i === 0 || j === 0 || i === H - 1 || j === W - 1 || !at(i - 1, j) || !at(i + 1, j) || !at(i, j - 1) || !at(i, j + 1)) pts.push(j, i);
    }
  }
  return Int32Array.from(pts);
}

/** For each point of `a`, the distance (mm) to the nearest point of `b`; points as from `labelBoundary`. */
function directedDistances(a: Int32Array, b: Int32Array, spacing: [number, number]): Float64Array {
  const [sx, sy] = spacing;
  const out = new Float64Array(a.length / 2);
  for (let p = 0; p < a.length; p += 2) {
    let best = Infinity;
    for (let q = 0; q < b.length; q += 2) {
      const dx = (a[p] - b[q]) * sx;
      const dy = (a[p + 1] - b[q + 1]) * sy;
      const d = dx * dx + dy * dy;
      if (d < best) best = d;
    }
    out[p / 2] = Math.sqrt(best);
  }
  return out;
}

/** Percentile `q` (0..100, linear interpolation) of a sample; sorts it in place. */
function percentile(v: Float64Array, q: number): number {
  v.sort();
  const pos = ((v.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(v.length - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/**
 * The 95th-percentile Hausdorff distance (mm) between label `l` of two maps on one grid
 * (in-plane, orthonormal direction, so a pixel step is its spacing): the larger of the two
 * directed 95th percentiles of boundary-to-boundary distances (the robust Hausdorff of the
 * surface-distance package that Learn2Reg evaluates with). 0 when both are empty; Infinity when
 * one of them is.
 */
export function hd95(a: ArrayLike<number>, b: ArrayLike<number>, W: number, H: number, spacing: [number, number], l: number): number {
  const ba = labelBoundary(a, W, H, l);
  const bb = labelBoundary(b, W, H, l);
  if (ba.length === 0 && bb.length === 0) return 0;
  if (ba.length === 0 || bb.length === 0) return Infinity;
  return Math.max(percentile(directedDistances(ba, bb, spacing), 95), percentile(directedDistances(bb, ba, spacing), 95));
}

/** HD95 (mm) per label present in either map (label 0 excluded). */
export function hd95PerLabel(a: ArrayLike<number>, b: ArrayLike<number>, W: number, H: number, spacing: [number, number]): Map<number, number> {
  const labels = new Set<number>();
  for (let k = 0; k < a.length; k++) {
    const la = Math.round(a[k]);
    const lb = Math.round(b[k]);
    if (la) labels.add(la);
    if (lb) labels.add(lb);
  }
  return new Map([...labels].sort((x, y) => x - y).map((l) => [l, hd95(a, b, W, H, spacing, l)]));
}
