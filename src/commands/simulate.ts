import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { MOTION_KINDS, type MotionKind } from '../core/phantom/simulate.js';
import type { Point } from '../core/image/geometry.js';
import { type GlobalArgs, makeContext, fmt, printJson } from './common.js';

interface Args extends GlobalArgs {
  image: string;
  out: string;
  frame?: string;
  motion: MotionKind;
  frames: number;
  amplitude?: number;
  cycles?: number;
  noise: number;
  drift: number;
  seed: number;
  landmarks: number;
  centre?: string;
  'edge-y'?: number;
  'half-width'?: number;
  radius?: number;
  twist?: number;
  force: boolean;
  json: boolean;
}

function parsePoint(s: string, flag: string): Point {
  const v = s.split(',').map((x) => Number(x.trim()));
  if (v.length !== 2 || !v.every(Number.isFinite)) throw new UserError(`${flag} takes x,y in mm (e.g. ${flag} 12.5,-30), got "${s}"`);
  return [v[0], v[1]];
}

export const simulateCommand: CommandModule<GlobalArgs, Args> = {
  command: 'simulate <image>',
  describe: 'make a 2D+t series with known motion from a real image: frames, exact landmarks and the true fields',
  builder: (y) =>
    y
      .positional('image', { type: 'string', describe: 'a 2D image, or a series (directory or 3D file) with --frame' })
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (frames/, landmarks/, truth/, simulate.json)' })
      .option('frame', { type: 'string', describe: 'the frame of a series to animate: name or 0-based index [default: 0]' })
      .option('motion', {
        choices: MOTION_KINDS,
        default: 'breathing' as MotionKind,
        describe:
          'breathing: cranio-caudal, largest at a diaphragm-like edge, sliding at the sides; cardiac: radial contraction and twist about --centre; random: smooth random field',
      })
      .option('frames', { type: 'number', default: 20, describe: 'frames in the series' })
      .option('amplitude', { type: 'number', describe: 'peak displacement, mm [default: breathing 12, cardiac 6, random 4]' })
      .option('cycles', { type: 'number', describe: 'motion cycles over the series [default: breathing 2, cardiac 1, random 1]' })
      .option('noise', { type: 'number', default: 0.01, describe: "Gaussian noise std, fraction of the image's 1st–99th percentile range" })
      .option('drift', { type: 'number', default: 0.03, describe: 'slow intensity drift, fraction of the intensity' })
      .option('seed', { type: 'number', default: 1, describe: 'random seed (waveform, random field, noise)' })
      .option('landmarks', { type: 'number', default: 40, describe: 'landmarks at salient points (Shi–Tomasi corners)' })
      .option('centre', { type: 'string', describe: 'motion centre x,y in mm [default: the image centre]' })
      .option('edge-y', { type: 'number', describe: 'breathing: y (mm) of the diaphragm-like edge [default: the strongest horizontal edge]' })
      .option('half-width', { type: 'number', describe: 'breathing: half-width (mm) of the moving band [default: 35% of the field of view]' })
      .option('radius', { type: 'number', describe: 'cardiac: radius (mm) of the largest contraction [default: 12% of the field of view]' })
      .option('twist', { type: 'number', describe: 'cardiac: twist at the centre, degrees [default: 6]' })
      .option('force', { type: 'boolean', default: false, describe: 'replace --out even when it holds something else' })
      .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' })
      .example('$0 simulate slice.mha --out sim/breath --motion breathing --frames 20', 'a breathing series from one image')
      .example('$0 simulate dicom/SCD0000101 --frame 79 --motion cardiac --out sim/heart', 'a cardiac series from one frame of a DICOM series') as never,
  handler: async (argv) => {
    const { simulate } = await import('../app/simulate.js');
    for (const k of ['frames', 'landmarks'] as const) {
      if (!Number.isInteger(argv[k]) || argv[k] < 1) throw new UserError(`--${k} must be a positive integer, got ${argv[k]}`);
    }
    if (argv.frames < 2) throw new UserError('--frames must be at least 2 (a series registers frames to one of them)');
    if (!Number.isInteger(argv.seed)) throw new UserError(`--seed must be an integer, got ${argv.seed}`);
    for (const k of ['amplitude', 'cycles', 'half-width', 'radius'] as const) {
      const v = argv[k];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new UserError(`--${k} must be a positive number, got ${v}`);
    }
    for (const k of ['noise', 'drift'] as const) if (!(Number.isFinite(argv[k]) && argv[k] >= 0)) throw new UserError(`--${k} must be ≥ 0, got ${argv[k]}`);
    const ctx = makeContext(argv);
    const bar = ctx.progress('simulate', argv.frames);
    const info = await simulate({
      image: argv.image,
      out: argv.out,
      frame: argv.frame,
      motion: argv.motion,
      frames: argv.frames,
      seed: argv.seed,
      amplitudeMm: argv.amplitude,
      cycles: argv.cycles,
      noise: argv.noise,
      drift: argv.drift,
      landmarks: argv.landmarks,
      centre: argv.centre ? parsePoint(argv.centre, '--centre') : undefined,
      edgeY: argv['edge-y'],
      halfWidthMm: argv['half-width'],
      radiusMm: argv.radius,
      twistDeg: argv.twist,
      force: argv.force,
      onFrame: (t) => bar.tick(1, `frame ${t}`),
    }).finally(() => bar.stop());
    ctx.log.info({ out: info.out, frames: info.frames }, 'simulated series written');
    if (argv.json) return printJson(info);
    process.stdout.write(
      [
        `series     ${info.out}${info.skipped ? '  (already there, kept)' : ''}`,
        `frames     ${info.frames} of ${info.size.join('×')} px, spacing ${info.spacingMm.map((v) => fmt(v, 3)).join('×')} mm`,
        `motion     ${info.motion}, amplitude ${fmt(info.amplitudeMm, 2)} mm`,
        `landmarks  ${info.landmarks}; from the fixed frame ${info.fixedFrame}: mean ${fmt(info.meanMotionMm, 3)} mm, max ${fmt(info.maxMotionMm, 3)} mm`,
        `truth      ${info.out}/truth (inverse residual ≤ ${info.maxInverseResidualMm.toExponential(1)} mm)`,
      ].join('\n') + '\n',
    );
  },
};
