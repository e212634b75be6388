/** Helpers for tests that compare tfjs computations across backends. */
import * as tf from '@tensorflow/tfjs-core';
import { seededUniform } from './helpers.js';

export function rand(shape: number[], seed: number, lo = -1, hi = 1): Float32Array<ArrayBuffer> {
  return Float32Array.from(
    seededUniform(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
  );
}

/** Runs `fn` on wasm and on cpu; returns the outputs of both as plain arrays. */
export async function onBoth(fn: () => tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const run = () =>
    tf.tidy(fn).map((t) => {
      const d = t.dataSync() as Float32Array;
      t.dispose();
      return Float32Array.from(d);
    });
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
    let scale = 1e-6,
      err = 0;
    for (let i = 0; i < x.length; i++) {
      scale = Math.max(scale, Math.abs(b[k][i]));
      err = Math.max(err, Math.abs(x[i] - b[k][i]));
    }
    expect(err / scale).toBeLessThan(tol);
  });
}

/** A smooth test image and a smoothly deformed copy with a known displacement. */
export function smoothPair(n: number) {
  const img = (x: number, y: number) => Math.sin(x / 5) * Math.cos(y / 7) + 0.5 * Math.exp(-((x - n / 2) ** 2 + (y - n / 3) ** 2) / (2 * (n / 6) ** 2));
  const fixed = new Float32Array(n * n);
  const moving = new Float32Array(n * n);
  const shift = (x: number, y: number): [number, number] => [2.5 * Math.sin((Math.PI * y) / n), 2 * Math.cos((Math.PI * x) / n)];
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const [dx, dy] = shift(j, i);
      fixed[i * n + j] = img(j + dx, i + dy); // F(p) = M(p + d(p)) with M = img: the true u is d
      moving[i * n + j] = img(j, i);
    }
  return { fixed, moving, shift };
}
