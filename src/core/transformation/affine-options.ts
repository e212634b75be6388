/** The global stage's kinds and defaults (no tfjs here: the command line's help reads them). */
import type { AffineOptions } from './affine.js';

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
