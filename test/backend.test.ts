import * as tf from '@tensorflow/tfjs-core';
import { initBackend, smokeTest } from '../src/backend/index.js';
import { stopGradient } from '../src/core/tensors.js';
import { rand, onBoth, expectClose, smoothPair } from './tf-helpers.js';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, TFJS_NODE_BUILT } from './helpers.js';
import { parseThreads } from '../src/commands/common.js';
import { UserError } from '../src/errors.js';
import { activeCompute, computeFor } from '../src/backend/compute.js';
import { DEFAULT_COMPUTE, tanh } from '../src/core/tensors.js';
import { registerBspline, BSPLINE_DEFAULTS } from '../src/bspline/register.js';
import { identityGeometry } from '../src/core/image/geometry.js';

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
  // where tfjs-node is built (scripts/tfjs-node-offline.sh) the tensorflow backend is available: nothing to refuse
  (TFJS_NODE_BUILT ? test.skip : test)('an unavailable explicit backend is an error with the reason (skipped where tfjs-node is built)', async () => {
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
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad))),
      );
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
      const idx = tf.tensor2d(
        [
          [0, 1],
          [3, 4],
          [0, 1],
          [2, 2],
        ],
        [4, 2],
        'int32',
      );
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

describe('wasm threads', () => {
  // Each case runs in its own process: the threaded build is chosen when the backend first
  // initialises, once per process, and a hung pthread pool would show as a timeout.
  const probe = `
    import * as tf from '@tensorflow/tfjs-core';
    import { createHash } from 'node:crypto';
    import { initBackend } from './dist/backend/index.js';
    const info = await initBackend('wasm', { threads: Number(process.argv[1]) });
    const x = tf.randomUniform([4, 24, 24, 8], -1, 1, 'float32', 1);
    const k = tf.randomUniform([3, 3, 8, 16], -1, 1, 'float32', 2);
    const a = tf.randomUniform([96, 200], -1, 1, 'float32', 3);
    const [gx, gk] = tf.grads((p, q) => tf.sum(tf.square(tf.conv2d(p, q, 2, 'same'))))([x, k]);
    const h = createHash('sha256');
    for (const t of [tf.conv2d(x, k, 1, 'same'), tf.matMul(a, a, false, true), gx, gk]) h.update(Buffer.from(t.dataSync().buffer));
    console.log(JSON.stringify({ threads: info.threads, skipped: info.skipped.map((s) => s.provider + ': ' + s.reason), hash: h.digest('hex') }));
  `;
  const run = (threads: number, env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe, String(threads)], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      timeout: 60_000,
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    return JSON.parse(r.stdout.trim().split('\n').pop() as string) as { threads: number; skipped: string[]; hash: string };
  };
  test('2 threads give bit-identical results to 1, and the process exits by itself', () => {
    const one = run(1);
    const two = run(2);
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(two.skipped).toEqual([]);
    expect(two.hash).toBe(one.hash);
  });
  test('when the threaded build cannot start, the backend falls back to 1 thread and says why', () => {
    const r = run(2, { TMPDIR: path.join(ROOT, 'no-such-dir-for-r2n2-test') });
    expect(r.threads).toBe(1);
    expect(r.skipped).toEqual([expect.stringMatching(/^@tensorflow\/tfjs-backend-wasm \(2 threads\): ENOENT/)]);
    expect(r.hash).toBe(run(1).hash);
  });
  test('--threads takes auto or 1–8, anything else is a one-line error', () => {
    expect(parseThreads('3')).toBe(3);
    expect(parseThreads('auto')).toBeGreaterThanOrEqual(1);
    expect(parseThreads('auto')).toBeLessThanOrEqual(4);
    for (const bad of ['0', '9', '1.5', 'two']) expect(() => parseThreads(bad)).toThrow(UserError);
    expect(() => parseThreads('0')).toThrow(/--threads must be auto or an integer from 1 to 8, got "0"/);
  });
});

describe('how the ops run: the Compute choice is made once from the backend and passed in', () => {
  test('computeFor maps each backend; the default is the wasm choice', async () => {
    expect(computeFor('wasm')).toEqual({ hostOps: true, tanhViaSigmoid: true });
    expect(computeFor('cpu')).toEqual({ hostOps: true, tanhViaSigmoid: false });
    expect(computeFor('webgpu')).toEqual({ hostOps: false, tanhViaSigmoid: false });
    expect(computeFor('tensorflow')).toEqual({ hostOps: false, tanhViaSigmoid: false });
    expect(DEFAULT_COMPUTE).toEqual(computeFor('wasm'));
    expect(activeCompute()).toEqual(computeFor(tf.getBackend()));
  });
  test('tanh through sigmoid equals the kernel within 2e-7', () => {
    const x = tf.linspace(-6, 6, 1001);
    const a = tanh(x, true).dataSync();
    const b = tanh(x, false).dataSync();
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst).toBeLessThan(2e-7);
    tf.dispose(x);
  });
  test('the B-spline with host ops and with tensor ops only: the same registration (affine stage included)', () => {
    const n = 48;
    const { fixed, moving } = smoothPair(n);
    const o = { ...BSPLINE_DEFAULTS, iterations: [15, 10, 5], initIterations: [5, 5, 5] };
    const g = identityGeometry(n, n);
    const host = registerBspline(fixed, moving, n, n, { ...o, compute: { hostOps: true, tanhViaSigmoid: true } }, g);
    const tensor = registerBspline(fixed, moving, n, n, { ...o, compute: { hostOps: false, tanhViaSigmoid: false } }, g);
    let worst = 0;
    for (let i = 0; i < host.field.length; i++) worst = Math.max(worst, Math.abs(host.field[i] - tensor.field[i]));
    // normalised units: 2/(n − 1) per pixel; float32 sums in another order
    expect(worst * ((n - 1) / 2)).toBeLessThan(1e-3);
    expect(Math.abs(host.finalLoss - tensor.finalLoss)).toBeLessThan(1e-4 * Math.max(1e-3, host.finalLoss));
  });
});
