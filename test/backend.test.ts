import * as tf from '@tensorflow/tfjs-core';
import { initBackend, smokeTest } from '../src/core/backend/index.js';
import { stopGradient } from '../src/core/backend/wasm-kernels.js';
import { rand, onBoth, expectClose } from './tf-helpers.js';

beforeAll(async () => {
  const info = await initBackend('wasm');
  expect(info.name).toBe('wasm');
});

describe('backend selection', () => {
  test('auto takes the best available backend and says why others were skipped', async () => {
    const info = await initBackend('auto');
    expect(['tensorflow', 'wasm']).toContain(info.name);
    if (info.name === 'wasm') {
      expect(info.skipped.map((s) => s.provider)).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
      expect(info.simd).toBe(true);
    }
    await expect(smokeTest()).resolves.toBeUndefined();
  });
  test('cpu works, with a warning', async () => {
    const info = await initBackend('cpu');
    expect(info.name).toBe('cpu');
    expect(info.warning).toMatch(/slower/);
    await initBackend('wasm');
  });
  test('an unavailable explicit backend is an error with the reason', async () => {
    let hasNode = true;
    try { await import('@tensorflow/tfjs-node' as string); } catch { hasNode = false; }
    if (hasNode) return;
    await expect(initBackend('tensorflow')).rejects.toThrow(/backend "tensorflow" is not available .*tfjs-node/);
    expect(tf.getBackend()).toBe('wasm');
  });
});

describe('wasm gradient kernels equal the cpu backend', () => {
  test.each([
    ['stride 1 same', 1, 'same', [2, 9, 8, 3], [3, 3, 3, 4]],
    ['stride 2 valid', 2, 'valid', [1, 11, 10, 2], [3, 3, 2, 5]],
    ['stride 2 same 7x7', 2, 'same', [1, 16, 16, 4], [7, 7, 4, 8]],
    ['1x1', 1, 'valid', [1, 5, 5, 6], [1, 1, 6, 2]],
  ] as const)('conv2d filter and input gradients: %s', async (_n, stride, pad, xs, ws) => {
    const r = await onBoth(() => {
      const x = tf.tensor(rand([...xs], 1), [...xs]) as tf.Tensor4D;
      const w = tf.tensor(rand([...ws], 2), [...ws]) as tf.Tensor4D;
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad))));
      return g([x, w]);
    });
    expectClose(r.wasm, r.cpu);
  });
  test('conv2dTranspose gradients', async () => {
    const r = await onBoth(() => {
      const x = tf.tensor(rand([1, 5, 6, 3], 3), [1, 5, 6, 3]) as tf.Tensor4D;
      const w = tf.tensor(rand([4, 4, 2, 3], 4), [4, 4, 2, 3]) as tf.Tensor4D;
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [1, 10, 12, 2], 2, 'same'))));
      return g([x, w]);
    });
    expectClose(r.wasm, r.cpu);
  });
  test('depthwise conv2d gradients (cpu bridge)', async () => {
    const r = await onBoth(() => {
      const x = tf.tensor(rand([1, 7, 7, 3], 5), [1, 7, 7, 3]) as tf.Tensor4D;
      const w = tf.tensor(rand([3, 3, 3, 2], 6), [3, 3, 3, 2]) as tf.Tensor4D;
      return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))))([x, w]);
    });
    expectClose(r.wasm, r.cpu);
  });
  test('gather gradient sums duplicate indices (UnsortedSegmentSum via scatterND)', async () => {
    const r = await onBoth(() => {
      const p = tf.tensor(rand([6, 3], 7), [6, 3]);
      const idx = tf.tensor1d([0, 2, 2, 5, 0, 0], 'int32');
      return tf.grads((a: tf.Tensor) => tf.sum(tf.square(tf.gather(a, idx))))([p]);
    });
    expectClose(r.wasm, r.cpu);
  });
  test('gatherND gradient (registered by us)', async () => {
    const r = await onBoth(() => {
      const p = tf.tensor(rand([4, 5], 8), [4, 5]);
      const idx = tf.tensor2d([[0, 1], [3, 4], [0, 1], [2, 2]], [4, 2], 'int32');
      return tf.grads((a: tf.Tensor) => tf.sum(tf.mul(tf.gatherND(a, idx), tf.tensor1d([1, 2, 3, 4]))))([p]);
    });
    expectClose(r.wasm, r.cpu);
    // by hand: p[0,1] collects 1 + 3, p[3,4] 2, p[2,2] 4
    const g = r.wasm[0];
    expect([g[1], g[19], g[12]]).toEqual([4, 2, 4]);
  });
  test('max-pool gradient keeps windows whose values are all negative', async () => {
    const r = await onBoth(() => {
      const x = tf.tensor(rand([1, 6, 6, 2], 9, -3, -1), [1, 6, 6, 2]) as tf.Tensor4D;
      return tf.grads((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid')))([x]);
    });
    expectClose(r.wasm, r.cpu);
    expect(r.wasm[0].reduce((a, b) => a + b, 0)).toBe(18);
  });
  test('stopGradient cuts the tape', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const [g] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(a, stopGradient(a))))([x]);
    expect(Array.from(g.dataSync())).toEqual([1, 2, 3]); // d/da (a·c) = c, not 2a
  });
  test('a long loop keeps the tensor count flat', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) {
      tf.tidy(() => {
        const x = tf.tensor(rand([1, 8, 8, 2], i), [1, 8, 8, 2]) as tf.Tensor4D;
        const w = tf.tensor(rand([3, 3, 2, 2], i + 1), [3, 3, 2, 2]) as tf.Tensor4D;
        return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))))([x, w]);
      }).forEach((t) => t.dispose());
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
