/**
 * `evaluate compare`: several result directories side by side. Each result is evaluated with
 * `evaluate tre` (landmarks: --landmarks, else `<series>/../landmarks` as `r2n2 phantom` lays
 * series out) and `evaluate jacobian`; results are grouped by series, labelled by the series'
 * parent directories (e.g. patient/slice), and by method, like the paper's Table 1.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { FrameTre, TreStats } from '../core/metrics/tre.js';
import { summarize } from '../core/metrics/stats.js';
import { readSummary } from '../io/result.js';
import { evaluateTre } from './evaluate-tre.js';
import { evaluateJacobian } from './evaluate-jacobian.js';

export interface CompareEntry {
  result: string;
  method: string;
  series: string;
  /** Series label from the layout: the directories above the frames directory. */
  label: string;
  landmarks: string;
  frames: number;
  tre: { before: TreStats; after: TreStats };
  /** Per-frame TRE (per landmark distances), for pooling and reports. */
  treFrames: FrameTre[];
  folding: number;
  sdLogJ: number;
  secondsPerFrame: number;
  parameters: number;
}

export interface CompareMethodRow {
  method: string;
  /** Mean TRE (mm) per series label, in `labels` order (null where the method has no result). */
  perSeries: (number | null)[];
  /** Over all landmarks of all its results. */
  meanMm: number;
  stdMm: number;
  medianMm: number;
  p90Mm: number;
  maxMm: number;
  meanPx: number | null;
  folding: number;
  sdLogJ: number;
  secondsPerFrame: number;
  parameters: number;
  /** Ratios to the first method (mean TRE, seconds, parameters). */
  ratio: { tre: number | null; seconds: number | null; parameters: number | null };
}

export interface Comparison {
  /** Every landmark's TRE after registration (mm), per method; `identity` = before. */
  treValues: Record<string, number[]>;
  labels: string[];
  identity: (number | null)[];
  rows: CompareMethodRow[];
  entries: CompareEntry[];
}

function seriesLabel(series: string): string {
  const parts = path.resolve(series).split(path.sep).filter(Boolean);
  const tail = parts[parts.length - 1] === 'frames' ? parts.slice(-3, -1) : parts.slice(-2);
  return tail.join('/');
}

export async function compareResults(results: string[], landmarks?: string, onResult?: (r: string) => void): Promise<Comparison> {
  if (results.length === 0) throw new UserError('name at least one result directory');
  const entries: CompareEntry[] = [];
  for (const r of results) {
    const s = await readSummary(r);
    const series = s.series ? path.resolve(r, s.series) : '';
    let lm = landmarks;
    if (!lm) {
      const guess = series ? path.join(path.dirname(series), 'landmarks') : '';
      if (!guess || !existsSync(guess))
        throw new UserError(`no landmarks for ${r}: pass --landmarks DIR (looked for ${guess || 'the series in its summary.json'})`);
      lm = guess;
    }
    const tre = await evaluateTre({ landmarks: lm, result: r });
    if (!tre.report.after) throw new UserError(`${r}: no fields to evaluate`);
    const jac = await evaluateJacobian(r);
    const perFrame = (k: 'seconds' | 'parameters') => s.frames.reduce((a, f) => a + (f[k] ?? 0), 0) / Math.max(1, s.frames.length);
    entries.push({
      result: r,
      method: s.method,
      series,
      label: seriesLabel(series || r),
      landmarks: lm,
      frames: s.frames.length,
      tre: { before: tre.report.before, after: tre.report.after },
      treFrames: tre.frames,
      folding: jac.overall.folding,
      sdLogJ: jac.overall.sdLogJ,
      secondsPerFrame: perFrame('seconds'),
      parameters: perFrame('parameters'),
    });
    onResult?.(r);
  }
  // two results of one method on one series: tell them apart by their directory names
  const key = (e: CompareEntry) => `${e.method}\u0000${e.label}`;
  const count = new Map<string, number>();
  for (const e of entries) count.set(key(e), (count.get(key(e)) ?? 0) + 1);
  const ambiguous = new Set(entries.filter((e) => (count.get(key(e)) ?? 0) > 1).map((e) => e.method));
  for (const e of entries) if (ambiguous.has(e.method)) e.method = `${e.method} (${path.basename(path.resolve(e.result))})`;
  // every landmark's TRE after, pooled per method; before, once per series
  const pool = (m: string, pick: (f: FrameTre) => number[] | null) =>
    entries.filter((e) => e.method === m).flatMap((e) => e.treFrames.flatMap((f) => pick(f) ?? []));
  const firstOfSeries = new Map<string, CompareEntry>();
  for (const e of entries) if (!firstOfSeries.has(e.series || e.result)) firstOfSeries.set(e.series || e.result, e);
  const beforeValues = [...firstOfSeries.values()].flatMap((e) => e.treFrames.flatMap((f) => f.beforeMm));
  const labels = [...new Set(entries.map((e) => e.label))];
  const methods = [...new Set(entries.map((e) => e.method))];
  const rows: CompareMethodRow[] = methods.map((m) => {
    const es = entries.filter((e) => e.method === m);
    const s = summarize(pool(m, (f) => f.afterMm));
    const px = pool(m, (f) => f.afterPx);
    const wmean = (k: (e: CompareEntry) => number) => es.reduce((a, e) => a + k(e) * e.frames, 0) / es.reduce((a, e) => a + e.frames, 0);
    return {
      method: m,
      perSeries: labels.map((l) => {
        const e = es.filter((x) => x.label === l);
        return e.length ? e.reduce((a, x) => a + x.tre.after.mean_mm, 0) / e.length : null;
      }),
      meanMm: s.mean,
      stdMm: s.std,
      medianMm: s.median,
      p90Mm: s.p90,
      maxMm: s.max,
      meanPx: px.length ? summarize(px).mean : null,
      folding: wmean((e) => e.folding),
      sdLogJ: wmean((e) => e.sdLogJ),
      secondsPerFrame: wmean((e) => e.secondsPerFrame),
      parameters: wmean((e) => e.parameters),
      ratio: { tre: 1, seconds: 1, parameters: 1 },
    };
  });
  const first = rows[0];
  const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? a / b : null);
  for (const r of rows)
    r.ratio = {
      tre: ratio(r.meanMm, first.meanMm),
      seconds: ratio(r.secondsPerFrame, first.secondsPerFrame),
      parameters: ratio(r.parameters, first.parameters),
    };
  const identity = labels.map((l) => entries.find((e) => e.label === l)?.tre.before.mean_mm ?? null);
  const treValues: Record<string, number[]> = { identity: beforeValues };
  for (const m of methods) treValues[m] = pool(m, (f) => f.afterMm);
  return { treValues, labels, identity, rows, entries };
}
