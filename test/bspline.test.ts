import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { bsplineKernel1d, cropWindow, axisGrid, bsplineGrid, basisTensors, denseField, referenceField, basisMatrix } from '../src/bspline/kernel.js';
import { registerBspline, BSPLINE_DEFAULTS, checkOptions, autoFinestSigma } from '../src/bspline/register.js';
import { gaussianKernel1d, resampleAligned, pyramidLevel, finestFactor } from '../src/core/image/resample.js';
import { warpSamples } from '../src/core/transformation/warp.js';
import { rand, smoothPair as pair } from './tf-helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('B-spline kernel and crop (docs/method.md)', () => {
  test('kernel length (order+1)·s − order; shifted copies at stride s sum to 1', () => {
    expect(bsplineKernel1d(6, 3).length).toBe(21);
    expect(bsplineKernel1d(15, 3).length).toBe(57);
    expect(bsplineKernel1d(5, 1).length).toBe(9);
    for (const [s, order] of [
      [4, 3],
      [7, 3],
      [5, 2],
      [6, 1],
    ]) {
      const k = bsplineKernel1d(s, order);
      for (let r = 0; r < s; r++) {
        let sum = 0;
        for (let t = r; t < k.length; t += s) sum += k[t];
        expect(sum).toBeCloseTo(1, 12);
      }
    }
    // by hand, s = 2: [1,1] → [1,2,1]/2 → [1,3,3,1]/4 → [1,4,6,4,1]/8
    const k2 = bsplineKernel1d(2, 3);
    expect(Array.from(k2)).toEqual([1, 4, 6, 4, 1].map((x) => x / 8));
  });
  test('the crop gives exactly n samples for n ∈ {64, 100, 128, 256}, s ∈ 2..16', () => {
    for (const n of [64, 100, 128, 256]) {
      for (let s = 2; s <= 16; s++) {
        const { start, end, outLength } = cropWindow(n, s, 3);
        expect(end - start).toBe(n);
        expect(start).toBeGreaterThanOrEqual(0);
        expect(end).toBeLessThanOrEqual(outLength);
        expect(axisGrid(n, s).cp).toBe(Math.ceil(n / s) + 2);
      }
    }
  });
  test('even kernel lengths (order 2 with an even spacing) are refused with the fix', () => {
    expect(() => axisGrid(64, 4, 2)).toThrow(/odd control-point spacing/);
    expect(axisGrid(64, 5, 2).cp).toBe(15);
  });
  test('basis rows sum to 1 away from the outermost control points (partition of unity)', () => {
    const a = axisGrid(100, 7);
    const B = basisMatrix(a);
    for (let i = 0; i < a.n; i++) {
      let s = 0;
      for (let g = 0; g < a.cp; g++) s += B[i * a.cp + g];
      expect(s).toBeCloseTo(1, 10);
    }
  });
  test('fast path By·P·Bxᵀ equals the conv2dTranspose reference', () => {
    const cases: [number, number, [number, number], number][] = [
      [64, 64, [4, 4], 3],
      [100, 64, [7, 5], 3],
      [128, 96, [16, 9], 3],
      [256, 256, [8, 8], 3],
      [60, 45, [5, 3], 2],
      [33, 40, [4, 6], 1],
    ];
    for (const [H, W, sp, order] of cases) {
      const g = bsplineGrid(H, W, sp, order);
      const [ref, fast] = tf.tidy(() => {
        const P = tf.tensor3d(rand([2, g.y.cp, g.x.cp], H + W), [2, g.y.cp, g.x.cp]);
        const { By, BxT } = basisTensors(g);
        return [referenceField(P, g).dataSync(), denseField(P, By, BxT).dataSync()];
      });
      expect(fast.length).toBe(2 * H * W);
      let err = 0,
        scale = 0;
      for (let i = 0; i < ref.length; i++) {
        err = Math.max(err, Math.abs(ref[i] - fast[i]));
        scale = Math.max(scale, Math.abs(ref[i]));
      }
      expect(err / scale).toBeLessThan(1e-5);
    }
  });
});

