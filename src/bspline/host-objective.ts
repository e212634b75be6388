/**
 * One B-spline level's whole objective, `MSE(F, M∘(prev + B(P))) + λ·isoTV(B(P))`, as a single
 * tfjs op on the parameters `P` `[2, cpH, cpW]` with its analytic gradient, computed in plain JS
 * (docs/backends.md): for backends whose tensors live in host memory (wasm, cpu). It chains the
 * same array functions the separate host ops use (`bsplineFieldArrays`, `warpMseArrays`,
 * `isoTvArrays` and their gradients), so it equals their composition to float rounding (tested),
 * without the intermediate `[2, H, W]` tensors, their copies and the tape between them, and with
 * its `[H, W]`-sized buffers allocated once per level instead of once per iteration.
 */
import * as tf from '@tensorflow/tfjs-core';
import { bsplineFieldArrays, bsplineFieldGradArrays, type SparseBasis } from './kernel.js';
import { type WarpSamples, warpMseArrays } from '../core/transformation/warp.js';
import { isoTvArrays, isoTvGradArrays } from '../core/regulariser/regularisers.js';

export interface HostObjectiveData {
  /** The level's sparse bases (kernel.ts `sparseGrid`). */
  sparse: { y: SparseBasis; x: SparseBasis };
  /** The moving and fixed images `[h, w]` of the level. */
  moving: ArrayLike<number>;
  fixed: ArrayLike<number>;
  /** The field of the global stage and the coarser levels `[2, h, w]` (normalised), or null. */
  prev: ArrayLike<number> | null;
  /** Per-pixel weight of the similarity (a fixed mask), or null. */
  weight?: ArrayLike<number> | null;
  /** λ of the isotropic TV of this level's field; 0 = none. */
  lambda: number;
  /** The TV's spacing weights `[sx, sy]`. */
  spacing: [number, number];
}

/**
 * The objective of one level as a function of `P`, differentiable w.r.t. `P`. The returned
 * function reuses its buffers: each call's gradient must be taken (or the call's result
 * disposed) before the next call, as an optimisation loop does.
 */
export function bsplineObjectiveHost(d: HostObjectiveData): (P: tf.Tensor3D) => tf.Scalar {
  const h = d.sparse.y.n;
  const w = d.sparse.x.n;
  const N = h * w;
  const cpH = d.sparse.y.cp;
  const cpW = d.sparse.x.cp;
  if (d.moving.length !== N || d.fixed.length !== N || (d.prev && d.prev.length !== 2 * N) || (d.weight && d.weight.length !== N))
    throw new Error(`internal: the level's arrays do not hold ${h}×${w} values`);
  const prev = d.prev;
  const b = new Float32Array(2 * N);
  const u = prev ? new Float32Array(2 * N) : b;
  const G = new Float32Array(2 * N);
  const samples: WarpSamples = { out: new Float32Array(N), dx: new Float32Array(N), dy: new Float32Array(N), mask: new Float32Array(N) };
  const op = tf.customGrad(((x: tf.Tensor) => {
    bsplineFieldArrays(x.dataSync(), d.sparse, b);
    if (prev) for (let k = 0; k < 2 * N; k++) u[k] = prev[k] + b[k];
    const sim = warpMseArrays(d.moving, d.fixed, h, w, u, d.weight, samples);
    // float32 at each step, as the separate ops' scalars
    let value = Math.fround(sim.value);
    if (d.lambda > 0) value = Math.fround(value + Math.fround(Math.fround(isoTvArrays(b, 2, h, w, d.spacing)) * Math.fround(d.lambda)));
    return {
      value: tf.scalar(value),
      gradFunc: (dy: tf.Tensor) => {
        const scale = dy.dataSync()[0];
        G.fill(0);
        sim.gradInto(scale, G);
        if (d.lambda > 0) isoTvGradArrays(b, 2, h, w, d.spacing, scale * d.lambda, G);
        return tf.tensor3d(bsplineFieldGradArrays(G, d.sparse), [2, cpH, cpW]);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (P) => {
    if (P.shape[0] !== 2 || P.shape[1] !== cpH || P.shape[2] !== cpW) throw new Error(`parameters ${P.shape} are not [2, ${cpH}, ${cpW}]`);
    return op(P) as tf.Scalar;
  };
}
