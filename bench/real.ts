// `npm run bench -- real`: every method on real images, one process, the same pairs. The cases are
// listed in bench/cases.json, each tagged tune (defaults, presets and models are chosen on these)
// or test (the figures README and docs quote; nothing is chosen on them); every table and mean is
// printed per half.
//   Dice  LV (label 1) ES→ED on every contoured slice of the Sunnybrook patients of the file
//         (../shared/data/sunnybrook/series): the ES frame registered to the ED frame, its label
//         warped with nearest neighbour; HD95 (mm) beside it.
//   TRE   `r2n2 simulate` series made from one real image each (cine frames, chest MR scouts of the
//         tune and test patients of bench/split.json, ITK's example MR, the BIRL image; pixel sizes
//         0.5–2 mm, declared or resampled; breathing, cardiac and random motion up to 20 mm; noise
//         none to strong): every k-th frame registered to the series' fixed frame.
//   series  wall time of a whole simulated series (breathing, --series-frames, default 16):
//         `baseline bspline` through runFrames with --jobs = the cores (--jobs) and 1, against
//         native elastix at its default threads, frame after frame.
// Methods: our B-spline (defaults; --bspline-variants more), R2N2 (the bundled model or --model)
// alone and --refine 20 (r2n2[:T][+rN][@S][+fM][+ng][#k]: T steps, --refine N, --refine-size S,
// --refine-fine M, no guard, the k-th of --models), native elastix (Debian's CLI; skipped with a
// message where `elastix` is not on PATH): `elastix` the generic map (MSE, 3 resolutions, final
// grid 16 mm, 500 iterations, 4096 random samples; `elastix-1t` the same on one thread) and
// `elastix:ncc|ncc8|mi|affine-ncc` stronger maps (bench/elastix.ts strongMaps), plastimatch
// (`plastimatch`, `plastimatch:l10|free`, bench/plastimatch.ts; skipped where absent), and the
// itk-wasm elastix on the first --wasm-pairs pairs of each case (default 2; ≈ 10× slower).
// Flags: --cases dice tre series (default all) tune|test|all (the halves, default all),
// --dice-limit N (first N slices), --patients (the cine patients whose cases run, default all
// three), --frames (simulated frames where a case gives none, default 12), --stride (register
// every k-th, default 2), --only REGEX (TRE cases whose name matches), --methods, --bspline-variants (JSON {"name": {B-spline options}}: more
// B-spline methods, bspline:name, to choose defaults on).
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { initBackend } from '../dist/backend/index.js';
import { frameTre, treReport } from '../dist/core/metrics/tre.js';
import type { DisplacementField } from '../dist/core/transformation/field.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/transformation/field.js';
import { dicePerLabel, hd95, warpLabelsNearest } from '../dist/core/metrics/dice.js';
import { registerBspline, BSPLINE_DEFAULTS, type BsplineOptions } from '../dist/bspline/register.js';
import { loadModel } from '../dist/io/model.js';
import { resolveModelDir } from '../dist/io/bundled-models.js';
import { r2n2Registrar, type R2N2RegisterOptions } from '../dist/app/register.js';
import { simulate } from '../dist/app/simulate.js';
import { readImage2D, readField, writeImage2D, type Image2D } from '../dist/io/image.js';
import { gaussianBlur, resampleAligned } from '../dist/core/image/resample.js';
import { noiseLevel } from '../dist/core/image/intensity.js';
import { readLandmarkFile } from '../dist/io/landmarks.js';
import { readSummary } from '../dist/io/result.js';
import { bsplineMap, elastixRegister, strongMaps, type ParameterMap } from './elastix.js';
import { PLASTIMATCH_RECIPES, plastimatchRegister, whichPlastimatch } from './plastimatch.js';
import { ROOT, SHARED, mean, type BenchOptions, type MethodResult, scoreTre } from './common.js';
import type { Point } from '../dist/core/image/geometry.js';

const run = promisify(execFile);
const SUNNY = path.join(SHARED, 'sunnybrook');
const BIRL = path.join(SHARED, 'birl_artificial');

/** A method: the fixed image and moving images (labels beside, for the Dice cases) → one result per moving image. */
type Method = (fixed: Image2D, movings: Image2D[], labels?: Image2D[]) => Promise<MethodResult[]>;
/** Sunnybrook's index.json: per series key, its ED and ES phases (null where not contoured). */
type SunnyIndex = Record<string, { ED_phase: number | null; ES_phase: number | null }>;

/** The elastix parameter file text of a parameter map: one `(Key value …)` per line (elastix 5.0 needs that). */
function parameterFileText(map: ParameterMap): string {
  const fmt = (v: string) => (/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(v) ? v : `"${v}"`);
  return (
    Object.entries(map)
      .map(([k, vs]) => `(${k} ${vs.map(fmt).join(' ')})`)
      .join('\n') + '\n'
  );
}

