// `npm run bench -- [suites..] [flags]`: benchmarks, measured side by side in one run and printed
// as ratios (never timed unit tests). `npm run bench -- --help` lists the suites and flags.
//   io               read a 140-frame 256² phantom series in each format; itk-wasm calls with kept
//                    pipeline modules (src/io/itk.ts) vs its public functions
//   bspline          our B-spline vs elastix (@itk-wasm/elastix): TRE and seconds per pair
//   bspline-profile  where one 256² B-spline registration spends its time
//   r2n2             R2N2 (--model) vs B-spline vs elastix on held-out phantom series
//   r2n2-models      models or training checkpoints (--models) side by side on the model-selection
//                    seeds (not in the default run)
//   real             every method on real images (Sunnybrook Dice, simulate TRE) against native
//                    elastix (not in the default run; see bench/real.ts)
//   gaussian-bound   T Gaussians fitted to the true field: what T steps can represent (slow; not in
//                    the default run)
// Results are also written as JSON to bench/results/<suite>-<date>.json; a later run on the same
// day never overwrites an earlier one: it writes <suite>-<date>-run2.json, -run3.json, ...
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { makePhantomSeries } from '../dist/core/phantom/phantom.js';
import { writeImage2D } from '../dist/io/image.js';
import { itkRead, itkWrite, itkDicomTags, itkKeepsModules } from '../dist/io/itk.js';
import { readImageNode, writeImageNode } from '@itk-wasm/image-io';
import { readDicomTagsNode } from '@itk-wasm/dicom';
import { Image, ImageType, IntTypes, PixelTypes } from 'itk-wasm';
import type { Geometry } from '../dist/core/image/geometry.js';
import { openSeries } from '../dist/io/series.js';
import { autoFixedFrame } from '../dist/app/fixed-frame.js';
import { bsplineSuite, bsplineProfileSuite } from './bspline.js';
import { r2n2Suite } from './r2n2.js';
import { r2n2ModelsSuite } from './r2n2-models.js';
import { gaussianBoundSuite } from './gaussian-bound.js';
import { realSuite } from './real.js';

import { BUNDLED_MODEL, ROOT, median, type BenchOptions } from './common.js';

async function io({ frames = 140, size = 256, repeats = 3 } = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'r2n2-bench-io-'));
  const s = makePhantomSeries({ size, frames, seed: 1 });
  const formats = ['nrrd', 'nii.gz', 'nii', 'mha'];
  const rendered = [];
  for (let t = 0; t < frames; t++) rendered.push(s.renderFrame(t));
  for (const ext of formats) {
    for (let t = 0; t < frames; t++)
      await writeImage2D(path.join(dir, ext, `frame_${String(t).padStart(3, '0')}.${ext}`), { geometry: s.geometry, data: rendered[t] });
  }
  const rows = [];
  for (const ext of formats) {
    const open: number[] = [],
      read: number[] = [],
      fixed: number[] = [];
    for (let r = 0; r < repeats; r++) {
      let t0 = performance.now();
      const series = await openSeries(path.join(dir, ext));
      open.push(performance.now() - t0);
      t0 = performance.now();
      for (let i = 0; i < series.frames.length; i++) await series.readFrame(i);
      read.push(performance.now() - t0);
      t0 = performance.now();
      await autoFixedFrame(series);
      fixed.push(performance.now() - t0);
    }
    rows.push({
      format: ext,
      frames,
      size,
      openHeadersMs: median(open),
      readAllMs: median(read),
      msPerFrame: median(read) / frames,
      autoFixedFrameMs: median(fixed),
    });
  }
  const calls = await keptVsPublic(dir, s, rendered);
  await fs.rm(dir, { recursive: true, force: true });
  const base = rows[0].readAllMs;
  console.log(`read a ${frames}-frame ${size}² series (median of ${repeats}; open = header check of every frame)`);
  console.log('format    open ms   read ms   ms/frame   fixed-frame ms   read ratio vs nrrd');
  for (const r of rows) {
    console.log(
      `${r.format.padEnd(8)} ${r.openHeadersMs.toFixed(0).padStart(8)} ${r.readAllMs.toFixed(0).padStart(9)} ${r.msPerFrame.toFixed(1).padStart(10)} ${r.autoFixedFrameMs.toFixed(0).padStart(16)} ${(r.readAllMs / base).toFixed(2).padStart(20)}`,
    );
  }
  console.log(
    `\nitk-wasm calls, ms per file (median of ${calls.repeats} rounds, the two ways alternating): its public functions load the pipeline's wasm on every call; r2n2 keeps the modules (kept: ${calls.kept})`,
  );
  console.log('call                                        public     kept   × faster');
  for (const c of calls.rows)
    console.log(
      `${c.call.padEnd(40)} ${c.publicMs.toFixed(1).padStart(9)} ${c.keptMs.toFixed(1).padStart(8)} ${(c.publicMs / c.keptMs).toFixed(1).padStart(10)}`,
    );
  return { series: rows, calls: calls.rows, kept: calls.kept };
}

