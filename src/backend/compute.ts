/**
 * Where the active backend keeps its tensors: the one place that maps backend names to what the
 * compute code needs to know. On wasm and cpu a tensor is a typed array in host memory (the wasm
 * heap or a plain array), so an op computed in plain JS over the data (the B-spline's and the
 * affine stage's fused objectives, the R2N2 re-warp) beats a chain of small tensor ops; on
 * tensorflow and webgpu the data lives on a device and reading it back costs a round trip.
 */
import * as tf from '@tensorflow/tfjs-core';

export const HOST_MEMORY_BACKENDS = ['wasm', 'cpu'];

/** Whether the active backend keeps its tensors in host memory. */
export function tensorsInHostMemory(): boolean {
  return HOST_MEMORY_BACKENDS.includes(tf.getBackend());
}
