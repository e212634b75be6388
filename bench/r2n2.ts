// `npm run bench -- r2n2`: R2N2 (a trained model: --model, default fixtures/models/phantom)
// vs our B-spline vs elastix on held-out phantom series (seeds 21 and 22, never used in
// training), one process, the same pairs: TRE, seconds per frame, ratios, parameter counts.
// R2N2 runs in several variants (--variants, default "T,⌈T/2⌉,⌈T/2⌉:x,T:x,⌈T/2⌉:r20,T:r20"
// with T the model's training steps or --steps): steps per pass, then optional parts: a
// --flip-average (x, y, xy, all) and rN = --refine N (Levenberg–Marquardt iterations).
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../dist/backend/index.js';
import { makePhantomSeries } from '../dist/core/phantom/phantom.js';
import { chooseFixedFrame } from '../dist/core/image/fixed-frame.js';
import { frameTre } from '../dist/core/metrics/tre.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/transformation/field.js';
import { registerBspline, BSPLINE_DEFAULTS } from '../dist/bspline/register.js';
import { loadModel, toVariables, type LoadedModel } from '../dist/io/model.js';
import { r2n2Registrar, type FlipAverage } from '../dist/app/register.js';
import { affineMap, bsplineMap, elastixRegister } from './elastix.js';
import { inferSequence, networkImage } from '../dist/core/r2n2/sequence.js';
import { sequenceField } from '../dist/core/transformation/gaussian.js';
import { refineSequence } from '../dist/core/r2n2/refine.js';
import { normaliseIntensity } from '../dist/core/image/intensity.js';
import type { FrameTre } from '../dist/core/metrics/tre.js';
import type { DisplacementField } from '../dist/core/transformation/field.js';
import { mean, spreadPicks, type BenchOptions, scoreTre } from './common.js';

/** Where one batch of 8 R2N2 registrations spends its time (ms, median of 5). */
async function profileR2n2(model: LoadedModel, steps: number, size: number) {
  const s = makePhantomSeries({ size, frames: 9, seed: 98 });
  const frames = Array.from({ length: 9 }, (_, t) => s.renderFrame(t));
  const n = model.config.netSize;
  const weights = toVariables(model);
  const med = async (f: () => unknown): Promise<number> => {
    const xs = [];
    for (let k = 0; k < 6; k++) {
      const t0 = performance.now();
      await f();
      xs.push(performance.now() - t0);
    }
    xs.shift();
    return xs.sort((a, b) => a - b)[2];
  };
  const net = frames.map((f) => networkImage(f, size, size, n));
  const seqs = await inferSequence(
    model.config,
    weights,
    net.slice(0, 8).map(() => net[8]),
    net.slice(0, 8),
    { steps },
  );
  const parts = {
    [`network input: normalise, blur, resample ${size}² → ${n}² (×9)`]: await med(() => frames.forEach((f) => networkImage(f, size, size, n))),
    [`network: ${steps} steps, batch of 8 (incl. the ${n}² re-warps)`]: await med(() =>
      inferSequence(
        model.config,
        weights,
        net.slice(0, 8).map(() => net[8]),
        net.slice(0, 8),
        { steps },
      ),
    ),
    [`one network step, batch of 8`]: await med(() =>
      inferSequence(
        model.config,
        weights,
        net.slice(0, 8).map(() => net[8]),
        net.slice(0, 8),
        { steps: 1 },
      ),
    ),
    [`full-resolution field from the Gaussians (×8)`]: await med(() => seqs.forEach((q) => sequenceField(q, size, size))),
    [`--refine 20: Levenberg–Marquardt at ${size}² (×8)`]: await med(() =>
      seqs.forEach((q, k) => refineSequence(normaliseIntensity(frames[8]), normaliseIntensity(frames[k]), size, size, q, { iterations: 20 })),
    ),
  };
  weights.forEach((v) => v.dispose());
  console.log(`R2N2 inference profile, one batch of 8 frames at ${size}² (ms, median of 5):`);
  for (const [k, v] of Object.entries(parts)) console.log(`  ${k.padEnd(62)} ${v.toFixed(1)}`);
  return parts;
}

