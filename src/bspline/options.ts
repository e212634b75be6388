/** The B-spline's options as types only (the command line's help and the defaults read them; no tfjs). */
import type { Compute } from '../core/tensors.js';
import type { LossName, LossOptions } from '../core/loss/losses.js';
import type { RegulariserName } from '../core/regulariser/regularisers.js';
import type { InitKind } from '../core/transformation/affine-options.js';

/** Noise from `from` to `to` raises the λ factor 1 → `lambdaMax` and the σ factor `sigmaMin` → 1. */
export interface NoiseRule {
  from: number;
  to: number;
  lambdaMax: number;
  sigmaMin: number;
}

export interface BsplineOptions {
  /** Pyramid levels (coarse to fine); level l is down-sampled by 2^(levels−1−l). */
  levels: number;
  /** Control-point spacing in pixels of each level (one value: the same at every level). */
  spacing: number[];
  /**
   * Control-point spacing in mm of each level (one value: the same at every level); when set it
   * replaces `spacing`: each axis gets round(mm / the level's pixel size), at least 1 px.
   */
  spacingMm?: number[];
  /** Iterations per level (one value: the same at every level). */
  iterations: number[];
  /** AMSGrad learning rate per level (one value: the same at every level). */
  learningRate: number[];
  /** Regulariser weight λ per level (one value: the same at every level). */
  lambda: number[];
  order: number;
  loss: LossName;
  lossOptions?: LossOptions;
  regulariser: RegulariserName;
  /** Weights of the squared differences along rows/columns (AirLab's pixel spacing), default [1, 1]. */
  regulariserSpacing?: [number, number];
  /** z-score + clamp the intensities first (docs/method.md), default true. */
  normalise?: boolean;
  /** Clamp of the normalisation, default 2. */
  clamp?: number;
  /** Gaussian σ (pixels) applied to both images at the full-resolution level (coarser levels use factor/2); 0 = none (AirLab); undefined = `autoFinestSigma` (× the noise factor with `noiseAdaptive`). */
  finestSigma?: number;
  /**
   * Adapt to the images' noise (`noiseAdaptation`), default true: the regulariser weight of every
   * level × (1 + 2t) and, when `finestSigma` is not given, the finest level's σ × (0.67 + 0.33t),
   * t rising from 0 at noise 0.025 to 1 at 0.045 (of the 1st–99th percentile range; `NOISE_RULE`).
   */
  noiseAdaptive?: boolean;
  /** The constants of the noise rule (`NOISE_RULE`; the benchmark tunes them; no CLI option). */
  noiseRule?: NoiseRule;
  /**
   * The finest level registers at most this many pixels along the longer image side (down-sampled
   * by a power of two; the field is up-sampled to full resolution); 0 = full resolution.
   */
  maxSize?: number;
  /** Global stage before the B-spline (core/transformation/affine.ts), default none. */
  init?: InitKind;
  /** Iterations per level of the global stage (default AFFINE_DEFAULTS). */
  initIterations?: number[];
  /**
   * Stochastic sampling: at a level of more pixels than this, each iteration uses this many
   * random pixels (bspline/sampled.ts); 0 or undefined = every pixel. MSE and NCC only.
   */
  samples?: number;
  /** Seed of the sampling (the same seed, the same result). */
  seed?: number;
  /** Fixed-image mask `[H, W]` (nonzero = in): the similarity counts only there. */
  fixedMask?: Uint8Array | null;
  /** Moving-image mask `[H, W]`: a pixel counts only where it maps inside it (nearest). */
  movingMask?: Uint8Array | null;
  /**
   * Stop a level early when the loss changed by less than this fraction over the last
   * `convergenceWindow` iterations (mean of the last window against the one before); 0 = never.
   */
  convergence?: number;
  /** Iterations per convergence window, default 10. */
  convergenceWindow?: number;
  /** Called after every iteration (level −1: the global stage). */
  onIteration?: (info: { level: number; iteration: number; loss: number }) => void;
  /** How the ops run on the active backend (fused host objectives or tensor ops); default `DEFAULT_COMPUTE` (core/tensors.ts). */
  compute?: Compute;
}
