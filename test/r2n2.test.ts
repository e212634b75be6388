import * as tf from '@tensorflow/tfjs-core';
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import {
  addGaussianInPlace,
  gaussianDisplacement,
  gaussianDisplacementJs,
  mapRawParameters,
  sequenceField,
  unflipSequence,
  coordinateGrids,
} from '../src/core/transformation/gaussian.js';
import { type Flip, flipImage, shiftImage } from '../src/core/image/resample.js';
import { defaultRegisterBatch, r2n2Registrar, worseThanNone } from '../src/app/register.js';
import { makePhantomSeries } from '../src/core/phantom/phantom.js';
import {
  DEFAULT_CONFIG,
  type R2N2Config,
  expandInputKernel,
  imageSize,
  initWeights,
  initialState,
  spaceToDepth,
  step,
  parameterCount,
  weightShapes,
  disposeWeights,
} from '../src/core/r2n2/network.js';
import { inferSequence, inputBase, maskedMseArrays, networkInput, sequenceLoss, stepLowersLoss } from '../src/core/r2n2/sequence.js';
import { tanh } from '../src/core/tensors.js';
import { warpSamples } from '../src/core/transformation/warp.js';
import { saveModel, loadModel, loadCheckpointAverage, toVariables } from '../src/io/model.js';
import { tmpDir, runCli, runCliHere, runCliSignalled, describeWithSunnybrook, SUNNYBROOK, ROOT, testWithWebGpu } from './helpers.js';
import { TRAIN_DEFAULTS, learningRateAt, train } from '../src/app/train.js';

beforeAll(async () => {
  await initBackend('wasm');
});
let t: ReturnType<typeof tmpDir>;
const gpuTest = await testWithWebGpu();
beforeAll(() => {
  t = tmpDir('r2n2-net-');
});
afterAll(() => t.cleanup());

const TINY: R2N2Config = { netSize: 32, channels: [4, 4, 4], paramChannels: 4, residualBlocks: 1, hidden: 8, sigmaMax: 0.25, activation: 'leaky-relu' };

