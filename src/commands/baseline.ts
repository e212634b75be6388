/** `r2n2 baseline bspline`: series mode and pair mode, thin over app/bspline.ts + app/run-frames.ts. */
import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import type { BsplineOptions } from '../bspline/register.js';
import { BSPLINE_DEFAULTS } from '../bspline/defaults.js';
import { LOSS_NAMES, type LossName } from '../core/loss/names.js';
import { REGULARISER_NAMES, type RegulariserName } from '../core/regulariser/names.js';
import { BSPLINE_PRESETS, PRESET_NAMES, type PresetName } from '../bspline/presets.js';
import { AFFINE_DEFAULTS, INIT_KINDS, type InitKind } from '../core/transformation/affine-options.js';
import type { BackendChoice } from '../backend/index.js';
import type { JobInput } from '../app/run-frames.js';
import {
  type BackendArgs,
  type GlobalArgs,
  type JobsArgs,
  backendDetail,
  backendOption,
  jobsOption,
  resolveJobs,
  fmt,
  framesInterrupted,
  makeContext,
  parseShard,
  printJson,
  startBackend,
  stopOnSignals,
  writeSettings,
  formatOption,
  helpGroups,
  frameRunOptions,
} from './common.js';

interface Args extends GlobalArgs, BackendArgs, JobsArgs {
  format: string;
  preset: PresetName;
  series?: string[];
  fixed?: string;
  moving?: string[];
  out: string;
  'fixed-frame': string;
  'fixed-frame-criterion': 'image' | 'intensity';
  levels: number;
  spacing?: number[];
  'spacing-mm'?: number[];
  iterations?: number[];
  samples?: number;
  seed: number;
  convergence?: number;
  'convergence-window': number;
  'fixed-mask'?: string;
  'moving-mask'?: string;
  lr?: number[];
  lambda?: number[];
  order: number;
  loss?: LossName;
  regulariser: RegulariserName;
  'lncc-window': number;
  'mi-bins': number;
  'ngf-epsilon'?: number;
  normalise: boolean;
  'noise-adaptive': boolean;
  'finest-sigma'?: number;
  'max-size'?: number;
  init?: InitKind;
  'init-iterations'?: number[];
  force: boolean;
  shard?: string;
  qc: boolean;
  stack: boolean;
  'write-inverse': boolean;
  json: boolean;
}

const D = BSPLINE_DEFAULTS;
const show = (v: unknown) => (Array.isArray(v) ? v.join(' ') : String(v));