async function whichElastix(): Promise<string | null> {
  try {
    const { stdout } = await run('elastix', ['--version']);
    return stdout.trim();
  } catch {
    return null;
  }
}

/**
 * Runs elastix or transformix. Debian's 5.0.1 build sometimes aborts while its threads shut down
 * ("terminate called … std::system_error") after it has written its outputs and printed
 * "has finished": that run counts when `expected` exists; any other failure is retried once.
 */
async function elastixTool(cmd: string, args: string[], expected: string): Promise<unknown> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run(cmd, args, { maxBuffer: 64 * 2 ** 20 });
    } catch (err) {
      if (/has finished/.test((err as { stdout?: string }).stdout ?? '') && existsSync(expected)) return err;
      if (attempt >= 1) throw err;
    }
  }
}

/** A plain 2D copy (no 3D placement) for the elastix CLI. */
const flat = (img: Image2D): Image2D => ({ geometry: { ...img.geometry, placement: undefined }, data: img.data });

/**
 * Native elastix on one pair: registration wall time (the process), the field from
 * `transformix -def all`, and (with `labels`) the moving label map warped by transformix with
 * nearest neighbour (FinalBSplineInterpolationOrder 0).
 */
async function elastixNative(
  fixed: Image2D,
  moving: Image2D,
  paramText: string | string[],
  { threads, labels }: { threads?: number; labels?: Image2D } = {},
): Promise<MethodResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'r2n2-real-elx-'));
  try {
    await writeImage2D(path.join(dir, 'f.mha'), flat(fixed));
    await writeImage2D(path.join(dir, 'm.mha'), flat(moving));
    const texts = typeof paramText === 'string' ? [paramText] : paramText;
    const args = ['-f', path.join(dir, 'f.mha'), '-m', path.join(dir, 'm.mha'), '-out', dir];
    for (const [k, text] of texts.entries()) {
      await fs.writeFile(path.join(dir, `p${k}.txt`), text);
      args.push('-p', path.join(dir, `p${k}.txt`));
    }
    // the last stage's transform parameters chain the earlier ones
    const tp = path.join(dir, `TransformParameters.${texts.length - 1}.txt`);
    if (threads) args.push('-threads', String(threads));
    const t0 = performance.now();
    await elastixTool('elastix', args, tp);
    const seconds = (performance.now() - t0) / 1000;
    await elastixTool('transformix', ['-def', 'all', '-tp', tp, '-out', dir], path.join(dir, 'deformationField.mha'));
    const def = await readField(path.join(dir, 'deformationField.mha'));
    const field: DisplacementField = { geometry: fixed.geometry, data: def.data };
    let warpedLabels: Float32Array | null = null;
    if (labels) {
      const text = (await fs.readFile(tp, 'utf8'))
        .replace(/\(FinalBSplineInterpolationOrder \d+\)/, '(FinalBSplineInterpolationOrder 0)')
        .replace(/\(ResultImagePixelType "[^"]*"\)/, '(ResultImagePixelType "float")');
      await fs.writeFile(path.join(dir, 'tp-nn.txt'), text);
      await writeImage2D(path.join(dir, 'l.mha'), flat(labels));
      await fs.mkdir(path.join(dir, 'lab'));
      await elastixTool(
        'transformix',
        ['-in', path.join(dir, 'l.mha'), '-tp', path.join(dir, 'tp-nn.txt'), '-out', path.join(dir, 'lab')],
        path.join(dir, 'lab', 'result.mha'),
      );
      warpedLabels = (await readImage2D(path.join(dir, 'lab', 'result.mha'))).data;
    }
    let parameters = 0;
    for (let k = 0; k < texts.length; k++)
      parameters += Number(/\(NumberOfParameters (\d+)\)/.exec(await fs.readFile(path.join(dir, `TransformParameters.${k}.txt`), 'utf8'))?.[1] ?? 0);
    return { field, seconds, parameters, warpedLabels };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** The methods, each `(fixed, movings[]) → [{ field: DisplacementField, seconds, parameters, warpedLabels? }]`. */
async function makeMethods(elastixVersion: string | null, plastimatchVersion: string | null, opt: BenchOptions) {
  const backend = await initBackend('auto');
  const modelDir = opt.model;
  const model = await loadModel(resolveModelDir(modelDir));
  const steps = Number(opt.steps[0] ?? model.json.training?.steps ?? 10);
  const wanted = [...opt.methods];
  const paramMap = await bsplineMap();
  // the result format only names transformix's output files; the registration is the same map
  const paramText = parameterFileText({ ...paramMap, ResultImageFormat: ['mha'] });
  // more models side by side: method names ending in #k take the k-th of --models (its own training steps)
  const others = await Promise.all(opt.models.map((d) => loadModel(resolveModelDir(d))));
  const r2n2 = (refine: number, more: Partial<R2N2RegisterOptions> = {}, which = model): Method => {
    const reg = r2n2Registrar(which, { steps, stopThreshold: 0, refine, ...more });
    return async (fixed, movings) => {
      const t0 = performance.now();
      const out = await reg.registerBatch!(fixed, movings, () => undefined);
      const s = (performance.now() - t0) / 1000 / movings.length;
      return out.map((r) => ({ field: fieldFromNormalised(r.field, fixed.geometry), seconds: s, parameters: r.parameters }));
    };
  };
  const perPair =
    (fn: (fixed: Image2D, moving: Image2D, labels?: Image2D) => Promise<MethodResult>): Method =>
    async (fixed, movings, labels) => {
      const out: MethodResult[] = [];
      for (let k = 0; k < movings.length; k++) out.push(await fn(fixed, movings[k], labels?.[k]));
      return out;
    };
  const bsplineMethod = (opts: BsplineOptions) =>
    perPair(async (fixed, moving) => {
      const [W, H] = fixed.geometry.size;
      const t0 = performance.now();
      const b = registerBspline(fixed.data, moving.data, H, W, opts, fixed.geometry);
      return { field: fieldFromNormalised(b.field, fixed.geometry), seconds: (performance.now() - t0) / 1000, parameters: b.parameters };
    });
  const all: Record<string, Method | null> = {
    bspline: bsplineMethod(BSPLINE_DEFAULTS),
    elastix: elastixVersion ? perPair((f, m, l) => elastixNative(f, m, paramText, { labels: l })) : null,
    'elastix-1t': elastixVersion ? perPair((f, m, l) => elastixNative(f, m, paramText, { labels: l, threads: 1 })) : null,
    ...Object.fromEntries(
      Object.entries(await strongMaps()).map(([name, maps]) => {
        const texts = maps.map((m) => parameterFileText({ ...m, ResultImageFormat: ['mha'] }));
        return [`elastix:${name}`, elastixVersion ? perPair((f, m, l) => elastixNative(f, m, texts, { labels: l })) : null];
      }),
    ),
    ...Object.fromEntries(
      Object.entries(PLASTIMATCH_RECIPES).map(([name, r]) => [
        name === 'l1' ? 'plastimatch' : `plastimatch:${name}`,
        plastimatchVersion ? perPair((f, m) => plastimatchRegister(f, m, r)) : null,
      ]),
    ),
    'elastix-wasm': perPair(async (f, m) =>
      elastixRegister(flat(f), flat(m), [paramMap]).then((e) => ({ ...e, field: { geometry: f.geometry, data: e.field.data } })),
    ),
  };
  // R2N2, by name: r2n2[:T][+rN][@S][+fM][+ng] = T steps (default --steps), --refine N,
  // --refine-size S, --refine-fine M, --no-stop-when-worse (r2n2, r2n2+r20: the defaults)
  for (const k of wanted) {
    const m = /^r2n2(?::(\d+))?(?:\+r(\d+))?(?:@(\d+))?(?:\+f(\d+))?(\+ng)?(?:#(\d+))?$/.exec(k);
    if (!m) continue;
    const which = m[6] !== undefined ? others[Number(m[6])] : model;
    if (!which) throw new Error(`${k}: --models has no entry ${m[6]}`);
    const own = Number(which.json.training?.steps ?? steps);
    all[k] = r2n2(
      Number(m[2] ?? 0),
      {
        steps: m[1] ? Number(m[1]) : m[6] !== undefined ? own : steps,
        ...(m[3] ? { refineSize: Number(m[3]), refineFine: Number(m[4] ?? 0) } : {}),
        ...(m[5] ? { stopWhenWorse: false } : {}),
      },
      which,
    );
  }
  // B-spline variants to compare (choosing defaults): REAL_BSPLINE_VARIANTS='{"name": {options}}', each run as method bspline:name
  for (const [name, extra] of Object.entries(opt.bsplineVariants)) {
    const opts = { ...BSPLINE_DEFAULTS, ...extra } as BsplineOptions;
    wanted.push(`bspline:${name}`);
    all[`bspline:${name}`] = bsplineMethod(opts);
  }
  const methods = Object.fromEntries(Object.entries(all).filter(([k, v]) => v && wanted.includes(k))) as Record<string, Method>;
  // warm-up outside the timings: tfjs/wasm compile on first use
  const w: Image2D = {
    geometry: { size: [64, 64], spacing: [1, 1], origin: [0, 0], direction: [1, 0, 0, 1] },
    data: Float32Array.from({ length: 4096 }, (_, k) => Math.sin(k / 50)),
  };
  for (const k of Object.keys(methods)) if (k.startsWith('r2n2')) await methods[k](w, [w]);
  return { methods, backend: backend.name, modelDir, steps, paramText };
}

/** Runs every method on the pairs of one case; the itk-wasm elastix on the first `wasmPairs` only. */
async function runCase(methods: Record<string, Method>, wasmPairs: number, fixed: Image2D, movings: Image2D[], labels?: Image2D[]) {
  const out: Record<string, MethodResult[]> = {};
  for (const [name, fn] of Object.entries(methods)) {
    const n = name === 'elastix-wasm' ? Math.min(wasmPairs, movings.length) : movings.length;
    out[name] = await fn(fixed, movings.slice(0, n), labels?.slice(0, n));
  }
  return out;
}

const readIndex = async (): Promise<SunnyIndex> => JSON.parse(await fs.readFile(path.join(SUNNY, 'index.json'), 'utf8'));

interface DiceRow {
  case: string;
  split: 'tune' | 'test';
  method: string;
  dice: number;
  hd95: number;
  seconds: number;
  parameters: number;
}

/** Sunnybrook patients of the Dice and TRE cases: --patients SCD0000301 keeps a held-out patient only (a model trained on the others). */
async function diceCases(methods: Record<string, Method>, opt: BenchOptions, patients: CaseFile['dice']): Promise<DiceRow[]> {
  const index = await readIndex();
  const slices = Object.entries(index)
    .filter(([k, v]) => v.ED_phase != null && v.ES_phase != null && patients.some((p) => k.startsWith(p.patient)))
    .slice(0, opt.diceLimit);
  const splitOf = (key: string) => patients.find((p) => key.startsWith(p.patient))!.split;
  const rows: DiceRow[] = [];
  for (const [key, v] of slices) {
    const dir = path.join(SUNNY, 'series', key);
    const ph = (p: number | null) => `phase_${String(p).padStart(2, '0')}.mha`;
    const ed = await readImage2D(path.join(dir, 'frames', ph(v.ED_phase)));
    const es = await readImage2D(path.join(dir, 'frames', ph(v.ES_phase)));
    const edL = (await readImage2D(path.join(dir, 'labels', ph(v.ED_phase)))).data;
    const esL = await readImage2D(path.join(dir, 'labels', ph(v.ES_phase)));
    const [W, H] = ed.geometry.size;
    const res = await runCase(methods, opt.wasmPairs, ed, [es], [esL]);
    const before = { dice: dicePerLabel(edL, esL.data).get(1) ?? 0, hd95: hd95(edL, esL.data, W, H, ed.geometry.spacing, 1) };
    rows.push({ case: key, split: splitOf(key), method: 'none', dice: before.dice, hd95: before.hd95, seconds: 0, parameters: 0 });
    for (const [m, [r]] of Object.entries(res)) {
      if (!r) continue;
      const warped = r.warpedLabels ?? warpLabelsNearest(esL.data, r.field);
      rows.push({
        case: key,
        split: splitOf(key),
        method: m,
        dice: dicePerLabel(edL, warped).get(1) ?? 0,
        hd95: hd95(edL, warped, W, H, ed.geometry.spacing, 1),
        seconds: r.seconds,
        parameters: r.parameters,
      });
    }
    process.stderr.write(
      `  dice ${key}: ${rows
        .filter((x) => x.case === key)
        .map((x) => `${x.method} ${x.dice.toFixed(3)}`)
        .join(', ')}\n`,
    );
  }
  return rows;
}

/** The centroid (mm) and equivalent radius (mm) of label 1. */
function labelDisc(img: Image2D): { centre: Point; radius: number } {
  const [W, H] = img.geometry.size;
  let n = 0,
    sx = 0,
    sy = 0;
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++)
      if (Math.round(img.data[i * W + j]) === 1) {
        n++;
        sx += j;
        sy += i;
      }
  const [px, py] = img.geometry.spacing;
  return { centre: [img.geometry.origin[0] + (sx / n) * px, img.geometry.origin[1] + (sy / n) * py], radius: Math.sqrt((n * px * py) / Math.PI) };
}

interface TreRow {
  case: string;
  split: 'tune' | 'test';
  /** The fixed frame's noise estimate (core/image/intensity noiseLevel), fraction of its 1–99% range. */
  noise: number;
  size: string;
  method: string;
  pairs: number;
  tre: number;
  treBefore?: number;
  seconds: number;
  parameters: number;
}

/** One TRE case of bench/cases.json (its `about` documents the fields). */
interface TreCase {
  name: string;
  split: 'tune' | 'test';
  patient?: string;
  image: string;
  motion: 'breathing' | 'cardiac' | 'random';
  amplitudeMm?: number;
  noise?: number;
  frames?: number;
  pixelMm?: number;
  resampleMm?: number;
  heartLabel?: string;
}
interface CaseFile {
  dice: { patient: string; split: 'tune' | 'test' }[];
  tre: TreCase[];
}
export const CINE_PATIENTS = ['SCD0000101', 'SCD0000201', 'SCD0000301'];

/**
 * The cases of bench/cases.json in the chosen halves; --patients keeps the cine cases of those
 * Sunnybrook patients only (the scout and other cases stay). A case whose image is absent is
 * skipped with a message.
 */
async function readCases(opt: BenchOptions): Promise<CaseFile> {
  const file = JSON.parse(await fs.readFile(path.join(ROOT, 'bench', 'cases.json'), 'utf8')) as CaseFile;
  const only = opt.only ? new RegExp(opt.only) : null;
  const keep = (c: { split: string; patient?: string; name?: string }, cine: boolean) =>
    opt.halves.includes(c.split as 'tune' | 'test') && (!cine || !c.patient || opt.patients.includes(c.patient)) && (!only || !c.name || only.test(c.name));
  const tre: TreCase[] = [];
  for (const c of file.tre) {
    if (!keep(c, c.image.startsWith('sunnybrook/'))) continue;
    if (existsSync(path.join(SHARED, c.image))) tre.push(c);
    else console.log(`case skipped: ${c.name} (${c.image} is absent under ${SHARED})`);
  }
  return { dice: file.dice.filter((d) => keep(d, true)), tre };
}

/**
 * The source image of a TRE case: its pixel size declared (`pixelMm`, for files that have none) or
 * the image resampled to `resampleMm` (linear, the field of view from first to last pixel centre
 * kept, a Gaussian of σ = half the size ratio first when it shrinks).
 */
async function caseImage(c: TreCase): Promise<Image2D> {
  const img = await readImage2D(path.join(SHARED, c.image));
  const g = img.geometry;
  if (c.pixelMm) return { geometry: { ...g, spacing: [c.pixelMm, c.pixelMm], placement: undefined }, data: img.data };
  if (!c.resampleMm) return img;
  const [W, H] = g.size;
  const w = Math.max(2, Math.round(((W - 1) * g.spacing[0]) / c.resampleMm) + 1);
  const h = Math.max(2, Math.round(((H - 1) * g.spacing[1]) / c.resampleMm) + 1);
  const ratio = Math.max((W - 1) / (w - 1), (H - 1) / (h - 1));
  const src = ratio > 1 ? gaussianBlur(img.data, H, W, ratio / 2) : img.data;
  const spacing: [number, number] = [(g.spacing[0] * (W - 1)) / (w - 1), (g.spacing[1] * (H - 1)) / (h - 1)];
  return { geometry: { ...g, size: [w, h], spacing, placement: undefined }, data: resampleAligned(src, 1, H, W, h, w) };
}

async function treCases(methods: Record<string, Method>, tmp: string, opt: BenchOptions, specs: TreCase[]): Promise<TreRow[]> {
  const { frames, stride } = opt;
  const rows: TreRow[] = [];
  for (const sp of specs) {
    const out = path.join(tmp, sp.name.replace(/[^\w]+/g, '-'));
    const source = path.join(tmp, `${path.basename(out)}-source.mha`);
    await writeImage2D(source, await caseImage(sp));
    const disc = sp.heartLabel ? labelDisc(await readImage2D(path.join(SHARED, sp.heartLabel))) : null;
    await simulate({
      image: source,
      out,
      motion: sp.motion,
      frames: sp.frames ?? frames,
      seed: 1,
      centre: disc?.centre,
      radiusMm: disc ? 1.2 * disc.radius : undefined,
      amplitudeMm: sp.amplitudeMm,
      noise: sp.noise,
    });
    const summary = await readSummary(path.join(out, 'truth'));
    const names = summary.frames.map((f) => f.name);
    const f = names.indexOf(summary.fixedFrame);
    const picks = names.map((_, t) => t).filter((t) => t !== f && (t - f) % stride === 0);
    if (!picks.length)
      throw new Error(
        `${sp.name}: no frame of ${names.length} is a multiple of --stride ${stride} from the fixed frame; give more --frames or a smaller --stride`,
      );
    const read = (t: number) => readImage2D(path.join(out, 'frames', `${names[t]}.nrrd`));
    const lm = async (t: number) => (await readLandmarkFile(path.join(out, 'landmarks', `${names[t]}.csv`))).points;
    const fixed = await read(f);
    const movings = await Promise.all(picks.map(read));
    const fixedPts = await lm(f);
    const movingPts = await Promise.all(picks.map(lm));
    const res = await runCase(methods, opt.wasmPairs, fixed, movings);
    const size = fixed.geometry.size.join('×');
    const none = treReport(picks.map((t, k) => frameTre(names[t], fixedPts, movingPts[k], fixed.geometry)));
    const noise = noiseLevel(fixed.data, ...fixed.geometry.size);
    rows.push({ case: sp.name, split: sp.split, noise, size, method: 'none', pairs: picks.length, tre: none.before.mean_mm, seconds: 0, parameters: 0 });
    for (const [m, list] of Object.entries(res)) {
      if (list.some((x) => !x.field.data.every(Number.isFinite))) throw new Error(`${sp.name}: ${m} returned a field with non-finite values`);
      const r = scoreTre(list.map((x, k) => frameTre(names[picks[k]], fixedPts, movingPts[k], fixed.geometry, (q) => mapPoint(x.field, q))));
      const before = treReport(list.map((x, k) => frameTre(names[picks[k]], fixedPts, movingPts[k], fixed.geometry)));
      rows.push({
        case: sp.name,
        split: sp.split,
        noise,
        size,
        method: m,
        pairs: list.length,
        tre: r.after.mean_mm,
        treBefore: before.before.mean_mm,
        seconds: list.reduce((a, x) => a + x.seconds, 0) / list.length,
        parameters: list.reduce((a, x) => a + x.parameters, 0) / list.length,
      });
    }
    process.stderr.write(
      `  tre ${sp.name} (noise ${noise.toFixed(4)}): ${rows
        .filter((x) => x.case === sp.name)
        .map((x) => `${x.method} ${x.tre.toFixed(3)}`)
        .join(', ')}\n`,
    );
  }
  return rows;
}

/**
 * A whole series, wall time: `baseline bspline` as the CLI runs it (runFrames: every frame but the
 * fixed one, fields and warped frames written, --jobs = the cores) against native elastix at its
 * default threads, frame after frame (write the pair, elastix, transformix -def all, read the field).
 */
interface SeriesRow {
  case: string;
  frames: number;
  jobs: number;
  bspline: number;
  bsplineJobs1: number;
  elastix?: number;
}

async function seriesCases(tmp: string, elastixVersion: string | null, paramText: string, opt: BenchOptions): Promise<SeriesRow[]> {
  const { runFrames } = await import('../dist/app/run-frames.js');
  const { bsplineRegistrar } = await import('../dist/app/bspline.js');
  const { defaultJobs } = await import('../dist/app/frame-pool.js');
  const index = await readIndex();
  const frames = opt.seriesFrames;
  const jobs = opt.jobs ?? defaultJobs();
  const rows: SeriesRow[] = [];
  for (const patient of ['SCD0000101', 'SCD0000201']) {
    const keys = Object.keys(index).filter((k) => k.startsWith(patient) && index[k].ED_phase != null);
    const key = keys[Math.floor(keys.length / 2)];
    const image = path.join(SUNNY, 'series', key, 'frames', `phase_${String(index[key].ED_phase).padStart(2, '0')}.mha`);
    const sim = path.join(tmp, `series-${patient}`);
    await simulate({ image, out: sim, motion: 'breathing', frames, seed: 2 });
    const summary = await readSummary(path.join(sim, 'truth'));
    const names = summary.frames.map((f) => f.name);
    const fixedName = summary.fixedFrame;
    const row: SeriesRow = { case: `${key} breathing, ${frames} frames`, frames: frames - 1, jobs, bspline: NaN, bsplineJobs1: NaN };
    for (const j of [...new Set([1, jobs])]) {
      const out = path.join(tmp, `ours-${patient}-${j}`);
      const t0 = performance.now();
      await runFrames({ kind: 'series', series: path.join(sim, 'frames'), fixedFrame: fixedName }, bsplineRegistrar(BSPLINE_DEFAULTS), {
        out,
        qc: false,
        backend: 'wasm',
        jobs: { count: j, spec: { kind: 'bspline', options: BSPLINE_DEFAULTS }, backend: 'wasm' },
      });
      row[j === 1 ? 'bsplineJobs1' : 'bspline'] = (performance.now() - t0) / 1000;
    }
    if (jobs === 1) row.bspline = row.bsplineJobs1;
    if (elastixVersion) {
      const read = (n: string) => readImage2D(path.join(sim, 'frames', `${n}.nrrd`));
      const fixed = await read(fixedName);
      const t0 = performance.now();
      for (const n of names) if (n !== fixedName) await elastixNative(fixed, await read(n), paramText);
      row.elastix = (performance.now() - t0) / 1000;
    }
    process.stderr.write(
      `  series ${row.case}: bspline --jobs ${jobs} ${row.bspline.toFixed(1)} s, --jobs 1 ${row.bsplineJobs1.toFixed(1)} s, elastix ${row.elastix?.toFixed(1) ?? 'n/a'} s\n`,
    );
    rows.push(row);
  }
  return rows;
}

const f3 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '   n/a' : v.toFixed(3));

export async function realSuite(opt: BenchOptions) {
  if (!existsSync(path.join(SUNNY, 'index.json')) || !existsSync(path.join(BIRL, 'artificial_reference.jpg'))) {
    console.log(`real bench skipped: ${SHARED} (Sunnybrook and BIRL) is absent`);
    return { skipped: 'no shared data' };
  }
  const elastixVersion = await whichElastix();
  if (!elastixVersion) console.log('native elastix skipped: `elastix` is not on PATH (Debian: apt-get install elastix)');
  const plastimatchVersion = await whichPlastimatch();
  if (!plastimatchVersion && opt.methods.some((m) => m.startsWith('plastimatch')))
    console.log('plastimatch skipped: `plastimatch` is not on PATH (Debian: apt-get install plastimatch)');
  const { methods, backend, modelDir, steps, paramText } = await makeMethods(elastixVersion, plastimatchVersion, opt);
  const cases = opt.cases;
  const wasmPairs = opt.wasmPairs;
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'r2n2-real-'));
  const chosen = await readCases(opt);
  const dice = cases.includes('dice') ? await diceCases(methods, opt, chosen.dice) : [];
  const tre = cases.includes('tre') ? await treCases(methods, tmp, opt, chosen.tre) : [];
  const series = cases.includes('series') ? await seriesCases(tmp, elastixVersion, paramText, opt) : [];
  await fs.rm(tmp, { recursive: true, force: true });
  const names = ['none', ...Object.keys(methods)];
  console.log(
    `real images (${backend}; R2N2 ${path.relative(process.cwd(), modelDir)}, ${steps} steps; ${elastixVersion ?? 'no native elastix'}; itk-wasm elastix on the first ${wasmPairs} pair(s) of each case)`,
  );
  type Half = 'tune' | 'test';
  const summary: {
    dice?: Partial<Record<Half, Record<string, { meanDice: number; meanHd95: number; secondsPerPair: number; pairs: number }>>>;
    tre?: Partial<Record<Half, Record<string, { meanTre: number; secondsPerFrame: number; cases: number; worseThanNone: number }>>>;
    series?: { bspline: number; bsplineJobs1: number; elastix: number };
  } = {};
  const halves = (['tune', 'test'] as Half[]).filter((h) => opt.halves.includes(h));
  const label: Record<Half, string> = { tune: 'TUNE half (choices are made on these)', test: 'TEST half (figures to quote; nothing chosen on them)' };
  for (const half of halves) {
    const d = dice.filter((r) => r.split === half);
    if (!d.length) continue;
    console.log(`\nDice, LV ES→ED, ${label[half]}: ${new Set(d.map((r) => r.case)).size} Sunnybrook slices (HD95 mm beside)`);
    const wd = Math.max(18, ...names.map((m) => m.length + 1));
    console.log('case                    ' + names.map((m) => m.padStart(wd)).join(''));
    for (const c of [...new Set(d.map((r) => r.case))]) {
      const cell = (m: string) => {
        const r = d.find((x) => x.case === c && x.method === m);
        return (r ? `${r.dice.toFixed(3)} (${r.hd95.toFixed(1)})` : '').padStart(wd);
      };
      console.log(c.padEnd(24) + names.map(cell).join(''));
    }
    const meanRow = (title: string, k: 'dice' | 'hd95' | 'seconds', digits: number) =>
      console.log(
        title.padEnd(24) +
          names
            .map((m) =>
              mean(
                d.filter((r) => r.method === m),
                k,
              )
                .toFixed(digits)
                .padStart(wd),
            )
            .join(''),
      );
    meanRow('mean Dice', 'dice', 3);
    meanRow('mean HD95 mm', 'hd95', 2);
    meanRow('s/pair', 'seconds', 3);
    (summary.dice ??= {})[half] = Object.fromEntries(
      names.map((m) => {
        const x = d.filter((r) => r.method === m);
        return [m, { meanDice: mean(x, 'dice'), meanHd95: mean(x, 'hd95'), secondsPerPair: mean(x, 'seconds'), pairs: x.length }];
      }),
    );
  }
  for (const half of halves) {
    const t = tre.filter((r) => r.split === half);
    if (!t.length) continue;
    console.log(
      `\nTRE mm, ${label[half]}: series simulated from real images (mean over the registered frames; itk-wasm elastix on fewer pairs: its "before" differs)`,
    );
    // columns as wide as the longest method name (r2n2:25+r40@128 …), at least 13
    const wd = Math.max(13, ...names.map((m) => m.length + 1));
    const cw = Math.max(30, ...t.map((r) => r.case.length + 1));
    console.log('case'.padEnd(cw) + 'size     ' + names.map((m) => m.padStart(wd)).join(''));
    for (const c of [...new Set(t.map((r) => r.case))]) {
      const size = t.find((x) => x.case === c)!.size;
      const cell = (m: string) => {
        const r = t.find((x) => x.case === c && x.method === m);
        return (r ? f3(r.tre) : '').padStart(wd);
      };
      console.log(c.padEnd(cw) + size.padEnd(9) + names.map(cell).join(''));
    }
    const meanRow = (title: string, k: 'tre' | 'seconds') =>
      console.log(
        title.padEnd(cw + 9) +
          names
            .map((m) =>
              f3(
                mean(
                  t.filter((r) => r.method === m),
                  k,
                ),
              ).padStart(wd),
            )
            .join(''),
      );
    meanRow('mean TRE mm', 'tre');
    meanRow('s/frame', 'seconds');
    const noneOf = (c: string) => t.find((x) => x.case === c && x.method === 'none')!.tre;
    (summary.tre ??= {})[half] = Object.fromEntries(
      names.map((m) => {
        const x = t.filter((r) => r.method === m);
        const worse = x.filter((r) => r.tre > noneOf(r.case)).length;
        return [m, { meanTre: mean(x, 'tre'), secondsPerFrame: mean(x, 'seconds'), cases: x.length, worseThanNone: worse }];
      }),
    );
  }
  if (series.length) {
    console.log(
      `\nA whole series, wall time (s): baseline bspline with --jobs ${series[0].jobs} and --jobs 1 (fields and warped frames written) against native elastix at its default threads, frame after frame`,
    );
    console.log('case                                      frames   bspline    --jobs 1   elastix   bspline ÷ elastix');
    for (const r of series)
      console.log(
        r.case.padEnd(42) +
          String(r.frames).padStart(6) +
          f3(r.bspline).padStart(10) +
          f3(r.bsplineJobs1).padStart(11) +
          f3(r.elastix).padStart(10) +
          f3(r.bspline / (r.elastix ?? NaN)).padStart(14),
      );
    summary.series = {
      bspline: series.reduce((a, r) => a + r.bspline, 0),
      bsplineJobs1: series.reduce((a, r) => a + r.bsplineJobs1, 0),
      elastix: series.reduce((a, r) => a + (r.elastix ?? NaN), 0),
    };
    console.log(
      `all series: bspline ÷ elastix ${f3(summary.series.bspline / summary.series.elastix)}; --jobs ${series[0].jobs} is ${f3(summary.series.bsplineJobs1 / summary.series.bspline)}× --jobs 1`,
    );
  }
  // every elastix map run is a reference: each method's ratios against each of them, per half
  const refs = Object.keys(methods).filter((m) => m === 'elastix' || m.startsWith('elastix:'));
  for (const ref of refs)
    for (const half of halves) {
      const tr = summary.tre?.[half];
      const di = summary.dice?.[half];
      if (!tr && !di) continue;
      console.log(`\n${half} half, against native ${ref}: mean TRE ÷ its, cases where TRE ≤ its, mean Dice − its, its s/pair ÷ the method's`);
      const rowsOf = (m: string) => [...dice, ...tre].filter((r) => r.split === half && r.method === m);
      for (const m of Object.keys(methods)) {
        const ratio = (tr?.[m]?.meanTre ?? NaN) / (tr?.[ref]?.meanTre ?? NaN);
        const t = tre.filter((r) => r.split === half);
        const cases = [...new Set(t.map((r) => r.case))];
        const atMost = cases.filter((c) => {
          const a = t.find((r) => r.case === c && r.method === m)?.tre;
          const b = t.find((r) => r.case === c && r.method === ref)?.tre;
          return a !== undefined && b !== undefined && a <= b;
        }).length;
        const dd = di ? di[m].meanDice - di[ref].meanDice : NaN;
        const sp = mean(rowsOf(ref), 'seconds') / mean(rowsOf(m), 'seconds');
        console.log(
          `  ${m.padEnd(18)} TRE × ${f3(ratio)}  ≤ on ${atMost}/${cases.length}   Dice ${Number.isFinite(dd) ? (dd >= 0 ? '+' : '') + dd.toFixed(3) : 'n/a'}   ${f3(sp)}× its speed`,
        );
      }
    }
  return {
    backend,
    model: modelDir,
    steps,
    elastix: elastixVersion,
    plastimatch: plastimatchVersion,
    elastixParameters: paramText,
    wasmPairs,
    bsplineDefaults: BSPLINE_DEFAULTS,
    summary,
    dice,
    tre,
    series,
  };
}