/**
 * Per-file cost of itk-wasm's public readImageNode / writeImageNode / readDicomTagsNode against
 * r2n2's itkRead / itkWrite / itkDicomTags (the same pipelines, modules kept), alternating, on
 * the io suite's frames and on DICOM files without an extension (as scanners write them).
 */
async function keptVsPublic(dir: string, s: { geometry: Geometry }, rendered: Float32Array[], { files = 8, repeats = 3 } = {}) {
  const nrrd = Array.from({ length: files }, (_, t) => path.join(dir, 'nrrd', `frame_${String(t).padStart(3, '0')}.nrrd`));
  const dcmDir = path.join(dir, 'dicom');
  await fs.mkdir(dcmDir, { recursive: true });
  const dcm: string[] = [];
  for (let t = 0; t < files; t++) {
    const it = new Image(new ImageType(2, IntTypes.Int16, PixelTypes.Scalar, 1));
    it.size = [...s.geometry.size];
    it.spacing = [...s.geometry.spacing];
    it.origin = [0, 0];
    it.direction = new Float64Array([1, 0, 0, 1]);
    it.data = Int16Array.from(rendered[t], (v) => Math.round(v));
    it.metadata = new Map([['0020|0013', String(t + 1)]]);
    await itkWrite(it, path.join(dcmDir, `f${t}.dcm`));
    await fs.rename(path.join(dcmDir, `f${t}.dcm`), path.join(dcmDir, `IM${String(t).padStart(4, '0')}`));
    dcm.push(path.join(dcmDir, `IM${String(t).padStart(4, '0')}`));
  }
  const img = await itkRead(nrrd[0]);
  const out = path.join(dir, 'out');
  await fs.mkdir(out, { recursive: true });
  const tags = { tags: ['0020|0013'] };
  type Call = (file: string, i: number) => Promise<unknown>;
  const cases: [string, Call, Call, string[]][] = [
    ['read 256² NRRD frame', (f) => readImageNode(f), (f) => itkRead(f), nrrd],
    [
      'write 256² NIfTI (.nii.gz) frame',
      (_, i) => writeImageNode(img, path.join(out, `p${i}.nii.gz`), { useCompression: true }),
      (_, i) => itkWrite(img, path.join(out, `k${i}.nii.gz`)),
      nrrd,
    ],
    ['read 256² DICOM file, no extension', (f) => readImageNode(f), (f) => itkRead(f), dcm],
    ['DICOM tags (InstanceNumber)', (f) => readDicomTagsNode(f, { tagsToRead: tags }), (f) => itkDicomTags(f, tags.tags), dcm],
  ];
  await itkRead(nrrd[0]); // warm-up: the kept module loads on its first call (the public way loads on every call)
  const rows = [];
  for (const [call, pub, keep, list] of cases) {
    const p: number[] = [],
      k: number[] = [];
    for (let r = 0; r < repeats; r++) {
      for (const [times, fn] of [
        [p, pub],
        [k, keep],
      ] as [number[], Call][]) {
        const t0 = performance.now();
        for (let i = 0; i < list.length; i++) await fn(list[i], i);
        times.push((performance.now() - t0) / list.length);
      }
    }
    rows.push({ call, files: list.length, publicMs: median(p), keptMs: median(k) });
  }
  return { rows, repeats, kept: await itkKeepsModules() };
}

const suites: Record<string, (o: BenchOptions) => Promise<unknown>> = {
  io: () => io(),
  bspline: bsplineSuite,
  'bspline-profile': bsplineProfileSuite,
  r2n2: r2n2Suite,
  'r2n2-models': r2n2ModelsSuite,
  'gaussian-bound': gaussianBoundSuite,
  real: realSuite,
};
const NOT_DEFAULT = ['gaussian-bound', 'r2n2-models', 'real'];

