import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { maskedMse, nccLoss, lnccLoss, miLoss, ngfLoss, ngfEpsilon, makeLoss, LOSS_NAMES } from '../src/core/loss/losses.js';
import { isoTv, diffusion, bending, REGULARISER_NAMES, regulariser } from '../src/core/regulariser/regularisers.js';
import { AmsGrad, clipByGlobalNorm } from '../src/core/optim.js';
import { normaliseIntensity } from '../src/core/image/intensity.js';
import { rand, onBoth, expectClose } from './tf-helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const H = 9;
const W = 11;
const F = rand([H, W], 1);
const Wimg = Float32Array.from(F, (v, i) => 0.6 * v + 0.3 * Math.sin(i));
const MASK = Float32Array.from({ length: H * W }, (_, i) => (i % 7 === 3 ? 0 : 1));

/** Runs a loss on plain arrays (float32 tfjs) and returns its value. */
function lossValue(fn: (f: tf.Tensor2D, w: tf.Tensor2D, m: tf.Tensor2D) => tf.Scalar, f = F, w = Wimg, m = MASK): number {
  return tf.tidy(() => fn(tf.tensor2d(f, [H, W]), tf.tensor2d(w, [H, W]), tf.tensor2d(m, [H, W])).arraySync() as number);
}

// ---- double-precision references written straight from the formulas ----
const at = (a: ArrayLike<number>, i: number, j: number) => a[i * W + j];

function refNcc(f: ArrayLike<number>, w: ArrayLike<number>, m: ArrayLike<number>): number {
  let n = 0,
    sf = 0,
    sw = 0;
  for (let i = 0; i < f.length; i++)
    if (m[i]) {
      n++;
      sf += f[i];
      sw += w[i];
    }
  const mf = sf / n,
    mw = sw / n;
  let c = 0,
    vf = 0,
    vw = 0;
  for (let i = 0; i < f.length; i++)
    if (m[i]) {
      c += (f[i] - mf) * (w[i] - mw);
      vf += (f[i] - mf) ** 2;
      vw += (w[i] - mw) ** 2;
    }
  return 1 - c / Math.sqrt(vf * vw);
}

function refLncc(f: ArrayLike<number>, w: ArrayLike<number>, m: ArrayLike<number>, k: number): number {
  const r = (k - 1) / 2;
  let tot = 0,
    cnt = 0;
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      let n = 0,
        sI = 0,
        sJ = 0,
        sII = 0,
        sJJ = 0,
        sIJ = 0;
      for (let a = i - r; a <= i + r; a++)
        for (let b = j - r; b <= j + r; b++) {
          if (a < 0 || b < 0 || a >= H || b >= W) continue;
          const mm = at(m, a, b),
            I = at(f, a, b) * mm,
            J = at(w, a, b) * mm;
          n += mm;
          sI += I;
          sJ += J;
          sII += I * I;
          sJJ += J * J;
          sIJ += I * J;
        }
      n = Math.max(n, 1);
      const cross = sIJ - (sI * sJ) / n,
        vI = sII - (sI * sI) / n,
        vJ = sJJ - (sJ * sJ) / n;
      if (at(m, i, j)) {
        tot += (cross * cross) / (vI * vJ + 1e-5);
        cnt++;
      }
    }
  return 1 - tot / cnt;
}

function refMi(f: ArrayLike<number>, w: ArrayLike<number>, m: ArrayLike<number>, bins: number, sigma: number, lo: number, hi: number): number {
  const weights = (v: number) => {
    const p = ((Math.min(hi, Math.max(lo, v)) - lo) * (bins - 1)) / (hi - lo);
    const g = Array.from({ length: bins }, (_, b) => Math.exp(-((p - b) ** 2) / (2 * sigma * sigma)));
    const s = g.reduce((a, b) => a + b, 0);
    return g.map((x) => x / s);
  };
  const joint = Array.from({ length: bins }, () => new Float64Array(bins));
  let n = 0;
  for (let i = 0; i < f.length; i++) {
    if (!m[i]) continue;
    n++;
    const a = weights(f[i]),
      b = weights(w[i]);
    for (let x = 0; x < bins; x++) for (let y = 0; y < bins; y++) joint[x][y] += a[x] * b[y];
  }
  const pf = new Float64Array(bins),
    pw = new Float64Array(bins);
  for (let x = 0; x < bins; x++)
    for (let y = 0; y < bins; y++) {
      joint[x][y] /= n;
    }
  for (let x = 0; x < bins; x++)
    for (let y = 0; y < bins; y++) {
      pf[x] += joint[x][y];
      pw[y] += joint[x][y];
    }
  let mi = 0;
  for (let x = 0; x < bins; x++) for (let y = 0; y < bins; y++) if (joint[x][y] > 0) mi += joint[x][y] * Math.log(joint[x][y] / (pf[x] * pw[y]));
  return -mi;
}

