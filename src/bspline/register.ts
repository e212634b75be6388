/**
 * Multi-resolution B-spline registration of one image pair on tfjs autograd (AirLab style,
 * docs/method.md). Level l of L (coarse to fine) works on the pair down-sampled by 2^(L−1−l)
 * (Gaussian σ = factor/2, aligned corners, core/image/resample.ts); each level optimises a new zero
 * B-spline on top of the previous levels' total field, up-sampled bilinearly (normalised units
 * need no rescaling). Loss = similarity(F, M∘T) + λ·regulariser(this level's B-spline field
 * only: the global stage and the coarser levels are not penalised again, as in AirLab); AMSGrad.
 *
 * Inputs are plain `[H, W]` Float32Arrays (a constant pair); the result is the total field
 * `[2, H, W]` in normalised units and each level's control-point parameters.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DEFAULT_COMPUTE } from '../core/tensors.js';
import { warpBilinear, warpMseHost } from '../core/transformation/warp.js';
import { makeLoss } from '../core/loss/losses.js';
import { regulariser } from '../core/regulariser/regularisers.js';
import { AmsGrad } from '../core/optim.js';
import { noiseLevel, normaliseIntensity } from '../core/image/intensity.js';
import { finestFactor, finestLevel, pyramidLevel, resampleAligned } from '../core/image/resample.js';
import { basisTensors, bsplineGrid, denseField, denseFieldHost, sparseGrid } from './kernel.js';
import { bsplineObjectiveHost } from './host-objective.js';
import { SAMPLED_LOSSES, SAMPLED_REGULARISERS, mulberry32, sampledLevel } from './sampled.js';
import { type Geometry, identityGeometry } from '../core/image/geometry.js';
import type { BsplineOptions, NoiseRule } from './options.js';
import { type AffineTransform, AFFINE_DEFAULTS, AFFINE_PARAMETERS, affineField, registerAffine } from '../core/transformation/affine.js';

export type { BsplineOptions, NoiseRule } from './options.js';

/**
 * The default blur of the full-resolution level: 1.5 px per 256 px of the longer image side,
 * within 1..3 px (measured: 1 px best at 128², 1.5 at 256², 3 on 800×600; docs/cli.md).
 */
export function autoFinestSigma(W: number, H: number): number {
  return Math.min(3, Math.max(1, (1.5 * Math.max(W, H)) / 256));
}

/** What the B-spline made of the images' noise (`noiseAdaptive`). */
export interface NoiseAdaptation {
  /** The larger of the two images' noise estimates (core/image/intensity noiseLevel). */
  noise: number;
  /** The factor on the regulariser weight, 1..3. */
  lambdaFactor: number;
  /** The factor on the size rule's finest σ, 0.67..1 (not applied when σ is given). */
  sigmaFactor: number;
}

export const NOISE_RULE: NoiseRule = { from: 0.025, to: 0.045, lambdaMax: 3, sigmaMin: 0.67 };

/**
 * The noise rule (chosen on the tune half of `npm run bench -- real`, docs/experiments.md): clean
 * images (noise ≤ 0.025 of the intensity range) keep the regulariser and two thirds of the size
 * rule's σ; noisy ones (≥ 0.045) three times the regulariser and the full σ; linear between.
 */
export function noiseAdaptation(fixed: ArrayLike<number>, moving: ArrayLike<number>, W: number, H: number, rule = NOISE_RULE): NoiseAdaptation {
  const noise = Math.max(noiseLevel(fixed, W, H), noiseLevel(moving, W, H));
  const t = Math.min(1, Math.max(0, (noise - rule.from) / (rule.to - rule.from)));
  return { noise, lambdaFactor: 1 + (rule.lambdaMax - 1) * t, sigmaFactor: rule.sigmaMin + (1 - rule.sigmaMin) * t };
}

export { BSPLINE_DEFAULTS } from './defaults.js';

