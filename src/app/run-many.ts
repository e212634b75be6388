/**
 * Several series in one run (`baseline bspline S1 S2 …`, `register series S1 S2 …`): each series
 * through `runFrames` into `OUT/<name>/`, one after the other, with one progress and one table.
 *
 * - Names: each series' path relative to the deepest directory the series share, without the last
 *   components they all end with, `/` → `_` (`…/SCD0000101/slice_06/frames` and
 *   `…/SCD0000201/slice_06/frames` → `SCD0000101`, `SCD0000201`; `…/101/slice_06/frames` and
 *   `…/101/slice_07/frames` → `slice_06`, `slice_07`); a file's extension is dropped; a repeated
 *   name gets `_2`, `_3`.
 * - `--shard I/N` splits all (series, frame) work of the run: frame j of series k is this shard's
 *   when (o_k + j) ≡ I (mod N), o_k the frames of the series before it, so N array jobs share the
 *   run's frames evenly however long each series is; a plain run afterwards completes every summary.
 * - Every series is opened (headers read, every frame checked) before any work; a series that
 *   fails while it runs is reported and the others go on; the caller exits non-zero after the table.
 * - Resumable as each series is: a series already complete is skipped frame by frame.
 */
import path from 'node:path';
import { UserError } from '../errors.js';
import { openSeries } from '../io/series.js';
import { type FixedFrameCriterion } from '../core/image/fixed-frame.js';
import type { Registrar } from './registrar.js';
import { type RunOptions, type RunReport, runFrames } from './run-frames.js';

export interface ManyItem {
  /** The output subdirectory's name. */
  name: string;
  series: string;
  out: string;
  /** Frames in the series (headers). */
  frames: number;
  /** The shard offset: frames of the series before this one. */
  offset: number;
}

export interface ManyResult {
  name: string;
  series: string;
  out: string;
  report?: RunReport;
  /** The one-line error of a series that failed (the others went on). */
  error?: string;
}

/** Unique output names of the series paths (module comment). */
export function seriesOutNames(paths: string[]): string[] {
  const abs = paths.map((p) => path.resolve(p));
  const parts = abs.map((p) => p.split(path.sep).filter(Boolean));
  // the deepest directory every series lies under (a series is never its own ancestor here)
  let common = 0;
  while (parts.every((p) => common < p.length - 1 && p[common] === parts[0][common])) common++;
  // a last component every series shares (…/frames) names none of them
  let tail = 0;
  while (parts.every((p) => p.length - tail - 1 > common && p[p.length - 1 - tail] === parts[0][parts[0].length - 1 - tail])) tail++;
  const names = parts.map((p) => {
    const rel = p.slice(common, p.length - tail);
    rel[rel.length - 1] = rel[rel.length - 1].replace(/\.(nii\.gz|nii|nrrd|mha|mhd|dcm)$/i, '');
    return rel.join('_');
  });
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n}_${k}`;
  });
}

/** The items of a run: every series opened and checked (a bad one stops the run before any work), names and shard offsets. */
export async function planMany(series: string[], out: string): Promise<ManyItem[]> {
  const seen = new Map<string, string>();
  for (const s of series) {
    const key = path.resolve(s);
    if (seen.has(key)) throw new UserError(`series ${s} is named twice; give each series once`);
    seen.set(key, s);
  }
  const names = seriesOutNames(series);
  const items: ManyItem[] = [];
  let offset = 0;
  for (const [k, s] of series.entries()) {
    const opened = await openSeries(s, { checkAll: true });
    items.push({ name: names[k], series: s, out: path.join(out, names[k]), frames: opened.frames.length, offset });
    offset += opened.frames.length;
  }
  return items;
}

export interface ManyOptions extends Omit<RunOptions, 'out' | 'shard' | 'onStart'> {
  shard?: { index: number; count: number };
  fixedFrame?: string;
  criterion?: FixedFrameCriterion;
  /** A series starts: its item and what runFrames found to do. */
  onSeriesStart?: (item: ManyItem, info: { todo: number; skipped: number }) => void;
  /** A series ended (report) or failed (error). */
  onSeriesEnd?: (result: ManyResult) => void;
}

/** Runs the items one after the other (module comment); stops early when `signal` aborts. */
export async function runMany(items: ManyItem[], registrar: Registrar, o: ManyOptions): Promise<ManyResult[]> {
  const results: ManyResult[] = [];
  const { onSeriesStart, onSeriesEnd, fixedFrame, criterion, shard, ...run } = o;
  for (const item of items) {
    if (o.signal?.aborted) break;
    let result: ManyResult;
    try {
      const report = await runFrames({ kind: 'series', series: item.series, fixedFrame, criterion }, registrar, {
        ...run,
        out: item.out,
        shard: shard ? { ...shard, offset: item.offset } : undefined,
        onStart: (s) => onSeriesStart?.(item, s),
      });
      result = { name: item.name, series: item.series, out: item.out, report };
    } catch (err) {
      result = { name: item.name, series: item.series, out: item.out, error: (err as Error).message.split('\n')[0] };
    }
    results.push(result);
    onSeriesEnd?.(result);
  }
  return results;
}
