/**
 * The mismatch as input (`train --input-gradient`): the two channels (W − F)·∂W/∂x, (W − F)·∂W/∂y,
 * a model without them expanded with zero weights computes what it computed, and the CLI wiring.
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { type R2N2Config, addGradientChannels, expandInputKernel, initWeights, disposeWeights, weightShapes } from '../src/core/r2n2/network.js';
import { inferSequence, mismatchGradient } from '../src/core/r2n2/sequence.js';
import { runCliHere, seededUniform, tmpDir } from './helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});
let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir('r2n2-grad-');
});
afterAll(() => t.cleanup());

const TINY: R2N2Config = { netSize: 32, channels: [4, 4, 4], paramChannels: 4, residualBlocks: 1, hidden: 8, sigmaMax: 0.25, activation: 'leaky-relu' };

test('the mismatch gradient of a ramp: (W − F)·slope inside, one-sided halves at the border', () => {
  const [H, W] = [5, 6];
  // W(i, j) = 2j + 3i, F = 1
  const w = tf.tensor3d(
    Array.from({ length: H * W }, (_, k) => 2 * (k % W) + 3 * Math.floor(k / W)),
    [1, H, W],
  );
  const f = tf.fill([1, H, W], 1) as tf.Tensor3D;
  const g = mismatchGradient(f, w).arraySync()[0];
  const d = (i: number, j: number) => 2 * j + 3 * i - 1;
  expect(g[2][3][0]).toBeCloseTo(d(2, 3) * 2, 5);
  expect(g[2][3][1]).toBeCloseTo(d(2, 3) * 3, 5);
  // at the border the replicated edge halves the difference
  expect(g[2][0][0]).toBeCloseTo(d(2, 0) * 1, 5);
  expect(g[0][3][1]).toBeCloseTo(d(0, 3) * 1.5, 5);
  // no mismatch, no gradient
  expect(
    mismatchGradient(w, w)
      .arraySync()[0]
      .flat(2)
      .every((v) => v === 0),
  ).toBe(true);
  tf.dispose([w, f]);
});

test.each([[1], [2]])('input block %i: a model expanded with zero gradient weights registers exactly as before', async (b) => {
  const c: R2N2Config = { ...TINY, ...(b > 1 ? { inputBlock: b } : {}) };
  const w = initWeights(c, 4);
  // a non-zero last layer, so that the network moves something
  const fc2 = w.get('param/fc2/kernel') as tf.Variable;
  fc2.assign(tf.tensor(Float32Array.from(seededUniform(fc2.size, 9, -0.3, 0.3)), fc2.shape));
  const g: R2N2Config = { ...c, inputGradient: true };
  const wg = new Map([...w].map(([k, v]) => [k, tf.variable(k === 'input/kernel' ? addGradientChannels(v as unknown as tf.Tensor4D, b) : tf.clone(v))]));
  expect(weightShapes(g).map(([k, s]) => [k, s])).toEqual([...wg].map(([k, v]) => [k, v.shape]));
  const n = 32 * b;
  const F = Float32Array.from(seededUniform(n * n, 1, -1, 1));
  const M = Float32Array.from(seededUniform(n * n, 2, -1, 1));
  const [p] = await inferSequence(c, w, [F], [M], { steps: 3 });
  const [q] = await inferSequence(g, wg, [F], [M], { steps: 3 });
  expect(p.length).toBe(21);
  expect(Math.max(...p.map(Math.abs))).toBeGreaterThan(1e-4);
  q.forEach((v, k) => expect(v).toBeCloseTo(p[k], 5));
  // with weights on the new channels it does something else
  const k0 = wg.get('input/kernel') as tf.Variable;
  k0.assign(tf.tensor(Float32Array.from(seededUniform(k0.size, 3, -0.2, 0.2)), k0.shape));
  const [r] = await inferSequence(g, wg, [F], [M], { steps: 3 });
  expect(Math.max(...r.map((v, k) => Math.abs(v - p[k])))).toBeGreaterThan(1e-4);
  disposeWeights(w);
  disposeWeights(wg);
  // the block expansion and the gradient expansion compose (block first)
  const k1 = tf.tensor4d(Float32Array.from(seededUniform(7 * 7 * 4 * 3, 5)), [7, 7, 4, 3]);
  const both = addGradientChannels(expandInputKernel(k1, 2), 2);
  expect(both.shape).toEqual([7, 7, 24, 3]);
  tf.dispose([k1, both]);
});

test('train --input-gradient: recorded, from a model without it, and refused the other way', async () => {
  const data = path.join(t.dir, 'ph');
  expect((await runCliHere(['phantom', '--out', data, '--series', '1', '--frames', '4', '--size', '48', '--seed', '2'])).code).toBe(0);
  const s1 = path.join(data, 'series-01', 'frames');
  const tiny = ['--steps', '2', '--quiet', '--iterations', '2'];
  const arch = ['--net-size', '32', '--channels', '4', '4', '4', '--param-channels', '4', '--hidden', '8'];
  const base = path.join(t.dir, 'base');
  expect((await runCliHere(['train', s1, '--out', base, ...arch, ...tiny])).code).toBe(0);
  const grad = path.join(t.dir, 'grad');
  const r = await runCliHere(['train', s1, '--out', grad, '--from', base, '--input-gradient', ...tiny]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(await fs.readFile(path.join(grad, 'model.json'), 'utf8')).config.inputGradient).toBe(true);
  // it registers a series
  const reg = await runCliHere(['register', 'series', s1, '--model', grad, '--out', path.join(t.dir, 'res'), '--no-qc', '--quiet']);
  expect(reg.code).toBe(0);
  const back = await runCliHere(['train', s1, '--out', path.join(t.dir, 'back'), '--from', grad, '--no-input-gradient', ...tiny]);
  expect(back.code).toBe(1);
  expect(back.stderr).toMatch(/takes the mismatch gradient as input; add --input-gradient/);
});