export async function r2n2Suite(opt: BenchOptions) {
  const backend = await initBackend('auto');
  const modelDir = opt.model;
  let model: LoadedModel;
  try {
    model = await loadModel(modelDir);
  } catch (err) {
    console.log(`r2n2 bench skipped: ${(err as Error).message}`);
    return { skipped: (err as Error).message };
  }
  // Which weights were measured: the path alone does not say (the bundled model is replaced over time).
  const weightsSha256 = createHash('sha256')
    .update(await fs.readFile(path.join(modelDir, 'weights.bin')))
    .digest('hex');
  const size = Number(model.json.data?.phantomSize ?? opt.size);
  const steps = Number(opt.steps[0] ?? model.json.training?.steps ?? 10);
  const half = Math.ceil(steps / 2);
  const variants = (opt.variants.length ? opt.variants : `${steps},${half},${half}:x,${steps}:x,${half}:r20,${steps}:r20`.split(',')).map((v) => {
    const [st, ...rest] = v.split(':');
    const refine = Number((rest.find((x) => /^r\d+$/.test(x)) ?? 'r0').slice(1));
    const fa = (rest.find((x) => !/^r\d+$/.test(x)) ?? 'none') as FlipAverage;
    const label = `r2n2/${st}${fa === 'none' ? '' : '+' + fa}${refine ? `+r${refine}` : ''}`;
    return { label, steps: Number(st), flipAverage: fa, refine, reg: r2n2Registrar(model, { steps: Number(st), stopThreshold: 0, flipAverage: fa, refine }) };
  });
  // warm-up (first tfjs/wasm calls compile and allocate) for every method, outside the timings
  {
    const w = makePhantomSeries({ size, frames: 2, seed: 99 });
    const a = { geometry: w.geometry, data: w.renderFrame(0) };
    const b = { geometry: w.geometry, data: w.renderFrame(1) };
    // the batch size the timed runs use (the first batch of a new size allocates)
    for (const v of variants)
      await v.reg.registerBatch!(
        a,
        Array.from({ length: 8 }, () => b),
        () => undefined,
      );
    registerBspline(a.data, b.data, size, size, { ...BSPLINE_DEFAULTS, iterations: [2], initIterations: [2] }, w.geometry);
  }
  const profile = await profileR2n2(model, steps, size);
  const maps = [await affineMap(), await bsplineMap()];
  const rows: {
    case: string;
    method: string;
    pairs: number;
    before_mm: number;
    after_mm: number;
    after_px: number;
    seconds: number;
    parameters: number;
  }[] = [];
  for (const seed of [21, 22]) {
    const s = makePhantomSeries({ size, frames: 60, seed });
    const frames = Array.from({ length: 60 }, (_, t) => s.renderFrame(t));
    const { index: f } = await chooseFixedFrame(60, async (t) => frames[t]);
    const fixed = { geometry: s.geometry, data: frames[f] };
    const res: Record<string, { seconds: number; parameters: number; tre: FrameTre }[]> = Object.fromEntries(
      [...variants.map((v) => v.label), 'bspline', 'elastix'].map((m) => [m, []]),
    );
    const picks = spreadPicks(8, 60, f);
    const tre = (t: number, field: DisplacementField) => frameTre(`frame_${t}`, s.landmarks(f), s.landmarks(t), s.geometry, (q) => mapPoint(field, q));
    // R2N2 as register series runs it: the 8 frames in one batch
    const rs = [];
    for (const v of variants) {
      const t0 = performance.now();
      const batch = await v.reg.registerBatch!(
        fixed,
        picks.map((t) => ({ geometry: s.geometry, data: frames[t] })),
        () => undefined,
      );
      const sa = (performance.now() - t0) / 1000 / picks.length;
      rs.push(`${v.label} ${sa.toFixed(3)} s`);
      picks.forEach((t, k) =>
        res[v.label].push({ seconds: sa, parameters: batch[k].parameters, tre: tre(t, fieldFromNormalised(batch[k].field, s.geometry)) }),
      );
    }
    let t0: number;
    for (const t of picks) {
      const moving = { geometry: s.geometry, data: frames[t] };
      t0 = performance.now();
      const b = registerBspline(fixed.data, moving.data, size, size, BSPLINE_DEFAULTS, s.geometry);
      const sb = (performance.now() - t0) / 1000;
      res.bspline.push({ seconds: sb, parameters: b.parameters, tre: tre(t, fieldFromNormalised(b.field, s.geometry)) });
      const e = await elastixRegister(fixed, moving, maps);
      res.elastix.push({ seconds: e.seconds, parameters: e.parameters, tre: tre(t, e.field) });
      process.stderr.write(
        `  seed ${seed} frame ${t}: ${rs.join(', ')} (per frame, batch of 8), bspline ${sb.toFixed(2)} s, elastix ${e.seconds.toFixed(2)} s\n`,
      );
    }
    for (const m of Object.keys(res)) {
      const r = scoreTre(res[m].map((x) => x.tre));
      rows.push({
        case: `phantom seed ${seed} (${size}²)`,
        method: m,
        pairs: res[m].length,
        before_mm: r.before.mean_mm,
        after_mm: r.after.mean_mm,
        after_px: r.after.mean_px,
        seconds: res[m].reduce((a, x) => a + x.seconds, 0) / res[m].length,
        parameters: res[m].reduce((a, x) => a + x.parameters, 0) / res[m].length,
      });
    }
  }
  console.log(
    `R2N2 (${modelDir}, weights sha256 ${weightsSha256.slice(0, 12)}; r2n2/T = T steps, +x = --flip-average x, +rN = --refine N) vs B-spline vs elastix on held-out phantom series (${backend.name}); TRE mean`,
  );
  console.log('case                      method         pairs  before mm  after mm  after px  s/frame  × faster than bspline  TRE / bspline  parameters');
  for (const r of rows) {
    const b = rows.find((x) => x.case === r.case && x.method === 'bspline')!;
    console.log(
      `${r.case.padEnd(25)} ${r.method.padEnd(13)} ${String(r.pairs).padStart(6)} ${r.before_mm.toFixed(3).padStart(10)} ${r.after_mm.toFixed(3).padStart(9)} ${r.after_px.toFixed(3).padStart(9)} ${r.seconds.toFixed(3).padStart(8)} ${(b.seconds / r.seconds).toFixed(1).padStart(22)} ${(r.after_mm / b.after_mm).toFixed(2).padStart(14)} ${r.parameters.toFixed(0).padStart(11)}`,
    );
  }
  const all = (m: string) => rows.filter((r) => r.method === m);
  console.log('all held-out pairs (mean over both series):');
  for (const m of Object.keys(Object.fromEntries(rows.map((r) => [r.method, 1])))) {
    const x = all(m);
    const b = all('bspline');
    console.log(
      `  ${m.padEnd(13)} TRE ${mean(x, 'after_mm').toFixed(3)} mm (${(mean(x, 'after_mm') / mean(b, 'after_mm')).toFixed(2)}× the B-spline's), ${mean(x, 'seconds').toFixed(3)} s/frame (${(mean(b, 'seconds') / mean(x, 'seconds')).toFixed(1)}× faster than the B-spline)`,
    );
  }
  return {
    backend: backend.name,
    model: modelDir,
    weightsSha256,
    steps,
    variants: variants.map(({ label, steps, flipAverage, refine }) => ({ label, steps, flipAverage, refine })),
    profile,
    rows,
  };
}
