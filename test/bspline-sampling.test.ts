import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { bsplineGrid, basisTensors, denseField, denseFieldHost, sparseGrid } from '../src/bspline/kernel.js';
import { registerBspline, BSPLINE_DEFAULTS, checkOptions, convergenceStop, levelMask, levelSpacing, warpedMaskNearest } from '../src/bspline/register.js';
import { bsplineObjectiveHost } from '../src/bspline/host-objective.js';
import { mulberry32, samplePoints, sampledLevel } from '../src/bspline/sampled.js';
import { isoTv, isoTvHost } from '../src/core/regulariser/regularisers.js';
import { maskedMse, warpBilinear, warpMseHost, warpSamples } from '../src/core/transformation/warp.js';
import { identityGeometry } from '../src/core/image/geometry.js';
import { smoothPair as pair } from './tf-helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Mean end-point error (px) of a normalised field against the true shift, away from the border. */
function fieldError(
  field: Float32Array,
  n: number,
  shift: (x: number, y: number) => [number, number],
  keep: (i: number, j: number) => boolean = () => true,
): number {
  const s = (n - 1) / 2;
  let err = 0,
    k = 0;
  for (let i = 8; i < n - 8; i++)
    for (let j = 8; j < n - 8; j++) {
      if (!keep(i, j)) continue;
      const [dx, dy] = shift(j, i);
      err += Math.hypot(field[i * n + j] * s - dx, field[n * n + i * n + j] * s - dy);
      k++;
    }
  return err / k;
}

describe('B-spline stochastic sampling (--samples)', () => {
  test('the sampled warp equals the dense warp at the same pixels (values and gradients)', () => {
    const n = 20;
    const img = Float32Array.from({ length: n * n }, (_, p) => Math.sin(p / 7) + (p % n) / n);
    const u = Float32Array.from({ length: 2 * n * n }, (_, p) => 0.05 * Math.cos(p / 11));
    const dense = warpSamples(img, n, n, u);
    const s = (n - 1) / 2;
    const idx = [0, 17, 45, 201, 399, 250];
    const X = idx.map((p) => (p % n) + u[p] * s);
    const Y = idx.map((p) => Math.floor(p / n) + u[n * n + p] * s);
    const pts = samplePoints(img, n, n, X, Y);
    idx.forEach((p, k) => {
      expect(pts.out[k]).toBeCloseTo(dense.out[p], 5);
      expect(pts.mask[k]).toBe(dense.mask[p]);
      expect(pts.gx[k] * s).toBeCloseTo(dense.dx[p], 4);
      expect(pts.gy[k] * s).toBeCloseTo(dense.dy[p], 4);
    });
  });

  test('the sampled regulariser estimates the dense iso-TV of the same B-spline field (within 3% at 20000 samples)', () => {
    const n = 64;
    const grid = bsplineGrid(n, n, [8, 8]);
    const rng = mulberry32(5);
    const P = tf.tensor3d(
      Float32Array.from({ length: grid.parameters }, () => (rng() - 0.5) * 0.1),
      [2, grid.y.cp, grid.x.cp],
    );
    const { By, BxT } = basisTensors(grid);
    const dense = tf.tidy(() => isoTv(denseField(P, By, BxT)).dataSync()[0]);
    const zeros = new Float32Array(n * n);
    const lvl = sampledLevel({
      fixed: zeros,
      moving: zeros,
      h: n,
      w: n,
      grid,
      prev: null,
      samples: 20000,
      rng: mulberry32(1),
      loss: 'mse',
      regulariser: 'tv',
      regulariserSpacing: [1, 1],
    });
    const d = lvl.draw();
    // fixed = moving = 0: the similarity is 0, so the objective is λ·TV
    const sampled = tf.tidy(() => lvl.objective(P, d, 1).dataSync()[0]);
    lvl.release(d);
    expect(Math.abs(sampled - dense) / dense).toBeLessThan(0.03);
    tf.dispose([P, By, BxT]);
  });

  test('a sampled registration recovers the known field as well as the dense one, is reproducible, and leaks no tensor', () => {
    const n = 96;
    const { fixed, moving, shift } = pair(n);
    const o = { ...BSPLINE_DEFAULTS, init: 'none' as const, spacing: [8], iterations: [60, 60, 60] };
    const dense = registerBspline(fixed, moving, n, n, o);
    const before = tf.memory().numTensors;
    const a = registerBspline(fixed, moving, n, n, { ...o, samples: 1024, seed: 3 });
    expect(tf.memory().numTensors).toBe(before);
    const b = registerBspline(fixed, moving, n, n, { ...o, samples: 1024, seed: 3 });
    const c = registerBspline(fixed, moving, n, n, { ...o, samples: 1024, seed: 4 });
    expect(Buffer.from(a.field.buffer).equals(Buffer.from(b.field.buffer))).toBe(true);
    expect(Buffer.from(a.field.buffer).equals(Buffer.from(c.field.buffer))).toBe(false);
    const eDense = fieldError(dense.field, n, shift);
    const eSampled = fieldError(a.field, n, shift);
    const eNone = fieldError(new Float32Array(2 * n * n), n, shift);
    expect(eSampled).toBeLessThan(0.25 * eNone);
    expect(eSampled).toBeLessThan(1.5 * eDense + 0.05);
  });

  test('sampling is refused with the losses and regularisers that need neighbourhoods', () => {
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, samples: 2048, loss: 'lncc' })).toThrow(/mse and ncc/);
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, samples: 2048, regulariser: 'bending' })).toThrow(/samples 0 with bending/);
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, samples: -1 })).toThrow(/whole number/);
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, samples: 2048, loss: 'ncc' })).not.toThrow();
  });
});