describe('local Gaussian transformation', () => {
  test('tfjs equals the double-precision formula, rotated and anisotropic', () => {
    const p = { cx: 0.2, cy: -0.3, sx: 0.15, sy: 0.3, wx: 0.05, wy: -0.02, phi: 0.7 };
    const H = 9,
      W = 13;
    const ref = gaussianDisplacementJs(p, H, W);
    const got = tf.tidy(() =>
      gaussianDisplacement(
        { position: tf.tensor2d([[p.cx, p.cy]]), sigma: tf.tensor2d([[p.sx, p.sy]]), weight: tf.tensor2d([[p.wx, p.wy]]), phi: tf.tensor2d([[p.phi]]) },
        H,
        W,
      ).dataSync(),
    );
    for (let i = 0; i < ref.length; i++) expect(got[i]).toBeCloseTo(ref[i], 5);
    // at the centre the displacement is the weight; along the σx axis (rotated by φ) it falls to e^(−1/2)
    const at = (x: number, y: number) => gaussianDisplacementJs({ ...p, cx: 0, cy: 0 }, 201, 201)[Math.round((y + 1) * 100) * 201 + Math.round((x + 1) * 100)];
    expect(at(0, 0)).toBeCloseTo(0.05, 10);
    const d = 0.15;
    expect(gaussianDisplacementJs({ ...p, cx: 0, cy: 0, phi: 0 }, 201, 201)[100 * 201 + 100 + Math.round(d * 100)]).toBeCloseTo(0.05 * Math.exp(-0.5), 3);
    expect(at(0, 0)).toBeGreaterThan(0);
    // a sequence is the sum of its steps
    const two = sequenceField([p.cx, p.cy, p.sx, p.sy, p.wx, p.wy, p.phi, p.cx, p.cy, p.sx, p.sy, p.wx, p.wy, p.phi], H, W);
    for (let i = 0; i < ref.length; i++) expect(two[i]).toBeCloseTo(2 * ref[i], 5);
    // adding a step in place = adding the double-precision displacement to the float32 field, bit for bit
    const u = Float32Array.from({ length: 2 * H * W }, (_, i) => Math.sin(i) * 0.01);
    const expected = u.map((v, i) => v + ref[i]);
    addGaussianInPlace(u, [9, 9, p.cx, p.cy, p.sx, p.sy, p.wx, p.wy, p.phi], 2, H, W);
    expect(Buffer.from(u.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    expect(() => addGaussianInPlace(new Float32Array(5), [p.cx, p.cy, p.sx, p.sy, p.wx, p.wy, p.phi], 0, H, W)).toThrow(/field has 5 values, expected 2×9×13/);
  });
  test('raw outputs map to σ ∈ (0, σmax], w ∈ [−1, 1], φ ∈ [0, π]; zeros give σmax/2, 0, π/2', () => {
    const m = tf.tidy(() => {
      const r = mapRawParameters(
        tf.tensor2d([
          [0, 0, 0, 0, 0],
          [50, -50, 50, -50, 50],
        ]),
        0.25,
      );
      return [r.sigma.arraySync(), r.weight.arraySync(), r.phi.arraySync()];
    });
    expect(m[0][0][0]).toBeCloseTo(0.125 + 1e-5, 6);
    expect(m[1][0]).toEqual([0, 0]);
    expect(m[2][0][0]).toBeCloseTo(Math.PI / 2, 6);
    expect(m[0][1][0]).toBeCloseTo(0.25, 4);
    expect(m[0][1][1]).toBeCloseTo(1e-5, 6);
    expect(m[1][1]).toEqual([1, -1]);
    expect(m[2][1][0]).toBeCloseTo(Math.PI, 4);
  });
  test('shiftImage translates by whole and fractional pixels, edges replicated', () => {
    const H = 5,
      W = 6;
    const img = Float32Array.from({ length: H * W }, (_, k) => 3 * Math.floor(k / W) + 0.5 * (k % W) + ((k * 7) % 5));
    expect(Array.from(shiftImage(img, H, W, 0, 0))).toEqual(Array.from(img));
    const s = shiftImage(img, H, W, 2, -1);
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const si = Math.min(H - 1, i + 1);
        const sj = Math.max(0, j - 2);
        expect(s[i * W + j]).toBe(img[si * W + sj]);
      }
    // a linear ramp moves by exactly the fraction inside the image
    const ramp = Float32Array.from({ length: H * W }, (_, k) => 2 * (k % W) + 10 * Math.floor(k / W));
    const f = shiftImage(ramp, H, W, 0.25, 0.5);
    for (let i = 1; i < H; i++) for (let j = 1; j < W; j++) expect(f[i * W + j]).toBeCloseTo(2 * (j - 0.25) + 10 * (i - 0.5), 5);
    expect(f[0]).toBeCloseTo(ramp[0], 6);
  });
  test('flipImage mirrors rows / columns; a sequence found on mirrored images maps back to the mirrored field', () => {
    const H = 9,
      W = 13;
    const img = Float32Array.from({ length: H * W }, (_, i) => i);
    expect(flipImage(img, H, W, 'x')[0]).toBe(W - 1);
    expect(flipImage(img, H, W, 'y')[0]).toBe((H - 1) * W);
    expect(Array.from(flipImage(flipImage(img, H, W, 'x'), H, W, 'y'))).toEqual(Array.from(flipImage(img, H, W, 'xy')));
    for (const f of ['x', 'y', 'xy'] as Flip[]) expect(Array.from(flipImage(flipImage(img, H, W, f), H, W, f))).toEqual(Array.from(img));
    // two rotated, anisotropic steps; u(q) = M·u'(M·q) must equal the unflipped sequence's field
    const seq = [0.2, -0.3, 0.15, 0.3, 0.05, -0.02, 0.7, -0.4, 0.1, 0.3, 0.1, -0.03, 0.04, 2.2];
    const N = H * W;
    const mirrored = sequenceField(seq, H, W);
    for (const f of ['none', 'x', 'y', 'xy'] as Flip[]) {
      const sx = f === 'x' || f === 'xy' ? -1 : 1;
      const sy = f === 'y' || f === 'xy' ? -1 : 1;
      const expected = [...flipImage(mirrored.subarray(0, N), H, W, f)]
        .map((v) => (sx * v) / 2)
        .concat([...flipImage(mirrored.subarray(N), H, W, f)].map((v) => (sy * v) / 2));
      const back = unflipSequence(seq, f, 0.5);
      const got = sequenceField(back, H, W);
      for (let i = 0; i < 2 * N; i++) expect(got[i]).toBeCloseTo(expected[i], 6);
      for (let k = 0; k < back.length; k += 7) expect(back[k + 6] >= 0 && back[k + 6] <= Math.PI).toBe(true);
    }
  });
});

describe('the network', () => {
  test('the CoordConv input built once per sequence equals stacking (fixed, warped, x, y) every step; wasm tanh = tf.tanh', () => {
    const B = 3,
      n = 5;
    const F = tf.randomUniform([B, n, n], -1, 1, 'float32', 1) as tf.Tensor3D;
    const M = tf.randomUniform([B, n, n], -2, 2, 'float32', 2) as tf.Tensor3D;
    const g = coordinateGrids(n, n);
    const ref = tf.stack([F, M, tf.tile(g.x, [B, 1, 1]), tf.tile(g.y, [B, 1, 1])], 3).dataSync();
    const base = inputBase(F, g);
    const got = networkInput(base, M).dataSync();
    expect(Array.from(got)).toEqual(Array.from(ref)); // exact
    // the gradient reaches the warped image's channel only
    const dM = tf
      .grad((m: tf.Tensor) => tf.sum(tf.mul(networkInput(base, m as tf.Tensor3D), tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4]))))(M)
      .dataSync();
    for (const v of dM) expect(v).toBe(2);
    const x = tf.linspace(-6, 6, 1001);
    const a = tanh(x).dataSync(),
      b = tf.tanh(x).dataSync();
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(3e-7);
    const ga = tf
        .grad((v: tf.Tensor) => tf.sum(tanh(v)))(x)
        .dataSync(),
      gb = tf
        .grad((v: tf.Tensor) => tf.sum(tf.tanh(v)))(x)
        .dataSync();
    for (let i = 0; i < ga.length; i++) expect(Math.abs(ga[i] - gb[i])).toBeLessThan(1e-6);
    tf.dispose([F, M, g.x, g.y, base.base, base.slot, x]);
  });
  test('a step has the documented shapes; an untrained network is the identity (zero last layer)', () => {
    const w = initWeights(TINY, 3);
    const out = tf.tidy(() => {
      const s = initialState(TINY, 2);
      const o = step(TINY, w, tf.randomUniform([2, 32, 32, 4]) as tf.Tensor4D, s);
      return { raw: o.raw.arraySync(), pos: o.position.arraySync() as number[][], state: o.state.map((x) => x.shape) };
    });
    expect(out.raw).toEqual([
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ]);
    for (const p of out.pos) for (const v of p) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    expect(out.state).toEqual([
      [2, 16, 16, 4],
      [2, 8, 8, 4],
      [2, 4, 4, 4],
    ]);
    expect(parameterCount(TINY)).toBe(weightShapes(TINY).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0));
    disposeWeights(w);
  });
  test('--input-block: space-to-depth puts pixel (b·i + p, b·j + q, c) at (i, j, (p·b + q)·C + c); the expanded kernel on a block-constant input is the block-1 conv', () => {
    const B = 2,
      b = 2,
      n = 3,
      C = 4;
    const m = b * n;
    const x = tf.randomUniform([B, m, m, C], -1, 1, 'float32', 7) as tf.Tensor4D;
    const xs = x.arraySync();
    const got = spaceToDepth(x, b).arraySync();
    expect([got.length, got[0].length, got[0][0].length, got[0][0][0].length]).toEqual([B, n, n, b * b * C]);
    for (let e = 0; e < B; e++)
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++)
          for (let p = 0; p < b; p++)
            for (let q = 0; q < b; q++)
              for (let c = 0; c < C; c++) {
                expect(got[e][i][j][(p * b + q) * C + c]).toBe(xs[e][b * i + p][b * j + q][c]);
              }
    // gradients flow back to the pixel each output came from
    const wts = tf.randomUniform([1, 1, 1, b * b * C], 0, 1, 'float32', 8);
    const g = tf
      .grad((v: tf.Tensor) => tf.sum(tf.mul(spaceToDepth(v as tf.Tensor4D, b), wts)))(x)
      .arraySync() as number[][][][];
    const ws = wts.dataSync();
    for (let p = 0; p < b; p++)
      for (let q = 0; q < b; q++) for (let c = 0; c < C; c++) expect(g[1][b * 2 + p][b + q][c]).toBeCloseTo(ws[(p * b + q) * C + c], 6);
    expect(() => spaceToDepth(tf.zeros([1, 5, 6, 1]) as tf.Tensor4D, 2)).toThrow(/5×6 is not a multiple of 2/);
    // a block-1 input conv, expanded, sees an input constant over each b×b block as the block-1 conv sees the small one
    const small = tf.randomUniform([B, 8, 8, C], -1, 1, 'float32', 9) as tf.Tensor4D;
    const up = tf.tidy(() => tf.reshape(tf.tile(tf.reshape(small, [B, 8, 1, 8, 1, C]), [1, 1, b, 1, b, 1]), [B, 8 * b, 8 * b, C]) as tf.Tensor4D);
    const k = tf.randomUniform([7, 7, C, 5], -1, 1, 'float32', 10) as tf.Tensor4D;
    const ref = tf.conv2d(small, k, 2, 'same').dataSync();
    const ek = expandInputKernel(k, b);
    expect(ek.shape).toEqual([7, 7, b * b * C, 5]);
    const out = tf.conv2d(spaceToDepth(up, b), ek, 2, 'same').dataSync();
    for (let i = 0; i < ref.length; i++) expect(Math.abs(out[i] - ref[i])).toBeLessThan(1e-5);
    // the config: the weights' only change is the input kernel; the image side is b·netSize
    const c2 = { ...TINY, inputBlock: 2 };
    expect(imageSize(c2)).toBe(64);
    expect(imageSize(TINY)).toBe(32);
    expect(weightShapes(c2)[0]).toEqual(['input/kernel', [7, 7, 16, 4]]);
    expect(weightShapes(c2).slice(1)).toEqual(weightShapes(TINY).slice(1));
    const w = initWeights(c2, 3);
    const st = tf.tidy(() => step(c2, w, tf.randomUniform([2, 64, 64, 4]) as tf.Tensor4D, initialState(c2, 2)).state.map((s) => s.shape));
    expect(st).toEqual([
      [2, 16, 16, 4],
      [2, 8, 8, 4],
      [2, 4, 4, 4],
    ]);
    disposeWeights(w);
    expect(() => initWeights({ ...TINY, inputBlock: 1.5 }, 1)).toThrow(/input block must be 1, 2, 3 or 4/);
    tf.dispose([x, wts, small, up, k, ek]);
  });
  test('gradients reach every weight once the last layer is non-zero; tensor count stays flat', async () => {
    const w = initWeights(TINY, 4);
    w.get('param/fc2/kernel')!.assign(tf.fill([TINY.hidden, 5], 0.1));
    const img = (s: number) => Float32Array.from({ length: 32 * 32 }, (_, i) => Math.sin((i % 32) / 4 + s) * Math.cos(Math.floor(i / 32) / 5));
    const vars = [...w.values()];
    const before = tf.memory().numTensors;
    for (let k = 0; k < 2; k++) {
      const { value, grads } = tf.variableGrads(() => sequenceLoss(TINY, w, [img(0)], [img(0.4)], { steps: 3, lambda: 1 }), vars);
      for (const v of vars) {
        const g = grads[v.name];
        expect(g).toBeDefined();
        expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
      }
      expect(Array.from(grads[w.get('block0/gru/cand_x/kernel')!.name].dataSync()).some((x) => x !== 0)).toBe(true);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(tf.memory().numTensors).toBe(before);
    const p = await inferSequence(TINY, w, [img(0)], [img(0.4)], { steps: 4 });
    expect(p[0]).toHaveLength(28);
    expect(tf.memory().numTensors).toBe(before);
    disposeWeights(w);
  });
  test('lossImages: at the network size the plain loss; at 2n the MSE of the same Gaussians evaluated and warped at 2n', async () => {
    const w = initWeights(TINY, 7);
    w.get('param/fc2/kernel')!.assign(tf.fill([TINY.hidden, 5], 0.1));
    const img = (s: number, n: number) =>
      Float32Array.from({ length: n * n }, (_, i) => Math.sin(((i % n) * 8) / n + s) * Math.cos((Math.floor(i / n) * 6.4) / n));
    const n = TINY.netSize;
    const F = [img(0, n), img(0.1, n)];
    const M = [img(0.5, n), img(-0.3, n)];
    const loss = (o: Partial<Parameters<typeof sequenceLoss>[4]>) => tf.tidy(() => sequenceLoss(TINY, w, F, M, { steps: 3, lambda: 0, ...o }).dataSync()[0]);
    const before = tf.memory().numTensors;
    const plain = loss({});
    expect(loss({ lossImages: { fixed: F, moving: M, size: n } })).toBe(plain);
    // at 2n: the reference computed by hand from the inferred Gaussians (no noise: the same ones)
    const L = 2 * n;
    const FL = [img(0, L), img(0.1, L)];
    const ML = [img(0.5, L), img(-0.3, L)];
    const params = await inferSequence(TINY, w, F, M, { steps: 3 });
    let ref = 0;
    for (let t = 1; t <= 3; t++) {
      let batch = 0;
      for (let b = 0; b < 2; b++) {
        const u = sequenceField(params[b].subarray(0, 7 * t), L, L);
        const s = warpSamples(ML[b], L, L, u, true);
        let sum = 0;
        let cnt = 0;
        for (let k = 0; k < L * L; k++)
          if (s.mask[k]) {
            sum += (FL[b][k] - s.out[k]) ** 2;
            cnt++;
          }
        batch += sum / Math.max(cnt, 1) / 2;
      }
      ref += batch / 3;
    }
    const host = loss({ lossImages: { fixed: FL, moving: ML, size: L } });
    expect(host).not.toBeCloseTo(plain, 4);
    expect(Math.abs(host - ref)).toBeLessThan(1e-5 * ref);
    const tensor = loss({ lossImages: { fixed: FL, moving: ML, size: L }, warp: 'tensor' });
    expect(tensor).toBeCloseTo(host, 6);
    // gradients flow through the 2n loss to the network
    const vars = [...w.values()];
    const { value, grads } = tf.variableGrads(
      () => sequenceLoss(TINY, w, F, M, { steps: 3, lambda: 0.1, lossImages: { fixed: FL, moving: ML, size: L } }),
      vars,
    );
    expect(Array.from(grads[w.get('block0/gru/cand_x/kernel')!.name].dataSync()).some((x) => x !== 0)).toBe(true);
    expect(vars.every((v) => Array.from(grads[v.name].dataSync()).every(Number.isFinite))).toBe(true);
    tf.dispose([value, ...Object.values(grads)]);
    expect(() => tf.tidy(() => sequenceLoss(TINY, w, F, M, { steps: 1, lambda: 0, lossImages: { fixed: FL, moving: ML.slice(1), size: L } }))).toThrow(
      /lossImages must hold 2/,
    );
    expect(tf.memory().numTensors).toBe(before);
    disposeWeights(w);
  });
  test("the tensor-only re-warp (GPU backends) gives the host path's loss, gradients and inferred parameters", async () => {
    const w = initWeights(TINY, 6);
    w.get('param/fc2/kernel')!.assign(tf.fill([TINY.hidden, 5], 0.1));
    const img = (s: number) => Float32Array.from({ length: 32 * 32 }, (_, i) => Math.sin((i % 32) / 4 + s) * Math.cos(Math.floor(i / 32) / 5));
    const vars = [...w.values()];
    const F = [img(0), img(0.1)];
    const M = [img(0.5), img(-0.3)];
    const run = (warp: 'host' | 'tensor') => {
      const { value, grads } = tf.variableGrads(() => sequenceLoss(TINY, w, F, M, { steps: 3, lambda: 1, warp }), vars);
      const out = { loss: value.dataSync()[0], grads: vars.map((v) => Array.from(grads[v.name].dataSync())) };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const before = tf.memory().numTensors;
    const h = run('host');
    const d = run('tensor');
    expect(tf.memory().numTensors).toBe(before);
    expect(d.loss).toBeCloseTo(h.loss, 5);
    let nonzero = 0;
    h.grads.forEach((g, i) =>
      g.forEach((x, k) => {
        expect(Math.abs(d.grads[i][k] - x)).toBeLessThan(1e-4 * Math.max(1, Math.abs(x)));
        if (x !== 0) nonzero++;
      }),
    );
    expect(nonzero).toBeGreaterThan(100);
    const ph = await inferSequence(TINY, w, F, M, { steps: 4, warp: 'host' });
    const pd = await inferSequence(TINY, w, F, M, { steps: 4, warp: 'tensor' });
    expect(tf.memory().numTensors).toBe(before);
    ph.forEach((p, b) => p.forEach((x, k) => expect(pd[b][k]).toBeCloseTo(x, 5)));
    disposeWeights(w);
  });
});