export interface BsplineLevelResult {
  /** Level image size `[W, H]`. */
  size: [number, number];
  factor: number;
  /** Control spacing in level pixels `[sx, sy]`. */
  spacing: [number, number];
  /** Control grid `[cpW, cpH]`. */
  controlGrid: [number, number];
  /** Parameters `[2, cpH, cpW]` (normalised units, channel 0 = x). */
  params: Float32Array;
  iterations: number;
  finalLoss: number;
}

export interface BsplineResult {
  /** Total displacement `[2, H, W]`, normalised units (global stage + B-spline levels). */
  field: Float32Array;
  /** The global stage, when `init` is not none. */
  affine?: AffineTransform;
  levels: BsplineLevelResult[];
  /** The noise estimate and what it changed, when `noiseAdaptive`. */
  adaptation?: NoiseAdaptation;
  /** Σ over levels of 2·cpH·cpW. */
  parameters: number;
  finalLoss: number;
}

/** The per-level value of an option list (one value is broadcast). */
export function perLevel<T>(list: T[], level: number, name: string): T {
  if (list.length === 1) return list[0];
  if (level >= list.length) throw new Error(`${name} lists ${list.length} values but there are more levels; give one value or one per level`);
  return list[level];
}

export function checkOptions(o: BsplineOptions): void {
  if (!(Number.isInteger(o.levels) && o.levels >= 1 && o.levels <= 8)) throw new Error(`levels must be 1..8, got ${o.levels}`);
  const lists: [string, number[]][] = [
    ['spacing', o.spacing],
    ['iterations', o.iterations],
    ['learning rate', o.learningRate],
    ['lambda', o.lambda],
  ];
  for (const [name, list] of lists) {
    if (list.length !== 1 && list.length !== o.levels) throw new Error(`${name} needs 1 value or ${o.levels} (one per level), got ${list.length}`);
    if (list.some((v) => !Number.isFinite(v) || v < 0)) throw new Error(`${name} values must be finite and ≥ 0, got ${list.join(',')}`);
  }
  if (o.spacing.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`spacing values must be positive integers (pixels), got ${o.spacing.join(',')}`);
  if (o.iterations.some((s) => !Number.isInteger(s))) throw new Error(`iterations must be integers, got ${o.iterations.join(',')}`);
  if (o.spacingMm !== undefined) {
    if (o.spacingMm.length !== 1 && o.spacingMm.length !== o.levels)
      throw new Error(`spacing in mm needs 1 value or ${o.levels} (one per level), got ${o.spacingMm.length}`);
    if (o.spacingMm.some((v) => !(Number.isFinite(v) && v > 0))) throw new Error(`spacing in mm must be > 0, got ${o.spacingMm.join(',')}`);
  }
  if (o.samples !== undefined && !(Number.isInteger(o.samples) && o.samples >= 0))
    throw new Error(`samples must be a whole number ≥ 0 (0 = every pixel), got ${o.samples}`);
  if (o.samples && !SAMPLED_LOSSES.includes(o.loss))
    throw new Error(`sampling (samples ${o.samples}) works with the ${SAMPLED_LOSSES.join(' and ')} losses; use samples 0 with ${o.loss}`);
  if (o.samples && !SAMPLED_REGULARISERS.includes(o.regulariser))
    throw new Error(`sampling (samples ${o.samples}) works with the ${SAMPLED_REGULARISERS.join(', ')} regularisers; use samples 0 with ${o.regulariser}`);
  if (o.convergence !== undefined && !(o.convergence >= 0 && o.convergence < 1))
    throw new Error(`convergence must be a relative loss change in [0, 1), got ${o.convergence}`);
  if (o.convergenceWindow !== undefined && !(Number.isInteger(o.convergenceWindow) && o.convergenceWindow >= 1))
    throw new Error(`convergence window must be a whole number of iterations ≥ 1, got ${o.convergenceWindow}`);
  if (o.maxSize !== undefined && !(Number.isInteger(o.maxSize) && o.maxSize >= 0))
    throw new Error(`max size must be a whole number of pixels ≥ 0 (0 = full resolution), got ${o.maxSize}`);
  if (o.finestSigma !== undefined && !(o.finestSigma >= 0 && o.finestSigma <= 50)) throw new Error(`finest sigma must be 0..50 pixels, got ${o.finestSigma}`);
}

