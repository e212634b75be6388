/**
 * `r2n2 train` as a function: reads the series, samples (fixed frame, random other frame)
 * pairs with a seeded generator, optimises the network with AMSGrad + gradient clipping and
 * weight noise, checkpoints atomically every K iterations (weights, optimiser state, random
 * state, loss history: `--resume` continues bit-for-bit), validates, and writes the model
 * directory (io/model.ts) and a loss-curve PNG.
 */
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { UserError, signalExitCode } from '../errors.js';
import { AmsGrad, clipByGlobalNorm } from '../core/optim.js';
import {
  type R2N2Config,
  type Weights,
  checkConfig,
  expandInputKernel,
  imageSize,
  inputBlock,
  initWeights,
  sampleWeightNoise,
  weightShapes,
  disposeWeights,
} from '../core/r2n2/network.js';
import { inferSequence, networkImage, sequenceLoss } from '../core/r2n2/sequence.js';
import { type Geometry, type Point } from '../core/image/geometry.js';
import { sequenceMapPoint } from '../core/transformation/gaussian.js';
import { type Matrix2, affineImage, flipImage, resampleAligned, shiftImage } from '../core/image/resample.js';
import { listLandmarkDir, readLandmarkFile, landmarksMm } from '../io/landmarks.js';
import { linePlot } from '../core/qc/plot.js';
import type { FixedFrameCriterion } from '../core/image/fixed-frame.js';
import type { Image2D } from '../io/image.js';
import { writeGreyPng } from '../io/image.js';
import { openSeries } from '../io/series.js';
import { type ImageStatistics, imageStatistics, statisticsRange } from '../core/image/intensity.js';
import { type AugmentOptions, augmentOn, augmentPair } from '../core/r2n2/augment.js';
import { type LoadedModel, loadModel, saveModel, toVariables } from '../io/model.js';
import {
  CHECKPOINT_DIR,
  type TrainState,
  haveCheckpoint,
  readCheckpointState,
  readCheckpointTensors,
  recoverCheckpoint,
  writeCheckpoint,
} from '../io/checkpoint.js';
import { withOutputLock, writeTextAtomic } from '../io/atomic.js';
import { autoFixedFrame } from './fixed-frame.js';
import { readField, readSummary, resultFile } from '../io/index.js';
import { affineNormalisedField, fieldToNormalised, flipNormalisedField } from '../core/transformation/field.js';
import { activeCompute } from '../backend/compute.js';
import type { Compute } from '../core/tensors.js';

/** A frame as the network sees it (core/r2n2/sequence.ts `networkImage`). */
const netImage = (img: Image2D, n: number): Float32Array => networkImage(img.data, img.geometry.size[1], img.geometry.size[0], n);

export interface TrainSettings {
  iterations: number;
  steps: number;
  learningRate: number;
  lambda: number;
  clip: number;
  /** Keep rate of the weight noise (1 = off). */
  keep: number;
  checkpointEvery: number;
  seed: number;
  flip: boolean;
  intensityAugment: boolean;
  /** Largest random translation of a pair, in pixels of the network's image (`imageSize`),
   * uniform in ±shift on each axis, sub-pixel, both frames alike; 0 = off. */
  shift: number;
  /** Largest deviation from the identity of a random linear map of a pair about the image centre
   * (rotation, scale and shear: each entry of the 2×2 matrix in normalised coordinates uniform in
   * ±affine), both frames alike, the teacher's field transformed with them; 0 = off. */
  affine: number;
  /** Decay of an exponential moving average of the weights (Polyak averaging; 0 = off): after
   * each step ema ← d·ema + (1 − d)·w. When on, validation and the saved model use the average;
   * the checkpoint keeps both, so a resumed run continues bit-for-bit. */
  ema: number;
  criterion: FixedFrameCriterion;
  /** Pairs per iteration (one gradient step on their mean loss). */
  batch: number;
  /** Learning rate at the end of the decay: cosine from `learningRate` over `decayIterations` (undefined: constant). */
  learningRateFinal?: number;
  /** Iterations of the cosine decay (default: `iterations` of this run; part of the resume key, so a
   * resumed run keeps the schedule it started with); after them the rate stays at `learningRateFinal`. */
  decayIterations?: number;
  /** Validation pairs per validation series (a fixed seeded draw). */
  valPairs: number;
  /** Side of the images the training loss is computed on (undefined: the network's size). The
   * network still observes the pair at its size; its Gaussians are evaluated on a lossSize² grid
   * and the frames, resampled as for the network, compared there (docs/method.md's loss, finer). */
  lossSize?: number;
  /** Weight μ of the distillation term (sequence.ts `teacher`) when `TrainOptions.teacher` is given. */
  teacherWeight: number;
  /** Which fields the teacher term compares: every step's (`all`) or the final one. */
  teacherSteps: 'all' | 'final';
  /** Augmentations of each pair at the network's size (core/r2n2/augment.ts); undefined or all 0 = off. */
  augment?: AugmentOptions;
}

