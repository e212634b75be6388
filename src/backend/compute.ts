/**
 * How the compute code runs on the active backend: the one place that maps backend names to what
 * it needs to know (core/tensors.ts `Compute`). On wasm and cpu a tensor is a typed array in host
 * memory (the wasm heap or a plain array), so an op computed in plain JS over the data (the
 * B-spline's and the affine stage's fused objectives, the R2N2 re-warp) beats a chain of small
 * tensor ops; on tensorflow and webgpu the data lives on a device and reading it back costs a
 * round trip. wasm's Tanh kernel is slow: tanh runs as 2·sigmoid(2x) − 1 there.
 * app/ asks once and passes the answer in; no op asks which backend runs it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Compute } from '../core/tensors.js';

const HOST_MEMORY_BACKENDS = ['wasm', 'cpu'];

/** The Compute choice of a backend, by its name (tf.getBackend()). */
export function computeFor(backend: string): Compute {
  return { hostOps: HOST_MEMORY_BACKENDS.includes(backend), tanhViaSigmoid: backend === 'wasm' };
}

/** The Compute choice of the active backend. */
export function activeCompute(): Compute {
  return computeFor(tf.getBackend());
}