export function registerBspline(
  fixed: Float32Array,
  moving: Float32Array,
  H: number,
  W: number,
  options: BsplineOptions,
  geometry: Geometry = identityGeometry(W, H),
): BsplineResult {
  const o = options;
  checkOptions(o);
  if (fixed.length !== H * W || moving.length !== H * W) throw new Error(`images must hold ${H}×${W} values`);
  if (o.fixedMask && o.fixedMask.length !== H * W) throw new Error(`the fixed mask must hold ${H}×${W} values`);
  if (o.movingMask && o.movingMask.length !== H * W) throw new Error(`the moving mask must hold ${H}×${W} values`);
  const normalise = o.normalise ?? true;
  const adaptation = (o.noiseAdaptive ?? true) ? noiseAdaptation(fixed, moving, W, H, o.noiseRule) : undefined;
  const F = normalise ? normaliseIntensity(fixed, o.clamp ?? 2) : fixed;
  const M = normalise ? normaliseIntensity(moving, o.clamp ?? 2) : moving;

  let total: Float32Array | null = null; // [2, h, w] at the previous level
  let prevH = 0;
  let prevW = 0;
  let affine: AffineTransform | undefined;
  const compute = o.compute ?? DEFAULT_COMPUTE;
  if (o.init && o.init !== 'none') {
    affine = registerAffine(fixed, moving, geometry, {
      ...AFFINE_DEFAULTS,
      kind: o.init,
      iterations: o.initIterations ?? AFFINE_DEFAULTS.iterations,
      loss: o.loss,
      lossOptions: o.lossOptions,
      normalise: o.normalise,
      maxSize: o.maxSize,
      onIteration: (i) => o.onIteration?.({ ...i, level: -1 }),
      compute,
    });
    total = affineField(affine, geometry);
    prevH = H;
    prevW = W;
  }
  const levels: BsplineLevelResult[] = [];
  let finalLoss = NaN;
  // tensors in host memory (wasm, cpu): the field, warp + MSE and the TV each run as one plain-JS
  // op with its analytic gradient (kernel.ts, core/transformation/warp.ts, core/regulariser/regularisers.ts); with MSE and TV
  // (the defaults) the whole objective is one such op (host-objective.ts)
  const host = compute.hostOps;
  const ff = finestFactor(W, H, o.maxSize);
  for (let l = 0; l < o.levels; l++) {
    const factor = 2 ** (o.levels - 1 - l) * ff;
    const finest = l === o.levels - 1;
    const sigma = o.finestSigma ?? autoFinestSigma(W, H) * (adaptation?.sigmaFactor ?? 1);
    const fl = finest ? finestLevel(F, H, W, factor, sigma) : pyramidLevel(F, H, W, factor);
    const ml = finest ? finestLevel(M, H, W, factor, sigma) : pyramidLevel(M, H, W, factor);
    const h = fl.H;
    const w = fl.W;
    const [sx, sy] = levelSpacing(o, l, geometry, W, H, w, h);
    const grid = bsplineGrid(h, w, [sx, sy], o.order);
    const prev = total ? resampleAligned(total, 2, prevH, prevW, h, w) : null;
    const iterations = perLevel(o.iterations, l, 'iterations');
    const lambda = perLevel(o.lambda, l, 'lambda') * (adaptation?.lambdaFactor ?? 1);
    const opt = new AmsGrad({ learningRate: perLevel(o.learningRate, l, 'learning rate') });
    const { By, BxT } = basisTensors(grid);
    const fixedT = tf.tensor2d(fl.data, [h, w]);
    const prevT = prev ? tf.tensor3d(prev, [2, h, w]) : null;
    const lossFn = makeLoss(o.loss, fixedT, o.lossOptions);
    const init = tf.zeros([2, grid.y.cp, grid.x.cp]);
    const P = tf.variable<tf.Rank.R3>(init as tf.Tensor3D, true, `bspline_level${l}_${Date.now()}_${Math.random()}`);
    init.dispose();
    const regSpacing = o.regulariserSpacing ?? [1, 1];
    const fixedMask = o.fixedMask ? levelMask(o.fixedMask, H, W, h, w) : null;
    const movingMask = o.movingMask ? levelMask(o.movingMask, H, W, h, w) : null;
    const fixedMaskT = fixedMask ? tf.tensor2d(Float32Array.from(fixedMask), [h, w]) : null;
    const sampled =
      o.samples && o.samples > 0 && h * w > o.samples
        ? sampledLevel({
            fixed: fl.data,
            moving: ml.data,
            h,
            w,
            grid,
            prev,
            samples: o.samples,
            rng: mulberry32(((o.seed ?? 0) * 1000003 + l * 7919 + 1) >>> 0),
            loss: o.loss,
            regulariser: o.regulariser,
            regulariserSpacing: regSpacing,
            fixedMask,
            movingMask,
          })
        : null;
    const sparse = host ? sparseGrid(grid) : null;
    // MSE without a moving mask: warp and loss fused into one host op
    const fused = host && o.loss === 'mse' && !movingMask;
    const similarity = (u: tf.Tensor3D): tf.Scalar => {
      if (fused) return warpMseHost(ml.data, fl.data, h, w, u, fixedMask);
      const { warped, mask: inside } = warpBilinear(ml.data, h, w, u);
      let mask = fixedMaskT ? (tf.mul(inside, fixedMaskT) as tf.Tensor2D) : inside;
      if (movingMask) mask = tf.mul(mask, tf.tensor2d(warpedMaskNearest(movingMask, h, w, u.dataSync()), [h, w])) as tf.Tensor2D;
      return lossFn(fixedT, warped, mask);
    };
    // …and with TV (or no regulariser) the whole objective as one host op (host-objective.ts)
    const whole =
      fused && sparse && (lambda === 0 || o.regulariser === 'none' || o.regulariser === 'tv')
        ? bsplineObjectiveHost({
            sparse,
            moving: ml.data,
            fixed: fl.data,
            prev,
            weight: fixedMask,
            lambda: o.regulariser === 'none' ? 0 : lambda,
            spacing: regSpacing,
          })
        : null;
    const denseObjective = () => {
      if (whole) return whole(P);
      const b = sparse ? denseFieldHost(P, sparse) : denseField(P, By, BxT);
      const sim = similarity(prevT ? (tf.add(prevT, b) as tf.Tensor3D) : b);
      return lambda > 0 && o.regulariser !== 'none'
        ? (tf.add(sim, tf.mul(regulariser(o.regulariser, b, regSpacing, host), tf.scalar(lambda))) as tf.Scalar)
        : sim;
    };
    const stop = convergenceStop(o.convergence ?? 0, o.convergenceWindow ?? 10);
    let last = NaN;
    let ran = 0;
    try {
      for (let it = 0; it < iterations; it++) {
        const d = sampled?.draw();
        const { value, grads } = tf.variableGrads(() => (sampled && d ? sampled.objective(P, d, lambda) : denseObjective()), [P]);
        if (sampled && d) sampled.release(d);
        opt.apply([P], grads);
        last = value.dataSync()[0];
        value.dispose();
        for (const g of Object.values(grads)) g.dispose();
        ran = it + 1;
        if (!Number.isFinite(last)) throw new Error(`the loss became ${last} at level ${l + 1}, iteration ${it + 1}; lower the learning rate`);
        o.onIteration?.({ level: l, iteration: it, loss: last });
        if (stop(last)) break;
      }
      const params = P.dataSync() as Float32Array;
      const field = tf.tidy(() => {
        const b = denseField(P, By, BxT);
        return prevT ? tf.add(prevT, b) : b;
      });
      total = field.dataSync() as Float32Array;
      field.dispose();
      prevH = h;
      prevW = w;
      levels.push({
        size: [w, h],
        factor,
        spacing: [grid.x.s, grid.y.s],
        controlGrid: [grid.x.cp, grid.y.cp],
        params: Float32Array.from(params),
        iterations: ran,
        finalLoss: last,
      });
      finalLoss = last;
    } finally {
      P.dispose();
      opt.dispose();
      By.dispose();
      BxT.dispose();
      fixedT.dispose();
      prevT?.dispose();
      fixedMaskT?.dispose();
    }
  }
  const field = prevH === H && prevW === W ? (total as Float32Array) : resampleAligned(total as Float32Array, 2, prevH, prevW, H, W);
  const parameters = levels.reduce((a, l) => a + 2 * l.controlGrid[0] * l.controlGrid[1], 0) + (affine ? AFFINE_PARAMETERS[affine.kind] : 0);
  return { field: Float32Array.from(field), affine, levels, adaptation, parameters, finalLoss };
}

