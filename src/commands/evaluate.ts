import type { CommandModule } from 'yargs';
import { stringify } from 'csv-stringify/sync';
import { UserError } from '../errors.js';
import type { TreEvaluation } from '../app/evaluate-tre.js';
import type { TreStats } from '../core/metrics/tre.js';
import { writeTextAtomic } from '../io/atomic.js';
import { type GlobalArgs, makeContext, fmt, printJson } from './common.js';

interface TreArgs extends GlobalArgs {
  mask?: string;
  strict: boolean;
  landmarks: string;
  result?: string;
  series?: string;
  'fixed-frame'?: string;
  'fixed-frame-criterion': 'image' | 'intensity';
  json: boolean;
  csv?: string;
  'per-frame': boolean;
}

const cell = (s: TreStats | null, key: keyof TreStats) => (s ? fmt(s[key] as number | null) : '–');

/** The text report of `evaluate tre`: a per-frame table, then overall statistics. */
export function formatTreTable(ev: TreEvaluation, perFrame = true): string {
  const r = ev.report;
  const hasAfter = r.after !== null;
  const out: string[] = [];
  out.push(
    `fixed frame: ${ev.fixedFrame} (${ev.fixedFrameSource})${ev.method ? `   method: ${ev.method}` : ''}   landmarks: ${r.before.n} in ${r.frames.length} frames`,
  );
  if (ev.mask) out.push(`mask: ${ev.mask} (${ev.landmarksInMask} of ${ev.landmarksTotal} landmarks inside)`);
  const w = Math.max(16, ...r.frames.map((f) => f.name.length));
  if (perFrame) {
    out.push('');
    out.push(
      `${'frame'.padEnd(w)} ${'n'.padStart(3)}  ${'before mm'.padStart(16)}${hasAfter ? `  ${'after mm'.padStart(16)}` : ''}  ${'before px'.padStart(9)}${hasAfter ? `  ${'after px'.padStart(9)}` : ''}`,
    );
    for (const f of r.frames) {
      const b = `${fmt(f.before.mean_mm)} ± ${fmt(f.before.std_mm)}`;
      const a = f.after ? `${fmt(f.after.mean_mm)} ± ${fmt(f.after.std_mm)}` : '';
      out.push(
        `${f.name.padEnd(w)} ${String(f.before.n).padStart(3)}  ${b.padStart(16)}${hasAfter ? `  ${a.padStart(16)}` : ''}  ${fmt(f.before.mean_px).padStart(9)}${hasAfter ? `  ${fmt(f.after?.mean_px).padStart(9)}` : ''}`,
      );
    }
  }
  out.push('');
  out.push(`overall    ${'before mm'.padStart(10)}${hasAfter ? '   after mm' : ''}  ${'before px'.padStart(9)}${hasAfter ? '   after px' : ''}`);
  for (const [label, key] of [
    ['mean', 'mean'],
    ['std', 'std'],
    ['median', 'median'],
    ['p90', 'p90'],
    ['max', 'max'],
  ] as const) {
    const mm = `${key}_mm` as keyof TreStats;
    const px = `${key}_px` as keyof TreStats;
    out.push(
      `${label.padEnd(8)}   ${cell(r.before, mm).padStart(10)}${hasAfter ? `  ${cell(r.after, mm).padStart(9)}` : ''}  ${cell(r.before, px).padStart(9)}${hasAfter ? `  ${cell(r.after, px).padStart(9)}` : ''}`,
    );
  }
  if (r.before.mean_px === null) out.push('(pixel figures need the image geometry: pass --series)');
  return out.join('\n') + '\n';
}

/** Per-landmark CSV: frame, landmark (1-based), before/after in mm and px. */
export function formatTreCsv(ev: TreEvaluation): string {
  const rows: (string | number)[][] = [['frame', 'landmark', 'before_mm', 'after_mm', 'before_px', 'after_px']];
  const v = (a: number[] | null, i: number) => (a ? String(a[i]) : '');
  for (const f of ev.frames)
    for (let i = 0; i < f.beforeMm.length; i++) rows.push([f.name, i + 1, v(f.beforeMm, i), v(f.afterMm, i), v(f.beforePx, i), v(f.afterPx, i)]);
  // RFC 4180: a frame name with a comma or quote is quoted
  return stringify(rows, { record_delimiter: 'unix' });
}

