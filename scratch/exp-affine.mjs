import path from 'node:path';
import { initBackend } from '../dist/core/backend/index.js';
import { frameTre, treReport } from '../dist/core/tre.js';
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
const tre = (fieldN) => treReport([frameTre('x', fl, ml, g, (q) => mapPoint(fieldFromNormalised(fieldN, g), q))]).after.mean_px;
const variants = JSON.parse(process.argv[3] ?? '[{}]');
for (const v of variants) {
  const t0 = performance.now();
  if (v.bspline) {
    const r = registerBspline(fixed.data, moving.data, H, W, { ...BSPLINE_DEFAULTS, ...v.bspline, affineOptions: v.affine ? { ...AFFINE_DEFAULTS, ...v.affine } : undefined }, g);
    console.log(JSON.stringify(v), 'tre', tre(r.field).toFixed(4), 's', ((performance.now() - t0) / 1000).toFixed(1));
  } else {
    const a = registerAffine(fixed.data, moving.data, g, { ...AFFINE_DEFAULTS, kind: 'affine', ...v });
    console.log(JSON.stringify(v), 'tre', tre(affineField(a, g)).toFixed(4), 's', ((performance.now() - t0) / 1000).toFixed(1), a.matrix.map((x) => x.toFixed(5)).join(' '));
  }
}
