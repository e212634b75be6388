import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/index.js';
import { warpBilinear, warpBilinearBatch, warpSamples, maskedMse, maskedMseBatch } from '../src/core/transformation/warp.js';
import { isoTv } from '../src/core/regulariser/regularisers.js';
import { seededUniform } from './helpers.js';

const rand = seededUniform;

beforeAll(async () => {
  await initBackend('wasm');
});

const H = 12,
  W = 15;
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
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        if (j < W - 1) {
          expect(w[i * W + j]).toBeCloseTo(image[i * W + j + 1], 4);
          expect(m[i * W + j]).toBe(1);
        } else {
          expect(w[i * W + j]).toBe(0);
          expect(m[i * W + j]).toBe(0);
        }
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
      const up = Float64Array.from(ud);
      up[k] += eps;
      const dn = Float64Array.from(ud);
      dn[k] -= eps;
      const fd = (loss(up) - loss(dn)) / (2 * eps);
      expect(Math.abs(ga[k] - fd)).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
      checked++;
    }
    expect(checked).toBeGreaterThan(40);
    tf.dispose([u, wT, g]);
  });

  test('masked MSE leaves out samples outside the image', () => {
    const F = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const Wp = tf.tensor2d([
      [1, 0],
      [5, 4],
    ]);
    const M = tf.tensor2d([
      [1, 0],
      [1, 1],
    ]);
    expect(maskedMse(F, Wp, M).dataSync()[0]).toBeCloseTo(4 / 3, 6); // (0 + 4 + 0) / 3
    expect(maskedMse(F, Wp, tf.zerosLike(M)).dataSync()[0]).toBe(0);
    tf.dispose([F, Wp, M]);
  });

  test('the tensor-only batch warp (GPU backends) equals the host warp: values, mask and gradient, NaN and outside samples included', () => {
    const B = 3;
    const images = [image, Float32Array.from(rand(H * W, 12, -5, 5)), Float32Array.from(rand(H * W, 13, 0, 1))];
    // up to ±4 px: many samples fall outside; one NaN and one exactly on the last pixel centre
    const ud = Float32Array.from(rand(B * 2 * H * W, 6, -0.6, 0.6));
    ud[17] = NaN;
    ud[H * W + 4] = 0;
    ud[4] = (2 * (W - 1 - 4)) / (W - 1); // (row 0, col 4) → x = W − 1
    const weights = tf.tensor3d(Float32Array.from(rand(B * H * W, 14)), [B, H, W]);
    const u = tf.tensor4d(ud, [B, 2, H, W]);
    const host = tf.grads((x: tf.Tensor) => {
      const parts = images.map((img, b) => {
        const { warped, mask } = warpBilinear(img, H, W, tf.reshape(tf.slice(x, [b, 0, 0, 0], [1, 2, H, W]), [2, H, W]) as tf.Tensor3D);
        mask.dispose();
        return warped;
      });
      return tf.sum(tf.mul(tf.stack(parts), weights));
    })([u])[0];
    const dev = tf.grads((x: tf.Tensor) => {
      const { warped, mask } = warpBilinearBatch(tf.tensor3d(Float32Array.from(images.flatMap((i) => Array.from(i))), [B, H, W]), x as tf.Tensor4D);
      mask.dispose();
      return tf.sum(tf.mul(warped, weights));
    })([u])[0];
    const hv = tf.tidy(() =>
      images.map((img, b) => {
        const r = warpBilinear(img, H, W, tf.reshape(tf.slice(u, [b, 0, 0, 0], [1, 2, H, W]), [2, H, W]) as tf.Tensor3D);
        return [Array.from(r.warped.dataSync()), Array.from(r.mask.dataSync())];
      }),
    );
    const Mt = tf.tensor3d(Float32Array.from(images.flatMap((i) => Array.from(i))), [B, H, W]);
    const r = warpBilinearBatch(Mt, u);
    const dw = r.warped.dataSync();
    const dm = r.mask.dataSync();
    let outside = 0;
    for (let b = 0; b < B; b++)
      for (let p = 0; p < H * W; p++) {
        expect(dm[b * H * W + p]).toBe(hv[b][1][p]);
        expect(Math.abs(dw[b * H * W + p] - hv[b][0][p])).toBeLessThan(1e-4);
        if (hv[b][1][p] === 0) outside++;
      }
    expect(outside).toBeGreaterThan(50);
    expect(hv[0][1][17]).toBe(0);
    expect(hv[0][1][4]).toBe(1);
    const gh = host.dataSync();
    const gd = dev.dataSync();
    expect(gd.length).toBe(gh.length);
    for (let k = 0; k < gh.length; k++) expect(Math.abs(gd[k] - gh[k])).toBeLessThan(1e-3 * Math.max(1, Math.abs(gh[k])));
    tf.dispose([weights, u, host, dev, Mt, r.warped, r.mask]);
  });

  test('batched masked MSE and iso-TV are the means of the per-item values', () => {
    const B = 3;
    const F = tf.tensor3d(Float32Array.from(rand(B * H * W, 21)), [B, H, W]);
    const Wp = tf.tensor3d(Float32Array.from(rand(B * H * W, 22)), [B, H, W]);
    const m = Float32Array.from(rand(B * H * W, 23), (v) => (v > 0.3 ? 1 : 0));
    m.fill(0, 2 * H * W); // an empty mask counts as 0
    const M = tf.tensor3d(m, [B, H, W]);
    const u = tf.tensor4d(Float32Array.from(rand(B * 2 * H * W, 24, -0.1, 0.1)), [B, 2, H, W]);
    const got = tf.tidy(() => [maskedMseBatch(F, Wp, M).dataSync()[0], isoTv(tf.reshape(u, [2 * B, H, W]) as tf.Tensor3D).dataSync()[0]]);
    const want = tf.tidy(() => {
      const it = <T extends tf.Tensor>(x: tf.Tensor, b: number) => tf.squeeze(tf.slice(x, [b], [1]), [0]) as T;
      let mse = 0;
      let tv = 0;
      for (let b = 0; b < B; b++) {
        mse += maskedMse(it(F, b), it(Wp, b), it(M, b)).dataSync()[0] / B;
        tv += isoTv(it<tf.Tensor3D>(u, b)).dataSync()[0] / B;
      }
      return [mse, tv];
    });
    expect(got[0]).toBeCloseTo(want[0], 5);
    expect(got[1]).toBeCloseTo(want[1], 5);
    expect(want[0]).toBeGreaterThan(0);
    tf.dispose([F, Wp, M, u]);
  });
});
