import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/core/backend/index.js';
import { warpBilinear, warpSamples, maskedMse } from '../src/core/warp.js';
import { seededUniform } from './helpers.js';

const rand = seededUniform;

beforeAll(async () => {
  await initBackend('wasm');
});

const H = 12, W = 15;
const image = Float32Array.from(rand(H * W, 11, 0, 10));

describe('bilinear warp', () => {
  test('zero field is the identity, everything inside', () => {
    const u = tf.zeros([2, H, W]) as tf.Tensor3D;
    const { warped, mask } = warpBilinear(image, H, W, u);
    expect(Array.from(warped.dataSync())).toEqual(Array.from(image));
    expect(mask.dataSync().every((v) => v === 1)).toBe(true);
    tf.dispose([u, warped, mask]);
  });

  test('a shift of one pixel in x (2/(W−1) normalised) samples the right neighbour; the last column is outside', () => {
    const ux = 2 / (W - 1);
    const data = new Float32Array(2 * H * W);
    data.fill(ux, 0, H * W);
    const u = tf.tensor3d(data, [2, H, W]);
    const { warped, mask } = warpBilinear(image, H, W, u);
    const w = warped.dataSync();
    const m = mask.dataSync();
    for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
      if (j < W - 1) { expect(w[i * W + j]).toBeCloseTo(image[i * W + j + 1], 4); expect(m[i * W + j]).toBe(1); }
      else { expect(w[i * W + j]).toBe(0); expect(m[i * W + j]).toBe(0); }
    }
    tf.dispose([u, warped, mask]);
  });

  test('gradient w.r.t. the field equals central finite differences (double precision)', () => {
    const ud = rand(2 * H * W, 5, -0.08, 0.08); // up to ±0.6 px
    const weights = rand(H * W, 9);
    const loss = (v: ArrayLike<number>) => {
      const s = warpSamples(image, H, W, v, true);
      let acc = 0;
      for (let p = 0; p < H * W; p++) acc += weights[p] * s.out[p];
      return acc;
    };
    const u = tf.tensor3d(Float32Array.from(ud), [2, H, W]);
    const wT = tf.tensor2d(Float32Array.from(weights), [H, W]);
    const [g] = tf.grads((x: tf.Tensor) => {
      const { warped, mask } = warpBilinear(image, H, W, x as tf.Tensor3D);
      mask.dispose();
      return tf.sum(tf.mul(warped, wT));
    })([u]);
    const ga = g.dataSync();
    const eps = 1e-7;
    let checked = 0;
    for (let k = 0; k < 2 * H * W; k += 7) {
      const up = Float64Array.from(ud); up[k] += eps;
      const dn = Float64Array.from(ud); dn[k] -= eps;
      const fd = (loss(up) - loss(dn)) / (2 * eps);
      expect(Math.abs(ga[k] - fd)).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
    tf.dispose([u, wT, g]);
  });

  test('masked MSE leaves out samples outside the image', () => {
    const F = tf.tensor2d([[1, 2], [3, 4]]);
    const Wp = tf.tensor2d([[1, 0], [5, 4]]);
    const M = tf.tensor2d([[1, 0], [1, 1]]);
    expect(maskedMse(F, Wp, M).dataSync()[0]).toBeCloseTo(4 / 3, 6); // (0 + 4 + 0) / 3
    expect(maskedMse(F, Wp, tf.zerosLike(M)).dataSync()[0]).toBe(0);
    tf.dispose([F, Wp, M]);
  });
});
