/** Helpers for tests that compare tfjs computations across backends. */
import * as tf from '@tensorflow/tfjs-core';
import { seededUniform } from './helpers.js';

export function rand(shape: number[], seed: number, lo = -1, hi = 1): Float32Array<ArrayBuffer> {
  return Float32Array.from(seededUniform(shape.reduce((a, b) => a * b, 1), seed, lo, hi));
}

/** Runs `fn` on wasm and on cpu; returns the outputs of both as plain arrays. */
export async function onBoth(fn: () => tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const run = () => tf.tidy(fn).map((t) => { const d = t.dataSync() as Float32Array; t.dispose(); return Float32Array.from(d); });
  await tf.setBackend('wasm');
  const wasm = run();
  await tf.setBackend('cpu');
  const cpu = run();
  await tf.setBackend('wasm');
  return { wasm, cpu };
}

export function expectClose(a: Float32Array[], b: Float32Array[], tol = 2e-4) {
  expect(a.length).toBe(b.length);
  a.forEach((x, k) => {
    expect(x.length).toBe(b[k].length);
    let scale = 1e-6, err = 0;
    for (let i = 0; i < x.length; i++) { scale = Math.max(scale, Math.abs(b[k][i])); err = Math.max(err, Math.abs(x[i] - b[k][i])); }
    expect(err / scale).toBeLessThan(tol);
  });
}

