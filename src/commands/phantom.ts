import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { type GlobalArgs, makeContext, fmt, printJson } from './common.js';

interface Args extends GlobalArgs {
  out: string;
  series: number;
  frames: number;
  size: number;
  seed: number;
  truth: boolean;
  force: boolean;
  json: boolean;
}

export const phantomCommand: CommandModule<GlobalArgs, Args> = {
  command: 'phantom',
  describe: 'write synthetic 2D+t breathing-chest series with exact landmarks',
  builder: (y) =>
    y
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (series-NN/ inside)' })
      .option('series', { type: 'number', default: 4, describe: 'number of series' })
      .option('frames', { type: 'number', default: 140, describe: 'frames per series' })
      .option('size', { type: 'number', default: 256, describe: 'width and height in pixels (field of view 384 mm)' })
      .option('seed', { type: 'number', default: 1, describe: 'random seed (anatomy, motion, noise)' })
      .option('truth', { type: 'boolean', default: false, describe: 'also write the true fields as a result directory series-NN/truth/' })
      .option('force', { type: 'boolean', default: false, describe: 'regenerate series that already exist' })
      .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' })
      .example('$0 phantom --out data --series 2 --frames 60', 'two series of 60 frames') as never,
  handler: async (argv) => {
    const { generatePhantoms } = await import('../app/phantom.js');
    for (const k of ['series', 'frames', 'size'] as const) {
      if (!Number.isInteger(argv[k]) || argv[k] < 1) throw new UserError(`--${k} must be a positive integer, got ${argv[k]}`);
    }
    if (argv.frames < 2) throw new UserError('--frames must be at least 2 (a series registers frames to one of them)');
    if (argv.size < 32) throw new UserError('--size must be at least 32 pixels');
    if (!Number.isInteger(argv.seed)) throw new UserError(`--seed must be an integer, got ${argv.seed}`);
    const ctx = makeContext(argv);
    const bar = ctx.progress('phantom', argv.series * argv.frames);
    const infos = await generatePhantoms({ ...argv, onFrame: (s, t) => bar.tick(1, `series ${s} frame ${t}`) }).finally(() => bar.stop());
    ctx.log.info({ series: infos.length, out: argv.out }, 'phantom written');
    if (argv.json) return printJson({ out: argv.out, series: infos });
    const lines = [`series     frames  size  spacing(mm)  diaphragm(mm)  landmarks  dir`];
    for (const s of infos) {
      lines.push(
        `${s.name.padEnd(10)} ${String(s.frames).padStart(6)}  ${String(s.size).padStart(4)}  ${fmt(s.spacingMm, 3).padStart(11)}  ${fmt(s.diaphragmMm, 1).padStart(13)}  ${String(s.landmarks).padStart(9)}  ${s.dir}${s.skipped ? '  (already there, kept)' : ''}`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  },
};
