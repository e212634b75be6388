/** Options of `register series` that the command line's help lists (no tfjs here). */
import type { Flip } from '../core/image/resample.js';
import type { InitKind } from '../core/transformation/affine-options.js';

/**
 * `--flip-average`: register the pair as it is and mirrored, map each mirrored pass's Gaussians
 * back (core `unflipSequence`) and average the passes (weights ÷ passes). The result is still one
 * Gaussian sequence, `passes × steps` long. Training augments with the same flips, so the
 * network's errors on the mirrored copies are partly independent and average down.
 */
export const FLIP_AVERAGES: Record<string, Flip[]> = { none: ['none'], x: ['none', 'x'], y: ['none', 'y'], xy: ['none', 'xy'], all: ['none', 'x', 'y', 'xy'] };
export type FlipAverage = keyof typeof FLIP_AVERAGES;

/** The options of an R2N2 registrar (app/register.ts `r2n2Registrar`). */
export interface R2N2RegisterOptions {
  /** Global pre-alignment of each frame before the sequence (core/transformation/affine.ts), default none. */
  init?: InitKind;
  steps: number;
  stopThreshold: number;
  /** Frames per network batch (default: defaultRegisterBatch of the current backend). */
  batchSize?: number;
  /** Average over mirrored passes (FLIP_AVERAGES), default none. */
  flipAverage?: FlipAverage;
  /**
   * Levenberg–Marquardt iterations that refine each frame's Gaussian sequence on the pair at full
   * resolution after the network (core/r2n2/refine.ts), default 0 (off). The result is still the
   * same number of Gaussians.
   */
  refine?: number;
  /** Refine on the pair reduced to at most this many pixels per side (default: full size). */
  refineSize?: number;
  /** With refineSize: this many more iterations at the frames' own size after the reduced ones (default 0). */
  refineFine?: number;
  /** The refinement's JᵀJ from every s-th pixel per axis (core/r2n2/refine.ts `normalStride`, default 2). */
  refineStride?: number;
  /**
   * Never worse than none (default true): the sequence stops at the first step that does not
   * lower the image loss at the network's size (core `inferSequence` `stopWhenWorse`; not with
   * `refine`, which fits every step the network gives), and a frame
   * whose final full-resolution MSE (normalised intensities, over the pixels that map inside) is
   * above the unregistered pair's falls back to the identity, flagged in its params.
   */
  stopWhenWorse?: boolean;
  /**
   * `--uncertainty K`: K more passes of the network with multiplicative weight noise (MC
   * DropConnect, network.ts `sampleWeightNoise`, keep rate `uncertaintyKeep`), each giving a field;
   * the per-pixel standard deviation of the displacement over the passes (mm, √(var_x + var_y))
   * is written as uncertainty/<frame>.nii.gz and its mean over the pixels in the params. 0 = off.
   */
  uncertainty?: number;
  /** Keep rate of the noise (default: the model's training keep when in (0, 1), else 0.9). */
  uncertaintyKeep?: number;
  /** Seed of the noise (the same seed, the same passes). */
  uncertaintySeed?: number;
}
