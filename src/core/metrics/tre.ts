import { type Geometry, type Point, physicalToIndex } from '../image/geometry.js';
import { type Summary, summarize } from './stats.js';

/**
 * Target registration error (TRE).
 *
 * Fixed landmarks `f_i` and moving landmarks `m_i` are physical points (mm) in one-to-one
 * correspondence. Before registration the error is `|f_i − m_i|`; after, with the
 * transformation `T` (fixed → moving, `T(p) = p + u(p)`), it is `|T(f_i) − m_i|`.
 * Pixel errors are the same distances measured in continuous-index space of `geometry`
 * (so anisotropic spacing is honoured); they are absent when no geometry is known.
 */
export interface FrameTre {
  name: string;
  /** Per-landmark errors in mm / px; `afterMm` and `afterPx` are null when no transformation. */
  beforeMm: number[];
  beforePx: number[] | null;
  afterMm: number[] | null;
  afterPx: number[] | null;
}

/** The TRE figures of one sample, in the key names of `evaluate tre --json`. */
export interface TreStats {
  n: number;
  mean_mm: number;
  std_mm: number;
  median_mm: number;
  p90_mm: number;
  max_mm: number;
  mean_px: number | null;
  std_px: number | null;
  median_px: number | null;
  p90_px: number | null;
  max_px: number | null;
}

const dist = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);

function pxDistance(g: Geometry, a: Point, b: Point): number {
  return dist(physicalToIndex(g, a), physicalToIndex(g, b));
}

/**
 * TRE of one frame. `map` is the transformation (fixed → moving) or undefined for identity
 * only. Throws if the two landmark lists differ in length (callers name the files).
 */
export function frameTre(name: string, fixed: Point[], moving: Point[], geometry: Geometry | null, map?: (p: Point) => Point): FrameTre {
  if (fixed.length !== moving.length) throw new Error(`landmark counts differ: ${fixed.length} vs ${moving.length}`);
  const beforeMm = fixed.map((f, i) => dist(f, moving[i]));
  const beforePx = geometry ? fixed.map((f, i) => pxDistance(geometry, f, moving[i])) : null;
  let afterMm: number[] | null = null;
  let afterPx: number[] | null = null;
  if (map) {
    const mapped = fixed.map(map);
    afterMm = mapped.map((t, i) => dist(t, moving[i]));
    afterPx = geometry ? mapped.map((t, i) => pxDistance(geometry, t, moving[i])) : null;
  }
  return { name, beforeMm, beforePx, afterMm, afterPx };
}

function toStats(mm: number[], px: number[] | null): TreStats {
  const a: Summary = summarize(mm);
  const b: Summary | null = px ? summarize(px) : null;
  return {
    n: a.n,
    mean_mm: a.mean,
    std_mm: a.std,
    median_mm: a.median,
    p90_mm: a.p90,
    max_mm: a.max,
    mean_px: b ? b.mean : null,
    std_px: b ? b.std : null,
    median_px: b ? b.median : null,
    p90_px: b ? b.p90 : null,
    max_px: b ? b.max : null,
  };
}

export interface TreReport {
  before: TreStats;
  after: TreStats | null;
  frames: { name: string; before: TreStats; after: TreStats | null }[];
}

/** Per-frame and overall statistics (overall = all landmarks of all frames pooled). */
export function treReport(frames: FrameTre[]): TreReport {
  const all = (pick: (f: FrameTre) => number[] | null) => {
    const out: number[] = [];
    for (const f of frames) {
      const v = pick(f);
      if (!v) return null;
      out.push(...v);
    }
    return out;
  };
  const hasAfter = frames.length > 0 && frames.every((f) => f.afterMm !== null);
  return {
    before: toStats(
      all((f) => f.beforeMm) ?? [],
      all((f) => f.beforePx),
    ),
    after: hasAfter
      ? toStats(
          all((f) => f.afterMm) ?? [],
          all((f) => f.afterPx),
        )
      : null,
    frames: frames.map((f) => ({
      name: f.name,
      before: toStats(f.beforeMm, f.beforePx),
      after: f.afterMm ? toStats(f.afterMm, f.afterPx) : null,
    })),
  };
}
