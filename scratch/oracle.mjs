// Representation bound: fit T Gaussians directly to the TRUE field (least squares over the image),
// then TRE at the landmarks. Held-out seed 21/22 at 128², 8 frames like the r2n2 bench.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/core/backend/index.js';
import { makePhantomSeries, phantomInverseGrid, phantomTruthField } from '../dist/core/phantom.js';
import { chooseFixedFrame } from '../dist/core/fixed-frame.js';
import { frameTre, treReport } from '../dist/core/tre.js';
import { sequenceAt, gaussianDisplacement } from '../dist/core/gaussian.js';
await initBackend('auto');
const Ts = JSON.parse(process.argv[2] ?? '[5,10,25]');
const size = 128, iters = Number(process.argv[3] ?? 600);
for (const seed of [21, 22]) {
  const s = makePhantomSeries({ size, frames: 60, seed });
  const frames = Array.from({ length: 60 }, (_, t) => s.renderFrame(t));
  const { index: f } = await chooseFixedFrame(60, async (t) => frames[t]);
  const picks = Array.from({ length: 8 }, (_, k) => Math.round(((k + 0.5) * 60) / 8)).map((t) => (t === f ? t + 1 : t));
  const inv = phantomInverseGrid(s, f);
  const g = s.geometry; const sp = g.spacing[0], o = g.origin[0]; const L = sp * (size - 1) / 2;
  for (const T of Ts) {
    const tres = [];
    for (const t of picks) {
      const tru = phantomTruthField(s, inv, t); // mm interleaved
      const target = new Float32Array(2 * size * size);
      for (let k = 0; k < size * size; k++) { target[k] = tru[2 * k] / L; target[size * size + k] = tru[2 * k + 1] / L; }
      const tgt = tf.tensor4d(target, [1, 2, size, size]);
      // greedy init + joint refinement
      const P = [];
      let resid = tf.clone(tgt);
      const vars = [];
      const field = () => { let u = tf.zeros([1, 2, size, size]); for (const v of vars) { const p = v; u = tf.add(u, gaussianDisplacement({ position: tf.slice(p, [0, 0], [1, 2]), sigma: tf.exp(tf.slice(p, [0, 2], [1, 2])), weight: tf.slice(p, [0, 4], [1, 2]), phi: tf.slice(p, [0, 6], [1, 1]) }, size, size)); } return u; };
      const opt = tf.train.adam(0.01);
      for (let k = 0; k < T; k++) {
        const r = tf.tidy(() => tf.sub(tgt, field()));
        const mag = tf.tidy(() => tf.sum(tf.square(r), 1).reshape([-1]));
        const idx = (await tf.argMax(mag).data())[0];
        const rd = await r.data(); mag.dispose(); r.dispose();
        const i = Math.floor(idx / size), j = idx % size;
        const init = tf.tensor2d([[-1 + 2 * j / (size - 1), -1 + 2 * i / (size - 1), Math.log(0.15), Math.log(0.15), rd[idx], rd[size * size + idx], 0]]);
        vars.push(tf.variable(init)); init.dispose();
        for (let it = 0; it < iters / T * 2 + 50; it++) opt.minimize(() => tf.mean(tf.square(tf.sub(tgt, field()))), false, vars);
      }
      for (let it = 0; it < iters; it++) opt.minimize(() => tf.mean(tf.square(tf.sub(tgt, field()))), false, vars);
      const seq = [];
      for (const v of vars) { const d = await v.data(); seq.push(d[0], d[1], Math.exp(d[2]), Math.exp(d[3]), d[4], d[5], d[6]); v.dispose(); }
      tgt.dispose(); opt.dispose?.();
      tres.push(frameTre('f' + t, s.landmarks(f), s.landmarks(t), g, (q) => { const [ux, uy] = sequenceAt(seq, (q[0] - o) / L - 1, (q[1] - o) / L - 1); return [q[0] + ux * L, q[1] + uy * L]; }));
    }
    const rep = treReport(tres);
    console.log('seed', seed, 'T', T, 'before', rep.before.mean_mm.toFixed(3), 'mm; truth-fit Gaussians', rep.after.mean_mm.toFixed(3), 'mm');
  }
}
