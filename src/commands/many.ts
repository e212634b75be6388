/**
 * Several series in one command (`baseline bspline S1 S2 …`, `register series S1 S2 …`): one
 * progress bar over every frame of the run, one table at the end (stdout, or JSON with --json),
 * and `OUT/series.csv` with the same rows. Thin over app/run-many.ts.
 */
import path from 'node:path';
import { UserError, signalExitCode } from '../errors.js';
import type { Registrar } from '../app/registrar.js';
import type { ManyOptions, ManyResult } from '../app/run-many.js';
import { type Context, fmt, printJson } from './common.js';

export interface ManyCommand {
  label: string;
  series: string[];
  out: string;
  registrar: Registrar;
  run: Omit<ManyOptions, 'onSeriesStart' | 'onSeriesEnd' | 'onFrame' | 'onTick'>;
  ctx: Context;
  json: boolean;
  /** After the runs (the output directory exists), before the table: e.g. OUT/settings.json. */
  afterRun?: () => Promise<void>;
}

/** One row of the table and of series.csv. */
function row(r: ManyResult) {
  const rep = r.report;
  const n = rep?.registered.length ?? 0;
  const mean = (k: 'seconds' | 'madBefore' | 'madAfter') => (rep && n ? rep.registered.reduce((a, f) => a + f[k], 0) / n : NaN);
  const status = r.error ? 'failed' : rep?.interrupted ? 'interrupted' : rep?.complete ? 'complete' : 'incomplete';
  return {
    series: r.name,
    status,
    registered: n,
    skipped: rep?.skipped.length ?? 0,
    missing: rep?.missing.length ?? 0,
    fallbacks: rep?.registered.filter((f) => f.fallback).length ?? 0,
    seconds_per_frame: mean('seconds'),
    mad_before: mean('madBefore'),
    mad_after: mean('madAfter'),
    out: r.out,
    error: r.error ?? '',
  };
}

/** Plans, runs and reports several series (module comment); throws after the table when a series failed or the run was interrupted. */
export async function runManyCommand(c: ManyCommand): Promise<void> {
  const { planMany, runMany } = await import('../app/run-many.js');
  const { writeTextAtomic } = await import('../io/atomic.js');
  const { stringify } = await import('csv-stringify/sync');
  const items = await planMany(c.series, c.out);
  const shard = c.run.shard;
  // the frames this run registers, estimated from the headers (the fixed frames made exact as each series starts)
  const mine = (frames: number, offset: number) => {
    if (!shard) return frames - 1;
    // j in [0, frames) with (offset + j) ≡ index (mod count)
    const first = (((shard.index - offset) % shard.count) + shard.count) % shard.count;
    return first < frames ? Math.floor((frames - 1 - first) / shard.count) + 1 : 0;
  };
  let total = items.reduce((a, it) => a + mine(it.frames, it.offset), 0);
  const bar = c.ctx.progress(`${c.label}, ${items.length} series`, Math.max(1, total));
  c.ctx.log.info({ series: items.map((it) => it.name), frames: total }, `${c.label}: ${items.length} series`);
  let results: ManyResult[];
  try {
    results = await runMany(items, c.registrar, {
      ...c.run,
      onSeriesStart: (item, s) => {
        total += s.todo + s.skipped - mine(item.frames, item.offset);
        bar.setTotal(Math.max(1, total));
        bar.tick(s.skipped, `${item.name}: ${s.skipped} done before`);
        c.ctx.log.info({ series: item.name, ...s }, 'series start');
      },
      onFrame: (f) => {
        bar.tick(1, f.name);
        c.ctx.log.info(f, 'frame registered');
        if (f.fallback) c.ctx.log.warn({ frame: f.name }, 'the registration made this frame worse than none: the identity was written');
      },
      onSeriesEnd: (r) => {
        if (r.error) c.ctx.log.error({ series: r.name, error: r.error }, 'series failed');
      },
    });
  } finally {
    bar.stop();
  }
  await c.afterRun?.();
  const rows = results.map(row);
  await writeTextAtomic(path.join(c.out, 'series.csv'), stringify(rows, { header: true, cast: { number: (v) => (Number.isFinite(v) ? String(v) : '') } }));
  const notRun = items.slice(results.length).map((it) => it.name);
  if (c.json) printJson({ series: rows, notRun });
  else {
    const w = Math.max(6, ...rows.map((r) => r.series.length)) + 2;
    const lines = [
      `${'series'.padEnd(w)}${'status'.padEnd(13)}${'registered'.padStart(11)}${'kept'.padStart(6)}${'left'.padStart(6)}${'s/frame'.padStart(9)}${'|F−M| before'.padStart(14)}${'after'.padStart(9)}`,
      ...rows.map(
        (r) =>
          `${r.series.padEnd(w)}${r.status.padEnd(13)}${String(r.registered).padStart(11)}${String(r.skipped).padStart(6)}${String(r.missing).padStart(6)}${fmt(r.seconds_per_frame, 2).padStart(9)}${fmt(r.mad_before, 4).padStart(14)}${fmt(r.mad_after, 4).padStart(9)}${r.error ? `  ${r.error}` : ''}`,
      ),
      `${results.length} series in ${c.out}${notRun.length ? ` (${notRun.length} not started: interrupted)` : ''}; the table: ${path.join(c.out, 'series.csv')}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
  const failed = rows.filter((r) => r.status === 'failed');
  const stopped = results.find((r) => r.report?.interrupted)?.report?.interrupted;
  if (stopped)
    throw new UserError(`interrupted (${stopped}); the results so far are kept, and the same command continues with what is left`, signalExitCode(stopped));
  if (failed.length)
    throw new UserError(`${failed.length} of ${items.length} series failed (${failed.map((r) => r.series).join(', ')}); the others ran (see the table)`);
}