const treCommand: CommandModule<GlobalArgs, TreArgs> = {
  command: 'tre',
  describe: 'landmark target registration error, before and (with --result) after registration',
  builder: (y) =>
    y
      .option('landmarks', { type: 'string', demandOption: true, describe: 'directory with one landmark file per frame (frame stem + .csv/.txt/.pts)' })
      .option('result', { type: 'string', describe: 'result directory (summary.json + fields/) to evaluate after registration' })
      .option('series', { type: 'string', describe: 'the series (for pixel landmarks, pixel figures and an automatic fixed frame)' })
      .option('fixed-frame', { type: 'string', describe: "fixed frame NAME or 0-based INDEX (default: the result's, else auto from --series)" })
      .option('fixed-frame-criterion', {
        choices: ['image', 'intensity'] as const,
        default: 'image' as const,
        describe: 'auto fixed frame: closest image to the mean image, or closest mean intensity',
      })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object (before, after, frames)' })
      .option('csv', { type: 'string', describe: 'also write per-landmark errors to this CSV file' })
      .option('per-frame', { type: 'boolean', default: true, describe: 'print the per-frame table (--no-per-frame: overall only)' })
      .option('strict', {
        type: 'boolean',
        default: false,
        describe: 'make the warnings errors: a registered frame without a landmark file, landmarks outside the image',
      })
      .option('mask', {
        type: 'string',
        describe:
          "label image on the fixed frame's grid (nonzero = in), or a series of them named as the frames: only landmarks whose fixed position falls in it count",
      })
      .example('$0 evaluate tre --landmarks s/landmarks --series s/frames', 'identity TRE, fixed frame chosen automatically')
      .example('$0 evaluate tre --landmarks s/landmarks --result out --json', 'TRE before/after a registration, as JSON') as never,
  handler: async (argv) => {
    const { evaluateTre } = await import('../app/evaluate-tre.js');
    const ctx = makeContext(argv);
    const ev = await evaluateTre({
      landmarks: argv.landmarks,
      result: argv.result,
      series: argv.series,
      fixedFrame: argv['fixed-frame'],
      fixedFrameCriterion: argv['fixed-frame-criterion'],
      mask: argv.mask,
      warn: (msg) => {
        if (argv.strict) throw new UserError(`${msg} (an error with --strict)`);
        ctx.log.debug(msg);
        if (!ctx.quiet) process.stderr.write(`warning: ${msg}\n`);
      },
    });
    if (argv.csv) await writeTextAtomic(argv.csv, formatTreCsv(ev));
    if (argv.json) {
      printJson({
        fixedFrame: ev.fixedFrame,
        fixedFrameSource: ev.fixedFrameSource,
        method: ev.method,
        landmarks: ev.landmarks,
        result: ev.result,
        convention: ev.convention,
        statistics: 'std: population (n); p90: linear interpolation; px: distance in continuous-index space',
        before: ev.report.before,
        after: ev.report.after,
        frames: ev.report.frames,
      });
    } else {
      process.stdout.write(formatTreTable(ev, argv['per-frame']));
    }
  },
};

interface JacobianArgs extends GlobalArgs {
  mask?: string;
  result: string;
  json: boolean;
  write: boolean;
}

const jacobianCommand: CommandModule<GlobalArgs, JacobianArgs> = {
  command: 'jacobian',
  describe: 'plausibility of the fields: Jacobian determinant per frame (folding %, SDlogJ, min, max)',
  builder: (y) =>
    y
      .option('result', { type: 'string', demandOption: true, describe: 'result directory (summary.json + fields/)' })
      .option('json', { type: 'boolean', default: false, describe: 'print as JSON' })
      .option('write', { type: 'boolean', default: false, describe: 'also write det J images to RESULT/jacobian/<frame>.nii.gz' })
      .option('mask', {
        type: 'string',
        describe: "label image on the fixed frame's grid (nonzero = in), or a series of them named as the frames: the statistics count only there",
      })
      .example('$0 evaluate jacobian --result results/bspline-01', 'folding and SDlogJ per frame') as never,
  handler: async (argv) => {
    const { evaluateJacobian } = await import('../app/evaluate-jacobian.js');
    const ctx = makeContext(argv);
    const bar = ctx.progress('jacobian', 1);
    const ev = await evaluateJacobian(argv.result, { write: argv.write, mask: argv.mask }).finally(() => bar.stop());
    if (argv.json)
      return printJson({
        ...ev,
        definition: 'det J of T(p) = p + u(p), central differences in mm; folding = det J <= 0; SDlogJ = std of log(clip(det J, 1e-9, 1e9))',
      });
    const w = Math.max(16, ...ev.frames.map((f) => f.name.length));
    const lines = [
      `method: ${ev.method}   fixed frame: ${ev.fixedFrame}   frames: ${ev.frames.length}${ev.mask ? `   mask: ${ev.mask}` : ''}`,
      '',
      `${'frame'.padEnd(w)}  folding %   SDlogJ   min detJ   max detJ`,
    ];
    for (const f of ev.frames)
      lines.push(
        `${f.name.padEnd(w)}  ${fmt(100 * f.folding, 3).padStart(9)}  ${fmt(f.sdLogJ, 4).padStart(7)}  ${fmt(f.min, 3).padStart(9)}  ${fmt(f.max, 3).padStart(9)}`,
      );
    const o = ev.overall;
    lines.push(
      '',
      `overall: folding ${fmt(100 * o.folding, 4)} % (${o.foldingPixels} px in ${o.framesWithFolding} frame(s)), SDlogJ ${fmt(o.sdLogJ, 4)}, det J ${fmt(o.min, 3)}..${fmt(o.max, 3)}`,
    );
    if (ev.written) lines.push(`det J images: ${ev.written}`);
    process.stdout.write(lines.join('\n') + '\n');
  },
};

