/**
 * Distillation (`r2n2 train --teacher`): teacher fields in normalised units, mirrored with the
 * pair, the loss term computed as documented, and the CLI wiring (matching, resume, errors).
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import {
  type DisplacementField,
  affineNormalisedField,
  fieldFromNormalised,
  fieldToNormalised,
  flipNormalisedField,
} from '../src/core/transformation/field.js';
import { readField, writeField } from '../src/io/image.js';
import { sequenceField, unflipSequence } from '../src/core/transformation/gaussian.js';
import { type Flip, type Matrix2, affineImage, resampleAligned } from '../src/core/image/resample.js';
import { type R2N2Config, initWeights, disposeWeights } from '../src/core/r2n2/network.js';
import { inferSequence, sequenceLoss } from '../src/core/r2n2/sequence.js';
import { AmsGrad } from '../src/core/optim.js';
import { tmpDir, runCli, runCliHere, seededUniform, testWithWebGpu } from './helpers.js';

const gpuTest = await testWithWebGpu();

beforeAll(async () => {
  await initBackend('wasm');
});
let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir('r2n2-distil-');
});
afterAll(() => t.cleanup());

const TINY: R2N2Config = { netSize: 32, channels: [4, 4, 4], paramChannels: 4, residualBlocks: 1, hidden: 8, sigmaMax: 0.25, activation: 'leaky-relu' };
/** Two Gaussians, normalised units: cx, cy, σx, σy, wx, wy, φ. */
const SEQ = [0.2, -0.3, 0.3, 0.15, 0.05, -0.02, 0.7, -0.4, 0.25, 0.2, 0.35, -0.03, 0.04, 2.1];

describe('teacher fields', () => {
  test('fieldToNormalised inverts fieldFromNormalised on a rotated, anisotropic grid; bad grids are refused', () => {
    const [W, H] = [7, 5];
    const c = Math.cos(0.4);
    const s = Math.sin(0.4);
    const g = {
      size: [W, H] as [number, number],
      spacing: [0.7, 1.3] as [number, number],
      origin: [3, -2] as [number, number],
      direction: [c, -s, s, c] as [number, number, number, number],
    };
    const u = Float32Array.from(seededUniform(2 * W * H, 3, -0.2, 0.2));
    const back = fieldToNormalised(fieldFromNormalised(u, g));
    back.forEach((v, i) => expect(v).toBeCloseTo(u[i], 6));
    // one normalised unit along x is (W − 1)/2 pixels of 0.7 mm, rotated
    const one = new Float32Array(2 * W * H);
    one[0] = 1;
    const f = fieldFromNormalised(one, g);
    expect(Math.hypot(f.data[0], f.data[1])).toBeCloseTo(3 * 0.7, 6);
    expect(() => fieldToNormalised({ geometry: { ...g, direction: [1, 1, 1, 1] }, data: f.data })).toThrow(/singular/);
    expect(() => fieldToNormalised({ geometry: g, data: f.data.subarray(2) })).toThrow(/expected 2×5×7/);
  });

  test("flipNormalisedField: the field of the mirrored pair is the mirrored sequence's field (every axis)", () => {
    const [H, W] = [9, 12];
    const u = sequenceField(SEQ, H, W);
    for (const flip of ['none', 'x', 'y', 'xy'] as Flip[]) {
      // unflipSequence mirrors a sequence (an involution): its field is the mirrored pair's field
      const ref = sequenceField(unflipSequence(SEQ, flip), H, W);
      const got = flipNormalisedField(u, H, W, flip);
      got.forEach((v, i) => expect(v).toBeCloseTo(ref[i], 6));
      if (flip !== 'none') expect(Array.from(got).some((v, i) => Math.abs(v - u[i]) > 1e-3)).toBe(true);
    }
  });
});

