import * as tf from '@tensorflow/tfjs-core';
import path from 'node:path';
import { initBackend } from '../dist/core/backend/index.js';
import { makePhantomSeries } from '../dist/core/phantom.js';
import { chooseFixedFrame } from '../dist/core/fixed-frame.js';
import { frameTre, treReport } from '../dist/core/tre.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/field.js';
import { loadModel } from '../dist/io/model.js';
import { r2n2Registrar } from '../dist/app/register.js';
import { gaussianDisplacement, sequenceField } from '../dist/core/gaussian.js';
import { warpBilinear, maskedMse } from '../dist/core/warp.js';
import { normaliseIntensity } from '../dist/core/intensity.js';
import { isoTv } from '../dist/core/regularisers.js';
await initBackend('auto');
const seeds = JSON.parse(process.argv[2] ?? '[23]');
const variants = JSON.parse(process.argv[3] ?? '[{"it":0}]');
const model = await loadModel('fixtures/models/phantom');
const reg = r2n2Registrar(model, { steps: 5, stopThreshold: 0 });
const size = 128;
function refine(F, Ms, seqs, v) {
  const H = size, W = size;
  const Ft = tf.tensor2d(normaliseIntensity(F), [H, W]);
  const Mn = Ms.map((m) => normaliseIntensity(m));
  const vars = seqs.map((s) => { const T = s.length / 7; const a = []; for (let k = 0; k < T; k++) { const r = s.slice(7 * k, 7 * k + 7); a.push(r[0], r[1], Math.log(Math.max(r[2], 1e-3)), Math.log(Math.max(r[3], 1e-3)), r[4], r[5], r[6]); } return tf.variable(tf.tensor2d(a, [T, 7])); });
  const opt = tf.train.adam(v.lr ?? 0.003);
  const fieldOf = (p) => { const T = p.shape[0]; return tf.sum(gaussianDisplacement({ position: tf.slice(p, [0, 0], [T, 2]), sigma: tf.exp(tf.slice(p, [0, 2], [T, 2])), weight: tf.slice(p, [0, 4], [T, 2]), phi: tf.slice(p, [0, 6], [T, 1]) }, H, W), 0); };
  for (let it = 0; it < v.it; it++) {
    opt.minimize(() => {
      const ls = vars.map((p, b) => { const u = fieldOf(p); const w = warpBilinear(Mn[b], H, W, u); let l = maskedMse(Ft, w.warped, w.mask); if (v.lambda) l = tf.add(l, tf.mul(isoTv(u), v.lambda)); return l; });
      return tf.div(tf.addN(ls), ls.length);
    }, false, vars);
  }
  const out = vars.map((p) => { const d = p.dataSync(); const s = Array.from(d); for (let k = 0; k < s.length; k += 7) { s[k + 2] = Math.exp(s[k + 2]); s[k + 3] = Math.exp(s[k + 3]); } return s; });
  tf.dispose([...vars, Ft]); opt.dispose?.();
  return out;
}
for (const seed of seeds) {
  const s = makePhantomSeries({ size, frames: 60, seed });
  const frames = Array.from({ length: 60 }, (_, t) => s.renderFrame(t));
  const { index: f } = await chooseFixedFrame(60, async (t) => frames[t]);
  const fixed = { geometry: s.geometry, data: frames[f] };
  const picks = Array.from({ length: 8 }, (_, k) => Math.round(((k + 0.5) * 60) / 8)).map((t) => (t === f ? t + 1 : t));
  const tre = (t, field) => frameTre(`frame_${t}`, s.landmarks(f), s.landmarks(t), s.geometry, (q) => mapPoint(field, q));
  const batch = await reg.registerBatch(fixed, picks.map((t) => ({ geometry: s.geometry, data: frames[t] })), () => undefined);
  const seqs = batch.map((b) => b.params.sequence.flat());
  for (const v of variants) {
    const t0 = performance.now();
    const r = v.zero ? refine(frames[f], picks.map((t) => frames[t]), seqs.map((q) => q.map((x, i) => (i % 7 === 4 || i % 7 === 5 ? 0 : x))), v) : refine(frames[f], picks.map((t) => frames[t]), seqs, v);
    const sec = (performance.now() - t0) / 1000 / picks.length;
    const rep = treReport(picks.map((t, k) => tre(t, fieldFromNormalised(sequenceField(r[k], size, size), s.geometry))));
    console.log('seed', seed, JSON.stringify(v), 'before', rep.before.mean_mm.toFixed(3), 'after', rep.after.mean_mm.toFixed(3), 'mm', 's/frame', sec.toFixed(3));
  }
}
