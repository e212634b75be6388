/**
 * What a registration method is to the frame runner (app/run-frames.ts), as types only: the
 * methods (app/bspline.ts, app/register.ts) implement `Registrar`, the runner and the worker
 * pool use it, and neither imports the other.
 */
import type { Image2D } from '../io/image.js';
import type { MaskSet } from '../io/masks.js';
import type { Mosaic } from '../core/qc/qc.js';
import type { BsplineOptions } from '../bspline/register.js';
import type { R2N2RegisterOptions } from './register-options.js';

/** What a method returns for one moving frame. */
export interface FrameRegistration {
  /** Total displacement `[2, H, W]` in normalised units (fixed → moving). */
  field: Float32Array;
  /** Method-specific parameters, stored in `params/<frame>.json`. */
  params: Record<string, unknown>;
  /** Number of transformation parameters (compactness). */
  parameters: number;
  finalLoss?: number;
  /** Set when the method's result was worse than none and the identity was written instead. */
  fallback?: 'identity';
  /** Extra images on the fixed grid, written as `<dir>/<frame>.nii.gz` (e.g. uncertainty/). */
  images?: { dir: string; data: Float32Array }[];
}

export interface Registrar {
  method: string;
  /** Everything that changes the result; a resumed run must match it. */
  settings: Record<string, unknown>;
  /** Progress units per frame (e.g. total iterations). */
  unitsPerFrame: number;
  /** `frame`: the moving frame's name (for per-frame inputs such as masks). */
  register(fixed: Image2D, moving: Image2D, tick: (info: string) => void, frame?: string): Promise<FrameRegistration>;
  /** Optional: several moving frames at once (faster for networks); `batchSize` frames per call. */
  batchSize?: number;
  /** `tick(info)` advances every frame of the batch by one unit; `tick(info, k)` by k units in all. */
  registerBatch?(fixed: Image2D, moving: Image2D[], tick: (info: string, units?: number) => void, frames?: string[]): Promise<FrameRegistration[]>;
  /** Optional extra QC picture of a frame's transformation, written as qc/<frame>-<suffix>.png. */
  qcExtra?(fixed: Image2D, r: FrameRegistration): { suffix: string; mosaic: Mosaic } | null;
}

/**
 * A registrar described by plain data, so that a worker thread can build the same one
 * (`--jobs`, app/registrars.ts `createRegistrar`): the B-spline from its options, R2N2 from its
 * model directory and options.
 */
export type RegistrarSpec =
  | { kind: 'bspline'; options: Omit<BsplineOptions, 'onIteration'>; masks?: { fixed?: MaskSet | null; moving?: MaskSet | null } }
  | { kind: 'r2n2'; modelDir: string; options: R2N2RegisterOptions };