describe('resampling', () => {
  test('Gaussian kernel length 2·ceil(2σ)+1, sum 1', () => {
    expect(gaussianKernel1d(1).length).toBe(5);
    expect(gaussianKernel1d(2).length).toBe(9);
    expect(gaussianKernel1d(0.5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
  test('aligned-corner resampling reproduces a linear ramp on the normalised grid', () => {
    const h = 5,
      w = 7,
      H = 13,
      W = 10;
    const ramp = Float32Array.from({ length: h * w }, (_, p) => -1 + (2 * (p % w)) / (w - 1) + 0.5 * (-1 + (2 * Math.floor(p / w)) / (h - 1)));
    const up = resampleAligned(ramp, 1, h, w, H, W);
    for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) expect(up[i * W + j]).toBeCloseTo(-1 + (2 * j) / (W - 1) + 0.5 * (-1 + (2 * i) / (H - 1)), 5);
    const lvl = pyramidLevel(new Float32Array(256 * 200).fill(3), 200, 256, 4);
    expect([lvl.H, lvl.W]).toEqual([50, 64]);
    expect(lvl.data.every((v) => Math.abs(v - 3) < 1e-5)).toBe(true);
  });
});

describe('registerBspline', () => {
  test('recovers a smooth known displacement (error < 25% of its size) with a flat tensor count', () => {
    const n = 64;
    const { fixed, moving, shift } = pair(n);
    const before = tf.memory().numTensors;
    const losses: number[] = [];
    const r = registerBspline(fixed, moving, n, n, {
      ...BSPLINE_DEFAULTS,
      init: 'none',
      spacing: [8],
      iterations: [60, 60, 60],
      convergence: 0, // every iteration (the default stops a settled level early)
      onIteration: ({ loss }) => losses.push(loss),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(losses.length).toBe(180);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.2);
    let err = 0,
      mag = 0;
    const s = (n - 1) / 2;
    for (let i = 8; i < n - 8; i++)
      for (let j = 8; j < n - 8; j++) {
        const [dx, dy] = shift(j, i);
        err += Math.hypot(r.field[i * n + j] * s - dx, r.field[n * n + i * n + j] * s - dy);
        mag += Math.hypot(dx, dy);
      }
    expect(err / mag).toBeLessThan(0.25);
    // the warped moving image is closer to the fixed one than the moving image was
    const w = warpSamples(moving, n, n, r.field);
    let eb = 0,
      ea = 0;
    for (let p = 0; p < n * n; p++)
      if (w.mask[p]) {
        eb += (moving[p] - fixed[p]) ** 2;
        ea += (w.out[p] - fixed[p]) ** 2;
      }
    expect(ea).toBeLessThan(eb * 0.1);
    expect(r.parameters).toBe(r.levels.reduce((a, l) => a + 2 * l.controlGrid[0] * l.controlGrid[1], 0));
    expect(r.levels.map((l) => l.size)).toEqual([
      [16, 16],
      [32, 32],
      [64, 64],
    ]);
  });
  test('maxSize: the finest level is down-sampled by a power of two, the field comes back at full size', () => {
    expect(finestFactor(800, 600, 512)).toBe(2);
    expect(finestFactor(512, 300, 512)).toBe(1);
    expect(finestFactor(2000, 100, 512)).toBe(4);
    expect(finestFactor(800, 600, 0)).toBe(1);
    const n = 64;
    const { fixed, moving, shift } = pair(n);
    const o = { ...BSPLINE_DEFAULTS, init: 'none' as const, spacing: [4], iterations: [60] };
    const capped = registerBspline(fixed, moving, n, n, { ...o, maxSize: 32 });
    expect(capped.levels.map((l) => l.size)).toEqual([
      [8, 8],
      [16, 16],
      [32, 32],
    ]);
    expect(capped.field.length).toBe(2 * n * n);
    const full = registerBspline(fixed, moving, n, n, { ...o, maxSize: 0 });
    expect(full.levels.map((l) => l.size)).toEqual([
      [16, 16],
      [32, 32],
      [64, 64],
    ]);
    // the capped field still recovers the smooth displacement (mean error < 25% of its size)
    const s = (n - 1) / 2;
    let err = 0,
      mag = 0;
    for (let i = 8; i < n - 8; i++)
      for (let j = 8; j < n - 8; j++) {
        const [dx, dy] = shift(j, i);
        err += Math.hypot(capped.field[i * n + j] * s - dx, capped.field[n * n + i * n + j] * s - dy);
        mag += Math.hypot(dx, dy);
      }
    expect(err / mag).toBeLessThan(0.25);
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, maxSize: -1 })).toThrow(/max size/);
  });
  test('option lists are checked', () => {
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, spacing: [8, 8] })).toThrow(/spacing needs 1 value or 3/);
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, iterations: [1.5] })).toThrow(/integers/);
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, learningRate: [NaN] })).toThrow(/finite/);
  });
});

describe('default finest-level blur', () => {
  test('1.5 px per 256 px of the longer side, within 1..3 px', () => {
    expect(autoFinestSigma(128, 128)).toBe(1);
    expect(autoFinestSigma(256, 256)).toBe(1.5);
    expect(autoFinestSigma(256, 384)).toBe(2.25);
    expect(autoFinestSigma(800, 600)).toBe(3);
  });
});
