/**
 * Where `r2n2 train` gets its pairs: the training series (each frame to the series' fixed frame,
 * with an optional teacher registration), synthetic label-map images and real stills set in
 * motion by random smooth fields (core/synth: training data without limit, each pair with its
 * true field), mixed by weights; and the batch of one iteration, every pair mirrored, shifted,
 * linearly mapped and intensity-augmented alike in its frames and its field.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { networkImage } from '../core/r2n2/sequence.js';
import { type Geometry, type Point } from '../core/image/geometry.js';
import { type Matrix2, affineImage, flipImage, resampleAligned, shiftImage } from '../core/image/resample.js';
import { listLandmarkDir, readLandmarkFile, landmarksMm } from '../io/landmarks.js';
import type { FixedFrameCriterion } from '../core/image/fixed-frame.js';
import { type Image2D, IMAGE_EXTENSIONS, imageExtension, readImage2D } from '../io/image.js';
import { openSeries } from '../io/series.js';
import { type ImageStatistics, imageStatistics } from '../core/image/intensity.js';
import { augmentOn, augmentPair } from '../core/r2n2/augment.js';
import { autoFixedFrame } from './fixed-frame.js';
import { readField, readSummary, resultFile } from '../io/index.js';
import { affineNormalisedField, fieldToNormalised, flipNormalisedField } from '../core/transformation/field.js';
import { type MotionKind, drawMotion } from '../core/synth/fields.js';
import { renderPair, synthImage } from '../core/synth/images.js';
import type { SourceMix, SynthSettings, TrainSettings } from './train-settings.js';

/** A frame as the network sees it (core/r2n2/sequence.ts `networkImage`). */
export const netImage = (img: Image2D, n: number): Float32Array => networkImage(img.data, img.geometry.size[1], img.geometry.size[0], n);

export interface SeriesData {
  source: string;
  fixed: number;
  frames: Float32Array[];
  /** The frames at the loss size (`--loss-size`), when it differs from the network's. */
  lossFrames: Float32Array[] | null;
  names: string[];
  geometry: Geometry;
  /** Landmarks (mm) per frame index, when `<series>/../landmarks` holds them. */
  landmarks: Map<number, Point[]> | null;
  /** With `--teacher`: per frame the teacher's field `[2·n·n]` (normalised units; null for the fixed frame). */
  teacher: (Float32Array | null)[] | null;
  /** What the network sees of the fixed frame (recorded in model.json for `register series`' check). */
  stats: ImageStatistics;
}

export async function loadSeries(source: string, n: number, criterion: FixedFrameCriterion, withLandmarks = false, lossSize?: number): Promise<SeriesData> {
  const s = await openSeries(source, { checkAll: true });
  const fixed = (await autoFixedFrame(s, criterion)).index;
  const frames: Float32Array[] = [];
  const lossFrames: Float32Array[] | null = lossSize !== undefined ? [] : null;
  let stats: ImageStatistics | null = null;
  for (let i = 0; i < s.frames.length; i++) {
    const img = await s.readFrame(i);
    if (i === fixed) stats = imageStatistics(img.data, img.geometry.size[0], img.geometry.size[1], img.geometry.spacing, n);
    frames.push(netImage(img, n));
    lossFrames?.push(netImage(img, lossSize as number));
  }
  const names = s.frames.map((f) => f.name);
  let landmarks: Map<number, Point[]> | null = null;
  const lmDir = path.join(path.dirname(path.resolve(s.source)), 'landmarks');
  if (withLandmarks && existsSync(lmDir)) {
    const files = await listLandmarkDir(lmDir);
    landmarks = new Map();
    for (const [name, file] of files) {
      const i = names.indexOf(name);
      if (i >= 0) landmarks.set(i, landmarksMm(await readLandmarkFile(file), s.geometry));
    }
    if (!landmarks.has(fixed)) landmarks = null;
  }
  return { source: s.source, fixed, frames, lossFrames, names, geometry: s.geometry, landmarks, teacher: null, stats: stats as ImageStatistics };
}

/**
 * Reads teacher registrations (result directories of `register series` or `baseline bspline`,
 * any method) for the training series: each directory's `summary.json` names its series and
 * fixed frame, which must be a training series and its fixed frame; each frame's field (mm) is
 * turned into normalised units and resampled to n×n. Every training series needs one.
 */
