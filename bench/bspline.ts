// `npm run bench -- bspline`: our multi-resolution B-spline (defaults of `r2n2 baseline bspline`)
// and elastix's B-spline (tuned map: MSE, 500 iterations, 4096 samples, 16 mm final grid),
// side by side in one process, on the same pairs:
//   - phantom series not used to choose the defaults (seeds 2 and 3, 256², 140 frames): the
//     automatic fixed frame and 6 moving frames spread over the series;
//   - the BIRL pair artificial_reference / artificial_moving-elastic (800×600) from ../shared/data
//     when present.
// Seconds are registration only (ours: registerBspline; elastix: elastixNode), on one backend.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../dist/backend/index.js';
import { makePhantomSeries } from '../dist/core/phantom/phantom.js';
import { chooseFixedFrame } from '../dist/core/image/fixed-frame.js';
import { frameTre, type FrameTre } from '../dist/core/metrics/tre.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/transformation/field.js';
import { readImage2D, type Image2D } from '../dist/io/image.js';
import { readLandmarkFile, landmarksMm } from '../dist/io/landmarks.js';
import { registerBspline, BSPLINE_DEFAULTS, type BsplineOptions } from '../dist/bspline/register.js';
import { affineMap, bsplineMap, elastixRegister } from './elastix.js';
import { SHARED, median, spreadPicks, type MethodResult, scoreTre } from './common.js';
import type { Point } from '../dist/core/image/geometry.js';
import * as tf from '@tensorflow/tfjs-core';
import { warpBilinear, maskedMse } from '../dist/core/transformation/warp.js';
import { isoTv } from '../dist/core/regulariser/regularisers.js';
import { bsplineGrid, basisTensors, denseField } from '../dist/bspline/kernel.js';

const BIRL = path.join(SHARED, 'birl_artificial');

/** One pair with its landmarks (mm). */
interface Pair {
  name: string;
  fixed: Image2D;
  moving: Image2D;
  fixedLm: Point[];
  movingLm: Point[];
}
interface Case {
  name: string;
  pairs(): Promise<Pair[]>;
}

function phantomCase(seed: number, moving = 6): Case {
  const s = makePhantomSeries({ size: 256, frames: 140, seed });
  const cache = new Map<number, Float32Array>();
  const frame = (t: number): Float32Array => {
    if (!cache.has(t)) cache.set(t, s.renderFrame(t));
    return cache.get(t)!;
  };
  return {
    name: `phantom seed ${seed} (256²)`,
    async pairs() {
      const { index: f } = await chooseFixedFrame(140, async (t) => frame(t));
      const picks = spreadPicks(moving, 140, f);
      return picks.map((t) => ({
        name: `frame_${String(t).padStart(3, '0')}`,
        fixed: { geometry: s.geometry, data: frame(f) },
        moving: { geometry: s.geometry, data: frame(t) },
        fixedLm: s.landmarks(f),
        movingLm: s.landmarks(t),
      }));
    },
  };
}

function birlCase(movingName: string): Case {
  return {
    name: `BIRL ${movingName} (800×600)`,
    async pairs() {
      const fixed = await readImage2D(path.join(BIRL, 'artificial_reference.jpg'));
      const moving = await readImage2D(path.join(BIRL, `artificial_${movingName}.jpg`));
      return [
        {
          name: movingName,
          fixed,
          moving,
          fixedLm: landmarksMm(await readLandmarkFile(path.join(BIRL, 'artificial_reference.csv')), fixed.geometry),
          movingLm: landmarksMm(await readLandmarkFile(path.join(BIRL, `artificial_${movingName}.csv`)), fixed.geometry),
        },
      ];
    },
  };
}

function ours(pair: Pair, options: BsplineOptions = BSPLINE_DEFAULTS): MethodResult {
  const [W, H] = pair.fixed.geometry.size;
  const t0 = performance.now();
  const r = registerBspline(pair.fixed.data, pair.moving.data, H, W, options, pair.fixed.geometry);
  const seconds = (performance.now() - t0) / 1000;
  return { field: fieldFromNormalised(r.field, pair.fixed.geometry), seconds, parameters: r.parameters };
}

