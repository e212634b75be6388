/**
 * `phantom` as a function: renders synthetic series (core/phantom/phantom.ts) and writes them as
 * `DIR/series-NN/frames/frame_XXX.nrrd`, `labels/frame_XXX.nrrd` (organ labels, core/phantom/phantom.ts
 * PHANTOM_LABELS), `landmarks/frame_XXX.csv` (mm) and `phantom.json`,
 * optionally `truth/` (a result directory holding the true fields, method "ground-truth").
 * Each series is built in a temporary directory and renamed into place when complete, so an
 * interrupted run leaves no half series, and a rerun skips the series already there.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makePhantomSeries, phantomInverseGrid, phantomTruthField } from '../core/phantom/phantom.js';
import { chooseFixedFrame } from '../core/image/fixed-frame.js';
import { writeImage2D, writeField, writeLabels2D } from '../io/image.js';
import { formatLandmarkCsv } from '../io/landmarks.js';
import { removeStaleTemps, writeTextAtomic } from '../io/atomic.js';
import { resultPaths, writeSummary, type ResultFrame } from '../io/result.js';

export interface PhantomJobOptions {
  out: string;
  series: number;
  frames: number;
  size: number;
  seed: number;
  truth?: boolean;
  force?: boolean;
  onFrame?: (series: number, frame: number) => void;
}

export interface PhantomSeriesInfo {
  dir: string;
  name: string;
  skipped: boolean;
  frames: number;
  size: number;
  spacingMm: number;
  diaphragmMm: number;
  landmarks: number;
  fixedFrame: string | null;
}

export const frameName = (t: number, count: number) => `frame_${String(t).padStart(Math.max(3, String(count - 1).length), '0')}`;

export async function generatePhantoms(o: PhantomJobOptions): Promise<PhantomSeriesInfo[]> {
  await fs.mkdir(o.out, { recursive: true });
  await removeStaleTemps(o.out);
  const infos: PhantomSeriesInfo[] = [];
  for (let k = 1; k <= o.series; k++) {
    const name = `series-${String(k).padStart(2, '0')}`;
    const dir = path.join(o.out, name);
    const meta = path.join(dir, 'phantom.json');
    const exists = await fs.stat(meta).then(
      () => true,
      () => false,
    );
    if (exists && !o.force) {
      const m = JSON.parse(await fs.readFile(meta, 'utf8'));
      infos.push({
        dir,
        name,
        skipped: true,
        frames: m.frames,
        size: m.size,
        spacingMm: m.spacingMm,
        diaphragmMm: m.diaphragmMm,
        landmarks: m.landmarkNames.length,
        fixedFrame: m.fixedFrame ?? null,
      });
      for (let t = 0; t < m.frames; t++) o.onFrame?.(k, t);
      continue;
    }
    const seriesSeed = o.seed * 1000 + k;
    const s = makePhantomSeries({ size: o.size, frames: o.frames, seed: seriesSeed });
    const tmp = path.join(o.out, `.r2n2-tmp-${process.pid}-${name}`);
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(path.join(tmp, 'frames'), { recursive: true });
    await fs.mkdir(path.join(tmp, 'landmarks'), { recursive: true });
    await fs.mkdir(path.join(tmp, 'labels'), { recursive: true });
    const names: string[] = [];
    const rendered: Float32Array[] = [];
    for (let t = 0; t < o.frames; t++) {
      const fname = frameName(t, o.frames);
      names.push(fname);
      const { image: data, labels } = s.renderFrameAndLabels(t);
      if (o.truth) rendered.push(data);
      await writeImage2D(path.join(tmp, 'frames', `${fname}.nrrd`), { geometry: s.geometry, data });
      await writeLabels2D(path.join(tmp, 'labels', `${fname}.nrrd`), s.geometry, labels);
      await fs.writeFile(path.join(tmp, 'landmarks', `${fname}.csv`), formatLandmarkCsv(s.landmarks(t)));
      o.onFrame?.(k, t);
    }
    let fixedFrame: string | null = null;
    if (o.truth) {
      const fixed = (await chooseFixedFrame(o.frames, async (i) => rendered[i], 'image')).index;
      fixedFrame = names[fixed];
      const inv = phantomInverseGrid(s, fixed);
      const frames: ResultFrame[] = [];
      for (let t = 0; t < o.frames; t++) {
        const p = resultPaths(names[t]);
        await writeField(path.join(tmp, 'truth', p.field), { geometry: s.geometry, data: phantomTruthField(s, inv, t) });
        frames.push({ name: names[t], field: p.field, seconds: 0, parameters: 0 });
      }
      await writeSummary(path.join(tmp, 'truth'), {
        format: 'r2n2-result',
        version: 1,
        method: 'ground-truth',
        backend: 'none',
        fixedFrame,
        series: '../frames',
        seriesFrames: names,
        created: new Date().toISOString(),
        frames,
      });
    }
    const info = {
      format: 'r2n2-phantom',
      version: 1,
      seed: o.seed,
      seriesSeed,
      size: o.size,
      frames: o.frames,
      fovMm: s.options.fovMm,
      spacingMm: s.geometry.spacing[0],
      frameSeconds: s.options.frameSeconds,
      diaphragmMm: s.diaphragmMm,
      fixedFrame,
      landmarkNames: s.landmarkNames,
      referenceLandmarksMm: s.referenceLandmarks,
      motion: s.motion,
    };
    await writeTextAtomic(path.join(tmp, 'phantom.json'), JSON.stringify(info, null, 1) + '\n');
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(tmp, dir);
    infos.push({
      dir,
      name,
      skipped: false,
      frames: o.frames,
      size: o.size,
      spacingMm: s.geometry.spacing[0],
      diaphragmMm: s.diaphragmMm,
      landmarks: s.landmarkNames.length,
      fixedFrame,
    });
  }
  return infos;
}