const bspline: CommandModule<GlobalArgs, Args> = {
  command: 'bspline [series..]',
  describe: 'multi-resolution cubic B-spline registration (AirLab style, tfjs autograd) of a series or a pair',
  builder: (y) =>
    helpGroups(
      formatOption(jobsOption(backendOption(y)))
        .positional('series', {
          type: 'string',
          array: true,
          describe:
            'series: a directory of 2D frames, a 3D file (last axis = time) or a DICOM directory; several: each to OUT/<name>/, one table (OUT/series.csv)',
        })
        .option('fixed', { type: 'string', describe: 'pair mode: the fixed image' })
        .option('moving', { type: 'string', array: true, describe: 'pair mode: moving image(s), each registered to --fixed' })
        .option('out', { type: 'string', demandOption: true, describe: 'result directory (fields/, warped/, params/, qc/, summary.json)' })
        .option('fixed-frame', { type: 'string', default: 'auto', describe: 'series mode: auto (closest to the series mean), a frame name or a 0-based index' })
        .option('fixed-frame-criterion', {
          type: 'string',
          choices: ['image', 'intensity'],
          default: 'image',
          describe: 'auto fixed frame: mean image (MSE) or mean intensity (reference code)',
        })
        .option('preset', {
          type: 'string',
          choices: PRESET_NAMES,
          default: 'generic',
          describe: `named parameter set: ${PRESET_NAMES.map((n) => `${n} (${BSPLINE_PRESETS[n].describe})`).join(', ')}; options given here win`,
        })
        .option('levels', { type: 'number', default: D.levels, describe: 'pyramid levels; level l works at 1/2^(levels-1-l) resolution' })
        .option('spacing', {
          type: 'number',
          array: true,
          describe: `control-point spacing in pixels of each level (one value or one per level) [default: ${show(D.spacing)}]`,
        })
        .option('spacing-mm', {
          type: 'number',
          array: true,
          describe: 'control-point spacing in mm of each level (one value or one per level); replaces --spacing',
        })
        .option('iterations', {
          type: 'number',
          array: true,
          describe: `iterations per level (one value or one per level; the most, with --convergence) [default: ${show(D.iterations)}]`,
        })
        .option('samples', {
          type: 'number',
          describe: `random pixels per iteration at levels larger than this (mse and ncc; 0 = every pixel) [default: ${show(D.samples ?? 0)}]`,
        })
        .option('seed', { type: 'number', default: D.seed ?? 0, describe: 'seed of the random samples (same seed, same result)' })
        .option('convergence', {
          type: 'number',
          describe: `stop a level when its mean loss over --convergence-window iterations changed by less than this fraction (0 = run every iteration) [default: ${show(D.convergence ?? 0)}]`,
        })
        .option('convergence-window', { type: 'number', default: D.convergenceWindow ?? 10, describe: 'iterations per convergence window' })
        .option('fixed-mask', { type: 'string', describe: "label image on the fixed frame's grid: the similarity counts only where it is nonzero" })
        .option('moving-mask', {
          type: 'string',
          describe: 'label image (every frame) or a series of them named as the frames: a pixel counts only where it maps inside',
        })
        .option('lr', { type: 'number', array: true, describe: `AMSGrad learning rate per level [default: ${show(D.learningRate)}]` })
        .option('lambda', { type: 'number', array: true, describe: `regulariser weight per level [default: ${show(D.lambda)}]` })
        .option('order', { type: 'number', default: D.order, describe: 'B-spline order (3 = cubic)' })
        .option('loss', { type: 'string', choices: LOSS_NAMES, describe: `image similarity [default: ${show(D.loss)}]` })
        .option('regulariser', {
          type: 'string',
          choices: REGULARISER_NAMES,
          default: D.regulariser,
          describe: 'field regulariser (tv = isotropic TV, AirLab form)',
        })
        .option('lncc-window', { type: 'number', default: 9, describe: 'LNCC window side (odd, pixels)' })
        .option('mi-bins', { type: 'number', default: 32, describe: 'MI histogram bins' })
        .option('ngf-epsilon', { type: 'number', describe: 'NGF edge parameter (default: mean |∇F| of the fixed image)' })
        .option('init', {
          type: 'string',
          choices: INIT_KINDS,
          describe: `global stage before the B-spline: none, rigid, similarity or affine (centre-of-mass start) [default: ${show(D.init ?? 'none')}]`,
        })
        .option('init-iterations', {
          type: 'number',
          array: true,
          describe: `iterations per level of the global stage [default: ${show(D.initIterations ?? AFFINE_DEFAULTS.iterations)}]`,
        })
        .option('finest-sigma', {
          type: 'number',
          describe:
            'Gaussian σ (px of the full image) of both images at the finest level; 0 = none (AirLab) [default: 1.5 px per 256 px of the longer side, within 1..3, × 0.67..1 by the noise]',
        })
        .option('noise-adaptive', {
          type: 'boolean',
          default: true,
          describe:
            "adapt to each pair's noise (estimated, fraction of the 1st–99th percentile range): from 0.025 to 0.045 the --lambda weight rises ×1 → ×3 and the default finest σ ×0.67 → ×1 (--no-noise-adaptive: the fixed values)",
        })
        .option('max-size', {
          type: 'number',
          describe: `the finest level registers at most this many pixels along the longer side (down-sampled by 2, 4, …; the field is up-sampled to full resolution); 0 = full resolution [default: ${show(D.maxSize ?? 0)}]`,
        })
        .option('normalise', { type: 'boolean', default: true, describe: 'z-score intensities clamped to ±2 first (--no-normalise to skip)' })
        .option('force', { type: 'boolean', default: false, describe: 'redo frames already in --out (and replace a result of other settings)' })
        .option('shard', { type: 'string', describe: 'I/N: only frames whose index ≡ I (mod N), for array jobs' })
        .option('qc', { type: 'boolean', default: true, describe: 'write qc/<frame>.png (fixed, moving, warped, differences, checkerboard)' })
        .option('json', { type: 'boolean', default: false, describe: 'print the run report as JSON' })
        .example('$0 baseline bspline data/series-01/frames --out results/bspline-01', 'a series, fixed frame chosen automatically')
        .example('$0 baseline bspline --fixed ref.png --moving mov.png --out results/pair', 'one pair')
        .example('$0 baseline bspline series/ --out res --shard 3/8', 'the 4th of 8 array jobs; rerun without --shard to finish the summary'),
      {
        'Input and output:': [
          'fixed',
          'moving',
          'out',
          'fixed-frame',
          'fixed-frame-criterion',
          'fixed-mask',
          'moving-mask',
          'format',
          'stack',
          'write-inverse',
          'force',
          'json',
        ],
        'Method:': [
          'preset',
          'levels',
          'spacing',
          'spacing-mm',
          'iterations',
          'lr',
          'lambda',
          'order',
          'loss',
          'regulariser',
          'lncc-window',
          'mi-bins',
          'ngf-epsilon',
          'init',
          'init-iterations',
        ],
        'Speed:': ['backend', 'threads', 'jobs', 'shard', 'max-size', 'samples', 'seed', 'convergence', 'convergence-window'],
        'Quality control:': ['qc'],
        'Image preparation:': ['finest-sigma', 'noise-adaptive', 'normalise'],
      },
    ) as never,
  handler: async (argv) => {
    const pair = argv.fixed !== undefined || argv.moving !== undefined;
    let input: JobInput;
    if (pair) {
      if (argv.series?.length) throw new UserError('give either a series or --fixed/--moving (pair mode), not both');
      if (!argv.fixed || !argv.moving?.length) throw new UserError('pair mode needs both --fixed FILE and --moving FILE');
      input = { kind: 'pair', fixed: argv.fixed, moving: argv.moving.map(String) };
    } else {
      if (!argv.series?.length) throw new UserError('name a series (directory, 3D file or DICOM directory) or use --fixed F --moving M');
      input = { kind: 'series', series: argv.series[0], fixedFrame: argv['fixed-frame'], criterion: argv['fixed-frame-criterion'] };
    }
    const shard = parseShard(argv.shard);
    const P: BsplineOptions = { ...D, initIterations: D.initIterations ?? AFFINE_DEFAULTS.iterations, ...BSPLINE_PRESETS[argv.preset].options };
    const options: BsplineOptions = {
      levels: argv.levels,
      spacing: argv.spacing ?? P.spacing,
      // --spacing given here beats a preset's spacing in mm
      ...((argv['spacing-mm'] ?? (argv.spacing ? undefined : P.spacingMm)) ? { spacingMm: argv['spacing-mm'] ?? P.spacingMm } : {}),
      iterations: argv.iterations ?? P.iterations,
      learningRate: argv.lr ?? P.learningRate,
      lambda: argv.lambda ?? P.lambda,
      order: argv.order,
      loss: argv.loss ?? P.loss,
      lossOptions: { window: argv['lncc-window'], bins: argv['mi-bins'], epsilon: argv['ngf-epsilon'] },
      regulariser: argv.regulariser,
      normalise: argv.normalise,
      noiseAdaptive: argv['noise-adaptive'],
      finestSigma: argv['finest-sigma'] ?? P.finestSigma,
      maxSize: argv['max-size'] ?? P.maxSize ?? 0,
      init: argv.init ?? P.init,
      initIterations: argv['init-iterations'] ?? P.initIterations,
      samples: argv.samples ?? P.samples ?? 0,
      seed: argv.seed,
      convergence: argv.convergence ?? P.convergence ?? 0,
      convergenceWindow: argv['convergence-window'],
    };
    // what the command runs (tfjs, itk-wasm), loaded now: --help loads none of it
    const { readMaskSet } = await import('../io/masks.js');
    const { bsplineRegistrar } = await import('../app/bspline.js');
    const { runFrames } = await import('../app/run-frames.js');
    const masks = {
      fixed: argv['fixed-mask'] ? await readMaskSet(argv['fixed-mask']) : null,
      moving: argv['moving-mask'] ? await readMaskSet(argv['moving-mask']) : null,
    };
    const registrar = bsplineRegistrar(options, masks);
    const ctx = makeContext(argv);
    const backend = await startBackend(argv, ctx, { what: 'baseline bspline' });
    const jobs = resolveJobs(argv, backend, ctx);
    const stop = stopOnSignals('stopping after this frame: the results so far are kept, the same command continues');
    // what every frame's run shares, one series or several
    const run = {
      ...frameRunOptions(argv, {
        signal: stop.signal,
        shard,
        backend: backend.name,
        jobs: { count: jobs, spec: { kind: 'bspline' as const, options, masks }, backend: backend.name as BackendChoice },
      }),
      summaryExtra: { backendDetail: backendDetail(backend) },
    };
    if (!pair && argv.series!.length > 1) {
      const { runManyCommand } = await import('./many.js');
      await runManyCommand({
        label: 'bspline',
        series: argv.series!,
        out: argv.out,
        registrar,
        ctx,
        json: argv.json,
        afterRun: () => writeSettings(argv.out, argv as unknown as Record<string, unknown>, ['series']),
        run: { ...run, fixedFrame: argv['fixed-frame'], criterion: argv['fixed-frame-criterion'] },
      }).finally(() => stop.dispose());
      return;
    }
    let bar = ctx.progress('bspline', 1);
    const report = await runFrames(input, registrar, {
      ...run,
      out: argv.out,
      onStart: (s) => {
        ctx.log.info(s, 'bspline start');
        bar.stop();
        bar = ctx.progress('bspline', Math.max(1, s.units));
      },
      onTick: (info, by) => bar.tick(by ?? 1, info),
      onFrame: (f) => ctx.log.info(f, 'frame registered'),
    }).finally(() => {
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
    const mean = (k: 'seconds' | 'madBefore' | 'madAfter') => report.registered.reduce((a, f) => a + f[k], 0) / Math.max(n, 1);
    const lines = [
      `method       bspline (${backend.name})`,
      `fixed frame  ${report.fixedFrame} (${report.fixedFrameSource})`,
      `registered   ${n} frame(s)${n ? `, ${fmt(mean('seconds'), 2)} s per frame` : ''}${report.skipped.length ? `; ${report.skipped.length} already done (kept; --force to redo)` : ''}`,
    ];
    if (n) lines.push(`mean |F−M|   before ${fmt(mean('madBefore'), 4)}  after ${fmt(mean('madAfter'), 4)}  (raw intensity units, inside the moving frame)`);
    if (report.registered[0]) lines.push(`parameters   ${report.registered[0].parameters} per frame`);
    lines.push(
      `result       ${report.out}${report.complete ? '' : `  (incomplete: ${report.missing.length} frame(s) to do${shard ? ' by other shards' : ''})`}`,
    );
    if (report.complete)
      lines.push(
        `series       ${argv.stack ? 'warped.nii.gz, fields.nii.gz (every frame, time last), ' : ''}motion.csv, qc/motion.png${argv['write-inverse'] ? ', inverse/' : ''}`,
      );
    process.stdout.write(lines.join('\n') + '\n');
    const e = framesInterrupted(report);
    if (e) throw e;
  },
};

export const baselineCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'baseline <method>',
  describe: 'classical registration baselines (bspline)',
  builder: (y) => y.command(bspline as never).demandCommand(1, 'name the baseline: bspline') as never,
  handler: () => undefined,
};