describe('the B-spline field in one host op', () => {
  test('denseFieldHost equals By·P·Bxᵀ in value and gradient (several grids, orders 1–3)', () => {
    const cases: [number, number, [number, number], number][] = [
      [64, 64, [8, 8], 3],
      [100, 64, [7, 5], 3],
      [45, 60, [3, 5], 2],
      [40, 33, [6, 4], 1],
      [256, 200, [8, 8], 3],
    ];
    const rng = mulberry32(2);
    for (const [H, W, sp, order] of cases) {
      const g = bsplineGrid(H, W, sp, order);
      const P = tf.tensor3d(
        Float32Array.from({ length: g.parameters }, () => rng() - 0.5),
        [2, g.y.cp, g.x.cp],
      );
      const G = tf.tensor3d(
        Float32Array.from({ length: 2 * H * W }, () => rng() - 0.5),
        [2, H, W],
      );
      const { By, BxT } = basisTensors(g);
      const s = sparseGrid(g);
      const f = (fn: (p: tf.Tensor3D) => tf.Tensor3D) => tf.valueAndGrad((p: tf.Tensor) => tf.sum(tf.mul(fn(p as tf.Tensor3D), G)) as tf.Scalar)(P);
      const a = f((p) => denseField(p, By, BxT));
      const b = f((p) => denseFieldHost(p, s));
      const fa = tf.tidy(() => denseField(P, By, BxT).dataSync());
      const fb = tf.tidy(() => denseFieldHost(P, s).dataSync());
      let err = 0;
      fa.forEach((v, k) => (err = Math.max(err, Math.abs(v - fb[k]))));
      expect(err).toBeLessThan(1e-5);
      const ga = a.grad.dataSync();
      const gb = b.grad.dataSync();
      let gerr = 0;
      ga.forEach((v, k) => (gerr = Math.max(gerr, Math.abs(v - gb[k]) / Math.max(1, Math.abs(v)))));
      expect(gerr).toBeLessThan(1e-4);
      tf.dispose([P, G, By, BxT, a.value, a.grad, b.value, b.grad]);
    }
  });
});

describe('warp + MSE in one host op', () => {
  test('warpMseHost equals maskedMse(F, warpBilinear(M, u)) in value and gradient, with and without a weight', () => {
    const H = 23,
      W = 31;
    const rng = mulberry32(4);
    const M = Float32Array.from({ length: H * W }, () => rng());
    const F = Float32Array.from({ length: H * W }, () => rng());
    // large enough to push some samples outside the image
    const u = tf.tensor3d(
      Float32Array.from({ length: 2 * H * W }, () => (rng() - 0.5) * 0.3),
      [2, H, W],
    );
    const weight = Uint8Array.from({ length: H * W }, (_, p) => (p % 3 ? 1 : 0));
    for (const wt of [null, weight]) {
      const a = tf.valueAndGrad((x: tf.Tensor) => {
        const { warped, mask } = warpBilinear(M, H, W, x as tf.Tensor3D);
        const m = wt ? tf.mul(mask, tf.tensor2d(Float32Array.from(wt), [H, W])) : mask;
        return maskedMse(tf.tensor2d(F, [H, W]), warped, m);
      })(u);
      const b = tf.valueAndGrad((x: tf.Tensor) => warpMseHost(M, F, H, W, x as tf.Tensor3D, wt))(u);
      expect(b.value.dataSync()[0]).toBeCloseTo(a.value.dataSync()[0], 5);
      const ga = a.grad.dataSync();
      const gb = b.grad.dataSync();
      ga.forEach((v, k) => expect(gb[k]).toBeCloseTo(v, 5));
      tf.dispose([a.value, a.grad, b.value, b.grad]);
    }
    u.dispose();
  });
});

