/** The global stage's kinds and defaults (no tfjs here: the command line's help reads them). */
import type { Compute } from '../tensors.js';
import type { LossName, LossOptions } from '../loss/losses.js';

export type AffineKind = 'rigid' | 'similarity' | 'affine';
export type InitKind = 'none' | AffineKind;
export const INIT_KINDS: InitKind[] = ['none', 'rigid', 'similarity', 'affine'];
export const AFFINE_PARAMETERS: Record<AffineKind, number> = { rigid: 3, similarity: 4, affine: 6 };

export const AFFINE_DEFAULTS: Omit<AffineOptions, 'kind'> = {
  levels: 3,
  iterations: [100, 50, 20],
  learningRate: [0.01, 0.005, 0.002],
  loss: 'mse',
};

/** The global stage's options (affine.ts `registerAffine`). */
export interface AffineOptions {
  kind: AffineKind;
  levels: number;
  iterations: number[];
  learningRate: number[];
  loss: LossName;
  lossOptions?: LossOptions;
  /** Start from the centre-of-mass difference (default true). */
  moments?: boolean;
  normalise?: boolean;
  /** Gaussian σ (px) of both images at full resolution (as the B-spline's), default 1. */
  finestSigma?: number;
  /** The finest level's longer side at most this many pixels (as the B-spline's), 0 = full resolution. */
  maxSize?: number;
  onIteration?: (info: { level: number; iteration: number; loss: number }) => void;
  /** How the ops run on the active backend (fused host objectives or tensor ops); default `DEFAULT_COMPUTE` (core/tensors.ts). */
  compute?: Compute;
}
