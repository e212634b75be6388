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
