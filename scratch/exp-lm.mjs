import path from 'node:path';
import { initBackend } from '../dist/core/backend/index.js';
import { fieldFromNormalised, mapPoint } from '../dist/core/field.js';
import { readImage2D } from '../dist/io/image.js';
import { readLandmarkFile, landmarksMm } from '../dist/io/landmarks.js';
import { registerAffine, affineField, AFFINE_DEFAULTS } from '../dist/core/affine.js';
import { registerBspline, BSPLINE_DEFAULTS } from '../dist/bspline/register.js';
const BIRL = '/work/shared/data/birl_artificial';
await initBackend('auto');
const name = process.argv[2] ?? 'moving-affine';
const fixed = await readImage2D(path.join(BIRL, 'artificial_reference.jpg'));
const moving = await readImage2D(path.join(BIRL, `artificial_${name}.jpg`));
const g = fixed.geometry; const [W, H] = g.size;
const fl = landmarksMm(await readLandmarkFile(path.join(BIRL, 'artificial_reference.csv')), g);
const ml = landmarksMm(await readLandmarkFile(path.join(BIRL, `artificial_${name}.csv`)), g);
const a = registerAffine(fixed.data, moving.data, g, { ...AFFINE_DEFAULTS, kind: 'affine' });
const fa = fieldFromNormalised(affineField(a, g), g);
const r = registerBspline(fixed.data, moving.data, H, W, { ...BSPLINE_DEFAULTS, ...JSON.parse(process.argv[3] ?? '{}') }, g);
const fb = fieldFromNormalised(r.field, g);
for (let i = 0; i < fl.length; i++) {
  const pa = mapPoint(fa, fl[i]), pb = mapPoint(fb, fl[i]);
  const e = (p) => Math.hypot(p[0] - ml[i][0], p[1] - ml[i][1]);
  console.log(i + 1, fl[i].map((x) => x.toFixed(0)).join(','), 'affine', e(pa).toFixed(3), 'bspl', e(pb).toFixed(3), 'diff', Math.hypot(pa[0] - pb[0], pa[1] - pb[1]).toFixed(3));
}
