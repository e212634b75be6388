/** `r2n2 synth`: generated training pairs written for a person to look at (app/synth.ts); the `--synth-*` options shared with `train`. */
import type { Argv, CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { SYNTH_DEFAULTS, type SynthSettings, checkSynthSettings } from '../app/train-settings.js';
import { type MotionKind, MOTION_KINDS } from '../core/synth/fields.js';
import { type GlobalArgs, fmt, makeContext, printJson } from './common.js';

export interface SynthArgs {
  'synth-motion'?: string[];
  'synth-amplitude': number;
  'synth-noise': number;
  'synth-labels'?: number[];
}

const SY = SYNTH_DEFAULTS;

/** How generated pairs are made: the same options for `train` and `synth`. */
export function synthOptions<T>(y: Argv<T>) {
  return y
    .option('synth-motion', {
      type: 'string',
      array: true,
      describe: `motion kinds of generated pairs (each pair's field sums 1–3): ${MOTION_KINDS.join(' ')} [default: all]`,
    })
    .option('synth-amplitude', {
      type: 'number',
      default: SY.amplitude,
      describe: "largest displacement of a generated pair, fraction of the image's side (each pair's log-uniform in [a/10, a])",
    })
    .option('synth-noise', { type: 'number', default: SY.noise, describe: 'largest noise std per generated frame (normalised intensity units)' })
    .option('synth-labels', { type: 'number', array: true, describe: `fewest and most labels of a synthetic image [default: ${SY.labels.join(' ')}]` });
}

/** The generated-pair settings of the parsed options, checked. */
export function synthSettings(argv: SynthArgs): SynthSettings {
  const labels = argv['synth-labels'];
  if (labels && labels.length !== 2) throw new UserError(`--synth-labels takes two numbers (fewest, most), got ${labels.length}`);
  const s: SynthSettings = {
    kinds: (argv['synth-motion'] as MotionKind[] | undefined) ?? SY.kinds,
    amplitude: argv['synth-amplitude'],
    noise: argv['synth-noise'],
    labels: (labels as [number, number] | undefined) ?? SY.labels,
  };
  checkSynthSettings(s);
  return s;
}

interface Args extends GlobalArgs, SynthArgs {
  stills: string[];
  out: string;
  count: number;
  size: number;
  seed: number;
  force: boolean;
  json: boolean;
}

export const synthCommand: CommandModule<GlobalArgs, Args> = {
  command: 'synth [stills..]',
  describe: 'write generated training pairs (what train --synth / --stills learns from) with their true fields and an overview picture',
  builder: (y) =>
    synthOptions(
      y
        .positional('stills', {
          type: 'string',
          array: true,
          default: [],
          describe: 'still images (files, or directories searched recursively) to set in motion; none: synthetic label images',
        })
        .option('out', { type: 'string', demandOption: true, describe: 'output directory (pair_KKK/, overview.png, synth.json)' })
        .option('count', { type: 'number', default: 16, describe: 'pairs to write' })
        .option('size', { type: 'number', default: 128, describe: "side of the pairs in pixels (the network's image size)" })
        .option('seed', { type: 'number', default: 1, describe: 'random seed: the same settings write the same pairs' })
        .option('force', { type: 'boolean', default: false, describe: 'replace --out when it is not empty' })
        .option('json', { type: 'boolean', default: false, describe: 'print the summary as JSON' }),
    )
      .example('$0 synth --out samples', '16 synthetic label-image pairs with their true fields')
      .example('$0 synth scouts/ --out samples --synth-motion sliding --count 8', 'real stills with breathing-like sliding motion') as never,
  handler: async (argv) => {
    const { synth } = await import('../app/synth.js');
    const settings = synthSettings(argv);
    const ctx = makeContext(argv);
    const bar = ctx.progress('synth', argv.count);
    const info = await synth({
      out: argv.out,
      stills: (argv.stills ?? []).map(String),
      count: argv.count,
      size: argv.size,
      seed: argv.seed,
      synth: settings,
      force: argv.force,
      onPair: (k) => bar.tick(1, `pair ${k}`),
    }).finally(() => bar.stop());
    if (argv.json) return printJson(info);
    process.stdout.write(
      [
        `pairs      ${info.out}: ${info.pairs} of ${info.size}×${info.size} px (pair_*/fixed.nrrd, moving.nrrd, field.nii.gz)`,
        `motion     amplitude mean ${fmt(info.meanAmplitudePx, 2)} px, largest ${fmt(info.maxAmplitudePx, 2)} px`,
        `check      mean |fixed − moving| ${fmt(info.differenceBefore, 4)} → ${fmt(info.residualAfterTruth, 4)} through the true field`,
        `overview   ${info.out}/overview.png (fixed | moving | moving through the true field | difference)`,
      ].join('\n') + '\n',
    );
  },
};
