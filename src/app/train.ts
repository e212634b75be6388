/**
 * `r2n2 train` as a function: draws pairs from the training series and the generated sources
 * (train-data.ts) with a seeded generator, optimises the network with AMSGrad + gradient
 * clipping and weight noise, checkpoints atomically every K iterations (weights, optimiser state,
 * random state, loss history: `--resume` continues bit-for-bit), validates (train-validation.ts),
 * and writes the model directory (io/model.ts) and a loss-curve PNG.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { UserError, signalExitCode } from '../errors.js';
import { AmsGrad, clipByGlobalNorm } from '../core/optim.js';
import {
  type R2N2Config,
  type Weights,
  checkConfig,
  addGradientChannels,
  expandInputKernel,
  imageSize,
  inputBlock,
  initWeights,
  sampleWeightNoise,
  weightShapes,
  disposeWeights,
} from '../core/r2n2/network.js';
import { inferSequence, sequenceLoss } from '../core/r2n2/sequence.js';
import { statisticsRange } from '../core/image/intensity.js';
import { augmentOn } from '../core/r2n2/augment.js';
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
import { withOutputLock } from '../io/atomic.js';
import { activeCompute } from '../backend/compute.js';
import { RENDER_FACTOR, type SeriesData, attachTeachers, drawBatch, listStills, loadSeries, loadStills } from './train-data.js';
import { validationFigures, writeCurves } from './train-validation.js';
import { type TrainSettings, SYNTH_DEFAULTS, checkSynthSettings, learningRateAt } from './train-settings.js';

export { TRAIN_DEFAULTS, SYNTH_DEFAULTS, learningRateAt, type TrainSettings, type SourceMix, type SynthSettings } from './train-settings.js';

export interface TrainOptions {
  series: string[];
  val: string[];
  out: string;
  config: R2N2Config;
  settings: TrainSettings;
  resume: boolean;
  /** Still images (files, or directories searched recursively) set in motion by random fields: the `stills` source of `settings.mix`. */
  stills?: string[];
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
  /** A validation that beat every earlier one: its weights were written to OUT/best. */
  onBest?: (info: { iteration: number; loss: number; treMm?: number }) => void;
}

/** Where a run with validation series keeps its best weights so far (a model directory). */
export const BEST_DIR = 'best';

/** A validation entry's score, lower is better: the TRE after where landmarks gave one, else the loss. */
export function validationScore(v: { loss: number; treMm?: number }): number {
  return v.treMm ?? v.loss;
}

/** The best entry of a validation history (null when empty). */
export function bestValidation<T extends { loss: number; treMm?: number }>(history: T[]): T | null {
  return history.reduce<T | null>((b, v) => (b === null || validationScore(v) < validationScore(b) ? v : b), null);
}

