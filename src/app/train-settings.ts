/**
 * The settings of `r2n2 train` (what is recorded in model.json and keys a resumed run) and the
 * learning-rate schedule.
 */
import type { FixedFrameCriterion } from '../core/image/fixed-frame.js';
import type { AugmentOptions } from '../core/r2n2/augment.js';
import { type MotionKind, MOTION_KINDS } from '../core/synth/fields.js';
import { UserError } from '../errors.js';
export interface TrainSettings {
  iterations: number;
  steps: number;
  learningRate: number;
  lambda: number;
  clip: number;
  /** Keep rate of the weight noise (1 = off). */
  keep: number;
  checkpointEvery: number;
  seed: number;
  flip: boolean;
  intensityAugment: boolean;
  /** Largest random translation of a pair, in pixels of the network's image (`imageSize`),
   * uniform in ±shift on each axis, sub-pixel, both frames alike; 0 = off. */
  shift: number;
  /** Largest deviation from the identity of a random linear map of a pair about the image centre
   * (rotation, scale and shear: each entry of the 2×2 matrix in normalised coordinates uniform in
   * ±affine), both frames alike, the teacher's field transformed with them; 0 = off. */
  affine: number;
  /** Decay of an exponential moving average of the weights (Polyak averaging; 0 = off): after
   * each step ema ← d·ema + (1 − d)·w. When on, validation and the saved model use the average;
   * the checkpoint keeps both, so a resumed run continues bit-for-bit. */
  ema: number;
  criterion: FixedFrameCriterion;
  /** Pairs per iteration (one gradient step on their mean loss). */
  batch: number;
  /** Learning rate at the end of the decay: cosine from `learningRate` over `decayIterations` (undefined: constant). */
  learningRateFinal?: number;
  /** Iterations of the cosine decay (default: `iterations` of this run; part of the resume key, so a
   * resumed run keeps the schedule it started with); after them the rate stays at `learningRateFinal`. */
  decayIterations?: number;
  /** Validation pairs per validation series (a fixed seeded draw). */
  valPairs: number;
  /** Side of the images the training loss is computed on (undefined: the network's size). The
   * network still observes the pair at its size; its Gaussians are evaluated on a lossSize² grid
   * and the frames, resampled as for the network, compared there (docs/method.md's loss, finer). */
  lossSize?: number;
  /** Weight μ of the distillation term (sequence.ts `teacher`) when `TrainOptions.teacher` is given. */
  teacherWeight: number;
  /** Which fields the teacher term compares: every step's (`all`) or the final one. */
  teacherSteps: 'all' | 'final';
  /** Augmentations of each pair at the network's size (core/r2n2/augment.ts); undefined or all 0 = off. */
  augment?: AugmentOptions;
  /**
   * Weights of the training-data sources, drawn per pair: the training series, synthetic
   * label-map pairs (`--synth`) and stills set in motion (`--stills`); each generated pair comes
   * with its true field as the teacher (`teacherWeight`). Undefined: the series alone (nothing
   * extra is drawn, so earlier runs resume as they were).
   */
  mix?: SourceMix;
  /** How generated pairs are made (used when `mix` gives synth or stills a weight). */
  synth?: SynthSettings;
}

export interface SourceMix {
  series: number;
  synth: number;
  stills: number;
}

export interface SynthSettings {
  /** Motion kinds a generated pair's field sums (core/synth/fields.ts). */
  kinds: MotionKind[];
  /** Largest displacement as a fraction of the image's side (each pair's is log-uniform in [a/10, a]). */
  amplitude: number;
  /** Largest noise std per frame, normalised intensity units. */
  noise: number;
  /** Range of the number of labels of a synthetic image. */
  labels: [number, number];
}

export const SYNTH_DEFAULTS: SynthSettings = { kinds: ['affine', 'smooth', 'bumps', 'sliding', 'cardiac'], amplitude: 0.06, noise: 0.15, labels: [10, 40] };

/** The learning rate of iteration `it` (0-based) of `total`: cosine from lr0 to lr1. */
export function learningRateAt(lr0: number, lr1: number | undefined, it: number, total: number): number {
  if (lr1 === undefined || lr1 === lr0 || total <= 1) return lr0;
  return lr1 + 0.5 * (lr0 - lr1) * (1 + Math.cos((Math.PI * Math.min(it, total - 1)) / (total - 1)));
}

export const TRAIN_DEFAULTS: TrainSettings = {
  iterations: 2000,
  steps: 10,
  learningRate: 1e-4,
  lambda: 1,
  clip: 1,
  keep: 0.5,
  checkpointEvery: 100,
  seed: 1,
  flip: true,
  intensityAugment: true,
  shift: 0,
  affine: 0,
  ema: 0,
  criterion: 'image',
  batch: 1,
  valPairs: 8,
  teacherWeight: 1,
  teacherSteps: 'final',
};

/** The one-line errors of generated-pair settings (`train --synth-*`, `r2n2 synth`). */
export function checkSynthSettings(sy: SynthSettings): void {
  if (sy.kinds.length === 0 || sy.kinds.some((k) => !MOTION_KINDS.includes(k)))
    throw new UserError(`--synth-motion takes some of ${MOTION_KINDS.join(', ')}; got ${sy.kinds.join(', ') || 'none'}`);
  if (!(sy.amplitude > 0 && sy.amplitude <= 0.25))
    throw new UserError(`--synth-amplitude is the largest displacement as a fraction of the image side, in (0, 0.25]; got ${sy.amplitude}`);
  if (!(sy.noise >= 0 && sy.noise <= 1)) throw new UserError(`--synth-noise must be in [0, 1] (normalised intensity units), got ${sy.noise}`);
  const [a, b] = sy.labels;
  if (!(sy.labels.length === 2 && Number.isInteger(a) && Number.isInteger(b) && a >= 2 && b >= a && b <= 100))
    throw new UserError(`--synth-labels takes two integers 2 ≤ fewest ≤ most ≤ 100, got ${sy.labels.join(' ')}`);
}
