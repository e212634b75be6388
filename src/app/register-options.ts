/** Options of `register series` that the command line's help lists (no tfjs here). */
import type { Flip } from '../core/image/resample.js';

/**
 * `--flip-average`: register the pair as it is and mirrored, map each mirrored pass's Gaussians
 * back (core `unflipSequence`) and average the passes (weights ÷ passes). The result is still one
 * Gaussian sequence, `passes × steps` long. Training augments with the same flips, so the
 * network's errors on the mirrored copies are partly independent and average down.
 */
export const FLIP_AVERAGES: Record<string, Flip[]> = { none: ['none'], x: ['none', 'x'], y: ['none', 'y'], xy: ['none', 'xy'], all: ['none', 'x', 'y', 'xy'] };
export type FlipAverage = keyof typeof FLIP_AVERAGES;
