/**
 * Small tensor helpers that every backend can run.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Most inputs one `addN` call takes. WebGPU binds every input as a storage buffer and its
 * default limit is 8 per shader stage (one is the output): tfjs's webgpu `AddN` with more
 * inputs fails validation ("number of storage buffers (59) … exceeds the maximum (8)").
 */
export const ADDN_MAX_INPUTS = 7;

/** Σ of same-shape tensors, as `addN` over groups of at most `ADDN_MAX_INPUTS` (equal to one `addN` where that is ≤ 7 inputs). */
export function sumTensors<T extends tf.Tensor>(ts: T[]): T {
  if (ts.length === 0) throw new Error('sumTensors needs at least one tensor');
  if (ts.length === 1) return ts[0];
  if (ts.length <= ADDN_MAX_INPUTS) return tf.addN(ts) as T;
  const parts: T[] = [];
  for (let i = 0; i < ts.length; i += ADDN_MAX_INPUTS) parts.push(sumTensors(ts.slice(i, i + ADDN_MAX_INPUTS)));
  return sumTensors(parts);
}

/**
 * How the compute code runs on the active backend. The backend layer (src/backend/compute.ts)
 * chooses it once from the backend's name and app/ passes it in: no op asks which backend runs it.
 */
export interface Compute {
  /**
   * Plain-JS ops over the tensors' data, each with its analytic gradient (the B-spline's and the
   * affine stage's fused objectives, the R2N2 re-warp): fastest where tensors live in host memory
   * (wasm, cpu). false: tensor ops only, no read-back (GPU backends). Correct either way.
   */
  hostOps: boolean;
  /**
   * tanh as 2·sigmoid(2x) − 1: wasm's Tanh kernel is ≈6× slower than its Sigmoid (measured on
   * [8, 32, 32, 16]: 2.1 ms against 0.3 ms for the three kernels); the two differ by ≤ 2e-7.
   * false: the backend's own tanh (one kernel, which GPUs prefer).
   */
  tanhViaSigmoid: boolean;
}

/** The choice for the default backend (wasm), used where a caller passes none. */
export const DEFAULT_COMPUTE: Compute = { hostOps: true, tanhViaSigmoid: true };

/** tanh, as the backend's kernel or as 2·sigmoid(2x) − 1 (`Compute.tanhViaSigmoid`). */
export function tanh<T extends tf.Tensor>(x: T, viaSigmoid = DEFAULT_COMPUTE.tanhViaSigmoid): T {
  if (!viaSigmoid) return tf.tanh(x);
  return tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1) as T;
}

/**
 * A Tensor sharing `info`'s buffer, created without running a kernel, so the gradient tape
 * does not see it: the tfjs way to stop a gradient (a customGrad returning zeros does not cut
 * the tape). Dispose it like any tensor; the buffer's reference count is raised for it.
 */
export function alias(info: tf.TensorInfo): tf.Tensor {
  tf.backend().incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo({ dataId: info.dataId, shape: info.shape, dtype: info.dtype });
}

/** `stopGradient(x)`: x's values, no gradient flows back through it. */
export const stopGradient = <T extends tf.Tensor>(x: T): T => alias(x) as T;