interface CompareArgs extends GlobalArgs {
  results: string[];
  landmarks?: string;
  json: boolean;
}

const compareCommand: CommandModule<GlobalArgs, CompareArgs> = {
  command: 'compare <results..>',
  describe: 'several results side by side: TRE, SDlogJ, folding, seconds per frame, parameters, ratios to the first',
  builder: (y) =>
    y
      .positional('results', { type: 'string', array: true, describe: 'result directories (the first is the reference of the ratios)' })
      .option('landmarks', { type: 'string', describe: 'landmark directory (default: <series>/../landmarks of each result)' })
      .option('json', { type: 'boolean', default: false, describe: 'print as JSON' })
      .example('$0 evaluate compare res/r2n2-01 res/bspline-01 --landmarks data/series-01/landmarks', 'R2N2 vs B-spline on one series') as never,
  handler: async (argv) => {
    const { compareResults } = await import('../app/evaluate-compare.js');
    const ctx = makeContext(argv);
    const bar = ctx.progress('compare', argv.results.length);
    const c = await compareResults(argv.results.map(String), argv.landmarks, (r) => bar.tick(1, r)).finally(() => bar.stop());
    if (argv.json) return printJson({ ...c, entries: c.entries.map(({ treFrames: _perLandmark, ...e }) => e) });
    const mw = Math.max(10, ...c.rows.map((r) => r.method.length));
    const cw = Math.max(9, ...c.labels.map((l) => l.length));
    const lines = ['mean TRE (mm) per series', `${'method'.padEnd(mw)}  ${c.labels.map((l) => l.padStart(cw)).join('  ')}  ${'all'.padStart(7)}`];
    lines.push(`${'identity'.padEnd(mw)}  ${c.identity.map((v) => fmt(v, 3).padStart(cw)).join('  ')}  ${''.padStart(7)}`);
    for (const r of c.rows) lines.push(`${r.method.padEnd(mw)}  ${r.perSeries.map((v) => fmt(v, 3).padStart(cw)).join('  ')}  ${fmt(r.meanMm, 3).padStart(7)}`);
    lines.push(
      '',
      `${'method'.padEnd(mw)}  TRE mean ± std mm   median    p90    max   folding %  SDlogJ   s/frame  parameters   TRE ratio  time ratio  param ratio`,
    );
    for (const r of c.rows) {
      lines.push(
        `${r.method.padEnd(mw)}  ${`${fmt(r.meanMm, 3)} ± ${fmt(r.stdMm, 3)}`.padStart(17)}  ${fmt(r.medianMm, 3).padStart(7)} ${fmt(r.p90Mm, 3).padStart(6)} ${fmt(r.maxMm, 3).padStart(6)}  ${fmt(100 * r.folding, 3).padStart(9)}  ${fmt(r.sdLogJ, 4).padStart(6)}  ${fmt(r.secondsPerFrame, 3).padStart(8)}  ${fmt(r.parameters, 0).padStart(10)}  ${fmt(r.ratio.tre, 2).padStart(10)}  ${fmt(r.ratio.seconds, 2).padStart(10)}  ${fmt(r.ratio.parameters, 3).padStart(11)}`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  },
};

interface ReportArgs extends GlobalArgs {
  results: string[];
  landmarks?: string;
  out: string;
  frames?: string[];
  magnify: number;
  json: boolean;
}

const reportCommand: CommandModule<GlobalArgs, ReportArgs> = {
  command: 'report <results..>',
  describe: 'a self-contained HTML report: compare table, TRE box plots, pictures of chosen frames',
  builder: (y) =>
    y
      .positional('results', { type: 'string', array: true, describe: 'result directories (the first gives the series and frames pictured)' })
      .option('out', { type: 'string', demandOption: true, describe: 'report directory (index.html, img/)' })
      .option('landmarks', { type: 'string', describe: 'landmark directory (default: <series>/../landmarks of each result)' })
      .option('frames', { type: 'string', array: true, describe: 'frames to picture (default: the one with the largest identity TRE and the median one)' })
      .option('magnify', { type: 'number', default: 5, describe: 'magnification of the displacement in the deformed-grid pictures' })
      .option('json', { type: 'boolean', default: false, describe: 'print where the report is, as JSON' })
      .example('$0 evaluate report res/r2n2-01 res/bspline-01 --out report-01', 'open report-01/index.html in a browser') as never,
  handler: async (argv) => {
    const { writeReport } = await import('../app/report.js');
    const ctx = makeContext(argv);
    const r = await writeReport({
      results: argv.results.map(String),
      landmarks: argv.landmarks,
      out: argv.out,
      frames: argv.frames?.map(String),
      magnify: argv.magnify,
      onStep: (w) => ctx.log.info({ step: w }, 'report'),
    });
    if (argv.json) return printJson(r);
    process.stdout.write(`report  ${r.file} (${r.images} pictures of ${r.frames.join(', ')})\n`);
  },
};

interface DiceArgs extends GlobalArgs {
  mask?: string;
  result: string;
  labels: string;
  json: boolean;
}

const diceCommand: CommandModule<GlobalArgs, DiceArgs> = {
  command: 'dice',
  describe: 'Dice, DSC30 and HD95 per label: moving label maps warped (nearest neighbour) onto the fixed frame',
  builder: (y) =>
    y
      .option('result', { type: 'string', demandOption: true, describe: 'result directory' })
      .option('labels', { type: 'string', demandOption: true, describe: 'directory of label maps, one per frame, named like the frames' })
      .option('mask', {
        type: 'string',
        describe: "label image on the fixed frame's grid (nonzero = in), or a series of them named as the frames: labels outside it are not counted",
      })
      .option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as never,
  handler: async (argv) => {
    const { evaluateDice } = await import('../app/evaluate-dice.js');
    const ev = await evaluateDice(argv.result, argv.labels, { mask: argv.mask });
    if (argv.json) return printJson(ev);
    const lines = [
      `fixed frame: ${ev.fixedFrame}   frames with labels: ${ev.frames.length}${ev.mask ? `   mask: ${ev.mask}` : ''}`,
      '',
      'label   Dice before   Dice after   DSC30 before   DSC30 after   HD95 before   HD95 after (mm)',
    ];
    const mm = (v: number | null) => (v === null ? 'n/a' : fmt(v, 2));
    for (const p of ev.perLabel) {
      lines.push(
        `${String(p.label).padStart(5)}   ${fmt(p.before, 4).padStart(11)}   ${fmt(p.after, 4).padStart(10)}   ${fmt(p.dsc30Before, 4).padStart(12)}   ${fmt(p.dsc30After, 4).padStart(11)}   ${mm(p.hd95Before).padStart(11)}   ${mm(p.hd95After).padStart(10)}`,
      );
    }
    lines.push(`mean    ${fmt(ev.meanBefore, 4).padStart(11)}   ${fmt(ev.meanAfter, 4).padStart(10)}`);
    lines.push('', 'DSC30: the 30% quantile of Dice over the frames (Learn2Reg robustness); HD95: 95th-percentile Hausdorff distance, mean over frames');
    process.stdout.write(lines.join('\n') + '\n');
  },
};

export const evaluateCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'evaluate <what>',
  describe: 'accuracy and plausibility figures of a registration (tre, jacobian, compare, report, dice)',
  builder: (y) =>
    y
      .command(treCommand as never)
      .command(jacobianCommand as never)
      .command(compareCommand as never)
      .command(reportCommand as never)
      .command(diceCommand as never)
      .demandCommand(1, 'name what to evaluate: tre, jacobian, compare, report, dice') as never,
  handler: () => undefined,
};