export interface TrainReport {
  out: string;
  iterations: number;
  resumedFrom: number | null;
  finalLoss: number;
  validation: { iteration: number; loss: number; treMm?: number; treBeforeMm?: number }[];
  /** The best validation entry (its weights in OUT/best), or null without validation series. */
  best: { iteration: number; loss: number; treMm?: number; treBeforeMm?: number } | null;
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
  const stillFiles = o.stills?.length ? await listStills(o.stills) : [];
  const stills = stillFiles.length ? await loadStills(stillFiles, RENDER_FACTOR * n) : null;
  /** Generated pairs (synthetic or stills) in the mix: each brings its true field as a teacher. */
  const generated = st.mix !== undefined && (st.mix.synth > 0 || (st.mix.stills > 0 && stills !== null));
  const synth = generated ? (st.synth ?? SYNTH_DEFAULTS) : undefined;
  const teacherDirs = o.teacher && o.teacher.length ? o.teacher.map((d) => path.resolve(d)) : null;
  /** The teacher settings as recorded (resume key, model.json): absent without --teacher or generated pairs. */
  const teacherSettings =
    teacherDirs || generated ? { teacherWeight: st.teacherWeight, teacherSteps: st.teacherSteps } : { teacherWeight: undefined, teacherSteps: undefined };
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
      mix: generated ? st.mix : undefined,
      synth,
    },
    stills: stills ? stillFiles.map((f) => path.resolve(f)) : undefined,
    teacher: teacherDirs ?? undefined,
    series: await Promise.all(data.map(async (d) => [await fs.realpath(d.source).catch(() => path.resolve(d.source)), d.frames.length])),
    // the starting weights by content, not by place: a clone moved or copied elsewhere resumes
    from: fromModel ? [fromModel.json.created ?? null, await weightsDigest(fromModel)] : null,
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
      const before = bestValidation(validation);
      validation.push(entry);
      o.onValidation?.(entry);
      // the best weights so far by validation (TRE where the validation series have landmarks, else the loss) in OUT/best
      if (before === null || validationScore(entry) < validationScore(before)) {
        await saveModel(path.join(o.out, BEST_DIR), c, kept, {
          training: { ...st, iterationsDone: iteration, bestOf: 'validation', validation: entry },
          data: { validation: val.map((d) => path.resolve(d.source)) },
        });
        o.onBest?.(entry);
      }
    };

    const t0 = performance.now();
    let it = start;
    let peakRss = process.memoryUsage().rss;
    let timeLimited = false;
    let interrupted: string | null = null;
    try {
      for (; it < st.iterations; it++) {
        const { Fs, Ms, FLs, MLs, Us } = drawBatch({ series: data, stills, mix: generated ? st.mix : undefined, synth }, st, n, ls, rng);
        opt.learningRate = learningRateAt(st.learningRate, st.learningRateFinal, it, decay ?? 1);
        const noise = sampleWeightNoise(c, st.keep, rng);
        const loss = await optimiserStep(
          () =>
            sequenceLoss(c, weights, Fs, Ms, {
              steps: st.steps,
              lambda: st.lambda,
              noise,
              lossImages: ls !== undefined ? { fixed: FLs, moving: MLs, size: ls } : undefined,
              teacher: teacherDirs || generated ? { fields: Us, weight: st.teacherWeight, steps: st.teacherSteps } : undefined,
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
          mix: generated ? st.mix : undefined,
          synth,
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
          stills: stills ? stillFiles.map((f) => path.resolve(f)) : undefined,
          validation: val.map((d) => path.resolve(d.source)),
          // what the network saw of real series (register series warns when a series looks unlike it); generated pairs look like anything
          statistics: data.length && !generated ? statisticsRange(data.map((d) => d.stats)) : undefined,
        },
      });
      await writeCurves(o.out, losses, validation);
      return {
        out: o.out,
        iterations: it,
        resumedFrom: start || null,
        finalLoss: losses[losses.length - 1],
        validation,
        best: bestValidation(validation),
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
  const mix = st.mix;
  if (mix) {
    for (const [k, v] of Object.entries(mix))
      if (!(v >= 0 && Number.isFinite(v))) throw new UserError(`the weight of the ${k} source must be a number ≥ 0, got ${v}`);
    if (mix.stills > 0 && !o.stills?.length) throw new UserError('--stills-weight is > 0 but no --stills are given; name still images or directories of them');
    if (mix.series > 0 && mix.synth + mix.stills === 0 && o.series.length === 0)
      throw new UserError('name at least one training series, or give --synth or --stills a weight');
  }
  const generatedOn = mix !== undefined && (mix.synth > 0 || mix.stills > 0);
  if (o.series.length === 0 && !generatedOn) throw new UserError('name at least one training series, or train on generated pairs (--synth W, --stills DIR)');
  if (o.series.length > 0 && mix && mix.series === 0)
    throw new UserError('--series-weight 0 leaves the named training series unused; drop them or give them a weight');
  if (generatedOn) {
    if (st.lossSize !== undefined) throw new UserError("--loss-size cannot be used with --synth or --stills (generated pairs are made at the network's size)");
    if (st.synth) checkSynthSettings(st.synth);
  }
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
/** sha256 over a model's weight files, in manifest order. */
async function weightsDigest(m: LoadedModel): Promise<string> {
  const h = createHash('sha256');
  for (const group of m.json.weightsManifest ?? []) for (const p of group.paths) h.update(await fs.readFile(path.join(m.dir, p)));
  return h.digest('hex');
}

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
  if (c.inputGradient && !fromModel.config.inputGradient) {
    // the two gradient channels start with zero weights: the model computes what it did
    const k = fromModel.tensors.get('input/kernel') as tf.Tensor4D;
    fromModel.tensors.set('input/kernel', addGradientChannels(k, block));
    k.dispose();
    fromModel.config = { ...fromModel.config, inputGradient: true };
  } else if (!c.inputGradient && fromModel.config.inputGradient) {
    fromModel.tensors.forEach((t) => t.dispose());
    throw new UserError(`--from ${from} takes the mismatch gradient as input; add --input-gradient`);
  }
  if (JSON.stringify(weightShapes(fromModel.config)) !== JSON.stringify(weightShapes(c))) {
    fromModel.tensors.forEach((t) => t.dispose());
    throw new UserError(
      `--from ${from} has another architecture (${JSON.stringify(fromModel.config)}) than the one asked for; drop the architecture options to take the model's`,
    );
  }
  return fromModel;
}

export { inferSequence };
