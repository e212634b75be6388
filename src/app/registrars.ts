/**
 * The registrar a `RegistrarSpec` (app/registrar.ts) describes, built in a worker thread
 * (`--jobs`): the B-spline from its options, R2N2 from its model directory and options.
 */
import { loadModel } from '../io/model.js';
import { bsplineRegistrar } from './bspline.js';
import { r2n2Registrar } from './register.js';
import type { Registrar, RegistrarSpec } from './registrar.js';
export type { RegistrarSpec } from './registrar.js';

/** Builds the registrar a spec describes (R2N2 reads its model from disk). */
export async function createRegistrar(spec: RegistrarSpec): Promise<Registrar> {
  if (spec.kind === 'bspline') return bsplineRegistrar(spec.options, spec.masks);
  return r2n2Registrar(await loadModel(spec.modelDir), spec.options);
}
