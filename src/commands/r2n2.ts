/** `r2n2 train` and `r2n2 register series`: thin over app/train.ts, app/register.ts and app/run-frames.ts. */
import type { CommandModule } from 'yargs';
import { UserError, signalExitCode } from '../errors.js';
import { DEFAULT_CONFIG, type R2N2Config, imageSize } from '../core/r2n2/config.js';
import { TRAIN_DEFAULTS } from '../app/train-settings.js';
import { type SynthArgs, synthOptions, synthSettings } from './synth.js';
import { REFINE_DEFAULTS } from '../core/r2n2/refine-options.js';
import type { R2N2RegisterOptions } from '../app/register.js';
import { type FlipAverage, FLIP_AVERAGES } from '../app/register-options.js';
import { identityFrames, readSummary } from '../io/result.js';
import type { AdaptReport } from '../app/adapt.js';
import type { FixedFrameCriterion } from '../core/image/fixed-frame.js';
import path from 'node:path';
import type { BackendChoice } from '../backend/index.js';
import type { LoadedModel } from '../io/model.js';
import { DEFAULT_MODEL, bundledModels, resolveModelDir } from '../io/bundled-models.js';
import { type StatisticsRange, imageStatistics, unlikeTraining } from '../core/image/intensity.js';
import { INIT_KINDS, type InitKind } from '../core/transformation/affine-options.js';
import {
  type BackendArgs,
  type GlobalArgs,
  type JobsArgs,
  backendDetail,
  backendOption,
  fmt,
  framesInterrupted,
  jobsOption,
  makeContext,
  parseShard,
  printJson,
  resolveJobs,
  startBackend,
  stopOnSignals,
  writeSettings,
  formatOption,
  helpGroups,
  frameRunOptions,
} from './common.js';

interface TrainArgs extends GlobalArgs, BackendArgs, SynthArgs {
  series: string[];
  val: string[];
  out: string;
  iterations: number;
  steps: number;
  lr: number;
  lambda: number;
  clip: number;
  keep: number;
  'checkpoint-every': number;
  seed: number;
  flip: boolean;
  'intensity-augment': boolean;
  'augment-conv': number;
  'augment-bias': number;
  'augment-gamma': number;
  'augment-noise': number;
  'augment-affine': number;
  shift: number;
  ema: number;
  'fixed-frame-criterion': 'image' | 'intensity';
  resume: boolean;
  batch: number;
  'lr-final'?: number;
  'decay-iterations'?: number;
  'val-pairs': number;
  'loss-size'?: number;
  teacher?: string[];
  'teacher-weight': number;
  'teacher-steps': 'all' | 'final';
  from?: string;
  'net-size'?: number;
  'input-block'?: number;
  'input-gradient'?: boolean;
  channels?: number[];
  'param-channels'?: number;
  'residual-blocks'?: number;
  hidden?: number;
  'sigma-max'?: number;
  activation?: 'tanh' | 'leaky-relu';
  synth: number;
  stills?: string[];
  'stills-weight': number;
  'series-weight': number;
  json: boolean;
}

/** What the commands run (tfjs, itk-wasm), loaded when one runs: `--help` loads none of it. */
async function heavy() {
  // one after the other: jest's module registry (the tests run the CLI in-process) cannot link
  // modules that share dependencies concurrently ("request for … is not in cache")
  const network = await import('../core/r2n2/network.js');
  const trainM = await import('../app/train.js');
  const register = await import('../app/register.js');
  const adapt = await import('../app/adapt.js');
  const frames = await import('../app/run-frames.js');
  const model = await import('../io/model.js');
  const series = await import('../io/series.js');
  return {
    parameterCount: network.parameterCount,
    train: trainM.train,
    r2n2Registrar: register.r2n2Registrar,
    uncertaintyKeepFor: register.uncertaintyKeepFor,
    adaptModel: adapt.adaptModel,
    runFrames: frames.runFrames,
    loadModel: model.loadModel,
    readModelJson: model.readModelJson,
    openSeries: series.openSeries,
  };
}

const T = TRAIN_DEFAULTS;

/**
 * `register series --preset`: settings measured on real cine (docs/experiments.md, "How many
 * Gaussians real motion needs"): fast = the network alone (the model's steps); accurate = the
 * network's 25 steps refined on the pair, coarse to fine (ahead of the B-spline on the tuning
 * patient at 1.4× its time).
 */
export const REGISTER_PRESETS = {
  fast: { text: "the network alone (the model's steps)" } as { text: string; steps?: number; refine?: number; refineSize?: number; refineFine?: number },
  accurate: { text: '--steps 25 --refine 40 --refine-size 128 --refine-fine 10', steps: 25, refine: 40, refineSize: 128, refineFine: 10 },
};
const C = DEFAULT_CONFIG;

