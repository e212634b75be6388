/**
 * Registers the frames of a series (or moving images of a pair) to a fixed frame with any
 * method, writing the result directory contract (io/result.ts). Shared by `baseline bspline`
 * and `register series`:
 *
 * - every output file is written atomically; `params/<frame>.json` is written last and marks the
 *   frame as done, so a killed run resumes where it stopped (finished frames are skipped unless
 *   `force`), and a resumed run must use the same settings (else a one-line error);
 * - `shard` = {index I, count N} takes the frames whose series index ≡ I (mod N), for array jobs;
 * - `summary.json` is rebuilt from the params files on disk at the end of every run, so the last
 *   shard to finish (or a final plain run, which skips everything) writes the complete summary.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { R2N2_VERSION } from '../version.js';
import { UserError } from '../errors.js';
import { sameGeometry, describeGeometry, type Geometry } from '../core/image/geometry.js';
import { fieldFromNormalised } from '../core/transformation/field.js';
import { warpSamples } from '../core/transformation/warp.js';
import { invertField } from '../core/transformation/inverse.js';
import { registrationQc, meanAbsDiff } from '../core/qc/qc.js';
import type { FixedFrameCriterion } from '../core/image/fixed-frame.js';
import { type Image2D, readImage2D, writeImage2D, writeGreyPng, writeField, imageStem } from '../io/image.js';
import { openSeries, resolveFrame } from '../io/series.js';
import { removeStaleTemps, withOutputLock, writeTextAtomic } from '../io/atomic.js';
import { type ResultFormat, type ResultFrame, type ResultSummary, SUMMARY_FILE, resultPaths, writeSummary } from '../io/result.js';
import { autoFixedFrame } from './fixed-frame.js';
import { FramePool } from './frame-pool.js';
import { MOTION_FILE, stackFiles, writeSeriesProducts } from './series-products.js';
import type { FrameRegistration, Registrar, RegistrarSpec } from './registrar.js';
export type { FrameRegistration, Registrar } from './registrar.js';
import type { BackendChoice } from '../backend/index.js';

export type JobInput =
  { kind: 'series'; series: string; fixedFrame?: string; criterion?: FixedFrameCriterion } | { kind: 'pair'; fixed: string; moving: string[] };

export interface RunOptions {
  out: string;
  force?: boolean;
  /** Frames whose index + offset ≡ index (mod count); offset (default 0) places the series in a run of several (app/run-many.ts). */
  shard?: { index: number; count: number; offset?: number };
  qc?: boolean;
  /** Also write inverse/<frame>.nii.gz, each field's inverse (core/transformation/inverse.ts), residual in the params and summary. */
  writeInverse?: boolean;
  /** Write warped.nii.gz and fields.nii.gz when the result is complete (default true; motion.csv always). */
  stack?: boolean;
  /** Image format of every field, warped frame, inverse, extra image and stack (default nii.gz; another is part of the settings key). */
  format?: ResultFormat;
  backend: string;
  /** Extra fields for summary.json (options, backend details). */
  summaryExtra?: Record<string, unknown>;
  onStart?: (info: { todo: number; skipped: number; units: number; fixedFrame: string; fixedFrameSource: string }) => void;
  /** Progress: `by` units done (a batch of k frames advances k per step). */
  onTick?: (info: string, by?: number) => void;
  onFrame?: (frame: FrameDone) => void;
  /** Aborted (e.g. on SIGINT): stop after the current batch's outputs are written; summary.json
   * then lists the frames left as `missing`, the report says `interrupted`, and the same run
   * continues with them (finished frames are skipped). */
  signal?: AbortSignal;
  /**
   * `--jobs`: register this many frames (or batches) at once, each in a worker thread that builds
   * the same registrar from `spec` on its own `backend` (app/frame-pool.ts). 1 (or absent): all
   * in this thread with `registrar`.
   */
  jobs?: { count: number; spec: RegistrarSpec; backend: BackendChoice };
}

export interface FrameDone {
  name: string;
  seconds: number;
  parameters: number;
  finalLoss?: number;
  /** Mean |F − M| and |F − M∘T| over the pixels T maps inside the moving frame (raw intensities). */
  madBefore: number;
  madAfter: number;
  /** The identity was written: the registration made the frame worse (FrameRegistration.fallback). */
  fallback?: 'identity';
}