export async function attachTeachers(dirs: string[], data: SeriesData[], n: number): Promise<void> {
  const bySeries = new Map<string, { dir: string; summary: Awaited<ReturnType<typeof readSummary>> }>();
  for (const dir of dirs) {
    const summary = await readSummary(dir);
    if (typeof summary.series !== 'string')
      throw new UserError(`${path.join(dir, 'summary.json')} names no series; a teacher must be a result directory of register series or baseline bspline`);
    const key = path.resolve(summary.series);
    if (bySeries.has(key)) throw new UserError(`--teacher ${dir} and ${bySeries.get(key)?.dir} register the same series ${key}; give one teacher per series`);
    bySeries.set(key, { dir, summary });
  }
  for (const d of data) {
    const t = bySeries.get(path.resolve(d.source));
    if (!t)
      throw new UserError(
        `no --teacher registers the training series ${d.source}; run r2n2 register series (e.g. with --refine 20) or baseline bspline on it and add its --out directory`,
      );
    if (t.summary.fixedFrame !== d.names[d.fixed]) {
      throw new UserError(
        `--teacher ${t.dir} registered ${d.source} to frame ${t.summary.fixedFrame}, but training uses ${d.names[d.fixed]} (--fixed-frame-criterion); register it again with the training's fixed frame`,
      );
    }
    const byName = new Map(t.summary.frames.map((f) => [f.name, f]));
    d.teacher = [];
    for (let i = 0; i < d.names.length; i++) {
      if (i === d.fixed) {
        d.teacher.push(null);
        continue;
      }
      const f = byName.get(d.names[i]);
      if (!f) throw new UserError(`--teacher ${t.dir} has no field for frame ${d.names[i]} of ${d.source}; finish that registration (rerun it: it resumes)`);
      const file = resultFile(t.dir, f.field);
      const field = await readField(file);
      const [W, H] = field.geometry.size;
      if (W !== d.geometry.size[0] || H !== d.geometry.size[1])
        throw new UserError(`${file} is ${W}×${H}, but the frames of ${d.source} are ${d.geometry.size.join('×')}; the teacher must register these frames`);
      const u = fieldToNormalised(field);
      if (!u.every(Number.isFinite)) throw new UserError(`${file} holds NaN or infinite displacements; redo that registration`);
      d.teacher.push(resampleAligned(u, 2, H, W, n, n));
    }
  }
}

/** Generated pairs are rendered at this multiple of the network's size, then reduced (core/synth/images.ts). */
export const RENDER_FACTOR = 2;

/** Files under `paths` (files, or directories searched recursively) that hold images, sorted. */
export async function listStills(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (p: string, given: boolean): Promise<void> => {
    const st = await fs.stat(p).catch(() => null);
    if (!st) throw new UserError(`--stills ${p}: no such file or directory`);
    if (st.isDirectory()) {
      const entries = (await fs.readdir(p)).sort();
      for (const e of entries) if (!e.startsWith('.')) await walk(path.join(p, e), false);
    } else if (IMAGE_EXTENSIONS.includes(imageExtension(p))) {
      out.push(p);
    } else if (given) {
      throw new UserError(`--stills ${p} is not an image file (${IMAGE_EXTENSIONS.join(' ')})`);
    }
  };
  for (const p of paths) await walk(p, true);
  if (paths.length && out.length === 0) throw new UserError(`--stills ${paths.join(' ')}: no image files found`);
  return out;
}

/**
 * The stills, each as the network's normalisation at `S` × `S` (the render size). A file that
 * cannot be read, or is not 2D, is a one-line error naming it.
 */
export async function loadStills(files: string[], S: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const f of files) {
    let img: Image2D;
    try {
      img = await readImage2D(f);
    } catch (err) {
      throw new UserError(`--stills: cannot use ${f}: ${(err as Error).message.split('\n')[0]}`);
    }
    const [W, H] = img.geometry.size;
    if (W < 16 || H < 16) throw new UserError(`--stills: ${f} is ${W}×${H}; a still needs at least 16 pixels per side`);
    out.push(netImage(img, S));
  }
  return out;
}

/** A pair at the network's size from a generated source, with the field that registers it. */
export interface GeneratedPair {
  fixed: Float32Array;
  moving: Float32Array;
  field: Float32Array;
  /** The still it was made from (index into the stills), or null for a synthetic image. */
  still: number | null;
  /** The motion's kinds and amplitude (normalised units). */
  kinds: MotionKind[];
  amplitude: number;
}

/** One generated pair: a synthetic image (`stills` null) or a random still, moved by a random motion. */
export function generatedPair(stills: Float32Array[] | null, n: number, o: SynthSettings, rng: () => number): GeneratedPair {
  const S = RENDER_FACTOR * n;
  const still = stills ? Math.floor(rng() * stills.length) : null;
  const R = stills ? stills[still as number] : synthImage(S, rng, { labels: o.labels });
  const motion = drawMotion(rng, { kinds: o.kinds, amplitude: 2 * o.amplitude, n });
  const p = renderPair(R, S, n, motion.fn, rng, o.noise);
  return { fixed: p.fixed, moving: p.moving, field: p.field, still, kinds: motion.kinds, amplitude: motion.amplitude };
}

/** Where one iteration's pairs come from. */
export interface PairSources {
  series: SeriesData[];
  stills: Float32Array[] | null;
  mix: SourceMix | undefined;
  synth: SynthSettings | undefined;
}

/** The source of one pair: drawn by the mix's weights (nothing is drawn without a mix). */
function pickSource(s: PairSources, rng: () => number): keyof SourceMix {
  if (!s.mix) return 'series';
  const w = { series: s.series.length ? s.mix.series : 0, synth: s.mix.synth, stills: s.stills?.length ? s.mix.stills : 0 };
  const total = w.series + w.synth + w.stills;
  let r = rng() * total;
  for (const k of ['series', 'synth', 'stills'] as const) {
    if (r < w[k]) return k;
    r -= w[k];
  }
  return w.stills > 0 ? 'stills' : w.synth > 0 ? 'synth' : 'series';
}

