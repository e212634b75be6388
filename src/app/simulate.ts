/**
 * `simulate` as a function: one real image (or one frame of a series) becomes a 2D+t series
 * with known motion (core/phantom/simulate.ts), written like a phantom series:
 *
 *   OUT/frames/frame_XXX.nrrd      the frames, on the image's grid (and 3D placement)
 *   OUT/landmarks/frame_XXX.csv    exact landmarks, x,y in mm
 *   OUT/truth/                     the true fields as a result directory (method "ground-truth")
 *   OUT/simulate.json              source, options, motion parameters, waveform, residuals
 *
 * The series is built in a temporary sibling directory and renamed into place when complete: an
 * interrupted run leaves nothing half-written, and a rerun with the same options keeps it.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { makeSimulatedSeries, type SimulateOptions } from '../core/phantom/simulate.js';
import { chooseFixedFrame } from '../core/image/fixed-frame.js';
import { readImage2D, writeImage2D, writeField, type Image2D } from '../io/image.js';
import { openSeries, resolveFrame } from '../io/series.js';
import { formatLandmarkCsv } from '../io/landmarks.js';
import { writeDirAtomic, writeTextAtomic } from '../io/atomic.js';
import { resultPaths, writeSummary, type ResultFrame } from '../io/result.js';
import { frameName } from './phantom.js';

export interface SimulateJob extends SimulateOptions {
  /** A 2D image file, or a series (directory or 3D file) with `frame`. */
  image: string;
  /** Frame of a series: name or 0-based index (default 0). */
  frame?: string;
  out: string;
  force?: boolean;
  onFrame?: (t: number) => void;
}

export interface SimulateInfo {
  out: string;
  skipped: boolean;
  frames: number;
  size: [number, number];
  spacingMm: [number, number];
  motion: string;
  amplitudeMm: number;
  landmarks: number;
  fixedFrame: string;
  maxInverseResidualMm: number;
  /** Mean and max landmark displacement from the fixed frame over the frames, mm. */
  meanMotionMm: number;
  maxMotionMm: number;
}

/** Larger than this (mm) and the inverse map did not converge: an error in the motion model. */
const MAX_RESIDUAL_MM = 1e-3;

async function readSource(image: string, frame: string | undefined): Promise<{ img: Image2D; label: string }> {
  let st;
  try {
    st = await fs.stat(image);
  } catch {
    throw new UserError(`${image} does not exist; give a 2D image file or a series (directory or 3D file) with --frame`);
  }
  const isSeries = st.isDirectory() || frame !== undefined;
  if (!isSeries) {
    try {
      return { img: await readImage2D(image), label: image };
    } catch (err) {
      // a 3D file is a series: take its frame 0 unless told otherwise
      if (!(err instanceof UserError) || !/is 3D/.test(err.message)) throw err;
    }
  }
  const series = await openSeries(image);
  const names = series.frames.map((f) => f.name);
  const k = resolveFrame(names, frame ?? 0, image);
  return { img: await series.readFrame(k), label: `${image} frame ${names[k]}` };
}

