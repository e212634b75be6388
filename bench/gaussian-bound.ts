// `npm run bench -- gaussian-bound`: how well can T local Gaussians (R2N2's transformation, 7
// numbers each) represent the phantom's true motion at all? For each of the r2n2 bench's pairs
// (held-out seeds 21 and 22, 128², 8 frames), the sum of T Gaussians is fitted directly to the
// TRUE field (least squares over the image, greedy placement at the largest residual, then
// Adam on all 7·T numbers), and the TRE of that fit at the landmarks is reported beside the
// identity. This bounds what a perfect network with T steps could reach; it uses the true
// field, so it is not a registration method. Slow (minutes): not part of the default suites.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/backend/index.js';
import { makePhantomSeries, phantomInverseGrid, phantomTruthField } from '../dist/core/phantom/phantom.js';
import { chooseFixedFrame } from '../dist/core/image/fixed-frame.js';
import { frameTre, type FrameTre } from '../dist/core/metrics/tre.js';
import { sequenceMapPoint, gaussianDisplacement } from '../dist/core/transformation/gaussian.js';
import { spreadPicks, type BenchOptions, scoreTre } from './common.js';

/** Fits T Gaussians to a target field `[1, 2, n, n]` (normalised units); returns 7·T numbers. */
async function fitGaussians(target: tf.Tensor4D, n: number, T: number, iterations: number): Promise<number[]> {
  const vars: tf.Variable[] = [];
  const field = () =>
    tf.tidy(() => {
      let u: tf.Tensor = tf.zeros([1, 2, n, n]);
      for (const p of vars)
        u = tf.add(
          u,
          gaussianDisplacement(
            {
              position: tf.slice(p, [0, 0], [1, 2]) as tf.Tensor2D,
              sigma: tf.exp(tf.slice(p, [0, 2], [1, 2])) as tf.Tensor2D,
              weight: tf.slice(p, [0, 4], [1, 2]) as tf.Tensor2D,
              phi: tf.slice(p, [0, 6], [1, 1]) as tf.Tensor2D,
            },
            n,
            n,
          ),
        );
      return u;
    });
  const opt = tf.train.adam(0.01);
  const fit = (k: number) => {
    for (let it = 0; it < k; it++) opt.minimize(() => tf.mean(tf.square(tf.sub(target, field()))) as tf.Scalar, false, vars);
  };
  for (let k = 0; k < T; k++) {
    const r = tf.tidy(() => tf.sub(target, field()));
    const mag = tf.tidy(() => tf.reshape(tf.sum(tf.square(r), 1), [-1]));
    const idx = (await tf.argMax(mag).data())[0];
    const rd = await r.data();
    tf.dispose([r, mag]);
    const i = Math.floor(idx / n),
      j = idx % n;
    const init = tf.tensor2d([[-1 + (2 * j) / (n - 1), -1 + (2 * i) / (n - 1), Math.log(0.15), Math.log(0.15), rd[idx], rd[n * n + idx], 0]]);
    vars.push(tf.variable(init));
    init.dispose();
    fit(Math.round((2 * iterations) / T) + 50);
  }
  fit(iterations);
  const seq: number[] = [];
  for (const v of vars) {
    const d = await v.data();
    seq.push(d[0], d[1], Math.exp(d[2]), Math.exp(d[3]), d[4], d[5], d[6]);
    v.dispose();
  }
  opt.dispose();
  return seq;
}

export async function gaussianBoundSuite(opt: BenchOptions) {
  const backend = await initBackend('auto');
  const Ts = opt.boundSteps;
  const size = 128;
  const iterations = 400;
  const rows = [];
  for (const seed of [21, 22]) {
    const s = makePhantomSeries({ size, frames: 60, seed });
    const frames = Array.from({ length: 60 }, (_, t) => s.renderFrame(t));
    const { index: f } = await chooseFixedFrame(60, async (t) => frames[t]);
    const picks = spreadPicks(8, 60, f);
    const inv = phantomInverseGrid(s, f);
    const g = s.geometry;
    const L = (g.spacing[0] * (size - 1)) / 2; // mm per normalised unit (the phantom's square grid)
    for (const T of Ts) {
      const tres: FrameTre[] = [];
      for (const t of picks) {
        const tru = phantomTruthField(s, inv, t);
        const target = new Float32Array(2 * size * size);
        for (let k = 0; k < size * size; k++) {
          target[k] = tru[2 * k] / L;
          target[size * size + k] = tru[2 * k + 1] / L;
        }
        const tgt = tf.tensor4d(target, [1, 2, size, size]);
        const seq = await fitGaussians(tgt, size, T, iterations);
        tgt.dispose();
        tres.push(frameTre(`frame_${t}`, s.landmarks(f), s.landmarks(t), g, (q) => sequenceMapPoint(seq, g, q)));
        process.stderr.write(`  seed ${seed} T ${T} frame ${t}\n`);
      }
      const r = scoreTre(tres);
      rows.push({
        case: `phantom seed ${seed} (${size}²)`,
        steps: T,
        pairs: picks.length,
        before_mm: r.before.mean_mm,
        truth_fit_mm: r.after.mean_mm,
        truth_fit_max_mm: r.after.max_mm,
      });
    }
  }
  console.log(`T Gaussians fitted to the true field (${backend.name}); TRE at the landmarks, mean mm`);
  console.log('case                      steps  pairs  before mm  truth-fit mm  max mm');
  for (const r of rows)
    console.log(
      `${r.case.padEnd(25)} ${String(r.steps).padStart(5)} ${String(r.pairs).padStart(6)} ${r.before_mm.toFixed(3).padStart(10)} ${r.truth_fit_mm.toFixed(3).padStart(13)} ${r.truth_fit_max_mm.toFixed(3).padStart(7)}`,
    );
  return { backend: backend.name, iterations, rows };
}