function refNgf(f: ArrayLike<number>, w: ArrayLike<number>, m: ArrayLike<number>, eps: number): number {
  let tot = 0,
    cnt = 0;
  for (let i = 0; i < H - 1; i++)
    for (let j = 0; j < W - 1; j++) {
      if (!at(m, i, j)) continue;
      const fx = at(f, i, j + 1) - at(f, i, j),
        fy = at(f, i + 1, j) - at(f, i, j);
      const wx = at(w, i, j + 1) - at(w, i, j),
        wy = at(w, i + 1, j) - at(w, i, j);
      const d = fx * wx + fy * wy;
      tot += 1 - (d * d) / ((fx * fx + fy * fy + eps * eps) * (wx * wx + wy * wy + eps * eps));
      cnt++;
    }
  return tot / cnt;
}

describe('image losses match their formulas (double-precision references)', () => {
  test('masked MSE', () => {
    let s = 0,
      n = 0;
    for (let i = 0; i < F.length; i++)
      if (MASK[i]) {
        s += (F[i] - Wimg[i]) ** 2;
        n++;
      }
    expect(lossValue(maskedMse as never)).toBeCloseTo(s / n, 5);
  });
  test('NCC: 0 for a linear intensity map, 2 for an inverted one, formula otherwise', () => {
    expect(
      lossValue(
        nccLoss,
        F,
        Float32Array.from(F, (v) => 3 * v + 1),
      ),
    ).toBeCloseTo(0, 5);
    expect(
      lossValue(
        nccLoss,
        F,
        Float32Array.from(F, (v) => -v),
      ),
    ).toBeCloseTo(2, 5);
    expect(lossValue(nccLoss)).toBeCloseTo(refNcc(F, Wimg, MASK), 5);
  });
  test('LNCC (window 3 and 5)', () => {
    for (const k of [3, 5]) expect(lossValue((f, w, m) => lnccLoss(f, w, m, k))).toBeCloseTo(refLncc(F, Wimg, MASK, k), 4);
    expect(lossValue((f, w, m) => lnccLoss(f, w, m, 3), F, F)).toBeLessThan(1e-3);
    expect(() => lossValue((f, w, m) => lnccLoss(f, w, m, 4))).toThrow(/odd/);
  });
  test('MI (Parzen): formula; an image shares more information with itself than with noise', () => {
    expect(lossValue((f, w, m) => miLoss(f, w, m, 8, 1, [-1, 1]))).toBeCloseTo(refMi(F, Wimg, MASK, 8, 1, -1, 1), 4);
    const self = lossValue((f, w, m) => miLoss(f, w, m, 8, 1, [-1, 1]), F, F);
    const noise = lossValue((f, w, m) => miLoss(f, w, m, 8, 1, [-1, 1]), F, rand([H, W], 99));
    expect(self).toBeLessThan(noise - 0.1);
  });
  test('NGF: formula, default ε = mean |∇F|, and 1 where the moving image is flat', () => {
    const eps = tf.tidy(() => ngfEpsilon(tf.tensor2d(F, [H, W])));
    let s = 0;
    for (let i = 0; i < H - 1; i++) for (let j = 0; j < W - 1; j++) s += Math.abs(at(F, i, j + 1) - at(F, i, j)) + Math.abs(at(F, i + 1, j) - at(F, i, j));
    expect(eps).toBeCloseTo(s / ((H - 1) * (W - 1)), 5);
    expect(lossValue((f, w, m) => ngfLoss(f, w, m, 0.3))).toBeCloseTo(refNgf(F, Wimg, MASK, 0.3), 5);
    expect(lossValue((f, w, m) => ngfLoss(f, w, m, 0.3), F, new Float32Array(H * W))).toBeCloseTo(1, 6);
  });
  test('every loss has the same value and gradient on wasm and cpu', async () => {
    for (const name of LOSS_NAMES) {
      const { wasm, cpu } = await onBoth(() => {
        const f = tf.tensor2d(F, [H, W]);
        const m = tf.tensor2d(MASK, [H, W]);
        const fn = makeLoss(name, f, { window: 3, bins: 8 });
        const g = tf.valueAndGrad((w: tf.Tensor) => fn(f, w as tf.Tensor2D, m));
        const { value, grad } = g(tf.tensor2d(Wimg, [H, W]));
        return [value, grad];
      });
      expectClose(wasm, cpu, 1e-3);
      expect(wasm[1].every(Number.isFinite)).toBe(true);
    }
  });
});

// ---- regularisers ----
const u = rand([2, H, W], 5, -0.1, 0.1);
const ui = (c: number, i: number, j: number) => u[c * H * W + i * W + j];