/** A mask `[H, W]` at a level of `[h, w]` pixels: nearest pixel, aligned corners (as the pyramid). */
export function levelMask(mask: Uint8Array, H: number, W: number, h: number, w: number): Uint8Array {
  if (h === H && w === W) return mask;
  const out = new Uint8Array(h * w);
  const fy = h > 1 ? (H - 1) / (h - 1) : 0;
  const fx = w > 1 ? (W - 1) / (w - 1) : 0;
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) out[i * w + j] = mask[Math.round(i * fy) * W + Math.round(j * fx)];
  return out;
}

/** 1 where `p + u(p)` (u `[2, h, w]` normalised) falls on a nonzero pixel of `mask` (nearest), else 0. */
export function warpedMaskNearest(mask: Uint8Array, h: number, w: number, u: ArrayLike<number>): Float32Array {
  const N = h * w;
  const out = new Float32Array(N);
  const sx = (w - 1) / 2;
  const sy = (h - 1) / 2;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const p = i * w + j;
      const x = Math.round(j + u[p] * sx);
      const y = Math.round(i + u[N + p] * sy);
      if (x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x]) out[p] = 1;
    }
  }
  return out;
}

/**
 * The convergence test: true once the mean loss of the last `window` iterations is within
 * `tolerance` (relative) of the mean of the `window` before them; never when tolerance is 0.
 */