/** The learning rate of iteration `it` (0-based) of `total`: cosine from lr0 to lr1. */
export function learningRateAt(lr0: number, lr1: number | undefined, it: number, total: number): number {
  if (lr1 === undefined || lr1 === lr0 || total <= 1) return lr0;
  return lr1 + 0.5 * (lr0 - lr1) * (1 + Math.cos((Math.PI * Math.min(it, total - 1)) / (total - 1)));
}

export const TRAIN_DEFAULTS: TrainSettings = {
  iterations: 2000,
  steps: 10,
  learningRate: 1e-4,
  lambda: 1,
  clip: 1,
  keep: 0.5,
  checkpointEvery: 100,
  seed: 1,
  flip: true,
  intensityAugment: true,
  shift: 0,
  affine: 0,
  ema: 0,
  criterion: 'image',
  batch: 1,
  valPairs: 8,
  teacherWeight: 1,
  teacherSteps: 'final',
};

interface SeriesData {
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

async function loadSeries(source: string, n: number, criterion: FixedFrameCriterion, withLandmarks = false, lossSize?: number): Promise<SeriesData> {
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
async function attachTeachers(dirs: string[], data: SeriesData[], n: number): Promise<void> {
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

/** Mean TRE (mm) of a Gaussian sequence at the fixed landmarks: |f + u(f) − m|. */
function sequenceTre(steps: Float32Array, g: Geometry, fixedPts: Point[], movingPts: Point[]): number {
  let sum = 0;
  fixedPts.forEach((p, k) => {
    const q = sequenceMapPoint(steps, g, p);
    sum += Math.hypot(q[0] - movingPts[k][0], q[1] - movingPts[k][1]);
  });
  return sum / Math.max(fixedPts.length, 1);
}

export interface TrainOptions {
  series: string[];
  val: string[];
  out: string;
  config: R2N2Config;
  settings: TrainSettings;
  resume: boolean;
  /** Teacher registrations (result directories), one per training series: adds the distillation term (`settings.teacherWeight`). */
  teacher?: string[];
  /** Start from this model's weights (fine-tuning; its weight shapes must equal `config`'s: the input size may differ). */
  from?: string;
  /** Stop after the first iteration that ends past this many seconds of this run (from the call, data loading
   * included): checkpoint, write the
   * model as it is, report `timeLimited` (`--resume` continues). Not part of the resume key. */
  timeLimitSeconds?: number;
  /** Aborted (e.g. on SIGINT): stop at the end of the current iteration, checkpoint and write the
   * model as it is, report `interrupted` with the signal's reason (`--resume` continues exactly:
   * no extra validation is run, so the resumed run equals an uninterrupted one). Aborted while the
   * series load: a `UserError` (exit code `signalExitCode(reason)`) before anything in `out` is touched. */
  signal?: AbortSignal;
  onStart?: (info: { start: number; total: number; pairs: number }) => void;
  onIteration?: (info: { iteration: number; loss: number; itPerSecond: number }) => void;
  onValidation?: (info: { iteration: number; loss: number; treMm?: number; treBeforeMm?: number }) => void;
  onCheckpoint?: (iteration: number) => void;
}

export interface TrainReport {
  out: string;
  iterations: number;
  resumedFrom: number | null;
  finalLoss: number;
  validation: { iteration: number; loss: number; treMm?: number; treBeforeMm?: number }[];
  seconds: number;
  itPerSecond: number;
  /** Peak resident memory of the process during training (MB; includes the wasm heap). */
  peakRssMb: number;
  /** True when `timeLimitSeconds` ended the run before `iterations`. */
  timeLimited: boolean;
  /** The abort reason (e.g. 'SIGINT') when `signal` ended the run before `iterations`, else null. */
  interrupted: string | null;
}

export async function train(o: TrainOptions): Promise<TrainReport> {
  const runStart = performance.now();
  const c = o.config;
  const compute = activeCompute();
  const st = o.settings;
  checkTrainOptions(o);
  /** The side of the pair as the network takes it (netSize, or inputBlock·netSize). */
  const n = imageSize(c);
  /** The loss size when it differs from the network's (the same size is the default). */
  const ls = st.lossSize === n ? undefined : st.lossSize;
  const data: SeriesData[] = [];
  for (const s of o.series) data.push(await loadSeries(s, n, st.criterion, false, ls));
  const teacherDirs = o.teacher && o.teacher.length ? o.teacher.map((d) => path.resolve(d)) : null;
  /** The teacher settings as recorded (resume key, model.json): absent without --teacher. */
  const teacherSettings = teacherDirs
    ? { teacherWeight: st.teacherWeight, teacherSteps: st.teacherSteps }
    : { teacherWeight: undefined, teacherSteps: undefined };
  if (teacherDirs) await attachTeachers(teacherDirs, data, n);
  const val: SeriesData[] = [];
  for (const s of o.val) val.push(await loadSeries(s, n, st.criterion, true, ls));
  const pairs = data.reduce((a, d) => a + d.frames.length - 1, 0);
  const fromModel = o.from ? await openFromModel(o.from, c) : null;
  const decay = st.learningRateFinal !== undefined ? (st.decayIterations ?? st.iterations) : undefined;
  const key = JSON.stringify({
    config: c,
    settings: {
      ...st,
      decayIterations: decay,
      iterations: undefined,
      checkpointEvery: undefined,
      shift: st.shift || undefined,
      affine: st.affine || undefined,
      ema: st.ema || undefined,
      lossSize: ls,
      ...teacherSettings,
    },
    teacher: teacherDirs ?? undefined,
    series: await Promise.all(data.map(async (d) => [await fs.realpath(d.source).catch(() => path.resolve(d.source)), d.frames.length])),
    from: fromModel ? [await fs.realpath(fromModel.dir).catch(() => path.resolve(fromModel.dir)), fromModel.json.created ?? null] : null,
  });

  // ---- state: fresh or from the checkpoint ----
  const ckpt = path.join(o.out, CHECKPOINT_DIR);
  let weights: Weights;
  let vars: tf.Variable[];
  const opt = new AmsGrad({ learningRate: st.learningRate });
  let rng: seedrandom.PRNG;
  let start = 0;
  let losses: number[] = [];
  let validation: TrainState['validation'] = [];
  let secondsBefore = 0;
  let ema: Weights | null = null;
  const names = weightShapes(c).map(([name]) => name);
  if (o.signal?.aborted) {
    fromModel?.tensors.forEach((t) => t.dispose());
    throw new UserError(
      `interrupted (${String(o.signal.reason)}) while loading the series, before the first iteration; ${o.out} was not touched`,
      signalExitCode(o.signal.reason),
    );
  }
  // one run per model directory
  return withOutputLock(o.out, trainLocked, '.r2n2-lock', 'model directory');
  async function trainLocked(): Promise<TrainReport> {
    await recoverCheckpoint(ckpt);
    const haveCkpt = haveCheckpoint(ckpt);
    if (o.resume && !haveCkpt) {
      fromModel?.tensors.forEach((t) => t.dispose());
      throw new UserError(`--resume: ${ckpt} holds no checkpoint to continue; drop --resume to start from scratch (or check --out)`);
    }
    if (o.resume && haveCkpt) {
      const r = await resumeFrom(ckpt, key, names, opt, st.ema > 0);
      ({ weights, ema, rng, start, losses, validation, secondsBefore } = r);
      vars = names.map((k) => weights.get(k) as tf.Variable);
    } else {
      if (!o.resume && haveCkpt) await fs.rm(ckpt, { recursive: true, force: true });
      weights = fromModel ? toVariables(fromModel, true) : initWeights(c, st.seed);
      vars = names.map((k) => weights.get(k) as tf.Variable);
      rng = seedrandom(`r2n2-train-${st.seed}`, { state: true });
      if (st.ema > 0) ema = new Map(names.map((k) => [k, tf.tidy(() => tf.variable(tf.clone(weights.get(k) as tf.Variable), false))]));
    }
    /** The weights that are validated and saved: the average when --ema is on. */
    const kept: Weights = ema ?? weights;
    fromModel?.tensors.forEach((t) => t.dispose());
    o.onStart?.({ start, total: st.iterations, pairs });

    // io/checkpoint.ts: written whole beside the last one, then swapped in
    const checkpoint = async (iteration: number, seconds: number) => {
      const ex = opt.exportState(vars);
      const named: [string, tf.Tensor][] = [];
      names.forEach((k, i) => named.push([`m/${k}`, ex.m[i]], [`v/${k}`, ex.v[i]], [`vmax/${k}`, ex.vmax[i]]));
      if (ema) names.forEach((k) => named.push([`ema/${k}`, ema!.get(k) as tf.Tensor]));
      const rngState = (rng as unknown as { state(): object }).state();
      await writeCheckpoint(ckpt, c, weights, named, {
        format: 'r2n2-checkpoint',
        iteration,
        rng: rngState,
        losses,
        validation,
        key,
        optimizerT: opt.t,
        seconds,
      });
      o.onCheckpoint?.(iteration);
    };

    const validate = async (iteration: number) => {
      if (val.length === 0) return;
      const entry = { iteration, ...(await validationFigures(c, kept, val, st, ls, compute)) };
      validation.push(entry);
      o.onValidation?.(entry);
    };

    const t0 = performance.now();
    let it = start;
    let peakRss = process.memoryUsage().rss;
    let timeLimited = false;
    let interrupted: string | null = null;
    try {
      for (; it < st.iterations; it++) {
        const { Fs, Ms, FLs, MLs, Us } = drawBatch(data, st, n, ls, rng);
        opt.learningRate = learningRateAt(st.learningRate, st.learningRateFinal, it, decay ?? 1);
        const noise = sampleWeightNoise(c, st.keep, rng);
        const loss = await optimiserStep(
          () =>
            sequenceLoss(c, weights, Fs, Ms, {
              steps: st.steps,
              lambda: st.lambda,
              noise,
              lossImages: ls !== undefined ? { fixed: FLs, moving: MLs, size: ls } : undefined,
              teacher: teacherDirs ? { fields: Us, weight: st.teacherWeight, steps: st.teacherSteps } : undefined,
              compute,
            }),
          { opt, vars, names, weights, ema, emaDecay: st.ema, clip: st.clip },
        );
        tf.dispose([...noise.values()]);
        if (!Number.isFinite(loss))
          throw new UserError(`the training loss became ${loss} at iteration ${it + 1}; lower --lr (now ${opt.learningRate}) and rerun without --resume`);
        losses.push(loss);
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
        const secs = (performance.now() - t0) / 1000;
        o.onIteration?.({ iteration: it + 1, loss, itPerSecond: (it + 1 - start) / secs });
        const outOfTime = o.timeLimitSeconds !== undefined && (performance.now() - runStart) / 1000 >= o.timeLimitSeconds && it + 1 < st.iterations;
        // an iteration on a CPU backend never leaves the microtask queue: let the event loop deliver signals
        if (o.signal) await new Promise((resolve) => setImmediate(resolve));
        const aborted = o.signal?.aborted === true && it + 1 < st.iterations;
        const due = (it + 1) % st.checkpointEvery === 0 || it + 1 === st.iterations;
        // an interruption checkpoints without validating: the resumed run then equals an uninterrupted one
        if (due || outOfTime) await validate(it + 1);
        if (due || outOfTime || aborted) await checkpoint(it + 1, secondsBefore + secs);
        if (outOfTime || aborted) {
          timeLimited = outOfTime;
          if (aborted) interrupted = String(o.signal!.reason);
          it++;
          break;
        }
      }
      const seconds = secondsBefore + (performance.now() - t0) / 1000;
      await saveModel(o.out, c, kept, {
        training: {
          ...st,
          lossSize: ls,
          ...teacherSettings,
          teacher: teacherDirs ?? undefined,
          decayIterations: decay,
          from: fromModel ? path.resolve(fromModel.dir) : null,
          iterationsDone: it,
          seconds,
          finalLoss: losses[losses.length - 1],
          itPerSecond: seconds > 0 ? it / seconds : null,
          peakRssMbLastRun: peakRss / 2 ** 20,
        },
        data: {
          series: data.map((d) => ({ source: path.resolve(d.source), frames: d.frames.length, fixedFrame: d.names[d.fixed] })),
          validation: val.map((d) => path.resolve(d.source)),
          statistics: statisticsRange(data.map((d) => d.stats)),
        },
      });
      await writeCurves(o.out, losses, validation);
      return {
        out: o.out,
        iterations: it,
        resumedFrom: start || null,
        finalLoss: losses[losses.length - 1],
        validation,
        seconds,
        itPerSecond: (it - start) / ((performance.now() - t0) / 1000 || 1),
        peakRssMb: peakRss / 2 ** 20,
        timeLimited,
        interrupted,
      };
    } finally {
      opt.dispose();
      disposeWeights(weights);
      if (ema) disposeWeights(ema);
    }
  }
}

/**
 * The state of a run continued from its checkpoint (`key`: the settings it must have been written
 * with): the weights, the optimiser's moments (imported into `opt`), the weight average, the random
 * generator and the curves so far.
 */
async function resumeFrom(ckpt: string, key: string, names: string[], opt: AmsGrad, withEma: boolean) {
  const s = await readCheckpointState(ckpt);
  if (s.key !== key)
    throw new UserError(`${ckpt} was written with other settings, architecture or series; resume with the same ones, or drop --resume to start over`);
  const m = await loadModel(ckpt);
  const weights = toVariables(m, true);
  m.tensors.forEach((t) => t.dispose());
  const vars = names.map((k) => weights.get(k) as tf.Variable);
  const dec = await readCheckpointTensors(ckpt);
  opt.importState(vars, {
    t: s.optimizerT,
    m: names.map((k) => dec[`m/${k}`]),
    v: names.map((k) => dec[`v/${k}`]),
    vmax: names.map((k) => dec[`vmax/${k}`]),
  });
  const ema: Weights | null = withEma ? new Map(names.map((k) => [k, tf.variable(dec[`ema/${k}`], false)])) : null;
  Object.values(dec).forEach((t) => t.dispose());
  return {
    weights,
    ema,
    rng: seedrandom('', { state: s.rng as never }),
    start: s.iteration,
    losses: s.losses,
    validation: s.validation,
    secondsBefore: s.seconds,
  };
}

/**
 * One optimiser step on `loss` (a scalar of the variables): gradients clipped by their global
 * norm, AMSGrad, then the weight average (`ema`, decay `emaDecay`) moved towards the new weights.
 * Returns the loss before the step.
 */
async function optimiserStep(
  loss: () => tf.Scalar,
  o: { opt: AmsGrad; vars: tf.Variable[]; names: string[]; weights: Weights; ema: Weights | null; emaDecay: number; clip: number },
): Promise<number> {
  const { value, grads } = tf.variableGrads(loss, o.vars);
  const clipped = await clipByGlobalNorm(grads, o.clip);
  o.opt.apply(o.vars, clipped.grads);
  if (o.ema) {
    const [d, e, w] = [o.emaDecay, o.ema, o.weights];
    tf.tidy(() => o.names.forEach((k) => (e.get(k) as tf.Variable).assign(tf.add(tf.mul(e.get(k) as tf.Variable, d), tf.mul(w.get(k) as tf.Variable, 1 - d)))));
  }
  const v = (await value.data())[0];
  tf.dispose([value, ...Object.values(clipped.grads)]);
  return v;
}

/** The options' one-line errors, before anything is read. */
function checkTrainOptions(o: TrainOptions): void {
  const c = o.config;
  const st = o.settings;
  try {
    checkConfig(c);
  } catch (err) {
    throw new UserError(`${(err as Error).message} (see r2n2 train --help)`);
  }
  if (!(Number.isInteger(st.iterations) && st.iterations >= 1)) throw new UserError(`--iterations must be a positive integer, got ${st.iterations}`);
  if (!(Number.isInteger(st.steps) && st.steps >= 1)) throw new UserError(`--steps must be a positive integer, got ${st.steps}`);
  if (!(st.learningRate > 0)) throw new UserError(`--lr must be > 0, got ${st.learningRate}`);
  if (st.learningRateFinal !== undefined && !(st.learningRateFinal > 0)) throw new UserError(`--lr-final must be > 0, got ${st.learningRateFinal}`);
  if (!(Number.isInteger(st.batch) && st.batch >= 1)) throw new UserError(`--batch must be a positive integer, got ${st.batch}`);
  if (!(Number.isInteger(st.valPairs) && st.valPairs >= 1)) throw new UserError(`--val-pairs must be a positive integer, got ${st.valPairs}`);
  if (!(st.shift >= 0 && Number.isFinite(st.shift))) throw new UserError(`--shift must be a number ≥ 0 (pixels of the network's image), got ${st.shift}`);
  if (!(st.affine >= 0 && st.affine <= 0.5))
    throw new UserError(`--augment-affine must be in [0, 0.5] (the largest change of each matrix entry; e.g. 0.1), got ${st.affine}`);
  if (!(st.ema >= 0 && st.ema < 1)) throw new UserError(`--ema must be in [0, 1) (0 = off; e.g. 0.99), got ${st.ema}`);
  if (o.series.length === 0) throw new UserError('name at least one training series');
  if (o.timeLimitSeconds !== undefined && !(o.timeLimitSeconds > 0)) throw new UserError(`--time-limit must be > 0 seconds, got ${o.timeLimitSeconds}`);
  if (st.lossSize !== undefined && !(Number.isInteger(st.lossSize) && st.lossSize >= 2))
    throw new UserError(`--loss-size must be an integer ≥ 2 (pixels per side), got ${st.lossSize}`);
  if (st.augment) {
    const a = st.augment;
    if (!(a.randomConv >= 0 && a.randomConv <= 1)) throw new UserError(`--augment-conv is a probability in [0, 1], got ${a.randomConv}`);
    for (const [k, v] of [
      ['--augment-bias', a.bias],
      ['--augment-gamma', a.gamma],
      ['--augment-noise', a.noise],
    ] as const)
      if (!(v >= 0 && Number.isFinite(v))) throw new UserError(`${k} must be a number ≥ 0 (0 = off), got ${v}`);
    if (augmentOn(a) && st.lossSize !== undefined) throw new UserError("the --augment-* options act at the network's size: drop --loss-size to use them");
  }
  if (o.teacher?.length && !(st.teacherWeight >= 0 && Number.isFinite(st.teacherWeight)))
    throw new UserError(`--teacher-weight must be a number ≥ 0, got ${st.teacherWeight}`);
  if (st.decayIterations !== undefined && !(Number.isInteger(st.decayIterations) && st.decayIterations >= 1))
    throw new UserError(`--decay-iterations must be a positive integer, got ${st.decayIterations}`);
}

/**
 * `--from`: the model whose weights training starts from, checked against the architecture asked
 * for; a block-1 model's input kernel is expanded to `--input-block` b (its b² channels per input).
 */
async function openFromModel(from: string, c: R2N2Config): Promise<LoadedModel> {
  const fromModel = await loadModel(from);
  const block = inputBlock(c);
  const fromBlock = inputBlock(fromModel.config);
  if (fromBlock !== block) {
    // a block-1 model's input kernel, copied to the b² channels of each input channel
    if (fromBlock !== 1) {
      fromModel.tensors.forEach((t) => t.dispose());
      throw new UserError(
        `--from ${from} has input block ${fromBlock}; --input-block ${block} can start only from a block-1 model (or drop --input-block to keep ${fromBlock})`,
      );
    }
    const k = fromModel.tensors.get('input/kernel') as tf.Tensor4D; // loadModel checked every weight
    fromModel.tensors.set('input/kernel', expandInputKernel(k, block));
    k.dispose();
    fromModel.config = { ...fromModel.config, inputBlock: block };
  }
  if (JSON.stringify(weightShapes(fromModel.config)) !== JSON.stringify(weightShapes(c))) {
    fromModel.tensors.forEach((t) => t.dispose());
    throw new UserError(
      `--from ${from} has another architecture (${JSON.stringify(fromModel.config)}) than the one asked for; drop the architecture options to take the model's`,
    );
  }
  return fromModel;
}

/**
 * One training batch: `st.batch` pairs (a series, a moving frame other than its fixed one), each
 * mirrored, translated, linearly mapped (`affine`) and intensity-augmented by one set of random draws alike at the network's
 * size, at `--loss-size` (`ls`) and in its teacher's field. The draws come from `rng` in a fixed
 * order (a resumed run repeats them).
 */
function drawBatch(data: SeriesData[], st: TrainSettings, n: number, ls: number | undefined, rng: () => number) {
  const Fs: Float32Array[] = [];
  const Ms: Float32Array[] = [];
  const FLs: Float32Array[] = [];
  const MLs: Float32Array[] = [];
  const Us: Float32Array[] = [];
  for (let b = 0; b < st.batch; b++) {
    const d = data[Math.floor(rng() * data.length)];
    let m = Math.floor(rng() * (d.frames.length - 1));
    if (m >= d.fixed) m++;
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
    const [F, M] =
      st.augment && augmentOn(st.augment)
        ? augmentPair(...pair(d.frames[d.fixed], d.frames[m], n), n, rng, st.augment)
        : pair(d.frames[d.fixed], d.frames[m], n);
    Fs.push(F);
    Ms.push(M);
    if (d.teacher) {
      // the teacher's field, mirrored, translated and mapped as the pair was
      let U = d.teacher[m] as Float32Array;
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
    }
    if (d.lossFrames) {
      const [FL, ML] = pair(d.lossFrames[d.fixed], d.lossFrames[m], ls as number);
      FLs.push(FL);
      MLs.push(ML);
    }
  }
  return { Fs, Ms, FLs, MLs, Us };
}

/**
 * The validation figures of the kept weights: the mean loss over `st.valPairs` seeded pairs of each
 * validation series, and the TRE before and after where both frames have landmarks.
 */
async function validationFigures(
  c: R2N2Config,
  kept: Weights,
  val: SeriesData[],
  st: TrainSettings,
  ls: number | undefined,
  compute: Compute,
): Promise<{ loss: number; treMm?: number; treBeforeMm?: number }> {
  const vr = seedrandom(`r2n2-val-${st.seed}`);
  let sum = 0;
  let cnt = 0;
  let tre = 0;
  let treBefore = 0;
  let treCnt = 0;
  for (const d of val) {
    for (let k = 0; k < st.valPairs; k++) {
      let m = Math.floor(vr() * d.frames.length);
      if (m === d.fixed) m = (m + 1) % d.frames.length;
      const lossImages = d.lossFrames ? { fixed: [d.lossFrames[d.fixed]], moving: [d.lossFrames[m]], size: ls as number } : undefined;
      const lt = tf.tidy(() => sequenceLoss(c, kept, [d.frames[d.fixed]], [d.frames[m]], { steps: st.steps, lambda: st.lambda, lossImages, compute }));
      const l = (await lt.data())[0];
      lt.dispose();
      sum += l;
      cnt++;
      const fl = d.landmarks?.get(d.fixed);
      const ml = d.landmarks?.get(m);
      if (fl && ml && fl.length === ml.length) {
        const [p] = await inferSequence(c, kept, [d.frames[d.fixed]], [d.frames[m]], { steps: st.steps, compute });
        tre += sequenceTre(p, d.geometry, fl, ml);
        treBefore += sequenceTre(new Float32Array(0), d.geometry, fl, ml);
        treCnt++;
      }
    }
  }
  return { loss: sum / cnt, ...(treCnt ? { treMm: tre / treCnt, treBeforeMm: treBefore / treCnt } : {}) };
}

/** `loss.png` (the loss and its 25-iteration running mean, log scale) and `loss.csv` (with validation). */
async function writeCurves(out: string, losses: number[], validation: TrainState['validation']): Promise<void> {
  const smooth = losses.map((_, i) => {
    const w = losses.slice(Math.max(0, i - 24), i + 1);
    return w.reduce((a, b) => a + b, 0) / w.length;
  });
  const valCurve = losses.map(() => NaN);
  const valTre = losses.map(() => NaN);
  for (const v of validation) {
    valCurve[v.iteration - 1] = v.loss;
    if (v.treMm !== undefined) valTre[v.iteration - 1] = v.treMm;
  }
  const plot = linePlot([losses, smooth], 640, 360, { log: true, levels: [190, 0] });
  await writeGreyPng(path.join(out, 'loss.png'), plot, [0, 255]);
  const cell = (v: number) => (Number.isNaN(v) ? '' : String(v));
  await writeTextAtomic(
    path.join(out, 'loss.csv'),
    'iteration,loss,validation,validation_tre_mm\n' + losses.map((l, i) => `${i + 1},${l},${cell(valCurve[i])},${cell(valTre[i])}`).join('\n') + '\n',
  );
}

export { inferSequence };