export interface RunReport {
  out: string;
  method: string;
  fixedFrame: string;
  fixedFrameSource: 'auto' | 'option' | 'pair';
  registered: FrameDone[];
  skipped: string[];
  /** Frames of the input with no result yet (other shards, or failures). */
  missing: string[];
  complete: boolean;
  /** The abort reason (e.g. 'SIGINT') when `signal` stopped the run before its last frame, else null. */
  interrupted: string | null;
}

interface FrameSource {
  source: string;
  geometry: Geometry;
  fixedIndex: number;
  fixedFrameSource: RunReport['fixedFrameSource'];
  frames: { name: string; file: string; index: number }[];
  read(index: number): Promise<Image2D>;
}

export const settingsKey = (settings: Record<string, unknown>): string => createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 12);

async function openInput(input: JobInput): Promise<FrameSource> {
  if (input.kind === 'series') {
    const series = await openSeries(input.series, { checkAll: true });
    const names = series.frames.map((f) => f.name);
    let fixedIndex: number;
    let fixedFrameSource: RunReport['fixedFrameSource'];
    // frames read to choose the fixed frame, handed to the run once each (then dropped)
    const kept = new Map<number, Image2D>();
    if (input.fixedFrame === undefined || input.fixedFrame === 'auto') {
      fixedIndex = (await autoFixedFrame(series, input.criterion ?? 'image', undefined, kept)).index;
      fixedFrameSource = 'auto';
    } else {
      fixedIndex = resolveFrame(names, input.fixedFrame, series.source);
      fixedFrameSource = 'option';
    }
    return {
      source: series.source,
      geometry: series.geometry,
      fixedIndex,
      fixedFrameSource,
      frames: series.frames.map((f, index) => ({ ...f, index })),
      read: async (i) => {
        const img = kept.get(i);
        if (!img) return series.readFrame(i);
        kept.delete(i);
        return img;
      },
    };
  }
  const fixed = await readImage2D(input.fixed);
  const files = [input.fixed, ...input.moving];
  const fixedName = imageStem(input.fixed);
  const frames = files.map((file, index) => ({
    name: index > 0 && imageStem(file) === fixedName ? `${imageStem(file)}-moving` : imageStem(file),
    file,
    index,
  }));
  const seen = new Map<string, string>();
  for (const f of frames) {
    if (seen.has(f.name)) throw new UserError(`${seen.get(f.name)} and ${f.file} would both be written as "${f.name}"; rename one of them`);
    seen.set(f.name, f.file);
  }
  return {
    source: input.fixed,
    geometry: fixed.geometry,
    fixedIndex: 0,
    fixedFrameSource: 'pair',
    frames,
    async read(i) {
      if (i === 0) return fixed;
      const img = await readImage2D(files[i]);
      if (!sameGeometry(fixed.geometry, img.geometry)) {
        throw new UserError(
          `${files[i]} (${describeGeometry(img.geometry)}) is not on the grid of the fixed image ${input.fixed} (${describeGeometry(fixed.geometry)}); resample it onto the fixed grid first`,
        );
      }
      return img;
    },
  };
}

interface ParamsFile {
  format: 'r2n2-params';
  method: string;
  frame: string;
  fixedFrame: string;
  settingsKey: string;
  seconds: number;
  parameters: number;
  finalLoss?: number;
  fallback?: 'identity';
  /** With writeInverse: the inverse field's file and |T(T⁻¹(q)) − q| (px). */
  inverse?: { file: string; residualMeanPx: number; residualMaxPx: number };
  /** R2N2 `--uncertainty K`: the per-pixel displacement std image and its mean over pixels (mm). */
  uncertainty?: { file: string; meanStdMm: number };
}

/** Where a frame's inverse field is written (relative to the result directory). */
export const inversePath = (frame: string, format: ResultFormat = 'nii.gz') => `inverse/${frame}.${format}`;

async function readParams(file: string): Promise<ParamsFile | null> {
  try {
    const p = JSON.parse(await fs.readFile(file, 'utf8')) as ParamsFile;
    return p && p.format === 'r2n2-params' && typeof p.seconds === 'number' ? p : null;
  } catch {
    return null;
  }
}