describe('regularisers match their formulas', () => {
  const value = (fn: (t: tf.Tensor3D) => tf.Scalar, data = u) => tf.tidy(() => fn(tf.tensor3d(data, [2, H, W])).arraySync() as number);
  test('iso-TV (AirLab form, anisotropic weights) and diffusion', () => {
    const [sx, sy] = [1.5, 0.5];
    let tv = 0,
      diff = 0;
    for (let c = 0; c < 2; c++)
      for (let i = 0; i < H - 1; i++)
        for (let j = 0; j < W - 1; j++) {
          const v = (ui(c, i + 1, j + 1) - ui(c, i, j + 1)) ** 2 * sx + (ui(c, i + 1, j + 1) - ui(c, i + 1, j)) ** 2 * sy;
          tv += v > 0 ? Math.sqrt(v) : 0;
          diff += v;
        }
    expect(value((t) => isoTv(t, [sx, sy]))).toBeCloseTo(tv / (2 * H * W), 6);
    expect(value((t) => diffusion(t, [sx, sy]))).toBeCloseTo(diff / (2 * H * W), 7);
  });
  test('iso-TV of a constant field is 0 with a finite (zero) gradient', () => {
    const g = tf.tidy(() =>
      tf
        .grad((t: tf.Tensor) => isoTv(t as tf.Tensor3D))(tf.fill([2, H, W], 0.2))
        .dataSync(),
    );
    expect(Array.from(g).every((x) => x === 0)).toBe(true);
    expect(value(isoTv, new Float32Array(2 * H * W).fill(0.2))).toBe(0);
  });
  test('bending energy: 0 for an affine field, the known value for u_x = x²', () => {
    const affine = new Float32Array(2 * H * W);
    const quad = new Float32Array(2 * H * W);
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        affine[i * W + j] = 0.01 * j - 0.02 * i + 0.3;
        affine[H * W + i * W + j] = 0.03 * i * 0.5 + 0.01 * j;
        quad[i * W + j] = 0.01 * j * j; // u_xx = 0.02 everywhere
      }
    expect(value(bending, affine)).toBeCloseTo(0, 7);
    expect(value(bending, quad)).toBeCloseTo((0.02 ** 2 * (H - 2) * (W - 2)) / (2 * H * W), 8);
  });
  test('every regulariser has the same value and gradient on wasm and cpu', async () => {
    for (const name of REGULARISER_NAMES.filter((n) => n !== 'none')) {
      const { wasm, cpu } = await onBoth(() => {
        const { value: v, grad } = tf.valueAndGrad((t: tf.Tensor) => regulariser(name, t as tf.Tensor3D, [1, 2]))(tf.tensor3d(u, [2, H, W]));
        return [v, grad];
      });
      expectClose(wasm, cpu, 1e-4);
    }
  });
});

describe('AMSGrad', () => {
  test('matches a hand-computed step sequence, with v̂ keeping the largest second moment', () => {
    const lr = 0.1,
      b1 = 0.9,
      b2 = 0.999,
      eps = 1e-8;
    const x = tf.variable(tf.tensor1d([1, -2]), true, 'amsgrad-test-x');
    const opt = new AmsGrad({ learningRate: lr });
    const gs = [
      [4, -1],
      [0.1, 0.5],
      [-0.001, 0.01],
    ];
    // by hand: step 1 moves each coordinate by lr·g/(|g|+eps) = lr·sign(g)
    const m = [0, 0],
      v = [0, 0],
      vmax = [0, 0];
    const theta = [1, -2];
    gs.forEach((g, k) => {
      const t = k + 1;
      opt.apply([x], { [x.name]: tf.tensor1d(g) });
      for (let i = 0; i < 2; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2;
        vmax[i] = Math.max(vmax[i], v[i]);
        theta[i] -= ((lr / (1 - b1 ** t)) * m[i]) / (Math.sqrt(vmax[i]) / Math.sqrt(1 - b2 ** t) + eps);
      }
      if (t === 1) {
        expect(theta[0]).toBeCloseTo(1 - lr, 6);
        expect(theta[1]).toBeCloseTo(-2 + lr, 6);
      }
      const got = x.dataSync();
      expect(got[0]).toBeCloseTo(theta[0], 5);
      expect(got[1]).toBeCloseTo(theta[1], 5);
    });
    // the big first gradient dominates v̂ at step 3 (plain Adam would use the smaller v)
    expect(vmax[0]).toBeGreaterThan(v[0]);
    opt.dispose();
    x.dispose();
  });
  test('clipByGlobalNorm scales to the limit and reports the norm', async () => {
    const { grads, norm } = await clipByGlobalNorm({ a: tf.tensor1d([3, 0]), b: tf.tensor1d([4]) }, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(grads.a.dataSync())).toEqual([expect.closeTo(0.6, 6), 0]);
    expect(grads.b.dataSync()[0]).toBeCloseTo(0.8, 6);
  });
});

test('intensity normalisation: z-score clamped to ±2; a flat image becomes zeros', () => {
  const x = normaliseIntensity([0, 0, 0, 0, 10]);
  // mean 2, std 4: (0−2)/4 = −0.5, (10−2)/4 = 2
  expect(Array.from(x)).toEqual([-0.5, -0.5, -0.5, -0.5, 2]);
  expect(normaliseIntensity([0, 0, 0, 0, 0, 0, 0, 0, 0, 100])[9]).toBe(2); // (100−10)/30 = 3 → 2
  expect(Array.from(normaliseIntensity([3, 3]))).toEqual([0, 0]);
});