describe('the pair seen through a linear map (--augment-affine)', () => {
  /** Normalised coordinates (corners aligned) of pixel (i, j) of an H×W grid. */
  const xy = (i: number, j: number, H: number, W: number) => [(2 * j) / (W - 1) - 1, (2 * i) / (H - 1) - 1];
  const A: Matrix2 = [1.08, -0.07, 0.05, 0.93];
  /** Calls `fn(p, A·q)` for each pixel p of an H×W grid whose A·q lies inside the image; returns how many. */
  const eachInside = (H: number, W: number, fn: (p: number, s: [number, number]) => void) => {
    let count = 0;
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const [x, y] = xy(i, j, H, W);
        const s: [number, number] = [A[0] * x + A[1] * y, A[2] * x + A[3] * y];
        if (Math.abs(s[0]) > 1 || Math.abs(s[1]) > 1) continue;
        fn(i * W + j, s);
        count++;
      }
    return count;
  };

  test('affineImage: the identity copies, a 90° turn permutes, a linear image maps exactly, the same A at two sizes agrees', () => {
    const n = 9;
    const img = Float32Array.from(seededUniform(2 * n * n, 4, -1, 1));
    expect(Array.from(affineImage(img, 2, n, n, [1, 0, 0, 1]))).toEqual(Array.from(img));
    // out(x, y) = in(−y, x): out[i][j] = in[j][n − 1 − i], both channels
    const turned = affineImage(img, 2, n, n, [0, -1, 1, 0]);
    for (let c = 0; c < 2; c++)
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(turned[c * n * n + i * n + j]).toBe(img[c * n * n + j * n + (n - 1 - i)]);
    // a linear image α·x + β·y + γ is reproduced exactly wherever A·q stays inside the image
    const lin = (x: number, y: number) => 0.7 * x - 1.3 * y + 0.2;
    const [H, W] = [17, 23];
    const L = Float32Array.from({ length: H * W }, (_, p) => lin(...(xy(Math.floor(p / W), p % W, H, W) as [number, number])));
    const out = affineImage(L, 1, H, W, A);
    expect(eachInside(H, W, (p, [sx, sy]) => expect(out[p]).toBeCloseTo(lin(sx, sy), 5))).toBeGreaterThan(0.7 * H * W);
    // normalised coordinates: mapping at 33² then reducing to 17² is mapping at 17² (linear image, interior)
    const big = Float32Array.from({ length: 33 * 33 }, (_, p) => lin(...(xy(Math.floor(p / 33), p % 33, 33, 33) as [number, number])));
    const small = Float32Array.from({ length: 17 * 17 }, (_, p) => lin(...(xy(Math.floor(p / 17), p % 17, 17, 17) as [number, number])));
    const viaBig = resampleAligned(affineImage(big, 1, 33, 33, A), 1, 33, 33, 17, 17);
    const direct = affineImage(small, 1, 17, 17, A);
    for (let i = 3; i < 14; i++) for (let j = 3; j < 14; j++) expect(viaBig[i * 17 + j]).toBeCloseTo(direct[i * 17 + j], 5);
  });

  test("affineNormalisedField: u'(q) = A⁻¹·u(A·q): exact on a linear field and a 90° turn; a singular or mis-sized input is refused", () => {
    // u(q) = B·q + t is linear, so its bilinear samples are exact: u'(q) = A⁻¹(B·A·q + t)
    const B = [0.1, -0.05, 0.03, 0.08];
    const t0 = [0.02, -0.04];
    const [H, W] = [15, 19];
    const N = H * W;
    const u = new Float32Array(2 * N);
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const [x, y] = xy(i, j, H, W);
        u[i * W + j] = B[0] * x + B[1] * y + t0[0];
        u[N + i * W + j] = B[2] * x + B[3] * y + t0[1];
      }
    const got = affineNormalisedField(u, H, W, A);
    const det = A[0] * A[3] - A[1] * A[2];
    const checked = eachInside(H, W, (p, [sx, sy]) => {
      const [vx, vy] = [B[0] * sx + B[1] * sy + t0[0], B[2] * sx + B[3] * sy + t0[1]];
      expect(got[p]).toBeCloseTo((A[3] * vx - A[1] * vy) / det, 5);
      expect(got[N + p]).toBeCloseTo((-A[2] * vx + A[0] * vy) / det, 5);
    });
    expect(checked).toBeGreaterThan(0.7 * N);
    // a 90° turn of a Gaussian sequence's field: the turned field at q is the turned vector at A·q
    const n = 11;
    const s = sequenceField(SEQ, n, n);
    const r = affineNormalisedField(s, n, n, [0, -1, 1, 0]);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const src = j * n + (n - 1 - i);
        expect(r[i * n + j]).toBeCloseTo(s[n * n + src], 6);
        expect(r[n * n + i * n + j]).toBeCloseTo(-s[src], 6);
      }
    expect(() => affineNormalisedField(s, n, n, [1, 2, 0.5, 1])).toThrow(/not invertible/);
    expect(() => affineNormalisedField(s.subarray(2), n, n, A)).toThrow(/expected 2×11×11/);
  });

  test('the mapped teacher registers the mapped pair: M′(q + u′(q)) = F′(q) for an analytic image', () => {
    // M is analytic; F(q) = M(q + u(q)) with u a Gaussian sequence's field on the grid
    const M = (x: number, y: number) => Math.sin(2.1 * x + 0.4) * Math.cos(1.7 * y - 0.3) + 0.3 * x * y;
    const n = 65;
    const u = sequenceField(SEQ, n, n);
    const N = n * n;
    const F = Float32Array.from({ length: N }, (_, p) => {
      const [x, y] = xy(Math.floor(p / n), p % n, n, n);
      return M(x + u[p], y + u[N + p]);
    });
    const Fp = affineImage(F, 1, n, n, A);
    /** max over the interior of |M′(q + v(q)) − F′(q)|, M′(T′(q)) = M(A·T′(q)). */
    const mismatch = (v: Float32Array) => {
      let worst = 0;
      for (let i = 8; i < n - 8; i++)
        for (let j = 8; j < n - 8; j++) {
          const p = i * n + j;
          const [x, y] = xy(i, j, n, n);
          const [tx, ty] = [x + v[p], y + v[N + p]];
          worst = Math.max(worst, Math.abs(M(A[0] * tx + A[1] * ty, A[2] * tx + A[3] * ty) - Fp[p]));
        }
      return worst;
    };
    const err = mismatch(affineNormalisedField(u, n, n, A));
    // bilinear interpolation of F and u on a 65² grid: errors of a few thousandths, against image values of ±1
    expect(err).toBeLessThan(0.01);
    // the unmapped field does not register the mapped pair
    expect(mismatch(u)).toBeGreaterThan(5 * err);
  });
});