function sameJob(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function simulate(job: SimulateJob): Promise<SimulateInfo> {
  const { img, label } = await readSource(job.image, job.frame);
  const opts: SimulateOptions = {
    motion: job.motion,
    frames: job.frames,
    seed: job.seed,
    amplitudeMm: job.amplitudeMm,
    cycles: job.cycles,
    noise: job.noise,
    drift: job.drift,
    landmarks: job.landmarks,
    centre: job.centre,
    edgeY: job.edgeY,
    halfWidthMm: job.halfWidthMm,
    radiusMm: job.radiusMm,
    twistDeg: job.twistDeg,
  };
  const s = makeSimulatedSeries(img, opts);
  const request = { source: path.resolve(job.image), frame: job.frame ?? null, options: s.options };
  const meta = path.join(job.out, 'simulate.json');

  const existing = await fs.readFile(meta, 'utf8').then(
    (t) => JSON.parse(t) as Record<string, unknown>,
    () => null,
  );
  if (existing && !job.force) {
    if (sameJob(existing.request as Record<string, unknown>, request)) {
      for (let t = 0; t < job.frames; t++) job.onFrame?.(t);
      return { ...(existing.info as SimulateInfo), out: job.out, skipped: true };
    }
    throw new UserError(`${job.out} holds a simulated series of other settings (${meta}); choose another --out or pass --force to replace it`);
  }
  if (!existing && !job.force) {
    const entries = await fs.readdir(job.out).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      if (err.code === 'ENOTDIR') throw new UserError(`--out ${job.out} is a file; give a directory`);
      throw err;
    });
    if (entries.filter((e) => !e.startsWith('.r2n2-tmp-')).length > 0)
      throw new UserError(`--out ${job.out} exists and is not a simulated series; choose another directory or pass --force to replace it`);
  }

  const minDet = s.minJacobian();
  if (!(minDet > 0.1)) {
    throw new UserError(
      `--amplitude ${s.options.amplitudeMm} mm folds the ${s.options.motion} motion on this image (smallest det of the map's Jacobian ${minDet.toFixed(3)}); lower --amplitude or widen the motion (--radius, --half-width)`,
    );
  }

  return writeDirAtomic(job.out, async (tmp) => {
    await fs.mkdir(path.join(tmp, 'frames'), { recursive: true });
    await fs.mkdir(path.join(tmp, 'landmarks'), { recursive: true });
    const names: string[] = [];
    const rendered: Float32Array[] = [];
    let residual = 0;
    for (let t = 0; t < job.frames; t++) {
      const name = frameName(t, job.frames);
      names.push(name);
      const r = s.renderFrame(t);
      residual = Math.max(residual, r.residual);
      rendered.push(r.data);
      await writeImage2D(path.join(tmp, 'frames', `${name}.nrrd`), { geometry: s.geometry, data: r.data });
      await fs.writeFile(path.join(tmp, 'landmarks', `${name}.csv`), formatLandmarkCsv(s.landmarks(t)));
      job.onFrame?.(t);
    }
    if (residual > MAX_RESIDUAL_MM) throw new Error(`the inverse motion did not converge (residual ${residual} mm)`);
    const fixed = (await chooseFixedFrame(job.frames, async (i) => rendered[i], 'image')).index;
    const inv = s.inverseGrid(fixed);
    const frames: ResultFrame[] = [];
    const fixedLm = s.landmarks(fixed);
    let sum = 0;
    let n = 0;
    let max = 0;
    for (let t = 0; t < job.frames; t++) {
      const p = resultPaths(names[t]);
      await writeField(path.join(tmp, 'truth', p.field), { geometry: s.geometry, data: s.truthField(inv, t) });
      frames.push({ name: names[t], field: p.field, seconds: 0, parameters: 0 });
      if (t === fixed) continue;
      s.landmarks(t).forEach((m, k) => {
        const d = Math.hypot(m[0] - fixedLm[k][0], m[1] - fixedLm[k][1]);
        sum += d;
        n++;
        max = Math.max(max, d);
      });
    }
    await writeSummary(path.join(tmp, 'truth'), {
      format: 'r2n2-result',
      version: 1,
      method: 'ground-truth',
      backend: 'none',
      fixedFrame: names[fixed],
      series: '../frames',
      seriesFrames: names,
      created: new Date().toISOString(),
      frames,
    });
    const info: SimulateInfo = {
      out: job.out,
      skipped: false,
      frames: job.frames,
      size: s.geometry.size,
      spacingMm: s.geometry.spacing,
      motion: s.options.motion,
      amplitudeMm: s.options.amplitudeMm,
      landmarks: s.referenceLandmarks.length,
      fixedFrame: names[fixed],
      maxInverseResidualMm: residual,
      meanMotionMm: n ? sum / n : 0,
      maxMotionMm: max,
    };
    const record = {
      format: 'r2n2-simulate',
      version: 1,
      request,
      source: label,
      info,
      params: s.params,
      waveform: s.waveform,
      drift: s.drift,
      referenceLandmarksMm: s.referenceLandmarks,
    };
    await writeTextAtomic(path.join(tmp, 'simulate.json'), JSON.stringify(record, null, 1) + '\n');
    return info;
  });
}