export const trainCommand: CommandModule<GlobalArgs, TrainArgs> = {
  command: 'train [series..]',
  describe: 'train the R2N2 network unsupervised on series (pairs: fixed frame, random other frame) and on generated pairs with known motion',
  builder: (y) =>
    helpGroups(
      synthOptions(backendOption(y))
        .positional('series', {
          type: 'string',
          array: true,
          default: [],
          describe: 'training series (directories of frames, 3D files or DICOM directories); optional with --synth or --stills',
        })
        .option('out', { type: 'string', demandOption: true, describe: 'model directory (model.json, weights.bin, loss.png, checkpoint/)' })
        .option('val', {
          type: 'string',
          array: true,
          default: [],
          describe: 'validation series (loss, and TRE where landmarks lie beside them, every --checkpoint-every iterations; the best weights go to OUT/best)',
        })
        .option('iterations', { type: 'number', default: T.iterations, describe: 'total training iterations (pairs)' })
        .option('steps', { type: 'number', default: T.steps, describe: 'Gaussian steps per registration in training' })
        .option('lr', { type: 'number', default: T.learningRate, describe: 'AMSGrad learning rate' })
        .option('lambda', { type: 'number', default: T.lambda, describe: 'iso-TV weight on the final field' })
        .option('clip', { type: 'number', default: T.clip, describe: 'gradient-norm clipping' })
        .option('keep', { type: 'number', default: T.keep, describe: 'keep rate of the multiplicative weight noise on the GRU proposal weights (1 = off)' })
        .option('checkpoint-every', { type: 'number', default: T.checkpointEvery, describe: 'checkpoint (and validate) every K iterations' })
        .option('seed', { type: 'number', default: T.seed, describe: 'random seed (weights, pairs, augmentation, noise)' })
        .option('flip', { type: 'boolean', default: T.flip, describe: 'random horizontal/vertical flips of the pair' })
        .option('intensity-augment', { type: 'boolean', default: T.intensityAugment, describe: 'random linear intensity change of the moving frame' })
        .option('augment-conv', {
          type: 'number',
          default: 0,
          describe: 'probability of filtering a pair with one random 3×3 kernel (a new contrast, the same geometry; 0 = off)',
        })
        .option('augment-bias', {
          type: 'number',
          default: 0,
          describe: 'largest amplitude of a smooth multiplicative bias field per frame (e.g. 0.3; 0 = off)',
        })
        .option('augment-gamma', { type: 'number', default: 0, describe: 'largest |log γ| of a random gamma per frame (e.g. 0.3; 0 = off)' })
        .option('augment-noise', {
          type: 'number',
          default: 0,
          describe: 'std of Gaussian noise added to each frame, normalised intensity units (e.g. 0.05; 0 = off)',
        })
        .option('ema', {
          type: 'number',
          default: T.ema,
          describe: 'keep an exponential moving average of the weights with this decay (e.g. 0.99; 0 = off): validated and saved instead of the last weights',
        })
        .option('augment-affine', {
          type: 'number',
          default: T.affine,
          describe:
            'random linear map of each pair about the image centre (both frames alike, and the --teacher field with them): rotation, scale and shear, each entry of the 2×2 matrix within ±this of the identity (e.g. 0.1; 0 = off)',
        })
        .option('shift', {
          type: 'number',
          default: T.shift,
          describe:
            "random sub-pixel translation of each pair (both frames alike), up to this many pixels of the network's image (net-size·input-block) per axis (0 = off)",
        })
        .option('fixed-frame-criterion', {
          type: 'string',
          choices: ['image', 'intensity'],
          default: T.criterion,
          describe: 'fixed frame of each series: closest to the mean image, or mean intensity',
        })
        .option('resume', { type: 'boolean', default: false, describe: 'continue from OUT/checkpoint (same settings and series), bit-for-bit' })
        .option('batch', { type: 'number', default: T.batch, describe: 'pairs per iteration (one gradient step on their mean loss)' })
        .option('lr-final', { type: 'number', describe: 'learning rate at the end: cosine decay from --lr over --decay-iterations (default: constant --lr)' })
        .option('decay-iterations', {
          type: 'number',
          describe: 'iterations of the --lr-final decay (default: --iterations; a --resume with another --iterations must repeat it)',
        })
        .option('val-pairs', { type: 'number', default: T.valPairs, describe: 'validation pairs per --val series (a fixed seeded draw)' })
        .option('loss-size', {
          type: 'number',
          describe:
            "side of the images the training loss compares (e.g. the frames' size, 128): the Gaussians are evaluated and the moving frame warped at that size; the network still observes --net-size (default: the network's size)",
        })
        .option('teacher', {
          type: 'string',
          array: true,
          describe:
            "distil these registrations into the network: result directories (register series, e.g. with --refine 20, or baseline bspline), one per training series, matched by the series each registered; adds --teacher-weight × the mean squared difference (network pixels²) between the network's final field and the teacher's (--teacher-steps)",
        })
        .option('teacher-weight', { type: 'number', default: T.teacherWeight, describe: 'weight μ of the --teacher term' })
        .option('teacher-steps', {
          choices: ['all', 'final'] as const,
          default: T.teacherSteps,
          describe: "the --teacher term compares the final field (final) or every step's (all: the mean over steps; measured worse, see docs/cli.md)",
        })
        .option('time-limit', {
          type: 'number',
          describe: 'stop after this many seconds (at the end of an iteration): checkpoint and write the model as it is; --resume continues',
        })
        .option('from', {
          type: 'string',
          describe:
            "start from this model directory's weights (fine-tuning; its architecture is used, --net-size and --input-block may differ: a block-1 model's input kernel is copied to each block pixel, divided by b²)",
        })
        .option('net-size', {
          type: 'number',
          describe: `side of the network's grid (multiple of 16); the pair is observed at net-size·input-block [default: ${C.netSize}]`,
        })
        .option('input-block', {
          type: 'number',
          describe:
            'observe the pair at b·net-size per side, folded to net-size by space-to-depth (b² channels per input channel): every pixel of a 128² frame on a 64² grid, only the input conv grows, e.g. --net-size 64 --input-block 2 [default: 1]',
        })
        .option('input-gradient', {
          type: 'boolean',
          describe:
            "give the network the mismatch too: the image loss's gradient with respect to the displacement, (warped − fixed)·∇warped, as two more input channels, recomputed every step; with --from the new channels start at zero weights [default: false]",
        })
        .option('channels', { type: 'number', array: true, describe: `channels of the three GR2U blocks [default: ${C.channels.join(' ')}]` })
        .option('param-channels', { type: 'number', describe: `channels of the parameter network [default: ${C.paramChannels}]` })
        .option('residual-blocks', { type: 'number', describe: `residual blocks per GR2U [default: ${C.residualBlocks}]` })
        .option('hidden', { type: 'number', describe: `hidden units of the parameter network [default: ${C.hidden}]` })
        .option('sigma-max', { type: 'number', describe: `largest Gaussian σ (normalised units) [default: ${C.sigmaMax}]` })
        .option('activation', { type: 'string', choices: ['tanh', 'leaky-relu'], describe: `activation [default: ${C.activation}]` })
        .option('synth', {
          type: 'number',
          default: 0,
          describe: 'weight of synthetic pairs in the mix: random label images of random contrast moved by random motions, the true field as teacher (0 = off)',
        })
        .option('stills', {
          type: 'string',
          array: true,
          describe: 'still images (files, or directories searched recursively) set in motion by random motions, the true field as teacher',
        })
        .option('stills-weight', { type: 'number', default: 1, describe: 'weight of --stills pairs in the mix' })
        .option('series-weight', { type: 'number', default: 1, describe: 'weight of the training series in the mix (with --synth or --stills)' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' }),
      {
        'Data:': [
          'val',
          'val-pairs',
          'synth',
          'stills',
          'stills-weight',
          'series-weight',
          'synth-motion',
          'synth-amplitude',
          'synth-noise',
          'synth-labels',
          'teacher',
          'teacher-weight',
          'fixed-frame-criterion',
        ],
        'Output and runs:': ['out', 'from', 'resume', 'time-limit', 'checkpoint-every', 'json'],
        'Training:': ['iterations', 'steps', 'batch', 'lr', 'lr-final', 'decay-iterations', 'lambda', 'clip', 'keep', 'seed', 'flip', 'intensity-augment'],
        'Architecture:': ['net-size', 'input-block', 'input-gradient', 'channels', 'param-channels', 'residual-blocks', 'hidden', 'sigma-max', 'activation'],
        'Speed:': ['backend', 'threads'],
      },
      ['shift', 'loss-size', 'augment-affine', 'augment-conv', 'augment-bias', 'augment-gamma', 'augment-noise', 'ema', 'teacher-steps'],
    ) as never,
  handler: async (argv) => {
    const { parameterCount, readModelJson, train } = await heavy();
    const asked: Partial<R2N2Config> = {
      netSize: argv['net-size'],
      inputBlock: argv['input-block'],
      inputGradient: argv['input-gradient'],
      channels: argv.channels as [number, number, number] | undefined,
      paramChannels: argv['param-channels'],
      residualBlocks: argv['residual-blocks'],
      hidden: argv.hidden,
      sigmaMax: argv['sigma-max'],
      activation: argv.activation,
    };
    const given = Object.fromEntries(Object.entries(asked).filter(([, v]) => v !== undefined)) as Partial<R2N2Config>;
    let base: R2N2Config = C;
    if (argv.from) {
      // the weights do not depend on the input size, so --net-size may change, and --input-block (the input kernel is expanded); nothing else may
      const clash = Object.keys(given).filter((k) => k !== 'netSize' && k !== 'inputBlock' && k !== 'inputGradient');
      if (clash.length)
        throw new UserError(
          `--from ${argv.from} takes the model's architecture (only --net-size, --input-block and --input-gradient may change); drop ${clash.map((k) => '--' + k.replace(/[A-Z]/g, (x) => '-' + x.toLowerCase())).join(', ')}`,
        );
      base = (await readModelJson(resolveModelDir(argv.from)).catch((err: Error) => Promise.reject(new UserError(`--from: ${err.message}`)))).config;
    }
    const config: R2N2Config = { ...base, ...given };
    // block 1 and no gradient input are the defaults: left out, so model.json and the resume key match a run without the options
    if (config.inputBlock === 1) delete config.inputBlock;
    if (config.inputGradient === false) delete config.inputGradient;
    if (!(argv['checkpoint-every'] >= 1)) throw new UserError(`--checkpoint-every must be ≥ 1, got ${argv['checkpoint-every']}`);
    if (!(argv.keep > 0 && argv.keep <= 1)) throw new UserError(`--keep must be in (0, 1], got ${argv.keep}`);
    const generated = argv.synth !== 0 || Boolean(argv.stills?.length);
    const synth = synthSettings(argv);
    const ctx = makeContext(argv);
    const backend = await startBackend(argv, ctx, { webgpu: true });
    let bar = ctx.progress('train', 1);
    const stop = stopOnSignals('stopping after this iteration: checkpoint and model are written, --resume continues');
    const report = await train({
      signal: stop.signal,
      series: (argv.series ?? []).map(String),
      stills: argv.stills?.map(String),
      val: (argv.val ?? []).map(String),
      out: argv.out,
      config,
      resume: argv.resume,
      from: argv.from !== undefined ? resolveModelDir(argv.from) : undefined,
      teacher: argv.teacher?.map(String),
      timeLimitSeconds: argv['time-limit'] as number | undefined,
      settings: {
        iterations: argv.iterations,
        steps: argv.steps,
        learningRate: argv.lr,
        lambda: argv.lambda,
        clip: argv.clip,
        keep: argv.keep,
        checkpointEvery: argv['checkpoint-every'],
        seed: argv.seed,
        flip: argv.flip,
        intensityAugment: argv['intensity-augment'],
        // recorded (and part of the resume key) only when on
        ...(argv['augment-conv'] || argv['augment-bias'] || argv['augment-gamma'] || argv['augment-noise']
          ? { augment: { randomConv: argv['augment-conv'], bias: argv['augment-bias'], gamma: argv['augment-gamma'], noise: argv['augment-noise'] } }
          : {}),
        shift: argv.shift,
        affine: argv['augment-affine'],
        ema: argv.ema,
        criterion: argv['fixed-frame-criterion'],
        batch: argv.batch,
        learningRateFinal: argv['lr-final'],
        decayIterations: argv['decay-iterations'],
        valPairs: argv['val-pairs'],
        lossSize: argv['loss-size'],
        teacherWeight: argv['teacher-weight'],
        teacherSteps: argv['teacher-steps'],
        // recorded (and part of the resume key) only with generated pairs
        ...(generated
          ? {
              mix: { series: argv['series-weight'], synth: argv.synth, stills: argv.stills?.length ? argv['stills-weight'] : 0 },
              synth,
            }
          : {}),
      },
      onStart: (s) => {
        ctx.log.info({ ...s, backend: backend.name, weights: parameterCount(config) }, 'training start');
        bar.stop();
        bar = ctx.progress('train', s.total);
        if (s.start) bar.tick(s.start, 'resumed');
      },
      onIteration: (i) => bar.tick(1, `loss ${i.loss.toPrecision(4)} ${i.itPerSecond.toFixed(2)} it/s`),
      onValidation: (v) => ctx.log.info(v, 'validation'),
      onCheckpoint: (k) => ctx.log.info({ iteration: k }, 'checkpoint'),
      onBest: (v) => ctx.log.info(v, 'best validation so far: weights in OUT/best'),
    }).finally(() => {
      bar.stop();
      stop.dispose();
    });
    await writeSettings(report.out, argv as unknown as Record<string, unknown>, ['series']);
    const interrupted = report.interrupted
      ? new UserError(
          `interrupted (${report.interrupted}) at iteration ${report.iterations} of ${argv.iterations}: the checkpoint and the model as it is are in ${report.out}; the same command with --resume continues`,
          signalExitCode(report.interrupted),
        )
      : null;
    if (argv.json) {
      printJson({ ...report, backend: backend.name });
      if (interrupted) throw interrupted;
      return;
    }
    const lines = [
      `model        ${report.out} (${parameterCount(config)} weights, ${backend.name})`,
      `iterations   ${report.iterations}${report.timeLimited ? ` of ${argv.iterations} (--time-limit reached; --resume continues)` : report.interrupted ? ` of ${argv.iterations} (interrupted; --resume continues)` : ''}${report.resumedFrom ? ` (resumed at ${report.resumedFrom})` : ''}, ${fmt(report.itPerSecond, 2)} it/s, ${fmt(report.seconds, 0)} s in all, peak memory ${fmt(report.peakRssMb, 0)} MB`,
      `final loss   ${report.finalLoss.toPrecision(4)}${report.validation.length ? `   validation ${report.validation[report.validation.length - 1].loss.toPrecision(4)}` : ''}${lastTre(report.validation)}`,
      `loss curve   ${report.out}/loss.png, ${report.out}/loss.csv`,
      ...(report.best
        ? [
            `best         iteration ${report.best.iteration} by validation (${report.best.treMm !== undefined ? `TRE ${fmt(report.best.treMm, 3)} mm` : `loss ${report.best.loss.toPrecision(4)}`}): ${path.join(report.out, 'best')}`,
          ]
        : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (interrupted) throw interrupted;
  },
};

function lastTre(v: { treMm?: number; treBeforeMm?: number }[]): string {
  const e = v[v.length - 1];
  return e && e.treMm !== undefined ? `   validation TRE ${fmt(e.treBeforeMm, 3)} → ${fmt(e.treMm, 3)} mm` : '';
}

interface RegisterArgs extends GlobalArgs, BackendArgs, JobsArgs {
  format: string;
  series: string[];
  model: string;
  out: string;
  'fixed-frame': string;
  'fixed-frame-criterion': 'image' | 'intensity';
  steps?: number;
  'stop-threshold': number;
  batch?: number;
  'flip-average': FlipAverage;
  preset?: keyof typeof REGISTER_PRESETS;
  refine: number;
  'refine-size'?: number;
  'refine-fine': number;
  'refine-stride': number;
  'stop-when-worse': boolean;
  uncertainty: number;
  'uncertainty-keep'?: number;
  adapt: number;
  'adapt-seconds'?: number;
  'adapt-lr': number;
  'save-adapted'?: string;
  init: InitKind;
  force: boolean;
  shard?: string;
  qc: boolean;
  stack: boolean;
  'write-inverse': boolean;
  json: boolean;
}

/** How a series' first frame lies outside the statistics of a model's training data (none recorded: nothing to say). */
async function seriesUnlikeModel(series: string, model: LoadedModel): Promise<string[]> {
  const range = (model.json.data as { statistics?: StatisticsRange } | undefined)?.statistics;
  if (!range) return [];
  const { openSeries } = await heavy();
  const s = await openSeries(series, { checkAll: false });
  const img = await s.readFrame(0);
  return unlikeTraining(imageStatistics(img.data, img.geometry.size[0], img.geometry.size[1], img.geometry.spacing, imageSize(model.config)), range);
}

const registerSeries: CommandModule<GlobalArgs, RegisterArgs> = {
  command: 'series <series..>',
  describe: 'register every frame of a series to its fixed frame with a trained R2N2 model',
  builder: (y) =>
    helpGroups(
      formatOption(jobsOption(backendOption(y)))
        .positional('series', {
          type: 'string',
          array: true,
          describe: 'a directory of 2D frames, a 3D file (last axis = time) or a DICOM directory; several: each to OUT/<name>/, one table (OUT/series.csv)',
        })
        .option('model', {
          type: 'string',
          default: DEFAULT_MODEL,
          describe: 'a bundled model by name (r2n2 models lists them) or a model directory written by r2n2 train',
        })
        .option('out', { type: 'string', demandOption: true, describe: 'result directory' })
        .option('fixed-frame', { type: 'string', default: 'auto', describe: 'auto (closest to the series mean), a frame name or a 0-based index' })
        .option('fixed-frame-criterion', { type: 'string', choices: ['image', 'intensity'], default: 'image', describe: 'auto fixed frame criterion' })
        .option('steps', { type: 'number', describe: 'Gaussian steps per frame (default: the steps the model was trained with, else 25)' })
        .option('stop-threshold', {
          type: 'number',
          default: 0,
          describe: 'stop a frame at the first step whose weight norm |w| is below this (0 = run all steps)',
        })
        .option('batch', { type: 'number', describe: 'frames per network batch (default 8; 64 on webgpu, where larger batches are faster per frame)' })
        .option('flip-average', {
          type: 'string',
          choices: Object.keys(FLIP_AVERAGES),
          default: 'none',
          describe:
            'also register mirrored copies of each pair (x: left–right, y: up–down, xy: both at once, all: the four) and average: more accurate, one network pass per copy',
        })
        .option('preset', {
          type: 'string',
          choices: Object.keys(REGISTER_PRESETS),
          describe: `measured settings: ${Object.entries(REGISTER_PRESETS)
            .map(([k, v]) => `${k} = ${v.text}`)
            .join('; ')}; options given on the command line win`,
        })
        .option('refine', {
          type: 'number',
          describe:
            "then refine each frame's Gaussians by this many Levenberg–Marquardt iterations on the pair (the same number of Gaussians; more accurate, much slower: see docs/cli.md; 0 = off) [default: 0]",
        })
        .option('refine-size', {
          type: 'number',
          describe:
            "refine on the pair reduced to at most this many pixels per side (e.g. 128 for 256² frames: ≈3× faster at nearly the same TRE; default: the frames' size)",
        })
        .option('refine-fine', {
          type: 'number',
          describe:
            "with --refine-size: this many more iterations at the frames' own size after the reduced ones (coarse to fine: the detail the reduced size cannot see; e.g. --steps 25 --refine 40 --refine-size 128 --refine-fine 10, docs/cli.md) [default: 0]",
        })
        .option('refine-stride', {
          type: 'number',
          default: REFINE_DEFAULTS.normalStride,
          describe:
            "the refinement's Gauss–Newton matrix from every s-th pixel per axis (the cost and gradient from every pixel): 2 takes half the time of 1 for the same TRE (docs/cli.md)",
        })
        .option('init', {
          type: 'string',
          choices: INIT_KINDS,
          default: 'none',
          describe: 'pre-align each frame (rigid, similarity, affine) before the Gaussian sequence',
        })
        .option('adapt', {
          type: 'number',
          default: 0,
          describe:
            "first fine-tune the model on this series' own pairs for N iterations (unsupervised, the model's recipe, 4 pairs each), then register with it (0 = off)",
        })
        .option('adapt-seconds', { type: 'number', describe: 'stop adapting after this many seconds (alone: adapt until then, at most 1000 iterations)' })
        .option('adapt-lr', { type: 'number', default: 1e-4, describe: 'learning rate of the adaptation' })
        .option('save-adapted', {
          type: 'string',
          describe: 'where the adapted model goes (default: OUT/adapted-model); a rerun of the command reuses it, a later run may start --model from it',
        })
        .option('uncertainty', {
          type: 'number',
          default: 0,
          describe:
            'K ≥ 2 more passes with weight noise (MC DropConnect): uncertainty/<frame>.nii.gz, the per-pixel std of the displacement (mm), and its mean per frame in summary.json (0 = off)',
        })
        .option('uncertainty-keep', {
          type: 'number',
          describe: "keep rate of the uncertainty passes' weight noise (1 = no noise) [default: the model's training keep, else 0.9]",
        })
        .option('stop-when-worse', {
          type: 'boolean',
          default: true,
          describe:
            "never worse than none: stop a frame's sequence at the first step that does not lower its image loss, and write the identity (with a warning) for a frame the registration made worse (--no-stop-when-worse: run every step, keep every result)",
        })
        .option('force', { type: 'boolean', default: false, describe: 'redo frames already in --out' })
        .option('shard', { type: 'string', describe: 'I/N: only frames whose index ≡ I (mod N)' })
        .option('qc', {
          type: 'boolean',
          default: true,
          describe: 'write qc/<frame>.png (registration mosaic) and qc/<frame>-gaussians.png (the sequence over the fixed frame)',
        })
        .option('json', { type: 'boolean', default: false, describe: 'print the run report as JSON' }),
      {
        'Input and output:': ['model', 'out', 'fixed-frame', 'fixed-frame-criterion', 'format', 'stack', 'write-inverse', 'force', 'json'],
        'Method:': ['preset', 'steps', 'refine', 'refine-size', 'refine-fine', 'flip-average', 'adapt', 'adapt-seconds', 'adapt-lr', 'save-adapted'],
        'Speed:': ['backend', 'threads', 'jobs', 'batch', 'shard'],
        'Quality control:': ['qc', 'stop-when-worse', 'uncertainty'],
      },
      ['init', 'stop-threshold', 'refine-stride', 'uncertainty-keep'],
    ) as never,
  handler: async (argv) => {
    // a preset fills what the command line left out
    const preset = argv.preset ? REGISTER_PRESETS[argv.preset] : null;
    argv.steps ??= preset?.steps;
    argv.refine ??= preset?.refine ?? 0;
    argv['refine-size'] ??= preset?.refineSize;
    argv['refine-fine'] ??= preset?.refineFine ?? 0;
    if (argv.steps !== undefined && !(Number.isInteger(argv.steps) && argv.steps >= 1))
      throw new UserError(`--steps must be a positive integer, got ${argv.steps}`);
    if (!(argv['stop-threshold'] >= 0)) throw new UserError(`--stop-threshold must be ≥ 0, got ${argv['stop-threshold']}`);
    if (argv.batch !== undefined && !(Number.isInteger(argv.batch) && argv.batch >= 1))
      throw new UserError(`--batch must be a positive integer, got ${argv.batch}`);
    if (!(Number.isInteger(argv.refine) && argv.refine >= 0))
      throw new UserError(`--refine must be a whole number of iterations ≥ 0 (e.g. 20), got ${argv.refine}`);
    if (argv['refine-size'] !== undefined && !(Number.isInteger(argv['refine-size']) && argv['refine-size'] >= 16))
      throw new UserError(`--refine-size must be a whole number of pixels ≥ 16 (e.g. 128), got ${argv['refine-size']}`);
    if (!(Number.isInteger(argv['refine-fine']) && argv['refine-fine'] >= 0))
      throw new UserError(`--refine-fine must be a whole number of iterations ≥ 0 (e.g. 10), got ${argv['refine-fine']}`);
    if (argv['refine-fine'] > 0 && (argv['refine-size'] === undefined || argv.refine === 0))
      throw new UserError(
        '--refine-fine continues a reduced-size refinement: give --refine N and --refine-size S with it (e.g. --refine 40 --refine-size 128 --refine-fine 10)',
      );
    if (!(Number.isInteger(argv['refine-stride']) && argv['refine-stride'] >= 1))
      throw new UserError(
        `--refine-stride must be a whole number ≥ 1 (1 = every pixel, default ${REFINE_DEFAULTS.normalStride}), got ${argv['refine-stride']}`,
      );
    // every option checked before any work (an adaptation takes minutes)
    if (!(Number.isInteger(argv.uncertainty) && (argv.uncertainty === 0 || argv.uncertainty >= 2)))
      throw new UserError(`--uncertainty takes a whole number of passes ≥ 2 (0 = off), got ${argv.uncertainty}`);
    const uk = argv['uncertainty-keep'];
    if (uk !== undefined && !(uk > 0 && uk <= 1)) throw new UserError(`--uncertainty-keep must be in (0, 1] (1 = no noise), got ${uk}`);
    if (!(Number.isInteger(argv.adapt) && argv.adapt >= 0)) throw new UserError(`--adapt takes a whole number of iterations ≥ 0 (0 = off), got ${argv.adapt}`);
    const adaptSeconds = argv['adapt-seconds'];
    if (adaptSeconds !== undefined && !(adaptSeconds > 0)) throw new UserError(`--adapt-seconds must be > 0, got ${adaptSeconds}`);
    if (!(argv['adapt-lr'] > 0)) throw new UserError(`--adapt-lr must be > 0, got ${argv['adapt-lr']}`);
    const shard = parseShard(argv.shard);
    const many = argv.series.length > 1;
    if (many && (argv.adapt > 0 || adaptSeconds !== undefined))
      throw new UserError('--adapt fits the model to one series: give one series per command with --adapt (or drop --adapt to register several)');
    const { adaptModel, loadModel, r2n2Registrar, runFrames, uncertaintyKeepFor } = await heavy();
    const ctx = makeContext(argv);
    // the affine initialisation reads tensors back synchronously: CPU backends only
    const backend = await startBackend(argv, ctx, { webgpu: (argv.init ?? 'none') === 'none', what: `register series --init ${argv.init}` });
    const original = await loadModel(resolveModelDir(argv.model));
    const trained = Number(original.json.training?.steps);
    const steps = argv.steps ?? (Number.isInteger(trained) && trained >= 1 ? trained : 25);
    let model = original;
    let adaptation: AdaptReport | null = null;
    if (argv.adapt > 0 || adaptSeconds !== undefined) {
      const dir = argv['save-adapted'] ?? path.join(argv.out, 'adapted-model');
      const iterations = argv.adapt > 0 ? argv.adapt : 1000;
      let abar = ctx.progress('adapt', iterations);
      const astop = stopOnSignals('stopping the adaptation after this iteration: the same command continues it');
      try {
        const a = await adaptModel({
          model: original,
          series: argv.series[0],
          iterations,
          seconds: adaptSeconds,
          out: dir,
          learningRate: argv['adapt-lr'],
          steps,
          fixedFrame: argv['fixed-frame'],
          criterion: argv['fixed-frame-criterion'] as FixedFrameCriterion,
          signal: astop.signal,
          onIteration: (i) => abar.tick(1, `loss ${i.loss.toFixed(4)}`),
        });
        abar.stop();
        abar = ctx.progress('adapt', 1);
        if (a.report.interrupted)
          throw new UserError(
            `interrupted (${a.report.interrupted}) while adapting, at iteration ${a.report.iterations}: the checkpoint is in ${dir}; the same command continues`,
            signalExitCode(a.report.interrupted),
          );
        model = a.model;
        adaptation = a.report;
        ctx.log.info(adaptation, 'adapted');
      } finally {
        abar.stop();
        astop.dispose();
      }
    }
    // does the series look like what the model was trained on? (model.json data.statistics)
    let unlike: string[] = [];
    for (const one of argv.series) {
      unlike = await seriesUnlikeModel(one, model);
      if (unlike.length && !ctx.quiet)
        process.stderr.write(
          `warning: ${one} looks unlike the data ${model.dir} was trained on: ${unlike.join('; ')}; expect little from the network alone (try --adapt N or --refine N, or train on such series)\n`,
        );
    }
    const options: R2N2RegisterOptions = {
      steps,
      stopThreshold: argv['stop-threshold'],
      batchSize: argv.batch,
      init: argv.init,
      flipAverage: argv['flip-average'],
      refine: argv.refine,
      refineSize: argv['refine-size'],
      refineFine: argv['refine-fine'],
      refineStride: argv['refine-stride'],
      stopWhenWorse: argv['stop-when-worse'],
      uncertainty: argv.uncertainty,
      ...(argv['uncertainty-keep'] !== undefined ? { uncertaintyKeep: argv['uncertainty-keep'] } : {}),
    };
    const registrar = r2n2Registrar(model, options);
    const jobs = resolveJobs(argv, backend, ctx);
    ctx.log.info({ steps, trainedWith: model.json.training?.steps ?? null, batch: registrar.batchSize }, 'steps');
    const stop = stopOnSignals('stopping after this batch of frames: the results so far are kept, the same command continues');
    // what every frame's run shares, one series or several
    const run = frameRunOptions(argv, {
      signal: stop.signal,
      shard,
      backend: backend.name,
      jobs: {
        count: jobs,
        spec: { kind: 'r2n2' as const, modelDir: model.dir, options: { ...options, batchSize: registrar.batchSize } },
        backend: backend.name as BackendChoice,
      },
    });
    if (many) {
      const { runManyCommand } = await import('./many.js');
      await runManyCommand({
        label: 'r2n2',
        series: argv.series,
        out: argv.out,
        registrar,
        ctx,
        json: argv.json,
        afterRun: () => writeSettings(argv.out, argv as unknown as Record<string, unknown>, ['series']),
        run: {
          ...run,
          fixedFrame: argv['fixed-frame'],
          criterion: argv['fixed-frame-criterion'] as FixedFrameCriterion,
          summaryExtra: { model: model.dir, backendDetail: backendDetail(backend) },
        },
      }).finally(() => stop.dispose());
      return;
    }
    let bar = ctx.progress('r2n2', 1);
    const report = await runFrames(
      { kind: 'series', series: argv.series[0], fixedFrame: argv['fixed-frame'], criterion: argv['fixed-frame-criterion'] },
      registrar,
      {
        ...run,
        out: argv.out,
        summaryExtra: {
          model: model.dir,
          backendDetail: backendDetail(backend),
          ...(adaptation ? { adaptation } : {}),
          ...(unlike.length ? { unlikeTraining: unlike } : {}),
        },
        onStart: (s) => {
          bar.stop();
          bar = ctx.progress('r2n2', Math.max(1, s.units));
        },
        onTick: (info, by) => bar.tick(by ?? 1, info),
        onFrame: (f) => {
          ctx.log.info(f, 'frame registered');
          if (f.fallback) ctx.log.warn({ frame: f.name }, 'the registration made this frame worse than none: the identity was written');
        },
      },
    ).finally(() => {
      bar.stop();
      stop.dispose();
    });
    await writeSettings(argv.out, argv as unknown as Record<string, unknown>, ['series']);
    if (argv.json) {
      printJson(report);
      const e = framesInterrupted(report);
      if (e) throw e;
      return;
    }
    const n = report.registered.length;
    const mean = (k: 'seconds' | 'madBefore' | 'madAfter' | 'parameters') => report.registered.reduce((a, f) => a + f[k], 0) / Math.max(n, 1);
    const lines = [
      `method       r2n2 (${backend.name}), model ${model.dir}`,
      ...(adaptation
        ? [
            `adapted      from ${adaptation.from}: ${adaptation.iterations} iterations${adaptation.reused ? ' (done before, kept)' : adaptation.resumed ? ' (resumed)' : ''} in ${fmt(adaptation.seconds, 1)} s; image loss on this series ${fmt(adaptation.lossBefore, 5)} → ${fmt(adaptation.lossAfter, 5)}${adaptation.timeLimited ? ' (stopped by --adapt-seconds)' : ''}`,
          ]
        : []),
      `fixed frame  ${report.fixedFrame} (${report.fixedFrameSource})`,
      `registered   ${n} frame(s)${n ? `, ${fmt(mean('seconds'), 3)} s per frame` : ''}${report.skipped.length ? `; ${report.skipped.length} already done (kept; --force to redo)` : ''}`,
    ];
    if (n)
      lines.push(
        `mean |F−M|   before ${fmt(mean('madBefore'), 4)}  after ${fmt(mean('madAfter'), 4)}`,
        `parameters   ${fmt(mean('parameters'), 1)} per frame (7 per step${argv['flip-average'] !== 'none' ? ', every pass' : ''})`,
      );
    const { fallback: fell, noStep } = identityFrames(report.registered);
    if (fell.length)
      lines.push(
        `fallback     ${fell.length} frame(s) written as the identity: the network made them worse than none (${fell.slice(0, 5).join(', ')}${fell.length > 5 ? ', …' : ''}); see summary.json "fallbacks"`,
      );
    // frames whose sequence stopped before its first step (the never-worse guard, --stop-threshold): the identity too
    const idle = noStep.length;
    const why = [argv['stop-when-worse'] ? 'already raised the image loss' : '', argv['stop-threshold'] > 0 ? 'was below --stop-threshold' : ''];
    if (idle)
      lines.push(
        `no step      ${idle} frame(s) left as they were: the network's first step ${why.filter(Boolean).join(' or ') || 'was dropped'} (parameters 0 in summary.json)`,
      );
    lines.push(`result       ${report.out}${report.complete ? '' : `  (incomplete: ${report.missing.length} frame(s) to do)`}`);
    if (report.complete)
      lines.push(
        `series       ${argv.stack ? 'warped.nii.gz, fields.nii.gz (every frame, time last), ' : ''}motion.csv, qc/motion.png${argv['write-inverse'] ? ', inverse/' : ''}`,
      );
    if (argv.uncertainty > 0) {
      const u = (await readSummary(report.out)).frames.map((f) => f.uncertaintyMm).filter((v): v is number => typeof v === 'number');
      if (u.length)
        lines.push(
          `uncertainty  ${argv.uncertainty} noisy passes (keep ${fmt(options.uncertaintyKeep ?? uncertaintyKeepFor(model), 2)}): displacement std ${fmt(u.reduce((a, b) => a + b, 0) / u.length, 4)} mm mean, ${fmt(Math.max(...u), 4)} mm in the worst frame (uncertainty/)`,
        );
    }
    process.stdout.write(lines.join('\n') + '\n');
    if ((fell.length || 2 * idle >= n) && n && !ctx.quiet)
      process.stderr.write(
        `warning: ${fell.length + idle} of ${n} frame(s) are the identity (${fell.length} that the model made worse than none, ${idle} where it kept no step): the model may not suit these images (try --refine N or --adapt N, or train on such series)\n`,
      );
    const e = framesInterrupted(report);
    if (e) throw e;
  },
};

export const registerCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'register <what>',
  describe: 'register with a trained R2N2 model (series)',
  builder: (y) => y.command(registerSeries as never).demandCommand(1, 'name what to register: series') as never,
  handler: () => undefined,
};

export const modelsCommand: CommandModule<GlobalArgs, GlobalArgs & { json: boolean }> = {
  command: 'models',
  describe: 'list the bundled R2N2 models (usable by name: --model NAME, --from NAME)',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print the list as JSON' }) as never,
  handler: async (argv) => {
    const list = await bundledModels();
    if (argv.json) return printJson(list.map((m) => ({ ...m, default: m.name === DEFAULT_MODEL })));
    if (!list.length) throw new UserError('no bundled models found (fixtures/models is missing from this installation)');
    const w = Math.max(...list.map((m) => m.name.length)) + 2;
    const lines = list.map(
      (m) => `${(m.name + (m.name === DEFAULT_MODEL ? '*' : '')).padEnd(w)}${m.summary}\n${' '.repeat(w)}card: ${path.join(m.dir, 'README.md')}`,
    );
    process.stdout.write(lines.join('\n') + `\n* the default of register series\n`);
  },
};