const exists = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false,
  );

export async function runFrames(input: JobInput, registrar: Registrar, o: RunOptions): Promise<RunReport> {
  // a series' workers start while its frames are checked and the fixed frame is chosen
  let early = input.kind === 'series' && (o.jobs?.count ?? 1) > 1 && o.jobs ? new FramePool(o.jobs.count, o.jobs.spec, o.jobs.backend) : null;
  try {
    return await runWith(input, registrar, o, () => {
      const p = early;
      early = null;
      return p;
    });
  } finally {
    await early?.close();
  }
}

async function runWith(input: JobInput, registrar: Registrar, o: RunOptions, earlyPool: () => FramePool | null): Promise<RunReport> {
  const src = await openInput(input);
  const fixedName = src.frames[src.fixedIndex].name;
  // the default format leaves the key as it was (results written before --format resume)
  const key = settingsKey(o.format && o.format !== 'nii.gz' ? { ...registrar.settings, format: o.format } : registrar.settings);
  const out = o.out;
  const conflict = (what: string) => new UserError(`${out} already holds a result ${what}; pass --force to overwrite it, or choose another --out`);

  // an existing result must be the same job (method, fixed frame, settings) unless --force
  const summaryFile = path.join(out, SUMMARY_FILE);
  if (!o.force && (await exists(summaryFile))) {
    let prev: ResultSummary | null = null;
    try {
      prev = JSON.parse(await fs.readFile(summaryFile, 'utf8')) as ResultSummary;
    } catch {
      prev = null; // interrupted write: rebuilt below
    }
    if (prev) {
      if (prev.method !== registrar.method) throw conflict(`of another method (${prev.method})`);
      if (prev.fixedFrame !== fixedName) throw conflict(`for fixed frame "${prev.fixedFrame}" (this run: "${fixedName}")`);
      if (prev.settingsKey !== undefined && prev.settingsKey !== key) throw conflict('computed with other settings');
    }
  }
  // one run per output directory (one per shard with --shard: array jobs share it on purpose)
  return withOutputLock(
    out,
    () => runLocked(registrar, o, earlyPool, src, fixedName, key, out),
    o.shard ? `.r2n2-lock-shard-${o.shard.index}-of-${o.shard.count}` : '.r2n2-lock',
  );
}

