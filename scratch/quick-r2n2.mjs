import { initBackend } from '../dist/core/backend/index.js';
import { makePhantomSeries } from '../dist/core/phantom.js';
import { chooseFixedFrame } from '../dist/core/fixed-frame.js';
import { frameTre, treReport } from '../dist/core/tre.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/field.js';
import { loadModel } from '../dist/io/model.js';
import { r2n2Registrar } from '../dist/app/register.js';
await initBackend('auto');
const model = await loadModel(process.argv[2]);
const steps = Number(process.argv[3] ?? 5);
const reg = r2n2Registrar(model, { steps, stopThreshold: 0 });
const size = 128;
for (const seed of JSON.parse(process.argv[4] ?? '[21,22]')) {
  const s = makePhantomSeries({ size, frames: 60, seed });
  const frames = Array.from({ length: 60 }, (_, t) => s.renderFrame(t));
  const { index: f } = await chooseFixedFrame(60, async (t) => frames[t]);
  const picks = Array.from({ length: 8 }, (_, k) => Math.round(((k + 0.5) * 60) / 8)).map((t) => (t === f ? t + 1 : t));
  const batch = await reg.registerBatch({ geometry: s.geometry, data: frames[f] }, picks.map((t) => ({ geometry: s.geometry, data: frames[t] })), () => undefined);
  const rep = treReport(picks.map((t, k) => frameTre('f' + t, s.landmarks(f), s.landmarks(t), s.geometry, (q) => mapPoint(fieldFromNormalised(batch[k].field, s.geometry), q))));
  console.log(process.argv[2], 'steps', steps, 'seed', seed, 'before', rep.before.mean_mm.toFixed(3), 'after', rep.after.mean_mm.toFixed(3));
}
