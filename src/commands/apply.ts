import type { CommandModule } from 'yargs';
import type { PointsFrom } from '../app/apply.js';
import { INTERPOLATIONS, LABEL_INTERPOLATIONS, type Interpolation, type LabelInterpolation } from '../core/transformation/interpolations.js';
import { type GlobalArgs, makeContext, fmt, printJson } from './common.js';

interface Args extends GlobalArgs {
  result: string;
  out: string;
  images?: string;
  interpolation: Interpolation;
  labels?: string;
  'label-interpolation': LabelInterpolation;
  points?: string;
  'points-from': PointsFrom;
  'write-inverse': boolean;
  stack: boolean;
  force: boolean;
  json: boolean;
}

export const applyCommand: CommandModule<GlobalArgs, Args> = {
  command: 'apply',
  describe: "apply a result's transformations to other images, label maps or points of the same frames (and write inverse fields)",
  builder: (y) =>
    y
      .option('result', { type: 'string', demandOption: true, describe: 'a result directory (register series, baseline bspline, phantom/simulate truth)' })
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (images/, labels/, points/, inverse/, the stacks, apply.json)' })
      .option('images', { type: 'string', describe: 'a series on the same frames (another contrast, a processed copy): each frame pulled onto the fixed grid' })
      .option('interpolation', {
        choices: INTERPOLATIONS,
        default: 'linear' as Interpolation,
        describe: 'for --images: nearest, linear, or cubic (Keys, a = −0.5)',
      })
      .option('labels', { type: 'string', describe: 'a series of label maps on the same frames (0 = background)' })
      .option('label-interpolation', {
        choices: LABEL_INTERPOLATIONS,
        default: 'nearest' as LabelInterpolation,
        describe: 'for --labels: nearest, or linear (each label interpolated, the largest kept)',
      })
      .option('points', {
        type: 'string',
        describe: 'a landmark file (the same points for every frame) or a directory of them named as the frames (CSV x,y mm; elastix point/index files)',
      })
      .option('points-from', {
        choices: ['fixed', 'moving'] as PointsFrom[],
        default: 'fixed' as PointsFrom,
        describe:
          "fixed: fixed-frame points mapped into every frame (p + u(p)); moving: each frame's points mapped to the fixed frame through the inverse field",
      })
      .option('write-inverse', {
        type: 'boolean',
        default: false,
        describe: 'write inverse/<frame>.nii.gz: the inverse of each field (fixed-point iteration; its residual is in apply.json)',
      })
      .option('stack', {
        type: 'boolean',
        default: true,
        describe: 'also write images.nii.gz / labels.nii.gz: every frame in series order, time as the last axis',
      })
      .option('force', { type: 'boolean', default: false, describe: 'redo every frame (and replace an apply result of other settings)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the report (apply.json) as JSON' })
      .example('$0 apply --result res/bspline --labels data/labels --out res/labels', 'contours drawn on each frame, brought to the fixed frame')
      .example('$0 apply --result res/bspline --points fixed_landmarks.csv --out res/tracked', "where the fixed frame's points are in every frame")
      .example('$0 apply --result res/bspline --images data/t2 --interpolation cubic --out res/t2', 'another contrast of the same frames, corrected') as never,
  handler: async (argv) => {
    const { applyResult } = await import('../app/apply.js');
    const ctx = makeContext(argv);
    const started = performance.now();
    let bar = ctx.progress('apply', 1);
    const report = await applyResult({
      result: argv.result,
      out: argv.out,
      images: argv.images,
      interpolation: argv.interpolation,
      labels: argv.labels,
      labelInterpolation: argv['label-interpolation'],
      points: argv.points,
      pointsFrom: argv['points-from'],
      writeInverse: argv['write-inverse'],
      stack: argv.stack,
      force: argv.force,
      onStart: (n) => {
        bar.stop();
        bar = ctx.progress('apply', n);
      },
      onFrame: (f) => bar.tick(1, `${f.frame}${f.skipped ? ' (done before)' : ''}`),
    }).finally(() => bar.stop());
    ctx.log.info({ out: argv.out, frames: report.frames.length, skipped: report.skipped.length }, 'apply done');
    if (argv.json) return printJson(report);
    const inv = report.frames.map((f) => f.inverseResidualMaxPx).filter((v): v is number => v !== undefined);
    const lines = [
      `applied    ${argv.result} → ${argv.out}: ${report.frames.length} frames (fixed frame ${report.fixedFrame} as itself)${report.skipped.length ? `, ${report.skipped.length} done before` : ''}`,
      ...(report.settings.images
        ? [
            `images     ${argv.out}/images/ (${argv.interpolation}; frames matched by ${report.matchedBy.images})${argv.stack ? ` and ${argv.out}/images.nii.gz` : ''}`,
          ]
        : []),
      ...(report.settings.labels
        ? [
            `labels     ${argv.out}/labels/ (${argv['label-interpolation']}; matched by ${report.matchedBy.labels})${argv.stack ? ` and ${argv.out}/labels.nii.gz` : ''}`,
          ]
        : []),
      ...(report.settings.points
        ? [`points     ${argv.out}/points/ (${argv['points-from'] === 'fixed' ? 'fixed frame → each frame' : 'each frame → fixed frame, through the inverse'})`]
        : []),
      ...(inv.length
        ? [
            `inverse    |T(T⁻¹(q)) − q| at most ${fmt(Math.max(...inv), 4)} px over ${inv.length} frames${argv['write-inverse'] ? ` (${argv.out}/inverse/)` : ''}`,
          ]
        : []),
      `took       ${fmt((performance.now() - started) / 1000, 1)} s`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  },
};