async function runLocked(
  registrar: Registrar,
  o: RunOptions,
  earlyPool: () => FramePool | null,
  src: FrameSource,
  fixedName: string,
  key: string,
  out: string,
): Promise<RunReport> {
  const conflict = (what: string) => new UserError(`${out} already holds a result ${what}; pass --force to overwrite it, or choose another --out`);
  for (const sub of ['fields', 'warped', 'params', 'qc', 'inverse', 'uncertainty']) await removeStaleTemps(path.join(out, sub), 10 * 60_000);
  await removeStaleTemps(out, 10 * 60_000);

  const shard = o.shard ?? { index: 0, count: 1 };
  const offset = o.shard?.offset ?? 0;
  const mine = src.frames.filter((f) => f.index !== src.fixedIndex && (f.index + offset) % shard.count === shard.index);
  const todo: typeof mine = [];
  const skipped: string[] = [];
  for (const f of mine) {
    const rp = resultPaths(f.name, o.format);
    if (!o.force) {
      const p = await readParams(path.join(out, rp.params));
      if (p && (await exists(path.join(out, rp.field))) && (!o.writeInverse || (await exists(path.join(out, inversePath(f.name, o.format)))))) {
        if (p.settingsKey !== key || p.fixedFrame !== fixedName || p.method !== registrar.method)
          throw conflict(`whose frame ${f.name} was computed with other settings or another fixed frame`);
        skipped.push(f.name);
        continue;
      }
    }
    todo.push(f);
  }
  o.onStart?.({
    todo: todo.length,
    skipped: skipped.length,
    units: todo.length * registrar.unitsPerFrame,
    fixedFrame: fixedName,
    fixedFrameSource: src.fixedFrameSource,
  });

  const registered: FrameDone[] = [];
  let interrupted: string | null = null;
  const cache = new Map<string, { field: Float32Array; warped: Float32Array; moving: Float32Array; inside: ArrayLike<number> }>();
  const keep = src.frames.length * src.geometry.size[0] * src.geometry.size[1] <= 20e6;
  if (todo.length > 0) {
    const fixed = await src.read(src.fixedIndex);
    const [W, H] = fixed.geometry.size;
    const batch = registrar.registerBatch ? Math.max(1, registrar.batchSize ?? 1) : 1;
    const chunks: (typeof todo)[] = [];
    for (let k = 0; k < todo.length; k += batch) chunks.push(todo.slice(k, k + batch));
    const lanes = Math.max(1, Math.min(o.jobs?.count ?? 1, chunks.length));
    const started = earlyPool();
    await started?.shrink(lanes);
    const pool = lanes > 1 && o.jobs ? (started ?? new FramePool(lanes, o.jobs.spec, o.jobs.backend)) : (await started?.close(), null);
    const registerChunk = (lane: number, chunk: typeof todo, movings: Image2D[]): Promise<FrameRegistration[]> => {
      const tick = (info: string, units?: number) => o.onTick?.(`${chunk[0].name}${chunk.length > 1 ? '…' : ''} ${info}`, units ?? chunk.length);
      const names = chunk.map((f) => f.name);
      if (pool) return pool.register(lane, 0, fixed, movings, names, tick);
      return registrar.registerBatch && chunk.length > 1
        ? registrar.registerBatch(fixed, movings, tick, names)
        : registrar.register(fixed, movings[0], (info) => tick(info, 1), names[0]).then((r) => [r]);
    };
    // each lane takes the next chunk, registers it (in its worker with --jobs), writes its outputs
    let next = 0;
    let failed = false;
    const lane = async (k: number) => {
      while (next < chunks.length && !failed) {
        if (o.signal?.aborted) {
          interrupted = String(o.signal.reason);
          return;
        }
        const chunk = chunks[next++];
        const movings: Image2D[] = [];
        for (const f of chunk) movings.push(await src.read(f.index));
        const t0 = performance.now();
        const results = await registerChunk(k, chunk, movings).catch((err) => {
          failed = true; // the other lanes finish their chunk and take no more
          throw err;
        });
        const seconds = (performance.now() - t0) / 1000 / chunk.length;
        for (let j = 0; j < chunk.length; j++) registered.push(await writeFrame(chunk[j], movings[j], results[j], seconds, chunk.length));
      }
    };
    const writeFrame = async (f: (typeof todo)[number], moving: Image2D, r: FrameRegistration, seconds: number, batchLength: number): Promise<FrameDone> => {
      const warp = warpSamples(moving.data, H, W, r.field);
      const warped = warp.out as Float32Array;
      const rp = resultPaths(f.name, o.format);
      const physical = fieldFromNormalised(r.field, fixed.geometry);
      await writeField(path.join(out, rp.field), physical);
      // kept for the series products at the end (not read back), when the series is small enough
      if (keep) cache.set(f.name, { field: physical.data, warped, moving: moving.data, inside: warp.mask });
      for (const extra of r.images ?? [])
        await writeImage2D(path.join(out, extra.dir, `${f.name}.${o.format ?? 'nii.gz'}`), { geometry: fixed.geometry, data: extra.data });
      let inverse: ParamsFile['inverse'];
      if (o.writeInverse) {
        const inv = invertField(physical);
        await writeField(path.join(out, inversePath(f.name, o.format)), inv.field);
        inverse = { file: inversePath(f.name, o.format), residualMeanPx: inv.residualMeanPx, residualMaxPx: inv.residualMaxPx };
      }
      await writeImage2D(path.join(out, rp.warped), { geometry: fixed.geometry, data: warped });
      if (o.qc ?? true) {
        const m = registrationQc(fixed.data, moving.data, warped, H, W, warp.mask);
        await writeGreyPng(path.join(out, 'qc', `${f.name}.png`), m, [0, 255]);
        const extra = registrar.qcExtra?.(fixed, r);
        if (extra) await writeGreyPng(path.join(out, 'qc', `${f.name}-${extra.suffix}.png`), extra.mosaic, [0, 255]);
      }
      const params: ParamsFile & Record<string, unknown> = {
        format: 'r2n2-params',
        method: registrar.method,
        frame: f.name,
        fixedFrame: fixedName,
        moving: f.file,
        settingsKey: key,
        r2n2Version: R2N2_VERSION,
        backend: o.backend,
        seconds,
        batch: batchLength,
        parameters: r.parameters,
        finalLoss: r.finalLoss,
        ...(inverse ? { inverse } : {}),
        ...r.params,
        // a registrar's per-frame image named by the frame's file
        ...(r.params.uncertainty
          ? { uncertainty: { ...(r.params.uncertainty as { meanStdMm: number }), file: `uncertainty/${f.name}.${o.format ?? 'nii.gz'}` } }
          : {}),
      };
      await writeTextAtomic(path.join(out, rp.params), JSON.stringify(params) + '\n');
      const done: FrameDone = {
        name: f.name,
        seconds,
        parameters: r.parameters,
        finalLoss: r.finalLoss,
        madBefore: meanAbsDiff(fixed.data, moving.data, warp.mask),
        madAfter: meanAbsDiff(fixed.data, warped, warp.mask),
        ...(r.fallback ? { fallback: r.fallback } : {}),
      };
      o.onFrame?.(done);
      return done;
    };
    try {
      if (pool) await pool.ready();
      const settled = await Promise.allSettled(Array.from({ length: lanes }, (_, k) => lane(k)));
      const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
    } finally {
      await pool?.close();
    }
  }

  // summary.json from what is on disk (all shards); re-scanned once if another shard finished meanwhile
  const others = src.frames.filter((f) => f.index !== src.fixedIndex);
  const scan = async () => {
    const frames: ResultFrame[] = [];
    const missing: string[] = [];
    for (const f of others) {
      const rp = resultPaths(f.name, o.format);
      const p = await readParams(path.join(out, rp.params));
      if (p && p.settingsKey === key && (await exists(path.join(out, rp.field)))) {
        frames.push({
          name: f.name,
          field: rp.field,
          warped: rp.warped,
          params: rp.params,
          seconds: p.seconds,
          parameters: p.parameters,
          ...(p.fallback ? { fallback: p.fallback } : {}),
          ...(p.inverse && (await exists(path.join(out, p.inverse.file))) ? { inverse: p.inverse.file, inverseResidualMaxPx: p.inverse.residualMaxPx } : {}),
          ...(p.uncertainty ? { uncertainty: p.uncertainty.file, uncertaintyMm: p.uncertainty.meanStdMm } : {}),
        });
      } else missing.push(f.name);
    }
    return { frames, missing };
  };
  let { frames, missing } = await scan();
  const write = () =>
    writeSummary(out, {
      format: 'r2n2-result',
      version: 1,
      method: registrar.method,
      backend: o.backend,
      fixedFrame: fixedName,
      fixedFrameSource: src.fixedFrameSource,
      series: path.resolve(src.source),
      seriesFrames: src.frames.map((f) => f.name),
      created: new Date().toISOString(),
      settingsKey: key,
      settings: registrar.settings,
      complete: missing.length === 0,
      missing,
      fallbacks: frames.filter((f) => f.fallback).map((f) => f.name),
      ...o.summaryExtra,
      frames,
    });
  await write();
  const again = await scan();
  if (again.frames.length !== frames.length) {
    ({ frames, missing } = again);
    await write();
  }
  // the stacks and motion traces of a complete result (again only when something changed)
  const stack = o.stack ?? true;
  const stacks = stackFiles(o.format);
  const products = [MOTION_FILE, ...(stack ? [stacks.warped, stacks.fields] : [])];
  if (missing.length === 0 && !interrupted && (registered.length > 0 || !(await Promise.all(products.map((f) => exists(path.join(out, f))))).every(Boolean))) {
    const fixed = await src.read(src.fixedIndex);
    await writeSeriesProducts({
      out,
      frames: src.frames,
      fixedName,
      fixed,
      read: (i) => src.read(i),
      fallbacks: new Set(frames.filter((f) => f.fallback).map((f) => f.name)),
      stack,
      format: o.format,
      cache,
    });
  }
  return {
    out,
    method: registrar.method,
    fixedFrame: fixedName,
    fixedFrameSource: src.fixedFrameSource,
    registered,
    skipped,
    missing,
    complete: missing.length === 0,
    interrupted,
  };
}