describe('never worse than none (stopWhenWorse)', () => {
  test('the full-resolution check: a field that moves a matched pair apart is worse than none; the right one is not', () => {
    const H = 40,
      W = 48;
    const img = (dx: number) => Float32Array.from({ length: H * W }, (_, p) => Math.sin(((p % W) + dx) / 3) * Math.cos(Math.floor(p / W) / 4));
    const fixed = img(0);
    const same = img(0);
    const zero = new Float32Array(2 * H * W);
    expect(worseThanNone(fixed, same, H, W, zero)).toBeNull(); // equal, not worse
    // moving = fixed shifted by 2 px: the true field (+2 px in x) is better than none, the opposite one worse
    const moving = img(-2);
    const px = 2 * (2 / (W - 1));
    const right = new Float32Array(2 * H * W).fill(0);
    right.fill(px, 0, H * W);
    const wrong = new Float32Array(2 * H * W).fill(0);
    wrong.fill(-px, 0, H * W);
    expect(worseThanNone(fixed, moving, H, W, right)).toBeNull();
    const f = worseThanNone(fixed, moving, H, W, wrong);
    expect(f).not.toBeNull();
    expect(f!.mseRegistered).toBeGreaterThan(f!.mseIdentity);
  });

  test('a field that pushes badly matched pixels out of view does not count as better: both MSEs over the same pixels', () => {
    const H = 32,
      W = 32;
    // fixed and moving agree except in the last 4 columns (a bright band only in moving)
    const fixed = Float32Array.from({ length: H * W }, (_, p) => Math.sin((p % W) / 3) * 0.5);
    const moving = Float32Array.from(fixed, (v, p) => (p % W >= W - 4 ? v + 3 : v));
    // a 6-px shift in x maps the last columns outside the moving frame, and mismatches the rest a little
    const px = 6 * (2 / (W - 1));
    const field = new Float32Array(2 * H * W).fill(0);
    field.fill(px, 0, H * W);
    // over all pixels the band made 'none' look bad; over the same pixels the shift is worse
    const f = worseThanNone(fixed, moving, H, W, field);
    expect(f).not.toBeNull();
    // the network-size guard's test, alike
    const w = warpSamples(moving, H, W, field);
    expect(stepLowersLoss(fixed, { warped: moving, mask: null }, { warped: w.out, mask: w.mask })).toBe(false);
    expect(maskedMseArrays(fixed, w.out, w.mask)).toBeLessThan(maskedMseArrays(fixed, moving, null)); // what the old rule compared
    // a step that does improve on those pixels is kept
    const back = warpSamples(moving, H, W, new Float32Array(2 * H * W));
    const better = Float32Array.from(back.out, (v, p) => (p % W >= W - 4 ? fixed[p] : v));
    expect(stepLowersLoss(fixed, { warped: moving, mask: null }, { warped: better, mask: back.mask })).toBe(true);
  });

  test('every kept step lowers the loss at the network size; identical frames get no step; the kept steps are the unguarded ones; host = tensor path', async () => {
    const w = initWeights(TINY, 7);
    w.get('param/fc2/kernel')!.assign(tf.fill([TINY.hidden, 5], 0.1));
    const n = TINY.netSize;
    const img = (s: number) => Float32Array.from({ length: n * n }, (_, i) => Math.sin(((i % n) * 8) / n + s) * Math.cos((Math.floor(i / n) * 6.4) / n));
    const F = [img(0), img(0.1), img(0.3), img(-0.2)];
    const M = [img(0), img(0.5), img(-0.3), img(0.1)];
    const before = tf.memory().numTensors;
    const free = await inferSequence(TINY, w, F, M, { steps: 6 });
    const host = await inferSequence(TINY, w, F, M, { steps: 6, stopWhenWorse: true, warp: 'host' });
    const dev = await inferSequence(TINY, w, F, M, { steps: 6, stopWhenWorse: true, warp: 'tensor' });
    expect(tf.memory().numTensors).toBe(before);
    expect(free.every((p) => p.length === 42)).toBe(true);
    expect(host[0]).toHaveLength(0); // F = M: any displacement makes it worse
    for (let b = 0; b < F.length; b++) {
      expect(Array.from(host[b])).toEqual(Array.from(free[b].subarray(0, host[b].length)));
      expect(dev[b].length).toBe(host[b].length);
      dev[b].forEach((x, k) => expect(x).toBeCloseTo(host[b][k], 5));
      let last = maskedMseArrays(F[b], M[b], null);
      for (let t = 1; t * 7 <= host[b].length; t++) {
        const s = warpSamples(M[b], n, n, sequenceField(host[b].subarray(0, 7 * t), n, n));
        const loss = maskedMseArrays(F[b], s.out, s.mask);
        expect(loss).toBeLessThan(last);
        last = loss;
      }
    }
    // the guard dropped steps somewhere (else this test would not test it)
    expect(host.reduce((a, p) => a + p.length, 0)).toBeLessThan(free.reduce((a, p) => a + p.length, 0));
    disposeWeights(w);
  });
});

