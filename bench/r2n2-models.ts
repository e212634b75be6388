// `npm run bench -- r2n2-models`: R2N2 models (or training checkpoints) side by side on the
// model-selection seeds, for choosing between training runs without touching the bench seeds.
//   --models DIR..  model directories (default: the bundled model). A training checkpoint
//                   directory (MODEL_DIR/checkpoint, or a copy of it) is measured with the weight
//                   average it holds when trained with --ema, as the finished run would have
//                   saved it; otherwise with its raw weights.
//   --steps N..     step counts (default: each model's training steps)
//   --seeds N..     phantom seeds, 128², 60 frames (default 23 24 25 26: never trained on, and
//                   not the r2n2 suite's bench seeds 21 / 22)
//   --picks N       frames per seed (default 16, evenly spread, the fixed frame skipped)
// Every model registers the same pairs in one process, 8 frames per batch (as register series
// does), no flip average, no refinement. Prints mean TRE per seed and over all pairs, and
// seconds per frame with its ratio to the first row.
import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../dist/backend/index.js';
import { makePhantomSeries } from '../dist/core/phantom/phantom.js';
import { chooseFixedFrame } from '../dist/core/image/fixed-frame.js';
import { frameTre, type FrameTre } from '../dist/core/metrics/tre.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/transformation/field.js';
import { loadCheckpointAverage, loadModel, type LoadedModel } from '../dist/io/model.js';
import { r2n2Registrar } from '../dist/app/register.js';
import { spreadPicks, type BenchOptions, scoreTre } from './common.js';

/** A model directory, or a checkpoint's weight average; `weights` says which was measured. */
async function openModel(dir: string): Promise<{ model: LoadedModel; weights: string }> {
  if (existsSync(path.join(dir, 'optimizer.json'))) {
    const avg = await loadCheckpointAverage(dir);
    if (avg) return { model: avg, weights: 'checkpoint average (--ema)' };
    return { model: await loadModel(dir), weights: 'checkpoint raw weights' };
  }
  return { model: await loadModel(dir), weights: 'model' };
}

export async function r2n2ModelsSuite(opt: BenchOptions) {
  const backend = await initBackend('auto');
  const dirs = opt.models;
  const seeds = opt.seeds;
  const picksPerSeed = opt.picks;
  if (!(Number.isInteger(picksPerSeed) && picksPerSeed >= 1 && picksPerSeed <= 59))
    throw new Error(`--picks must be a whole number in 1..59, got ${picksPerSeed}`);
  if (seeds.some((s) => !Number.isInteger(s))) throw new Error(`--seeds must be whole numbers, got ${seeds.join(' ')}`);
  const stepsList = opt.steps.length ? opt.steps : null;
  const data = [];
  for (const seed of seeds) {
    const s = makePhantomSeries({ size: 128, frames: 60, seed });
    const frames = Array.from({ length: 60 }, (_, t) => s.renderFrame(t));
    const { index: f } = await chooseFixedFrame(60, async (t) => frames[t]);
    const picks = spreadPicks(picksPerSeed, 60, f);
    data.push({ seed, s, frames, f, picks });
  }
  const rows: {
    model: string;
    weights: string;
    weightsSha256: string;
    inputBlock: number;
    steps: number;
    pairs: number;
    before_mm: number;
    after_mm_per_seed: number[];
    after_mm: number;
    seconds_per_frame: number;
  }[] = [];
  for (const dir of dirs) {
    const { model, weights } = await openModel(dir);
    const sha = createHash('sha256')
      .update(await fs.readFile(path.join(dir, 'weights.bin')))
      .digest('hex')
      .slice(0, 12);
    for (const steps of stepsList ?? [Number(model.json.training?.steps ?? 10)]) {
      const reg = r2n2Registrar(model, { steps, stopThreshold: 0, flipAverage: 'none', refine: 0 });
      // warm-up: the first batch of a size compiles and allocates
      const d0 = data[0];
      await reg.registerBatch!(
        { geometry: d0.s.geometry, data: d0.frames[d0.f] },
        d0.picks.slice(0, 8).map((t) => ({ geometry: d0.s.geometry, data: d0.frames[t] })),
        () => undefined,
      );
      const perSeed: number[] = [];
      let seconds = 0;
      let before = 0;
      let pairs = 0;
      for (const d of data) {
        const fixed = { geometry: d.s.geometry, data: d.frames[d.f] };
        const tres: FrameTre[] = [];
        for (let i = 0; i < d.picks.length; i += 8) {
          const pk = d.picks.slice(i, i + 8);
          const t0 = performance.now();
          const batch = await reg.registerBatch!(
            fixed,
            pk.map((t) => ({ geometry: d.s.geometry, data: d.frames[t] })),
            () => undefined,
          );
          seconds += (performance.now() - t0) / 1000;
          pk.forEach((t, k) =>
            tres.push(
              frameTre(`frame_${t}`, d.s.landmarks(d.f), d.s.landmarks(t), d.s.geometry, (q) => mapPoint(fieldFromNormalised(batch[k].field, d.s.geometry), q)),
            ),
          );
        }
        const r = scoreTre(tres);
        perSeed.push(r.after.mean_mm);
        before += r.before.mean_mm * tres.length;
        pairs += tres.length;
      }
      const mean = perSeed.reduce((a, b) => a + b, 0) / perSeed.length;
      rows.push({
        model: dir,
        weights,
        weightsSha256: sha,
        inputBlock: model.config.inputBlock ?? 1,
        steps,
        pairs,
        before_mm: before / pairs,
        after_mm_per_seed: perSeed,
        after_mm: mean,
        seconds_per_frame: seconds / pairs,
      });
      process.stderr.write(`  ${dir} (${weights}), ${steps} steps: ${mean.toFixed(3)} mm\n`);
    }
    model.tensors.forEach((t) => t.dispose());
  }
  console.log(
    `R2N2 models on held-out phantom seeds ${seeds.join(', ')} (128², ${picksPerSeed} frames each, ${backend.name}); TRE mean per seed and over the seeds`,
  );
  console.log(`${'model'.padEnd(40)} block  steps  ${seeds.map((s) => `seed ${s}`.padStart(8)).join(' ')}  mean mm  × first  s/frame  × first's time`);
  const first = rows[0];
  for (const r of rows) {
    const name = r.model.length > 38 ? '…' + r.model.slice(-37) : r.model;
    console.log(
      `${name.padEnd(40)} ${String(r.inputBlock).padStart(5)} ${String(r.steps).padStart(6)}  ${r.after_mm_per_seed.map((x) => x.toFixed(3).padStart(8)).join(' ')}  ${r.after_mm.toFixed(3).padStart(7)} ${(r.after_mm / first.after_mm).toFixed(2).padStart(8)} ${r.seconds_per_frame.toFixed(3).padStart(8)} ${(r.seconds_per_frame / first.seconds_per_frame).toFixed(2).padStart(15)}`,
    );
  }
  console.log(`TRE before registration: ${first.before_mm.toFixed(3)} mm (mean over the ${first.pairs} pairs)`);
  return { backend: backend.name, seeds, picksPerSeed, rows };
}
