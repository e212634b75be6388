/** The B-spline's defaults (no tfjs here: the command line's help reads them). */
import type { BsplineOptions } from './options.js';

/**
 * The defaults, chosen on the real-data benchmark (`npm run bench -- real`, docs/experiments.md):
 * 60 iterations at the finest level (was 30) and a global stage of 50/25/10 (was 100/50/20):
 * mean LV Dice 0.9350 on 28 Sunnybrook slices (was 0.9331; native elastix 0.9339), mean TRE
 * 0.092 mm on 7 simulated series (was 0.104; elastix 0.245), at ≈ 1.2× the time per pair.
 * `maxSize` 512: the 800×600 case registers its finest level at 400×300, TRE 0.080 mm at 2.4 s
 * per pair, against 0.093 mm at 7.6 s at full resolution (its σ 3 px blur leaves little that
 * the full grid would add); images up to 512 px are not affected.
 */
export const BSPLINE_DEFAULTS: BsplineOptions = {
  levels: 3,
  spacing: [8, 8, 8],
  iterations: [100, 60, 60],
  learningRate: [0.01, 0.005, 0.002],
  lambda: [1],
  order: 3,
  loss: 'mse',
  regulariser: 'tv',
  init: 'affine',
  initIterations: [50, 25, 10],
  maxSize: 512,
  // a level stops once its mean loss over 10 iterations changes by < 0.3% (tune half, run13:
  // mean TRE 0.129 mm either way, worst case +3%, 7% less time per frame)
  convergence: 0.003,
};