/** Where one registration's time goes: per level, and the parts of one full-resolution iteration. */
function profile(pair: Pair) {
  const [W, H] = pair.fixed.geometry.size;
  const per = new Map<number, number[]>();
  let last = performance.now();
  const t0 = performance.now();
  registerBspline(
    pair.fixed.data,
    pair.moving.data,
    H,
    W,
    {
      ...BSPLINE_DEFAULTS,
      onIteration: ({ level }) => {
        const n = performance.now();
        if (!per.has(level)) per.set(level, []);
        per.get(level)!.push(n - last);
        last = n;
      },
    },
    pair.fixed.geometry,
  );
  const total = performance.now() - t0;
  const levels = [...per.entries()].map(([l, p]) => ({
    level: l < 0 ? 'affine' : l + 1,
    iterations: p.length,
    msPerIteration: median(p.slice(1)),
    ms: p.reduce((a, b) => a + b, 0),
  }));
  const time = (f: () => void, n = 20): number => {
    f();
    const a = performance.now();
    for (let i = 0; i < n; i++) f();
    return (performance.now() - a) / n;
  };
  const g = bsplineGrid(H, W, [8, 8]);
  const { By, BxT } = basisTensors(g);
  const P = tf.zeros([2, g.y.cp, g.x.cp]) as tf.Tensor3D;
  const u = tf.zeros([2, H, W]) as tf.Tensor3D;
  const F = tf.tensor2d(pair.fixed.data, [H, W]);
  // (nothing is returned from tf.tidy: returning a TypedArray makes tidy walk every element, docs/backends.md)
  const run = (f: () => tf.Tensor) => () =>
    tf.tidy(() => {
      f().dataSync();
    });
  const parts: Record<string, number> = {
    'warp forward': time(run(() => warpBilinear(pair.moving.data, H, W, u).warped)),
    'warp + MSE, forward + backward': time(
      run(() =>
        tf.grad((x) => {
          const w = warpBilinear(pair.moving.data, H, W, x as tf.Tensor3D);
          return maskedMse(F, w.warped, w.mask);
        })(u),
      ),
    ),
    'B-spline field By·P·Bxᵀ, forward + backward': time(run(() => tf.grad((p) => tf.sum(denseField(p as tf.Tensor3D, By, BxT)))(P))),
    'iso-TV, forward + backward': time(run(() => tf.grad((x) => isoTv(x as tf.Tensor3D))(u))),
  };
  tf.dispose([By, BxT, P, u, F]);
  console.log(`profile of one ${W}×${H} registration (${total.toFixed(0)} ms):`);
  for (const l of levels)
    console.log(
      `  ${l.level === 'affine' ? 'affine stage' : `level ${l.level}`}: ${l.iterations} it × ${l.msPerIteration.toFixed(1)} ms = ${l.ms.toFixed(0)} ms`,
    );
  for (const [k, v] of Object.entries(parts)) console.log(`  ${k.padEnd(44)} ${v.toFixed(1)} ms`);
  return { totalMs: total, levels, partsMs: parts };
}

/** `npm run bench -- bspline-profile`: the profile alone (phantom seed 2). */
export async function bsplineProfileSuite() {
  await initBackend('auto');
  const [pair] = await phantomCase(2, 1).pairs();
  return profile(pair);
}

export async function bsplineSuite() {
  const backend = await initBackend('auto');
  const cases = [phantomCase(2), phantomCase(3)];
  if (existsSync(path.join(BIRL, 'artificial_reference.csv'))) for (const m of ['moving-rigid', 'moving-affine', 'moving-elastic']) cases.push(birlCase(m));
  else console.log(`(BIRL pairs skipped: ${BIRL} is absent)`);
  const maps = [await affineMap(), await bsplineMap()];
  const rows = [];
  let prof: ReturnType<typeof profile> | null = null;
  for (const c of cases) {
    const pairs = await c.pairs();
    if (!prof) prof = profile(pairs[0]);
    const res: Record<'ours' | 'elastix', (MethodResult & { tre: FrameTre })[]> = { ours: [], elastix: [] };
    for (const p of pairs) {
      const a = ours(p);
      const e = await elastixRegister(p.fixed, p.moving, maps);
      const g = p.fixed.geometry;
      res.ours.push({ ...a, tre: frameTre(p.name, p.fixedLm, p.movingLm, g, (q) => mapPoint(a.field, q)) });
      res.elastix.push({ ...e, tre: frameTre(p.name, p.fixedLm, p.movingLm, g, (q) => mapPoint(e.field, q)) });
      process.stderr.write(`  ${c.name} ${p.name}: ours ${a.seconds.toFixed(2)} s, elastix ${e.seconds.toFixed(2)} s\n`);
    }
    const rep = (k: 'ours' | 'elastix') => scoreTre(res[k].map((x) => x.tre));
    const secs = (k: 'ours' | 'elastix') => res[k].reduce((s, x) => s + x.seconds, 0) / res[k].length;
    const o = rep('ours');
    const e = rep('elastix');
    rows.push({
      case: c.name,
      pairs: pairs.length,
      before_px: o.before.mean_px,
      ours_px: o.after.mean_px,
      elastix_px: e.after.mean_px,
      ours_mm: o.after.mean_mm,
      elastix_mm: e.after.mean_mm,
      ours_p90_px: o.after.p90_px,
      elastix_p90_px: e.after.p90_px,
      ours_s: secs('ours'),
      elastix_s: secs('elastix'),
      tre_ratio: o.after.mean_px / e.after.mean_px,
      seconds_ratio: secs('ours') / secs('elastix'),
      ours_parameters: res.ours[0].parameters,
      elastix_parameters: res.elastix[0].parameters,
    });
  }
  console.log(
    `affine + B-spline registration, ours (${backend.name}, defaults of r2n2 baseline bspline, --init affine included) vs elastix (affine then B-spline maps: MSE, 500 it, 4096 samples, 16 mm final grid); mean TRE in px`,
  );
  console.log('case                           pairs  before   ours  elastix  TRE ratio   ours s  elastix s  s ratio  params ours/elastix');
  for (const r of rows) {
    console.log(
      `${r.case.padEnd(30)} ${String(r.pairs).padStart(5)} ${r.before_px.toFixed(2).padStart(7)} ${r.ours_px.toFixed(3).padStart(6)} ${r.elastix_px.toFixed(3).padStart(8)} ${r.tre_ratio.toFixed(2).padStart(10)} ${r.ours_s.toFixed(2).padStart(8)} ${r.elastix_s.toFixed(2).padStart(10)} ${r.seconds_ratio.toFixed(2).padStart(8)}  ${r.ours_parameters}/${r.elastix_parameters}`,
    );
  }
  return { backend: backend.name, options: BSPLINE_DEFAULTS, profile: prof, rows };
}