const argv = await yargs(hideBin(process.argv))
  .scriptName('npm run bench --')
  .usage(
    `$0 [suites..] [flags]\n\nBenchmarks, measured side by side in one run and printed as ratios. Suites: ${Object.keys(suites).join(', ')}; none named = ${Object.keys(
      suites,
    )
      .filter((n) => !NOT_DEFAULT.includes(n))
      .join(', ')}. Results also go to bench/results/<suite>-<date>[-runN].json.`,
  )
  .command('$0 [suites..]', false, (y) => y.positional('suites', { type: 'string', array: true, choices: Object.keys(suites) }))
  .options({
    model: { type: 'string', default: BUNDLED_MODEL, defaultDescription: 'fixtures/models/phantom', describe: 'r2n2, real: the R2N2 model directory' },
    models: {
      type: 'string',
      array: true,
      default: [BUNDLED_MODEL],
      defaultDescription: 'fixtures/models/phantom',
      describe: 'r2n2-models: model or training checkpoint directories; real: the models of methods r2n2…#k (k-th, from 0)',
    },
    steps: {
      type: 'number',
      array: true,
      default: [] as number[],
      describe: "r2n2, real: steps per pass (r2n2-models: each); default the model's training steps",
    },
    size: { type: 'number', default: 128, describe: 'r2n2: phantom size when the model records none' },
    variants: { type: 'string', array: true, default: [] as string[], describe: 'r2n2: R2N2 variants T[:x|y|xy|all][:rN] (flip average, --refine N)' },
    seeds: { type: 'number', array: true, default: [23, 24, 25, 26], describe: 'r2n2-models: phantom seeds (128², 60 frames)' },
    picks: { type: 'number', default: 16, describe: 'r2n2-models: frames per seed' },
    'bound-steps': { type: 'number', array: true, default: [5], describe: 'gaussian-bound: Gaussian counts' },
    cases: {
      type: 'string',
      array: true,
      default: ['dice', 'tre', 'series'],
      choices: ['dice', 'tre', 'series', 'tune', 'test', 'all'],
      describe:
        'real: which kinds of case (dice, tre, series; default all) and which half of bench/cases.json (tune: choices are made on it; test: figures to quote; default all)',
    },
    methods: {
      type: 'string',
      array: true,
      default: ['bspline', 'r2n2', 'r2n2+r20', 'elastix', 'elastix-1t', 'elastix-wasm'],
      describe: 'real: which methods (r2n2[:T][+rN][@S][+fM][+ng]: R2N2 with T steps, --refine N, --refine-size S, --refine-fine M, +ng: --no-stop-when-worse)',
    },
    patients: {
      type: 'string',
      array: true,
      default: ['SCD0000101', 'SCD0000201', 'SCD0000301'],
      describe: 'real: Sunnybrook patients of the Dice and TRE cases',
    },
    only: { type: 'string', describe: 'real: only the TRE cases whose name matches this regular expression' },
    'dice-limit': { type: 'number', default: Infinity, describe: 'real: the first N contoured slices only' },
    frames: { type: 'number', default: 12, describe: 'real: frames of each simulated TRE series' },
    stride: { type: 'number', default: 2, describe: 'real: register every k-th frame' },
    'series-frames': { type: 'number', default: 16, describe: 'real: frames of the whole-series timing' },
    jobs: { type: 'number', describe: 'real: --jobs of the whole-series timing (default: the cores)' },
    'wasm-pairs': { type: 'number', default: 2, describe: 'real: pairs per case for the itk-wasm elastix (≈ 10× slower)' },
    'bspline-variants': { type: 'string', default: '{}', describe: 'real: more B-spline methods, JSON {"name": {options over the defaults}}' },
  })
  .strict()
  .version(false)
  .help()
  .parseAsync();

let bsplineVariants: BenchOptions['bsplineVariants'];
try {
  bsplineVariants = JSON.parse(argv['bspline-variants']);
} catch (e) {
  console.error(`error: --bspline-variants is not JSON (${(e as Error).message}); give {"name": {"lambda": 0.01}}`);
  process.exit(1);
}
const options: BenchOptions = {
  model: argv.model,
  models: argv.models,
  steps: argv.steps,
  size: argv.size,
  variants: argv.variants,
  seeds: argv.seeds,
  picks: argv.picks,
  boundSteps: argv['bound-steps'],
  cases: argv.cases.some((c) => ['dice', 'tre', 'series'].includes(c))
    ? argv.cases.filter((c) => ['dice', 'tre', 'series'].includes(c))
    : ['dice', 'tre', 'series'],
  halves:
    argv.cases.some((c) => c === 'tune' || c === 'test') && !argv.cases.includes('all')
      ? (['tune', 'test'] as const).filter((h) => argv.cases.includes(h))
      : ['tune', 'test'],
  methods: argv.methods,
  patients: argv.patients,
  only: argv.only,
  diceLimit: argv['dice-limit'],
  frames: argv.frames,
  stride: argv.stride,
  seriesFrames: argv['series-frames'],
  jobs: argv.jobs ?? null,
  wasmPairs: argv['wasm-pairs'],
  bsplineVariants,
};
const which = (argv.suites as string[] | undefined) ?? [];
const names = which.length ? which : Object.keys(suites).filter((n) => !NOT_DEFAULT.includes(n));
for (const name of names) {
  const rows = await suites[name](options);
  const stem = path.join(ROOT, 'bench', 'results', `${name}-${new Date().toISOString().slice(0, 10)}`);
  await fs.mkdir(path.dirname(stem), { recursive: true });
  const body = JSON.stringify({ suite: name, node: process.version, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, options, rows }, null, 2) + '\n';
  let out;
  for (let run = 1; ; run++) {
    out = run === 1 ? `${stem}.json` : `${stem}-run${run}.json`;
    try {
      await fs.writeFile(out, body, { flag: 'wx' }); // wx: fails if the file exists
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  console.log(`written ${path.relative(process.cwd(), out)}`);
}
