/**
 * Motion traces of a registered series: per frame, how far the registration moves it (mean and
 * max |u| over the fixed grid, mm), how much that changes from the previous frame (mean over
 * pixels of |u_t − u_{t−1}|, mm: a jump flags a frame worth checking), and the image similarity
 * to the fixed frame before and after (normalised cross-correlation, over the pixels the field
 * maps inside the moving frame). Fields are physical (mm, pixel-interleaved, core/transformation/field.ts).
 */
import { stringify } from 'csv-stringify/sync';

export interface MotionRow {
  frame: string;
  /** Position in the series. */
  index: number;
  fixed: boolean;
  meanMm: number;
  maxMm: number;
  /** Mean |u_t − u_{t−1}| against the previous frame in series order (NaN for the first). */
  changeMm: number;
  nccBefore: number;
  nccAfter: number;
  fallback: boolean;
}

/** Mean and max of |u| (mm) over the pixels of a physical field. */
export function displacementStats(u: ArrayLike<number>): { meanMm: number; maxMm: number } {
  const n = u.length / 2;
  let s = 0;
  let m = 0;
  for (let p = 0; p < n; p++) {
    const d = Math.hypot(u[2 * p], u[2 * p + 1]);
    s += d;
    if (d > m) m = d;
  }
  return { meanMm: n ? s / n : 0, maxMm: m };
}

/** Mean over pixels of |a − b| (two physical fields, mm). */
export function fieldChange(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length / 2;
  let s = 0;
  for (let p = 0; p < n; p++) s += Math.hypot(a[2 * p] - b[2 * p], a[2 * p + 1] - b[2 * p + 1]);
  return n ? s / n : 0;
}

/** Normalised cross-correlation of two images over `mask` (all pixels when absent); NaN when flat. */
export function ncc(a: ArrayLike<number>, b: ArrayLike<number>, mask?: ArrayLike<number>): number {
  let n = 0;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    if (mask && !mask[i]) continue;
    sa += a[i];
    sb += b[i];
    n++;
  }
  if (n === 0) return NaN;
  const ma = sa / n;
  const mb = sb / n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    if (mask && !mask[i]) continue;
    const x = a[i] - ma;
    const y = b[i] - mb;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : NaN;
}

const fmt = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : '');

/** motion.csv: a header and one line per frame, series order (RFC 4180: a frame name with a comma or quote is quoted). */
export function motionCsv(rows: MotionRow[]): string {
  const head = ['frame', 'index', 'fixed', 'mean_displacement_mm', 'max_displacement_mm', 'change_from_previous_mm', 'ncc_before', 'ncc_after', 'fallback'];
  const lines = rows.map((r) => [
    r.frame,
    r.index,
    r.fixed ? 1 : 0,
    fmt(r.meanMm, 4),
    fmt(r.maxMm, 4),
    fmt(r.changeMm, 4),
    fmt(r.nccBefore, 4),
    fmt(r.nccAfter, 4),
    r.fallback ? 1 : 0,
  ]);
  return stringify([head, ...lines], { record_delimiter: 'unix' });
}
