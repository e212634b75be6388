/**
 * A registrar described by plain data, so that a worker thread can build the same one
 * (`--jobs`): the B-spline from its options, R2N2 from its model directory and options.
 */
import type { BsplineOptions } from '../bspline/register.js';
import { loadModel } from '../io/model.js';
import type { MaskSet } from '../io/masks.js';
import { bsplineRegistrar } from './bspline.js';
import { type R2N2RegisterOptions, r2n2Registrar } from './register.js';
import type { Registrar } from './run-frames.js';

export type RegistrarSpec =
  | { kind: 'bspline'; options: Omit<BsplineOptions, 'onIteration'>; masks?: { fixed?: MaskSet | null; moving?: MaskSet | null } }
  | { kind: 'r2n2'; modelDir: string; options: R2N2RegisterOptions };

/** Builds the registrar a spec describes (R2N2 reads its model from disk). */
export async function createRegistrar(spec: RegistrarSpec): Promise<Registrar> {
  if (spec.kind === 'bspline') return bsplineRegistrar(spec.options, spec.masks);
  return r2n2Registrar(await loadModel(spec.modelDir), spec.options);
}
