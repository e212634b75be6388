/** The refinement's options and defaults (no tfjs here: the command line's help reads them). */

export interface RefineOptions {
  /** Levenberg–Marquardt iterations (each one trial pass over the pixels), default 20. */
  iterations?: number;
  /** Initial damping, relative to the normal matrix's diagonal, default 10. */
  damping?: number;
  /** Stop when an accepted step lowers the cost by less than this fraction, default 1e-4. */
  tolerance?: number;
  /** Shapes are kept within [sigmaMin, sigmaMax] (normalised units), default [1e-3, 2]. */
  sigmaMin?: number;
  sigmaMax?: number;
  /** exp(−q) below this and a Gaussian does not reach the pixel (skipped), default 1e-3. */
  reach?: number;
  /**
   * Refine on the pair reduced to at most this many pixels along its longer side (Gaussian blur
   * and aligned resampling, as a pyramid level; the parameters are resolution-free), default
   * Infinity: the frames' own size. The cost grows with the pixel count.
   */
  maxSize?: number;
  /**
   * Each Gaussian alone may not bring det J below this (default 0.5): its weight is scaled down
   * after every step where it would (see `limitFolding`). Without it the fit can shrink a
   * Gaussian to a needle with a large weight that folds the field between pixel centres.
   */
  minDet?: number;
  /**
   * The Gauss–Newton matrix JᵀJ is summed over every `normalStride`-th pixel along each axis
   * (the cost and gradient always over every pixel), default 2. It is most of the time (see
   * above), and it only steers the step: a sample of the pixels estimates the same mean.
   */
  normalStride?: number;
  /**
   * With `maxSize` below the frames' size: this many more iterations at the frames' own size,
   * from the reduced-size result (coarse to fine), default 0. The reduced size finds the large
   * motion cheaply; these recover the detail it cannot see (docs/cli.md, "--refine-fine").
   */
  fineIterations?: number;
}

export interface RefineResult {
  /** The refined sequence, 7 numbers per step (cx, cy, σx, σy, wx, wy, φ with φ in [0, π)). */
  sequence: Float32Array;
  /** Masked MSE before and after. */
  before: number;
  after: number;
  /** Iterations run, steps accepted, and passes over the pixels that built JᵀJ. */
  iterations: number;
  accepted: number;
  normalPasses: number;
}

export const REFINE_DEFAULTS: Required<RefineOptions> = {
  iterations: 20,
  damping: 10,
  tolerance: 1e-4,
  sigmaMin: 1e-3,
  sigmaMax: 2,
  reach: 1e-3,
  maxSize: Infinity,
  minDet: 0.5,
  normalStride: 2,
  fineIterations: 0,
};