describeWithSunnybrook('never worse than none, on a real image the bundled (phantom-trained) model fails on', () => {
  test('register series keeps TRE at or below identity by default; --no-stop-when-worse makes it worse', async () => {
    const sim = path.join(t.dir, 'sunny-sim');
    const image = path.join(SUNNYBROOK, 'series', 'SCD0000101', 'slice_06', 'frames', 'phase_01.mha');
    expect((await runCliHere(['simulate', image, '--out', sim, '--motion', 'breathing', '--frames', '5', '--seed', '2', '--quiet'])).code).toBe(0);
    const tre = async (res: string) =>
      JSON.parse((await runCliHere(['evaluate', 'tre', '--result', res, '--landmarks', path.join(sim, 'landmarks'), '--json'])).stdout);
    const model = path.join(ROOT, 'fixtures', 'models', 'phantom');
    const guarded = path.join(t.dir, 'sunny-guarded');
    const r = await runCliHere(['register', 'series', path.join(sim, 'frames'), '--model', model, '--out', guarded, '--no-qc', '--jobs', '1']);
    expect(r.code).toBe(0);
    const free = path.join(t.dir, 'sunny-free');
    expect(
      runCli(['register', 'series', path.join(sim, 'frames'), '--model', model, '--out', free, '--no-qc', '--quiet', '--jobs', '1', '--no-stop-when-worse'])
        .code,
    ).toBe(0);
    const g = await tre(guarded);
    const f = await tre(free);
    expect(f.after.mean_mm).toBeGreaterThan(f.before.mean_mm); // the network is known to fail here
    expect(g.after.mean_mm).toBeLessThanOrEqual(g.before.mean_mm + 1e-9);
    const s = JSON.parse(await fs.readFile(path.join(guarded, 'summary.json'), 'utf8'));
    expect(s.settings.stopWhenWorse).toBe(true);
    expect(Array.isArray(s.fallbacks)).toBe(true);
    // frames where the guard dropped the first step are counted for the user, and half or more of
    // the series left as it was is a warning
    const idle = s.frames.filter((f: { name: string; parameters: number }) => f.parameters === 0 && !s.fallbacks.includes(f.name)).length;
    expect(idle).toBeGreaterThan(0); // on this image (else this would not test it)
    expect(r.stdout).toMatch(new RegExp(`no step +${idle} frame\\(s\\) left as they were`));
    const identity = idle + s.fallbacks.length;
    if (2 * identity >= s.frames.length) expect(r.stderr).toMatch(new RegExp(`warning: ${identity} of ${s.frames.length} frame\\(s\\) are the identity`));
    // with --refine the network's whole sequence is refined (7 steps), or the frame falls back
    const refined = path.join(t.dir, 'sunny-refined');
    expect(
      runCli(['register', 'series', path.join(sim, 'frames'), '--model', model, '--out', refined, '--refine', '5', '--no-qc', '--quiet', '--jobs', '1']).code,
    ).toBe(0);
    const rs = JSON.parse(await fs.readFile(path.join(refined, 'summary.json'), 'utf8'));
    for (const f of rs.frames) {
      const p = JSON.parse(await fs.readFile(path.join(refined, f.params), 'utf8'));
      if (p.fallback) expect(rs.fallbacks).toContain(f.name);
      else expect(p.sequence).toHaveLength(7);
    }
    const rt = await tre(refined);
    expect(rt.after.mean_mm).toBeLessThan(rt.before.mean_mm);
  });
});

describe('model directory', () => {
  test('save → load round trip is exact; truncated, corrupt or mismatched models are one-line errors', async () => {
    const dir = path.join(t.dir, 'model');
    const w = initWeights(TINY, 5);
    await saveModel(dir, TINY, w, { training: { note: 'test' } });
    const m = await loadModel(dir);
    expect(m.config).toEqual(TINY);
    for (const [name, v] of w) expect(Array.from(m.tensors.get(name)!.dataSync())).toEqual(Array.from(v.dataSync()));
    const vars = toVariables(m);
    expect(vars.size).toBe(w.size);
    disposeWeights(vars);
    m.tensors.forEach((x) => x.dispose());
    disposeWeights(w);
    const bad = path.join(t.dir, 'bad');
    await fs.mkdir(bad, { recursive: true });
    await expect(loadModel(bad)).rejects.toThrow(/model\.json not found/);
    const json = await fs.readFile(path.join(dir, 'model.json'), 'utf8');
    await fs.writeFile(path.join(bad, 'model.json'), json.slice(0, 100));
    await expect(loadModel(bad)).rejects.toThrow(/not valid JSON.*truncated/);
    await fs.writeFile(path.join(bad, 'model.json'), json);
    const bin = await fs.readFile(path.join(dir, 'weights.bin'));
    await fs.writeFile(path.join(bad, 'weights.bin'), bin.subarray(0, bin.length - 8));
    await expect(loadModel(bad)).rejects.toThrow(/holds \d+ bytes but .* describes \d+; the file is truncated/);
    await fs.writeFile(path.join(bad, 'model.json'), json.replace('"hidden": 8', '"hidden": 16'));
    await fs.writeFile(path.join(bad, 'weights.bin'), bin);
    await expect(loadModel(bad)).rejects.toThrow(/has shape \[2,8\] but the config needs \[2,16\]; the model does not match its config/);
    const nan = Buffer.from(bin);
    nan.writeFloatLE(NaN, 0);
    await fs.writeFile(path.join(bad, 'model.json'), json);
    await fs.writeFile(path.join(bad, 'weights.bin'), nan);
    await expect(loadModel(bad)).rejects.toThrow(/NaN or infinite/);
  });
});