export function convergenceStop(tolerance: number, window: number): (loss: number) => boolean {
  const losses: number[] = [];
  return (loss) => {
    if (!(tolerance > 0)) return false;
    losses.push(loss);
    if (losses.length < 2 * window) return false;
    const mean = (a: number, b: number) => losses.slice(a, b).reduce((x, y) => x + y, 0) / window;
    const n = losses.length;
    const recent = mean(n - window, n);
    const before = mean(n - 2 * window, n - window);
    return Math.abs(before - recent) <= tolerance * Math.max(Math.abs(before), 1e-12);
  };
}

/**
 * The control-point spacing `[sx, sy]` in pixels of level `l` (`[w, h]` pixels of a `[W, H]`
 * image): `spacingMm` through the level's pixel size (aligned corners), else `spacing`; at most
 * the level's size.
 */
export function levelSpacing(
  o: Pick<BsplineOptions, 'spacing' | 'spacingMm'>,
  l: number,
  geometry: Geometry,
  W: number,
  H: number,
  w: number,
  h: number,
): [number, number] {
  if (o.spacingMm) {
    const mm = perLevel(o.spacingMm, l, 'spacing in mm');
    const px = geometry.spacing[0] * (w > 1 ? (W - 1) / (w - 1) : 1);
    const py = geometry.spacing[1] * (h > 1 ? (H - 1) / (h - 1) : 1);
    return [Math.min(w, Math.max(1, Math.round(mm / px))), Math.min(h, Math.max(1, Math.round(mm / py)))];
  }
  const s = perLevel(o.spacing, l, 'spacing');
  return [Math.min(s, w), Math.min(s, h)];
}