describe('iso-TV in one host op', () => {
  test('isoTvHost equals isoTv in value and gradient (anisotropic spacing, zero differences included)', () => {
    const rng = mulberry32(9);
    const u = tf.tensor3d(
      Float32Array.from({ length: 2 * 13 * 17 }, (_, k) => (k % 5 === 0 ? 0.25 : rng() - 0.5)),
      [2, 13, 17],
    );
    const flat = tf.zeros([2, 4, 4]) as tf.Tensor3D;
    for (const [x, sp] of [
      [u, [1, 1]],
      [u, [0.5, 2]],
      [flat, [1, 1]],
    ] as [tf.Tensor3D, [number, number]][]) {
      const a = tf.valueAndGrad((t: tf.Tensor) => isoTv(t as tf.Tensor3D, sp))(x);
      const b = tf.valueAndGrad((t: tf.Tensor) => isoTvHost(t as tf.Tensor3D, sp))(x);
      expect(b.value.dataSync()[0]).toBeCloseTo(a.value.dataSync()[0], 5);
      const ga = a.grad.dataSync();
      const gb = b.grad.dataSync();
      ga.forEach((v, k) => expect(gb[k]).toBeCloseTo(v, 5));
      tf.dispose([a.value, a.grad, b.value, b.grad]);
    }
    tf.dispose([u, flat]);
  });
});

describe("a B-spline level's whole objective in one host op", () => {
  test('bsplineObjectiveHost equals field + prev → warp + MSE + λ·iso-TV composed of the separate ops (value and gradient; with and without prev, weight, λ)', () => {
    const H = 37,
      W = 29;
    const rng = mulberry32(11);
    const g = bsplineGrid(H, W, [5, 4], 3);
    const s = sparseGrid(g);
    const M = Float32Array.from({ length: H * W }, () => rng());
    const F = Float32Array.from({ length: H * W }, () => rng());
    const prevData = Float32Array.from({ length: 2 * H * W }, () => (rng() - 0.5) * 0.2);
    const weight = Uint8Array.from({ length: H * W }, (_, p) => (p % 4 ? 1 : 0));
    const P = tf.tensor3d(
      Float32Array.from({ length: g.parameters }, () => (rng() - 0.5) * 0.3),
      [2, g.y.cp, g.x.cp],
    );
    for (const [prev, wt, lambda, sp] of [
      [null, null, 0, [1, 1]],
      [prevData, null, 1, [1, 1]],
      [prevData, weight, 0.3, [0.5, 2]],
      [null, weight, 2, [1, 1]],
    ] as [Float32Array | null, Uint8Array | null, number, [number, number]][]) {
      const prevT = prev ? tf.tensor3d(prev, [2, H, W]) : null;
      const a = tf.valueAndGrad((p: tf.Tensor) => {
        const b = denseFieldHost(p as tf.Tensor3D, s);
        const sim = warpMseHost(M, F, H, W, prevT ? (tf.add(prevT, b) as tf.Tensor3D) : b, wt);
        return lambda > 0 ? (tf.add(sim, tf.mul(isoTvHost(b, sp), tf.scalar(lambda))) as tf.Scalar) : sim;
      })(P);
      const whole = bsplineObjectiveHost({ sparse: s, moving: M, fixed: F, prev, weight: wt, lambda, spacing: sp });
      // twice: the op reuses its buffers from one call to the next
      for (let rep = 0; rep < 2; rep++) {
        const b = tf.valueAndGrad((p: tf.Tensor) => whole(p as tf.Tensor3D))(P);
        expect(Math.abs(b.value.dataSync()[0] - a.value.dataSync()[0])).toBeLessThan(1e-6 * Math.max(1, Math.abs(a.value.dataSync()[0])));
        const ga = a.grad.dataSync();
        const gb = b.grad.dataSync();
        let err = 0;
        let scale = 0;
        ga.forEach((v, k) => {
          err = Math.max(err, Math.abs(v - gb[k]));
          scale = Math.max(scale, Math.abs(v));
        });
        expect(scale).toBeGreaterThan(0);
        expect(err).toBeLessThan(1e-5 * scale);
        tf.dispose([b.value, b.grad]);
      }
      tf.dispose([a.value, a.grad]);
      prevT?.dispose();
    }
    const other = bsplineObjectiveHost({ sparse: sparseGrid(bsplineGrid(H, W, [6, 6], 3)), moving: M, fixed: F, prev: null, lambda: 1, spacing: [1, 1] });
    expect(() => other(P)).toThrow(/parameters/);
    P.dispose();
  });
});