/**
 * One training batch: `st.batch` pairs (a series, a moving frame other than its fixed one; or a
 * generated pair with its true field, by the sources' mix), each
 * mirrored, translated, linearly mapped (`affine`) and intensity-augmented by one set of random draws alike at the network's
 * size, at `--loss-size` (`ls`) and in its teacher's field. The draws come from `rng` in a fixed
 * order (a resumed run repeats them).
 */
export function drawBatch(sources: PairSources, st: TrainSettings, n: number, ls: number | undefined, rng: () => number) {
  const Fs: Float32Array[] = [];
  const Ms: Float32Array[] = [];
  const FLs: Float32Array[] = [];
  const MLs: Float32Array[] = [];
  const Us: (Float32Array | null)[] = [];
  for (let b = 0; b < st.batch; b++) {
    const source = pickSource(sources, rng);
    const gen = source === 'series' ? null : generatedPair(source === 'stills' ? sources.stills : null, n, sources.synth as SynthSettings, rng);
    const data = sources.series;
    const d = gen ? null : data[Math.floor(rng() * data.length)];
    let m = 0;
    if (d) {
      m = Math.floor(rng() * (d.frames.length - 1));
      if (m >= d.fixed) m++;
    }
    // one set of random draws augments the pair alike at the network's size, at --loss-size, and its teacher
    const draws = Array.from({ length: (st.flip ? 2 : 0) + (st.shift > 0 ? 2 : 0) + (st.intensityAugment ? 2 : 0) + (st.affine > 0 ? 4 : 0) }, () => rng());
    let k = 0;
    const flipX = st.flip && draws[k++] < 0.5;
    const flipY = st.flip && draws[k++] < 0.5;
    /** Translation in pixels of the network's image. */
    const [sx, sy] = st.shift > 0 ? [(2 * draws[k++] - 1) * st.shift, (2 * draws[k++] - 1) * st.shift] : [0, 0];
    const [ia, ib] = st.intensityAugment ? [0.9 + 0.2 * draws[k++], -0.1 + 0.2 * draws[k++]] : [1, 0];
    /** The pair seen through I + E, E's entries uniform in ±affine (normalised coordinates). */
    const A: Matrix2 | null =
      st.affine > 0
        ? [1 + (2 * draws[k++] - 1) * st.affine, (2 * draws[k++] - 1) * st.affine, (2 * draws[k++] - 1) * st.affine, 1 + (2 * draws[k++] - 1) * st.affine]
        : null;
    const pair = (F: Float32Array, M: Float32Array, size: number): [Float32Array, Float32Array] => {
      if (flipX) [F, M] = [flipImage(F, size, size, 'x'), flipImage(M, size, size, 'x')];
      if (flipY) [F, M] = [flipImage(F, size, size, 'y'), flipImage(M, size, size, 'y')];
      if (st.shift > 0) {
        // the network image's pixels → this size's pixels (aligned corners: the same normalised shift)
        const f = (size - 1) / (n - 1);
        const [dx, dy] = [sx * f, sy * f];
        [F, M] = [shiftImage(F, size, size, dx, dy), shiftImage(M, size, size, dx, dy)];
      }
      if (A) [F, M] = [affineImage(F, 1, size, size, A), affineImage(M, 1, size, size, A)];
      if (st.intensityAugment) M = Float32Array.from(M, (v) => ia * v + ib);
      return [F, M];
    };
    const [F0, M0] = gen ? [gen.fixed, gen.moving] : [(d as SeriesData).frames[(d as SeriesData).fixed], (d as SeriesData).frames[m]];
    const [F, M] = st.augment && augmentOn(st.augment) ? augmentPair(...pair(F0, M0, n), n, rng, st.augment) : pair(F0, M0, n);
    Fs.push(F);
    Ms.push(M);
    const field = gen ? gen.field : d?.teacher ? (d.teacher[m] as Float32Array) : null;
    if (field) {
      // the teacher's field, mirrored, translated and mapped as the pair was
      let U = field;
      if (flipX) U = flipNormalisedField(U, n, n, 'x');
      if (flipY) U = flipNormalisedField(U, n, n, 'y');
      if (st.shift > 0) {
        const N = n * n;
        const V = new Float32Array(2 * N);
        V.set(shiftImage(U.subarray(0, N), n, n, sx, sy));
        V.set(shiftImage(U.subarray(N), n, n, sx, sy), N);
        U = V;
      }
      if (A) U = affineNormalisedField(U, n, n, A);
      Us.push(U);
    } else {
      Us.push(null);
    }
    if (d?.lossFrames) {
      const [FL, ML] = pair(d.lossFrames[d.fixed], d.lossFrames[m], ls as number);
      FLs.push(FL);
      MLs.push(ML);
    }
  }
  return { Fs, Ms, FLs, MLs, Us };
}