describe('r2n2 train and register series (tiny configuration)', () => {
  const TINY_ARGS = ['--net-size', '32', '--channels', '4', '4', '4', '--param-channels', '4', '--hidden', '8', '--steps', '2', '--quiet'];
  let data: string;
  beforeAll(async () => {
    data = path.join(t.dir, 'data');
    expect((await runCliHere(['phantom', '--out', data, '--series', '1', '--frames', '6', '--size', '64', '--seed', '5'])).code).toBe(0);
  });
  test('a run killed mid-way and resumed ends with the same weights as an uninterrupted run', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const full = path.join(t.dir, 'full');
    const part = path.join(t.dir, 'part');
    const a = await runCliHere(['train', series, '--out', full, '--iterations', '6', '--checkpoint-every', '3', ...TINY_ARGS]);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    // "killed" after the checkpoint at 3: train to 3, then resume to 6
    expect((await runCliHere(['train', series, '--out', part, '--iterations', '3', '--checkpoint-every', '3', ...TINY_ARGS])).code).toBe(0);
    const r = await runCliHere(['train', series, '--out', part, '--iterations', '6', '--checkpoint-every', '3', '--resume', ...TINY_ARGS]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 3/);
    const wa = await fs.readFile(path.join(full, 'weights.bin'));
    const wb = await fs.readFile(path.join(part, 'weights.bin'));
    expect(wb.equals(wa)).toBe(true);
    for (const f of ['loss.png', 'loss.csv', 'model.json']) expect(existsSync(path.join(full, f))).toBe(true);
    // other settings cannot resume that checkpoint
    const other = await runCliHere(['train', series, '--out', part, '--iterations', '9', '--resume', '--lr', '0.01', ...TINY_ARGS]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
  });
  test('a run stopped by a signal checkpoints the iteration it stopped at and resumes to the uninterrupted weights', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const out = path.join(t.dir, 'sig');
    // the CLI's 'full' run above, in-process: TINY_ARGS on the defaults
    const base = {
      series: [series],
      val: [],
      out,
      config: { ...DEFAULT_CONFIG, ...TINY },
      settings: { ...TRAIN_DEFAULTS, iterations: 6, checkpointEvery: 3, steps: 2 },
    };
    const ctl = new AbortController();
    const a = await train({ ...base, resume: false, signal: ctl.signal, onIteration: (i) => i.iteration === 2 && ctl.abort('SIGINT') });
    expect(a).toMatchObject({ interrupted: 'SIGINT', iterations: 2, timeLimited: false });
    // the first run leaves only tensors cached for every later one (e.g. coordinate grids): none leak per run
    const tensors = tf.memory().numTensors;
    expect(JSON.parse(await fs.readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8')).iteration).toBe(2);
    expect(existsSync(path.join(out, 'model.json'))).toBe(true);
    const b = await train({ ...base, resume: true });
    expect(b).toMatchObject({ interrupted: null, iterations: 6, resumedFrom: 2 });
    for (const f of ['weights.bin', 'loss.csv'])
      expect((await fs.readFile(path.join(out, f))).equals(await fs.readFile(path.join(t.dir, 'full', f)))).toBe(true);
    // stopped while the series load: an error, and the output directory is not touched
    const early = new AbortController();
    early.abort('SIGTERM');
    const none = path.join(t.dir, 'sig-none');
    await expect(train({ ...base, out: none, resume: false, signal: early.signal })).rejects.toThrow(
      /^interrupted \(SIGTERM\) while loading the series, before the first iteration/,
    );
    expect(existsSync(none)).toBe(false);
    expect(tf.memory().numTensors).toBe(tensors);
  });
  test('Ctrl-C: train stops after the iteration, writes checkpoint and model, exits 130; register series keeps the finished frames, exits 143 on SIGTERM and continues', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const out = path.join(t.dir, 'ctrl-c');
    const args = [
      'train',
      series,
      '--out',
      out,
      '--iterations',
      '100000',
      '--checkpoint-every',
      '100000',
      ...TINY_ARGS.filter((a) => a !== '--quiet'),
      '--log-level',
      'info',
    ];
    const r = await runCliSignalled(args, /"training start"/, 'SIGINT');
    expect(r.signalled).toBe(true);
    expect(r.code).toBe(130);
    const m = r.stderr.match(
      /^error: interrupted \(SIGINT\) at iteration (\d+) of 100000: the checkpoint and the model as it is are in .*; the same command with --resume continues$/m,
    );
    expect(m).not.toBeNull();
    expect(r.stdout).toMatch(new RegExp(`iterations   ${m![1]} of 100000 \\(interrupted; --resume continues\\)`));
    expect(JSON.parse(await fs.readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8')).iteration).toBe(Number(m![1]));
    expect(existsSync(path.join(out, 'model.json'))).toBe(true);
    // register series: one frame per batch, refined (slow enough to stop after the first)
    const reg = path.join(t.dir, 'ctrl-c-reg');
    const rargs = [
      'register',
      'series',
      series,
      '--model',
      path.join(t.dir, 'full'),
      '--out',
      reg,
      '--batch',
      '1',
      '--refine',
      '20',
      '--no-qc',
      '--log-level',
      'info',
    ];
    const s = await runCliSignalled(rargs, /"frame registered"/, 'SIGTERM');
    expect(s.code).toBe(143);
    const k = s.stderr.match(
      /^error: interrupted \(SIGTERM\) after (\d) frame\(s\); their results are kept, and the same command continues with the (\d) left$/m,
    );
    expect(k).not.toBeNull();
    expect(Number(k![1]) + Number(k![2])).toBe(5);
    expect(Number(k![2])).toBeGreaterThan(0);
    const summary = JSON.parse(await fs.readFile(path.join(reg, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ complete: false });
    expect(summary.missing).toHaveLength(Number(k![2]));
    const again = await runCliHere(rargs.filter((a) => a !== '--log-level' && a !== 'info').concat('--quiet'));
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`registered   ${k![2]} frame\\(s\\).*; ${k![1]} already done`));
    // baseline bspline runs the same frame loop with its own wiring
    const bs = await runCliSignalled(
      ['baseline', 'bspline', series, '--out', path.join(t.dir, 'ctrl-c-bs'), '--no-qc', '--log-level', 'info'],
      /"frame registered"/,
      'SIGINT',
    );
    expect(bs.code).toBe(130);
    expect(bs.stderr).toMatch(
      /^error: interrupted \(SIGINT\) after \d frame\(s\); their results are kept, and the same command continues with the [1-4] left$/m,
    );
    expect(bs.stdout).toMatch(/incomplete: [1-4] frame\(s\) to do/);
  });
  test("--loss-size: the loss at the frames' size; resumes bit-for-bit; the network's size is the plain run; a bad size is refused", async () => {
    const series = path.join(data, 'series-01', 'frames');
    const args = ['--iterations', '6', '--checkpoint-every', '3', ...TINY_ARGS];
    const plain = await fs.readFile(path.join(t.dir, 'full', 'weights.bin'));
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'ls32'), '--loss-size', '32', ...args])).code).toBe(0);
    expect((await fs.readFile(path.join(t.dir, 'ls32', 'weights.bin'))).equals(plain)).toBe(true);
    // with flips, intensity augmentation and shifts, all applied alike at both sizes
    const full = ['--loss-size', '64', '--shift', '1'];
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'ls64'), ...full, ...args])).code).toBe(0);
    const ls = await fs.readFile(path.join(t.dir, 'ls64', 'weights.bin'));
    expect(ls.equals(plain)).toBe(false);
    expect(JSON.parse(await fs.readFile(path.join(t.dir, 'ls64', 'model.json'), 'utf8')).training.lossSize).toBe(64);
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'ls64p'), ...full, ...args.map((a) => (a === '6' ? '3' : a))])).code).toBe(0);
    const r = await runCliHere(['train', series, '--out', path.join(t.dir, 'ls64p'), ...full, '--resume', ...args]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 3/);
    expect((await fs.readFile(path.join(t.dir, 'ls64p', 'weights.bin'))).equals(ls)).toBe(true);
    // a checkpoint of another loss size is not resumed
    const other = await runCliHere([
      'train',
      series,
      '--out',
      path.join(t.dir, 'ls64p'),
      '--loss-size',
      '48',
      '--shift',
      '1',
      '--resume',
      '--iterations',
      '9',
      '--checkpoint-every',
      '3',
      ...TINY_ARGS,
    ]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
    const bad = await runCliHere(['train', series, '--out', path.join(t.dir, 'ls-bad'), '--loss-size', '1.5', ...args]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^error: --loss-size must be an integer ≥ 2/);
    expect(existsSync(path.join(t.dir, 'ls-bad'))).toBe(false);
  });
  test('--shift: random sub-pixel translations of the pairs; resumes bit-for-bit; 0 is the plain run; a negative shift is refused', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const args = ['--iterations', '6', '--checkpoint-every', '3', ...TINY_ARGS];
    const zero = await runCliHere(['train', series, '--out', path.join(t.dir, 'shift0'), '--shift', '0', ...args]);
    expect(zero.code).toBe(0);
    const plain = await fs.readFile(path.join(t.dir, 'full', 'weights.bin'));
    expect((await fs.readFile(path.join(t.dir, 'shift0', 'weights.bin'))).equals(plain)).toBe(true);
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'shift1'), '--shift', '1', ...args])).code).toBe(0);
    const shifted = await fs.readFile(path.join(t.dir, 'shift1', 'weights.bin'));
    expect(shifted.equals(plain)).toBe(false);
    expect(JSON.parse(await fs.readFile(path.join(t.dir, 'shift1', 'model.json'), 'utf8')).training.shift).toBe(1);
    // killed after the checkpoint at 3 and resumed = uninterrupted
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'shift1p'), '--shift', '1', ...args.map((a) => (a === '6' ? '3' : a))])).code).toBe(0);
    const r = await runCliHere(['train', series, '--out', path.join(t.dir, 'shift1p'), '--shift', '1', '--resume', ...args]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 3/);
    expect((await fs.readFile(path.join(t.dir, 'shift1p', 'weights.bin'))).equals(shifted)).toBe(true);
    // the plain run's checkpoint is not resumed with shifts
    const other = await runCliHere([
      'train',
      series,
      '--out',
      path.join(t.dir, 'shift0'),
      '--shift',
      '2',
      '--resume',
      '--iterations',
      '9',
      '--checkpoint-every',
      '3',
      ...TINY_ARGS,
    ]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
    const bad = await runCliHere(['train', series, '--out', path.join(t.dir, 'shift-bad'), '--shift', '-1', ...args]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^error: --shift must be a number ≥ 0/);
    expect(existsSync(path.join(t.dir, 'shift-bad'))).toBe(false);
  });
  test('--ema: the saved model is the running average of the weights; training itself is unchanged; resumes bit-for-bit', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const base = path.join(t.dir, 'full'); // the tiny model trained above: the starting weights w0
    const f32 = async (file: string) => {
      const b = await fs.readFile(file);
      return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    };
    const args = ['--from', base, '--lr', '1e-2', '--checkpoint-every', '1', '--steps', '2', '--quiet'];
    const run = (out: string, its: string, extra: string[] = []) =>
      runCli(['train', series, '--out', path.join(t.dir, out), '--iterations', its, ...args, ...extra]);
    expect(run('ema1', '1', ['--ema', '0.9']).code).toBe(0);
    expect(run('ema2', '2', ['--ema', '0.9']).code).toBe(0);
    expect(run('noema2', '2').code).toBe(0);
    const w0 = await f32(path.join(base, 'weights.bin'));
    const w1 = await f32(path.join(t.dir, 'ema1', 'checkpoint', 'weights.bin')); // the raw weights after each step
    const w2 = await f32(path.join(t.dir, 'ema2', 'checkpoint', 'weights.bin'));
    const e1 = await f32(path.join(t.dir, 'ema1', 'weights.bin'));
    const e2 = await f32(path.join(t.dir, 'ema2', 'weights.bin'));
    // the average does not feed back: the raw weights are the plain run's, bit for bit
    expect(Buffer.from(w2.buffer, w2.byteOffset, w2.byteLength).equals(await fs.readFile(path.join(t.dir, 'noema2', 'weights.bin')))).toBe(true);
    let moved = 0;
    let worst = 0;
    for (let i = 0; i < w0.length; i++) {
      moved = Math.max(moved, Math.abs(w2[i] - w0[i]));
      worst = Math.max(worst, Math.abs(e1[i] - (0.9 * w0[i] + 0.1 * w1[i])), Math.abs(e2[i] - (0.9 * e1[i] + 0.1 * w2[i])));
    }
    expect(moved).toBeGreaterThan(1e-3); // the steps moved the weights, so the check below is not vacuous
    expect(worst).toBeLessThan(1e-6);
    expect(JSON.parse(await fs.readFile(path.join(t.dir, 'ema2', 'model.json'), 'utf8')).training.ema).toBe(0.9);
    // the checkpoint's average, read as a model, is what the finished run saved
    const avg = await loadCheckpointAverage(path.join(t.dir, 'ema2', 'checkpoint'));
    const saved = await loadModel(path.join(t.dir, 'ema2'));
    expect(avg).not.toBeNull();
    expect([...avg!.tensors.keys()]).toEqual([...saved.tensors.keys()]);
    for (const [k, v] of saved.tensors) expect(Buffer.from(avg!.tensors.get(k)!.dataSync().buffer).equals(Buffer.from(v.dataSync().buffer))).toBe(true);
    [avg!, saved].forEach((m) => m.tensors.forEach((x) => x.dispose()));
    expect(await loadCheckpointAverage(path.join(t.dir, 'noema2', 'checkpoint'))).toBeNull(); // no --ema: no average
    await expect(loadCheckpointAverage(path.join(t.dir, 'ema2'))).rejects.toThrow(/optimizer\.json is missing or unreadable.*MODEL_DIR\/checkpoint/);
    const cut = path.join(t.dir, 'ema-cut');
    await fs.cp(path.join(t.dir, 'ema2', 'checkpoint'), cut, { recursive: true });
    await fs.truncate(path.join(cut, 'optimizer.bin'), 1000);
    await expect(loadCheckpointAverage(cut)).rejects.toThrow(/optimizer\.bin holds 1000 bytes .* truncated/);
    // stopped after iteration 1 and resumed = uninterrupted (the average is in the checkpoint)
    const r = await runCliHere(['train', series, '--out', path.join(t.dir, 'ema1'), '--iterations', '2', '--resume', ...args, '--ema', '0.9']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 1/);
    expect((await fs.readFile(path.join(t.dir, 'ema1', 'weights.bin'))).equals(await fs.readFile(path.join(t.dir, 'ema2', 'weights.bin')))).toBe(true);
    // a checkpoint is resumed only with the average it was written with
    const other = await runCliHere(['train', series, '--out', path.join(t.dir, 'noema2'), '--iterations', '3', '--resume', ...args, '--ema', '0.5']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
    const bad = run('ema-bad', '1', ['--ema', '1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toMatch(/^error: --ema must be in \[0, 1\)/);
    expect(existsSync(path.join(t.dir, 'ema-bad'))).toBe(false);
  });
  test('--resume with --from: the starting weights are known by content, so a copy of them elsewhere resumes; other weights do not', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const base = path.join(t.dir, 'full');
    const moved = path.join(t.dir, 'full-moved');
    await fs.cp(base, moved, { recursive: true });
    const args = (from: string, its: string) => [
      'train',
      series,
      '--out',
      path.join(t.dir, 'from-resume'),
      '--from',
      from,
      '--iterations',
      its,
      '--checkpoint-every',
      '1',
      '--steps',
      '2',
      '--quiet',
    ];
    expect(runCli(args(base, '1')).code).toBe(0);
    const r = runCli([...args(moved, '2'), '--resume']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 1/);
    // other starting weights (one byte changed) are another run
    const w = await fs.readFile(path.join(moved, 'weights.bin'));
    w[0] ^= 1;
    await fs.writeFile(path.join(moved, 'weights.bin'), w);
    const other = runCli([...args(moved, '3'), '--resume']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
  });
  test('--time-limit stops with a checkpoint and a usable model; --resume then ends where an uninterrupted run does', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const out = path.join(t.dir, 'timed');
    // a vanishing limit: the run stops after its first iteration (checkpoint-every 3 is not reached)
    const a = await runCliHere([
      'train',
      series,
      '--out',
      out,
      '--iterations',
      '6',
      '--checkpoint-every',
      '3',
      '--time-limit',
      '0.001',
      '--json',
      ...TINY_ARGS,
    ]);
    expect(a.code).toBe(0);
    const rep = JSON.parse(a.stdout);
    expect(rep.timeLimited).toBe(true);
    expect(rep.iterations).toBe(1);
    expect(existsSync(path.join(out, 'weights.bin'))).toBe(true);
    expect(JSON.parse(await fs.readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8')).iteration).toBe(1);
    const r = await runCliHere(['train', series, '--out', out, '--iterations', '6', '--checkpoint-every', '3', '--resume', ...TINY_ARGS]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 1/);
    expect((await fs.readFile(path.join(out, 'weights.bin'))).equals(await fs.readFile(path.join(t.dir, 'full', 'weights.bin')))).toBe(true);
    const bad = await runCliHere(['train', series, '--out', path.join(t.dir, 'timed2'), '--time-limit', '0', ...TINY_ARGS]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--time-limit must be > 0/);
  });
  test('commands without a webgpu path refuse --backend webgpu', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const bs = await runCliHere(['baseline', 'bspline', series, '--out', path.join(t.dir, 'bs-gpu'), '--backend', 'webgpu', '--quiet']);
    expect(bs.code).toBe(1);
    expect(bs.stderr.trim().split('\n')).toHaveLength(1);
    expect(bs.stderr).toMatch(/baseline bspline does not run on the webgpu backend yet: use --backend auto, wasm or tensorflow/);
    expect(existsSync(path.join(t.dir, 'bs-gpu'))).toBe(false);
  });
  gpuTest('webgpu: training gives the wasm losses (skipped without a WebGPU adapter)', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const args = ['train', series, '--iterations', '3', '--checkpoint-every', '3', '--batch', '2', '--json', ...TINY_ARGS];
    const g = await runCliHere([...args, '--out', path.join(t.dir, 'gpu'), '--backend', 'webgpu']);
    expect(g.code).toBe(0);
    const w = await runCliHere([...args, '--out', path.join(t.dir, 'cpu'), '--backend', 'wasm']);
    expect(w.code).toBe(0);
    const lg = (await fs.readFile(path.join(t.dir, 'gpu', 'loss.csv'), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.split(',')[1]));
    const lw = (await fs.readFile(path.join(t.dir, 'cpu', 'loss.csv'), 'utf8'))
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.split(',')[1]));
    expect(lg).toHaveLength(3);
    lg.forEach((x, i) => expect(Math.abs(x - lw[i])).toBeLessThan(1e-3 * lw[i]));
    expect(JSON.parse(g.stdout).backend).toBe('webgpu');
  });
  test('validation reports loss and, with landmarks beside the series, TRE before and after', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const r = await runCliHere([
      'train',
      series,
      '--val',
      series,
      '--out',
      path.join(t.dir, 'val'),
      '--iterations',
      '2',
      '--checkpoint-every',
      '1',
      '--json',
      ...TINY_ARGS,
    ]);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.validation).toHaveLength(2);
    expect(rep.validation[1].loss).toBeGreaterThan(0);
    expect(rep.validation[1].treBeforeMm).toBeGreaterThan(0);
    expect(Number.isFinite(rep.validation[1].treMm)).toBe(true);
    expect(await fs.readFile(path.join(t.dir, 'val', 'loss.csv'), 'utf8')).toMatch(/^iteration,loss,validation,validation_tre_mm\n/);
    // the best validation's weights are kept in OUT/best, a model directory
    const best = rep.validation.reduce((b: { treMm: number }, v: { treMm: number }) => (v.treMm < b.treMm ? v : b));
    expect(rep.best).toEqual(best);
    const bj = JSON.parse(await fs.readFile(path.join(t.dir, 'val', 'best', 'model.json'), 'utf8'));
    expect(bj.training.iterationsDone).toBe(best.iteration);
    expect(bj.training.validation.treMm).toBe(best.treMm);
    const reg = await runCliHere([
      'register',
      'series',
      series,
      '--model',
      path.join(t.dir, 'val', 'best'),
      '--out',
      path.join(t.dir, 'val-reg'),
      '--no-qc',
      '--quiet',
    ]);
    expect(reg.code).toBe(0);
  });
  test('register series writes the result contract with 7 numbers per step', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const out = path.join(t.dir, 'reg');
    // every step kept (the tiny model is barely trained: the never-worse guard would drop steps)
    const r = await runCliHere([
      'register',
      'series',
      series,
      '--model',
      path.join(t.dir, 'full'),
      '--out',
      out,
      '--steps',
      '3',
      '--no-stop-when-worse',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
    expect(s.method).toBe('r2n2');
    expect(s.frames).toHaveLength(5);
    for (const f of s.frames) expect(f.parameters).toBe(21);
    const p = JSON.parse(await fs.readFile(path.join(out, s.frames[0].params), 'utf8'));
    expect(p.sequence).toHaveLength(3);
    expect(p.sequence[0]).toHaveLength(7);
    expect(existsSync(path.join(out, 'qc', `${s.frames[0].name}-gaussians.png`))).toBe(true);
    const e = await runCliHere(['evaluate', 'tre', '--result', out, '--landmarks', path.join(data, 'series-01', 'landmarks')]);
    expect(e.code).toBe(0);
    // frames one at a time give the same parameters as the default batch of 8 (float tolerance)
    const one = path.join(t.dir, 'reg1');
    expect(
      (
        await runCliHere([
          'register',
          'series',
          series,
          '--model',
          path.join(t.dir, 'full'),
          '--out',
          one,
          '--steps',
          '3',
          '--batch',
          '1',
          '--no-qc',
          '--no-stop-when-worse',
          '--quiet',
        ])
      ).code,
    ).toBe(0);
    const q = JSON.parse(await fs.readFile(path.join(one, s.frames[0].params), 'utf8'));
    expect(q.batch).toBe(1);
    expect(p.batch).toBe(5);
    // the default batch is the backend's: 8 on CPU backends, 64 on webgpu (dispatch-bound)
    expect([defaultRegisterBatch('wasm'), defaultRegisterBatch('cpu'), defaultRegisterBatch('tensorflow'), defaultRegisterBatch('webgpu')]).toEqual([
      8, 8, 8, 64,
    ]);
    q.sequence.flat().forEach((v: number, i: number) => expect(v).toBeCloseTo(p.sequence.flat()[i], 4));
    // without --steps: the steps the model was trained with (2)
    const dflt = path.join(t.dir, 'reg-default-steps');
    expect(
      (await runCliHere(['register', 'series', series, '--model', path.join(t.dir, 'full'), '--out', dflt, '--no-qc', '--no-stop-when-worse', '--quiet'])).code,
    ).toBe(0);
    expect(JSON.parse(await fs.readFile(path.join(dflt, 'summary.json'), 'utf8')).frames[0].parameters).toBe(14);
    // pre-alignment: the rigid matrix in params, 3 more parameters
    const pre = path.join(t.dir, 'reg-rigid');
    expect(
      (
        await runCliHere([
          'register',
          'series',
          series,
          '--model',
          path.join(t.dir, 'full'),
          '--out',
          pre,
          '--steps',
          '2',
          '--init',
          'rigid',
          '--no-qc',
          '--no-stop-when-worse',
          '--quiet',
        ])
      ).code,
    ).toBe(0);
    const ps = JSON.parse(await fs.readFile(path.join(pre, 'summary.json'), 'utf8'));
    expect(ps.frames[0].parameters).toBe(2 * 7 + 3);
    const pp = JSON.parse(await fs.readFile(path.join(pre, ps.frames[0].params), 'utf8'));
    expect(pp.affine.kind).toBe('rigid');
    expect(pp.affine.matrix).toHaveLength(4);
    // --flip-average x: two passes (as is, mirrored) of 3 steps, weights halved; the first pass is the plain run's
    const fa = path.join(t.dir, 'reg-flip');
    expect(
      (
        await runCliHere([
          'register',
          'series',
          series,
          '--model',
          path.join(t.dir, 'full'),
          '--out',
          fa,
          '--steps',
          '3',
          '--flip-average',
          'x',
          '--no-qc',
          '--no-stop-when-worse',
          '--quiet',
        ])
      ).code,
    ).toBe(0);
    const fs2 = JSON.parse(await fs.readFile(path.join(fa, 'summary.json'), 'utf8'));
    expect(fs2.frames[0].parameters).toBe(2 * 3 * 7);
    expect(fs2.settings.flipAverage).toBe('x');
    const fp = JSON.parse(await fs.readFile(path.join(fa, fs2.frames[0].params), 'utf8'));
    expect(fp.passes).toEqual(['none', 'x']);
    expect(fp.passSteps).toEqual([3, 3]);
    expect(fp.sequence).toHaveLength(6);
    p.sequence.forEach((row: number[], k: number) => row.forEach((v, i) => expect(fp.sequence[k][i]).toBeCloseTo(i === 4 || i === 5 ? v / 2 : v, 4)));
    expect(s.settings.flipAverage).toBeUndefined(); // results written without the option keep their settings key
    // --refine 3: the same number of Gaussians, refined from the network's (kept in params.refine)
    const rf = path.join(t.dir, 'reg-refine');
    const rr = await runCliHere([
      'register',
      'series',
      series,
      '--model',
      path.join(t.dir, 'full'),
      '--out',
      rf,
      '--steps',
      '3',
      '--refine',
      '3',
      '--no-qc',
      '--no-stop-when-worse',
      '--quiet',
    ]);
    expect(rr.stderr).toBe('');
    expect(rr.code).toBe(0);
    const rs = JSON.parse(await fs.readFile(path.join(rf, 'summary.json'), 'utf8'));
    expect(rs.settings.refine).toBe(3);
    expect(rs.settings.refineStride).toBe(2); // the default, recorded: it changes the result
    expect(rs.frames[0].parameters).toBe(21);
    for (const f of rs.frames) {
      const rp = JSON.parse(await fs.readFile(path.join(rf, f.params), 'utf8'));
      expect(rp.sequence).toHaveLength(3);
      expect(rp.refine.iterations).toBeLessThanOrEqual(3);
      expect(rp.refine.mseAfter).toBeLessThanOrEqual(rp.refine.mseBefore);
      if (f.name === s.frames[0].name) rp.refine.network.forEach((v: number, i: number) => expect(v).toBeCloseTo(p.sequence.flat()[i], 4));
    }
    expect(s.settings.refine).toBeUndefined();
    // coarse to fine: --refine 3 at 16 pixels, then --refine-fine 2 at the frames' size; the
    // refinement's costs are the full size's (never above the network's)
    const cf = path.join(t.dir, 'reg-refine-fine');
    const flags = '--steps 3 --refine 3 --refine-size 16 --refine-fine 2 --no-qc --no-stop-when-worse --quiet';
    const rc = await runCliHere(['register', 'series', series, '--model', path.join(t.dir, 'full'), '--out', cf, ...flags.split(' ')]);
    expect(rc.stderr).toBe('');
    expect(rc.code).toBe(0);
    const cs = JSON.parse(await fs.readFile(path.join(cf, 'summary.json'), 'utf8'));
    expect(cs.settings).toMatchObject({ refine: 3, refineSize: 16, refineFine: 2 });
    for (const f of cs.frames) {
      const rp = JSON.parse(await fs.readFile(path.join(cf, f.params), 'utf8'));
      const plain = JSON.parse(await fs.readFile(path.join(rf, f.params), 'utf8'));
      expect(rp.refine.iterations).toBeLessThanOrEqual(5);
      expect(rp.refine.mseAfter).toBeLessThanOrEqual(rp.refine.mseBefore);
      expect(rp.refine.mseBefore).toBeCloseTo(plain.refine.mseBefore, 6); // the same network sequence, costed at full size
    }
    expect(rs.settings.refineFine).toBeUndefined();
    for (const [flag, value, msg] of [
      ['--refine', '-1', /--refine must be a whole number/],
      ['--refine-size', '8', /--refine-size must be/],
      ['--refine-stride', '0', /--refine-stride must be a whole number/],
      ['--refine-fine', '-1', /--refine-fine must be a whole number/],
      ['--refine-fine', '2', /--refine-fine continues a reduced-size refinement/],
    ] as const) {
      const bad = await runCliHere(['register', 'series', series, '--model', path.join(t.dir, 'full'), '--out', path.join(t.dir, 'reg-bad'), flag, value]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(msg);
      expect(existsSync(path.join(t.dir, 'reg-bad'))).toBe(false);
    }
    const missing = await runCliHere(['register', 'series', series, '--model', path.join(t.dir, 'nope'), '--out', path.join(t.dir, 'reg2')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/model\.json not found/);
  });
  test('--flip-average is mirror-equivariant: the mirrored pair gives the mirrored field', async () => {
    const model = await loadModel(path.join(t.dir, 'full'));
    const s = makePhantomSeries({ size: 48, frames: 3, seed: 3 });
    const n = 48;
    const img = (t: number, f: Flip) => ({ geometry: s.geometry, data: flipImage(s.renderFrame(t), n, n, f) });
    for (const [fa, f] of [
      ['x', 'x'],
      ['all', 'y'],
      ['xy', 'xy'],
    ] as const) {
      const reg = r2n2Registrar(model, { steps: 2, stopThreshold: 0, flipAverage: fa, stopWhenWorse: false });
      const [a] = await reg.registerBatch!(img(0, 'none'), [img(2, 'none')], () => undefined);
      const [b] = await reg.registerBatch!(img(0, f), [img(2, f)], () => undefined);
      const N = n * n;
      const sx = f === 'y' ? 1 : -1;
      const sy = f === 'x' ? 1 : -1;
      const bx = flipImage(b.field.subarray(0, N), n, n, f);
      const by = flipImage(b.field.subarray(N), n, n, f);
      let big = 0;
      for (let i = 0; i < N; i++) {
        expect(sx * bx[i]).toBeCloseTo(a.field[i], 4);
        expect(sy * by[i]).toBeCloseTo(a.field[N + i], 4);
        big = Math.max(big, Math.abs(a.field[i]), Math.abs(a.field[N + i]));
      }
      expect(big).toBeGreaterThan(1e-4); // the trained tiny model does move things
      expect(a.parameters).toBe(2 * 7 * (fa === 'all' ? 4 : 2));
    }
    model.tensors.forEach((x) => x.dispose());
  });
  test('fine-tuning --from a model starts from its weights; --batch and --lr-final resume bit-for-bit', async () => {
    const series = path.join(data, 'series-01', 'frames');
    const base = path.join(t.dir, 'full');
    const ft = path.join(t.dir, 'ft');
    // a vanishing learning rate: the result is the starting model's weights (to 1e-6)
    const r = await runCliHere(['train', series, '--from', base, '--out', ft, '--iterations', '1', '--lr', '1e-12', '--batch', '2', '--steps', '2', '--quiet']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const a = await loadModel(base);
    const b = await loadModel(ft);
    expect(b.config).toEqual(a.config);
    let maxDiff = 0;
    for (const [name, x] of a.tensors) maxDiff = Math.max(maxDiff, tf.max(tf.abs(tf.sub(x, b.tensors.get(name)!))).dataSync()[0]);
    expect(maxDiff).toBeLessThan(1e-6);
    [...a.tensors.values(), ...b.tensors.values()].forEach((x) => x.dispose());
    const mj = JSON.parse(await fs.readFile(path.join(ft, 'model.json'), 'utf8'));
    expect(mj.training.from).toBe(path.resolve(base));
    expect(mj.training.batch).toBe(2);
    // architecture options cannot be mixed with --from
    const clash = await runCliHere(['train', series, '--from', base, '--out', path.join(t.dir, 'ft2'), '--hidden', '16', '--net-size', '48', '--quiet']);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/takes the model's architecture \(only --net-size, --input-block and --input-gradient may change\); drop --hidden$/m);
    expect(clash.stderr.trim().split('\n')).toHaveLength(1);
    // another input size: the weights carry over (they do not depend on it)
    const big = await runCliHere([
      'train',
      series,
      '--from',
      base,
      '--out',
      path.join(t.dir, 'ft48'),
      '--net-size',
      '48',
      '--iterations',
      '1',
      '--steps',
      '2',
      '--quiet',
    ]);
    expect(big.stderr).toBe('');
    expect(big.code).toBe(0);
    expect(JSON.parse(await fs.readFile(path.join(t.dir, 'ft48', 'model.json'), 'utf8')).config.netSize).toBe(48);
    // --input-block 1 is the default run, bit for bit, and is not written into model.json
    const b1 = path.join(t.dir, 'b1');
    expect((await runCliHere(['train', series, '--out', b1, '--iterations', '6', '--checkpoint-every', '3', '--input-block', '1', ...TINY_ARGS])).code).toBe(0);
    expect((await fs.readFile(path.join(b1, 'weights.bin'))).equals(await fs.readFile(path.join(base, 'weights.bin')))).toBe(true);
    expect(JSON.parse(await fs.readFile(path.join(b1, 'model.json'), 'utf8')).config).not.toHaveProperty('inputBlock');
    // --input-block 2 from a block-1 model: the input kernel copied to the 4 pixels of each block, / 4; the rest as it was
    const blk = path.join(t.dir, 'ft-b2');
    const rb = await runCliHere([
      'train',
      series,
      '--from',
      base,
      '--out',
      blk,
      '--input-block',
      '2',
      '--iterations',
      '1',
      '--lr',
      '1e-12',
      '--steps',
      '2',
      '--quiet',
    ]);
    expect(rb.stderr).toBe('');
    expect(rb.code).toBe(0);
    const m2 = await loadModel(blk);
    const m1 = await loadModel(base);
    expect(m2.config).toEqual({ ...m1.config, inputBlock: 2 });
    const k1 = m1.tensors.get('input/kernel')!.arraySync() as number[][][][];
    const k2 = m2.tensors.get('input/kernel')!.arraySync() as number[][][][];
    for (const [y, x, ch, o] of [
      [0, 0, 0, 0],
      [3, 4, 2, 1],
      [6, 6, 3, 3],
    ])
      for (let p = 0; p < 4; p++) expect(k2[y][x][p * 4 + ch][o]).toBeCloseTo(k1[y][x][ch][o] / 4, 6);
    for (const [name, v] of m1.tensors) if (name !== 'input/kernel') expect(tf.max(tf.abs(tf.sub(v, m2.tensors.get(name)!))).dataSync()[0]).toBeLessThan(1e-6);
    [...m1.tensors.values(), ...m2.tensors.values()].forEach((x) => x.dispose());
    // it registers a series (fields at the frames' size) and resumes its own block
    const rr = await runCliHere([
      'register',
      'series',
      series,
      '--model',
      blk,
      '--out',
      path.join(t.dir, 'reg-b2'),
      '--steps',
      '2',
      '--no-qc',
      '--no-stop-when-worse',
      '--quiet',
    ]);
    expect(rr.stderr).toBe('');
    expect(rr.code).toBe(0);
    const summ = JSON.parse(await fs.readFile(path.join(t.dir, 'reg-b2', 'summary.json'), 'utf8'));
    expect(summ.frames).toHaveLength(5);
    for (const f of summ.frames) expect(f.parameters).toBe(14);
    const back = await runCliHere(['train', series, '--from', blk, '--out', path.join(t.dir, 'ft-b1'), '--input-block', '1', '--iterations', '1', '--quiet']);
    expect(back.code).toBe(1);
    expect(back.stderr).toMatch(/has input block 2; --input-block 1 can start only from a block-1 model/);
    expect(back.stderr.trim().split('\n')).toHaveLength(1);
    // batch 2 with a cosine schedule: killed after the checkpoint at 2 and resumed = uninterrupted
    const args = [
      '--from',
      base,
      '--batch',
      '2',
      '--lr',
      '1e-3',
      '--lr-final',
      '1e-4',
      '--decay-iterations',
      '4',
      '--checkpoint-every',
      '2',
      '--steps',
      '2',
      '--quiet',
    ];
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'c-full'), '--iterations', '4', ...args])).code).toBe(0);
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'c-part'), '--iterations', '2', ...args])).code).toBe(0);
    const res = await runCliHere(['train', series, '--out', path.join(t.dir, 'c-part'), '--iterations', '4', '--resume', ...args]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/resumed at 2/);
    const wa = await fs.readFile(path.join(t.dir, 'c-full', 'weights.bin'));
    expect((await fs.readFile(path.join(t.dir, 'c-part', 'weights.bin'))).equals(wa)).toBe(true);
    expect((await fs.readFile(path.join(base, 'weights.bin'))).equals(wa)).toBe(false);
    // another schedule cannot resume that checkpoint
    const other = await runCliHere([
      'train',
      series,
      '--out',
      path.join(t.dir, 'c-part'),
      '--iterations',
      '6',
      '--resume',
      ...args.filter((x, i, all) => x !== '--decay-iterations' && all[i - 1] !== '--decay-iterations'),
    ]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
  });
});

describe('learning-rate schedule', () => {
  test('cosine from --lr to --lr-final over the iterations; constant without --lr-final', () => {
    expect(learningRateAt(1e-3, undefined, 50, 100)).toBe(1e-3);
    expect(learningRateAt(1e-3, 1e-4, 0, 101)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(1e-3, 1e-4, 50, 101)).toBeCloseTo(5.5e-4, 12);
    expect(learningRateAt(1e-3, 1e-4, 100, 101)).toBeCloseTo(1e-4, 12);
    expect(learningRateAt(1e-3, 1e-4, 25, 101)).toBeCloseTo(1e-4 + 0.5 * 9e-4 * (1 + Math.SQRT1_2), 12);
  });
});
