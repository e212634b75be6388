import { initBackend } from '../dist/core/backend/index.js';
import { makePhantomSeries } from '../dist/core/phantom.js';
import { chooseFixedFrame } from '../dist/core/fixed-frame.js';
import { frameTre, treReport } from '../dist/core/tre.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/field.js';
import { registerBspline, BSPLINE_DEFAULTS } from '../dist/bspline/register.js';
await initBackend('auto');
const seeds = JSON.parse(process.argv[2] ?? '[1]');
const variants = JSON.parse(process.argv[3] ?? '[{}]');
for (const seed of seeds) {
  const s = makePhantomSeries({ size: 256, frames: 140, seed });
  const cache = new Map();
  const frame = (t) => { if (!cache.has(t)) cache.set(t, s.renderFrame(t)); return cache.get(t); };
  const { index: f } = await chooseFixedFrame(140, async (t) => frame(t));
  const picks = Array.from({ length: 6 }, (_, k) => Math.round(((k + 0.5) * 140) / 6)).map((t) => (t === f ? t + 1 : t));
  const [W, H] = s.geometry.size;
  for (const v of variants) {
    const t0 = performance.now();
    const tres = picks.map((t) => {
      const r = registerBspline(frame(f), frame(t), H, W, { ...BSPLINE_DEFAULTS, ...v }, s.geometry);
      const fld = fieldFromNormalised(r.field, s.geometry);
      return frameTre('f' + t, s.landmarks(f), s.landmarks(t), s.geometry, (q) => mapPoint(fld, q));
    });
    const rep = treReport(tres);
    console.log('seed', seed, JSON.stringify(v), 'before', rep.before.mean_px.toFixed(3), 'after', rep.after.mean_px.toFixed(4), 's/pair', ((performance.now() - t0) / 6000).toFixed(2));
  }
}