describe('the distillation term of the training loss', () => {
  const n = TINY.netSize;
  const img = (s: number) => Float32Array.from({ length: n * n }, (_, i) => Math.sin(((i % n) * 8) / n + s) * Math.cos((Math.floor(i / n) * 6.4) / n));
  const F = [img(0), img(0.1)];
  const M = [img(0.5), img(-0.3)];
  const targets = [sequenceField(SEQ, n, n), sequenceField(unflipSequence(SEQ, 'x'), n, n)];

  test('adds μ · mean over steps (or the final step) of the mean squared field difference in network pixels²; μ = 0 is the plain loss', async () => {
    const w = initWeights(TINY, 7);
    w.get('param/fc2/kernel')!.assign(tf.fill([TINY.hidden, 5], 0.1));
    const before = tf.memory().numTensors;
    const loss = (teacher?: { fields: Float32Array[]; weight: number; steps?: 'all' | 'final' }) =>
      tf.tidy(() => sequenceLoss(TINY, w, F, M, { steps: 3, lambda: 0.1, teacher }).dataSync()[0]);
    const plain = loss();
    expect(loss({ fields: targets, weight: 0 })).toBe(plain);
    // the reference, by hand from the inferred Gaussians (no weight noise: the same ones)
    const params = await inferSequence(TINY, w, F, M, { steps: 3 });
    const px = (n - 1) / 2;
    let ref = 0;
    let refFinal = 0;
    for (let s = 1; s <= 3; s++) {
      let sum = 0;
      for (let b = 0; b < 2; b++) {
        const u = sequenceField(params[b].subarray(0, 7 * s), n, n);
        for (let k = 0; k < u.length; k++) sum += ((u[k] - targets[b][k]) * px) ** 2;
      }
      ref += sum / (2 * 2 * n * n) / 3;
      if (s === 3) refFinal = sum / (2 * 2 * n * n);
    }
    expect(ref).toBeGreaterThan(0.01);
    const mu = 2.5;
    const term = loss({ fields: targets, weight: mu, steps: 'all' }) - plain;
    expect(Math.abs(term - mu * ref)).toBeLessThan(2e-5 * mu * ref + 1e-7);
    // steps: 'final' (the default) compares the last field only
    // (the two differ by far more than the tolerance below)
    expect(Math.abs(refFinal - ref)).toBeGreaterThan(20 * (2e-5 * ref + 1e-7));
    const termFinal = loss({ fields: targets, weight: mu }) - plain;
    expect(loss({ fields: targets, weight: mu, steps: 'final' }) - plain).toBe(termFinal);
    expect(Math.abs(termFinal - mu * refFinal)).toBeLessThan(2e-5 * mu * refFinal + 1e-7);
    expect(() => loss({ fields: targets.slice(1), weight: 1 })).toThrow(/teacher must hold 2 fields of 2×32×32/);
    expect(tf.memory().numTensors).toBe(before);
    disposeWeights(w);
  });

  test("gradient steps on the term bring the network's field towards the teacher's", async () => {
    const w = initWeights(TINY, 3);
    w.get('param/fc2/kernel')!.assign(tf.fill([TINY.hidden, 5], 0.01));
    const vars = [...w.values()] as tf.Variable[];
    const opt = new AmsGrad({ learningRate: 3e-3 });
    const fieldError = async () => {
      const p = await inferSequence(TINY, w, F, M, { steps: 2 });
      let sum = 0;
      p.forEach((q, b) => sequenceField(q, n, n).forEach((v, k) => (sum += (v - targets[b][k]) ** 2)));
      return sum;
    };
    const e0 = await fieldError();
    for (let i = 0; i < 40; i++) {
      const { value, grads } = tf.variableGrads(() => sequenceLoss(TINY, w, F, M, { steps: 2, lambda: 0, teacher: { fields: targets, weight: 100 } }), vars);
      opt.apply(vars, grads);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const e1 = await fieldError();
    expect(e1).toBeLessThan(0.8 * e0);
    opt.dispose();
    disposeWeights(w);
  });
});

describe('r2n2 train --teacher (tiny configuration)', () => {
  const TINY_ARGS = ['--net-size', '32', '--channels', '4', '4', '4', '--param-channels', '4', '--hidden', '8', '--steps', '2', '--quiet'];
  let data: string;
  let s1: string;
  let s2: string;
  let model: string;
  let teach1: string;
  let teach2: string;
  beforeAll(async () => {
    data = path.join(t.dir, 'data');
    expect((await runCliHere(['phantom', '--out', data, '--series', '2', '--frames', '5', '--size', '48', '--seed', '9'])).code).toBe(0);
    s1 = path.join(data, 'series-01', 'frames');
    s2 = path.join(data, 'series-02', 'frames');
    model = path.join(t.dir, 'model');
    expect(runCli(['train', s1, s2, '--out', model, '--iterations', '2', ...TINY_ARGS]).code).toBe(0);
    teach1 = path.join(t.dir, 'teach1');
    teach2 = path.join(t.dir, 'teach2');
    for (const [s, o] of [
      [s1, teach1],
      [s2, teach2],
    ]) {
      expect(runCli(['register', 'series', s, '--model', model, '--out', o, '--refine', '3', '--no-qc', '--quiet']).code).toBe(0);
    }
  });

  test('μ = 0 is the plain run; μ > 0 changes it, is recorded, and resumes bit-for-bit with flips, shifts and linear maps', async () => {
    const args = ['--iterations', '6', '--checkpoint-every', '3', '--seed', '5', ...TINY_ARGS];
    expect((await runCliHere(['train', s1, s2, '--out', path.join(t.dir, 'plain'), ...args])).code).toBe(0);
    const z = await runCliHere(['train', s1, s2, '--out', path.join(t.dir, 'mu0'), '--teacher', teach2, teach1, '--teacher-weight', '0', ...args]);
    expect(z.stderr).toBe('');
    expect(z.code).toBe(0);
    const plain = await fs.readFile(path.join(t.dir, 'plain', 'weights.bin'));
    expect((await fs.readFile(path.join(t.dir, 'mu0', 'weights.bin'))).equals(plain)).toBe(true);
    const withT = ['--teacher', teach1, teach2, '--teacher-weight', '5', '--shift', '1', '--augment-affine', '0.1'];
    expect((await runCliHere(['train', s1, s2, '--out', path.join(t.dir, 'mu5'), ...withT, ...args])).code).toBe(0);
    const full = await fs.readFile(path.join(t.dir, 'mu5', 'weights.bin'));
    expect(full.equals(plain)).toBe(false);
    const tr = JSON.parse(await fs.readFile(path.join(t.dir, 'mu5', 'model.json'), 'utf8')).training;
    expect(tr.teacherWeight).toBe(5);
    expect(tr.affine).toBe(0.1);
    expect(tr.teacher).toEqual([path.resolve(teach1), path.resolve(teach2)]);
    // killed after the checkpoint at 3, resumed: the uninterrupted run's weights
    const part = path.join(t.dir, 'mu5p');
    expect((await runCliHere(['train', s1, s2, '--out', part, ...withT, ...args.map((a) => (a === '6' ? '3' : a))])).code).toBe(0);
    const r = await runCliHere(['train', s1, s2, '--out', part, ...withT, '--resume', ...args]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 3/);
    expect((await fs.readFile(path.join(part, 'weights.bin'))).equals(full)).toBe(true);
    // another weight does not resume that checkpoint
    const other = await runCliHere([
      'train',
      s1,
      s2,
      '--out',
      part,
      '--teacher',
      teach1,
      teach2,
      '--teacher-weight',
      '1',
      '--shift',
      '1',
      '--resume',
      '--iterations',
      '9',
      '--checkpoint-every',
      '3',
      '--seed',
      '5',
      ...TINY_ARGS,
    ]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
  });

  gpuTest('webgpu: training with a teacher gives the wasm losses (skipped without a WebGPU adapter)', async () => {
    const args = [
      'train',
      s1,
      s2,
      '--teacher',
      teach1,
      teach2,
      '--teacher-weight',
      '5',
      '--iterations',
      '3',
      '--checkpoint-every',
      '3',
      '--batch',
      '2',
      '--json',
      ...TINY_ARGS,
    ];
    const g = await runCliHere([...args, '--out', path.join(t.dir, 'gpu'), '--backend', 'webgpu']);
    expect(g.code).toBe(0);
    expect(JSON.parse(g.stdout).backend).toBe('webgpu');
    expect((await runCliHere([...args, '--out', path.join(t.dir, 'cpu'), '--backend', 'wasm'])).code).toBe(0);
    const losses = async (d: string) =>
      (await fs.readFile(path.join(t.dir, d, 'loss.csv'), 'utf8'))
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => Number(l.split(',')[1]));
    const [lg, lw] = [await losses('gpu'), await losses('cpu')];
    expect(lg).toHaveLength(3);
    lg.forEach((x, i) => expect(Math.abs(x - lw[i])).toBeLessThan(1e-3 * lw[i]));
  });

  test('a series without a teacher, a teacher of another fixed frame, an incomplete or mis-sized teacher: one-line errors, no output', async () => {
    const check = async (args: string[], re: RegExp) => {
      const out = path.join(t.dir, `bad-${Math.random().toString(36).slice(2)}`);
      const r = await runCliHere(['train', ...args, '--out', out, '--iterations', '1', ...TINY_ARGS]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
      expect(existsSync(out)).toBe(false);
    };
    await check([s1, s2, '--teacher', teach1], /no --teacher registers the training series .*series-02/);
    await check([s1, '--teacher', teach1, teach1], /register the same series/);
    await check([s1, '--teacher', teach1, '--teacher-weight', '-1'], /--teacher-weight must be a number ≥ 0/);
    await check([s1, '--teacher', teach1, '--augment-affine', '0.8'], /--augment-affine must be in \[0, 0.5\]/);
    // registered to another fixed frame than training's automatic one
    const summary = JSON.parse(await fs.readFile(path.join(teach1, 'summary.json'), 'utf8'));
    const otherFixed = summary.frames[0].name;
    const moved = path.join(t.dir, 'teach-fixed');
    expect((await runCliHere(['register', 'series', s1, '--model', model, '--out', moved, '--fixed-frame', otherFixed, '--no-qc', '--quiet'])).code).toBe(0);
    await check([s1, '--teacher', moved], new RegExp(`to frame ${otherFixed}, but training uses ${summary.fixedFrame}`));
    // a frame's field missing
    const partial = path.join(t.dir, 'teach-partial');
    await fs.cp(teach1, partial, { recursive: true });
    const ps = JSON.parse(await fs.readFile(path.join(partial, 'summary.json'), 'utf8'));
    ps.frames = ps.frames.slice(1);
    await fs.writeFile(path.join(partial, 'summary.json'), JSON.stringify(ps));
    await check([s1, '--teacher', partial], new RegExp(`has no field for frame ${summary.frames[0].name}`));
    await check([s1, '--teacher', path.join(t.dir, 'nowhere')], /nowhere/);
    // a field of another size (NaN cannot be planted this way: writeField stores it as 0)
    const name = summary.frames[0].name;
    for (const [dir, edit, re] of [
      [
        'teach-size',
        (f: DisplacementField) => ({ geometry: { ...f.geometry, size: [8, 8] as [number, number] }, data: new Float32Array(2 * 64) }),
        /is 8×8, but the frames of .* are 48×48/,
      ],
    ] as [string, (f: DisplacementField) => DisplacementField, RegExp][]) {
      const d = path.join(t.dir, dir);
      await fs.cp(teach1, d, { recursive: true });
      const file = path.join(d, 'fields', `${name}.nii.gz`);
      await writeField(file, edit(await readField(file)));
      await check([s1, '--teacher', d], re);
    }
  });
});