describe('B-spline masks, spacing in mm, convergence stop', () => {
  test('a fixed mask restricts the similarity: inside it the field is recovered, outside it is not', () => {
    const n = 64;
    const { fixed, moving, shift } = pair(n);
    const mask = new Uint8Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n / 2; j++) mask[i * n + j] = 1; // left half
    const o = { ...BSPLINE_DEFAULTS, init: 'none' as const, spacing: [8], iterations: [60, 60, 60] };
    const r = registerBspline(fixed, moving, n, n, { ...o, fixedMask: mask });
    const left = fieldError(r.field, n, shift, (_i, j) => j < n / 2 - 10);
    const full = registerBspline(fixed, moving, n, n, o);
    const rightFull = fieldError(full.field, n, shift, (_i, j) => j > n / 2 + 12);
    expect(left).toBeLessThan(0.6);
    // the right half had no similarity term: its field is far from the true one there (> 1 px error)
    expect(fieldError(r.field, n, shift, (_i, j) => j > n / 2 + 12)).toBeGreaterThan(rightFull + 0.5);
    // also in sampled mode
    const s = registerBspline(fixed, moving, n, n, { ...o, fixedMask: mask, samples: 512 });
    expect(fieldError(s.field, n, shift, (_i, j) => j < n / 2 - 10)).toBeLessThan(0.8);
  });

  test('a moving mask excludes the pixels that map outside it; a full mask changes nothing (to float rounding)', () => {
    const n = 48;
    const { fixed, moving } = pair(n);
    const o = { ...BSPLINE_DEFAULTS, init: 'none' as const, spacing: [8], iterations: [10, 10, 10] };
    const plain = registerBspline(fixed, moving, n, n, o);
    const all = registerBspline(fixed, moving, n, n, { ...o, movingMask: new Uint8Array(n * n).fill(1), fixedMask: new Uint8Array(n * n).fill(1) });
    // (a moving mask takes the unfused warp + loss path: equal to float rounding)
    let diff = 0;
    all.field.forEach((v, k) => (diff = Math.max(diff, Math.abs(v - plain.field[k]))));
    expect(diff).toBeLessThan(1e-5);
    const u = new Float32Array(2 * 4 * 4);
    u[0] = 2 / 3; // pixel (0,0) moves one pixel right
    const m = new Uint8Array(16);
    m[1] = 1;
    expect(Array.from(warpedMaskNearest(m, 4, 4, u)).slice(0, 2)).toEqual([1, 1]);
    expect(() => registerBspline(fixed, moving, n, n, { ...o, fixedMask: new Uint8Array(5) })).toThrow(/fixed mask must hold 48×48/);
  });

  test('level masks and spacing in mm follow the pyramid (aligned corners)', () => {
    const m = new Uint8Array(9 * 9);
    m[8 * 9 + 8] = 1;
    expect(Array.from(levelMask(m, 9, 9, 5, 5)).indexOf(1)).toBe(24);
    const g = { ...identityGeometry(256, 200), spacing: [0.5, 2] as [number, number] };
    // full resolution: 16 mm = 32 px along x (0.5 mm), 8 px along y (2 mm)
    expect(levelSpacing({ spacing: [8], spacingMm: [16] }, 0, g, 256, 200, 256, 200)).toEqual([32, 8]);
    // half resolution: pixels twice as large
    expect(levelSpacing({ spacing: [8], spacingMm: [64, 32] }, 1, g, 256, 200, 128, 100)).toEqual([
      Math.round(32 / (0.5 * (255 / 127))),
      Math.round(32 / (2 * (199 / 99))),
    ]);
    expect(levelSpacing({ spacing: [8] }, 0, g, 256, 200, 256, 200)).toEqual([8, 8]);
    expect(() => checkOptions({ ...BSPLINE_DEFAULTS, spacingMm: [1, 2] })).toThrow(/spacing in mm needs 1 value or 3/);
  });

  test('the convergence stop ends a level once the windowed mean loss stops changing', () => {
    const stop = convergenceStop(0.01, 5);
    const losses = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    const at = losses.findIndex((l) => stop(l));
    expect(at).toBe(18); // the first index where both windows (9–13, 14–18) are the flat tail
    expect(convergenceStop(0, 5)(1)).toBe(false);
    const n = 48;
    const { fixed, moving } = pair(n);
    const r = registerBspline(fixed, moving, n, n, { ...BSPLINE_DEFAULTS, init: 'none', spacing: [8], iterations: [300], convergence: 1e-3 });
    expect(r.levels.some((l) => l.iterations < 300)).toBe(true);
    expect(r.levels.every((l) => l.iterations >= 20)).toBe(true);
  });
});
