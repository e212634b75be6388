/** `register series` with a trained R2N2 model, as a Registrar for app/run-frames.ts. */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Image2D } from '../io/image.js';
import type { LoadedModel } from '../io/model.js';
import { toVariables } from '../io/model.js';
import { inferSequence, maskedMseArrays, networkImage } from '../core/r2n2/sequence.js';
import { imageSize, sampleWeightNoise } from '../core/r2n2/network.js';
import seedrandom from 'seedrandom';
import { fieldFromNormalised } from '../core/transformation/field.js';
import type { Geometry } from '../core/image/geometry.js';
import { sequenceField, unflipSequence, PARAMS_PER_STEP } from '../core/transformation/gaussian.js';
import { flipImage } from '../core/image/resample.js';
import { gaussianOverlay } from '../core/qc/qc.js';
import { AFFINE_DEFAULTS, AFFINE_PARAMETERS, affineField, composeAfterAffine, registerAffine } from '../core/transformation/affine.js';
import { warpSamples } from '../core/transformation/warp.js';
import { normaliseIntensity } from '../core/image/intensity.js';
import { REFINE_DEFAULTS, refineSequence } from '../core/r2n2/refine.js';
import type { Registrar } from './registrar.js';
import { activeCompute } from '../backend/compute.js';

export const R2N2_PARAMS_UNITS =
  'one row per step: cx, cy (position), sx, sy (shape sigma), wx, wy (weight), phi (rotation, rad); normalised units ([-1, 1] across the image); the field is the sum of the steps (docs/method.md)';

import { type R2N2RegisterOptions, FLIP_AVERAGES } from './register-options.js';
export { type FlipAverage, FLIP_AVERAGES } from './register-options.js';

export type { R2N2RegisterOptions } from './register-options.js';

/** The keep rate `--uncertainty` uses for a model: its training keep when in (0, 1), else 0.9. */
export function uncertaintyKeepFor(model: LoadedModel): number {
  const k = Number((model.json.training as { keep?: number } | undefined)?.keep);
  return k > 0 && k < 1 ? k : 0.9;
}

/**
 * Frames per network batch when none is given, by compute backend. On wasm 8 frames per batch
 * are 2× faster per frame than 1 and 32 no faster than 8 (0.049 vs 0.051 s per 256² frame, 5
 * steps, measured); on webgpu the time per batch is kernel dispatch, so per frame it falls with
 * the batch (H100, 5 steps: 0.092 / 0.049 / 0.042 s at 8 / 32 / 70; 10 steps 0.177 / 0.085 /
 * 0.059 s).
 */
export function defaultRegisterBatch(backend: string): number {
  return backend === 'webgpu' ? 64 : 8;
}

const netImage = (img: Image2D, n: number) => networkImage(img.data, img.geometry.size[1], img.geometry.size[0], n);

export function r2n2Registrar(model: LoadedModel, o: R2N2RegisterOptions): Registrar {
  const weights = toVariables(model);
  const c = model.config;
  const n = imageSize(c);
  const fa = o.flipAverage ?? 'none';
  const flips = FLIP_AVERAGES[fa];
  if (!flips) throw new Error(`unknown flip average ${fa}; one of ${Object.keys(FLIP_AVERAGES).join(', ')}`);
  const refine = o.refine ?? 0;
  if (!(Number.isInteger(refine) && refine >= 0)) throw new Error(`refine must be a whole number ≥ 0, got ${refine}`);
  const refineStride = o.refineStride ?? REFINE_DEFAULTS.normalStride;
  if (!(Number.isInteger(o.refineFine ?? 0) && (o.refineFine ?? 0) >= 0))
    throw new Error(`refine fine iterations must be a whole number ≥ 0, got ${o.refineFine}`);
  if (!(Number.isInteger(refineStride) && refineStride >= 1)) throw new Error(`refine stride must be a whole number ≥ 1, got ${refineStride}`);
  const guard = o.stopWhenWorse ?? true;
  const K = o.uncertainty ?? 0;
  if (!(Number.isInteger(K) && K >= 0)) throw new Error(`uncertainty must be a whole number of passes ≥ 0, got ${K}`);
  if (K === 1) throw new Error('uncertainty needs at least 2 passes (a standard deviation of one pass is 0)');
  const keep = o.uncertaintyKeep ?? uncertaintyKeepFor(model);
  if (K > 0 && !(keep > 0 && keep <= 1)) throw new Error(`the uncertainty keep rate must be in (0, 1], got ${keep}`);
  let fixedCache: { img: Image2D; net: Float32Array[]; norm: Float32Array | null } | null = null;
  return {
    method: 'r2n2',
    // flipAverage only when used, so results written before the option existed still resume
    settings: {
      model: path.resolve(model.dir),
      modelCreated: model.json.created ?? null,
      config: c,
      steps: o.steps,
      stopThreshold: o.stopThreshold,
      init: o.init ?? 'none',
      ...(fa !== 'none' ? { flipAverage: fa } : {}),
      ...(refine > 0 ? { refine, refineSize: o.refineSize ?? null, refineStride, ...(o.refineFine ? { refineFine: o.refineFine } : {}) } : {}),
      ...(guard ? { stopWhenWorse: true } : {}),
      ...(K > 0 ? { uncertainty: K, uncertaintyKeep: keep, uncertaintySeed: o.uncertaintySeed ?? 0 } : {}),
    },
    // progress units: one per network step (and per step of each uncertainty pass), one for the refinement
    unitsPerFrame: o.steps * (1 + K) + (refine > 0 ? 1 : 0),
    batchSize: o.batchSize ?? defaultRegisterBatch(tf.getBackend()),
    async register(fixed, moving, tick) {
      return (await batch(fixed, [moving], tick))[0];
    },
    registerBatch: (fixed, moving, tick) => batch(fixed, moving, tick),
    qcExtra(fixed, r) {
      const [W, H] = fixed.geometry.size;
      return { suffix: 'gaussians', mosaic: gaussianOverlay(fixed.data, H, W, (r.params.sequence as number[][]) ?? []) };
    },
  };

  async function batch(fixed: Image2D, moving: Image2D[], tick: (info: string, units?: number) => void) {
    const compute = activeCompute();
    if (!fixedCache || fixedCache.img !== fixed) {
      const f = netImage(fixed, n);
      fixedCache = { img: fixed, net: flips.map((v) => flipImage(f, n, n, v)), norm: refine > 0 || guard ? normaliseIntensity(fixed.data) : null };
    }
    const net = fixedCache.net;
    const [W, H] = fixed.geometry.size;
    const init = o.init ?? 'none';
    const affines =
      init === 'none'
        ? moving.map(() => null)
        : moving.map((m) => registerAffine(fixed.data, m.data, fixed.geometry, { ...AFFINE_DEFAULTS, kind: init, compute }));
    const seen = moving.map((m, b) => {
      const a = affines[b];
      return a ? { ...m, data: warpSamples(m.data, H, W, affineField(a, fixed.geometry)).out as Float32Array } : m;
    });
    const seenNet = seen.map((m) => netImage(m, n));
    // one network batch: pass v of frame b at v·B + b
    const ps = await inferSequence(
      c,
      weights,
      flips.flatMap((_, v) => moving.map(() => net[v])),
      flips.flatMap((v) => seenNet.map((m) => flipImage(m, n, n, v))),
      {
        steps: o.steps,
        stopThreshold: o.stopThreshold,
        // with --refine the refinement fits every Gaussian the network gave: the sequence runs whole,
        // and the full-resolution check below keeps the result from being worse than none
        stopWhenWorse: guard && refine === 0,
        compute,
        onStep: (t) => tick(`step ${t + 1}/${o.steps}`),
      },
    );
    const B = moving.length;
    // --uncertainty: K noisy passes (no mirroring), each frame's field per pass; the noise of pass
    // k is seeded by (seed, k), so a frame's passes do not depend on its batch
    const passes: Float32Array[][] = [];
    for (let k = 0; k < K; k++) {
      const rng = seedrandom(`r2n2-uncertainty-${o.uncertaintySeed ?? 0}-${k}`);
      const noise = sampleWeightNoise(c, keep, rng);
      try {
        const pk = await inferSequence(
          c,
          weights,
          moving.map(() => net[0]),
          seenNet,
          {
            steps: o.steps,
            stopThreshold: o.stopThreshold,
            stopWhenWorse: guard && refine === 0,
            noise,
            compute,
            onStep: (t) => tick(`uncertainty pass ${k + 1}/${K}, step ${t + 1}`),
          },
        );
        passes.push(pk.map((p, b) => (affines[b] ? composeAfterAffine(affines[b]!, fixed.geometry, sequenceField(p, H, W)) : sequenceField(p, H, W))));
      } finally {
        for (const t of noise.values()) t.dispose();
      }
    }
    const merged = moving.map((_, b) => {
      const passes = flips.map((v, k) => unflipSequence(ps[k * B + b], v, 1 / flips.length));
      const all = Float32Array.from(passes.flatMap((p) => Array.from(p)));
      return { all, passSteps: passes.map((p) => p.length / PARAMS_PER_STEP) };
    });
    const norm = fixedCache.norm;
    return merged.map(({ all: net, passSteps }, b) => {
      // refined against the frame the sequence acts on (after any affine pre-alignment)
      const rf =
        norm && refine > 0
          ? refineSequence(norm, normaliseIntensity(seen[b].data), H, W, net, {
              iterations: refine,
              normalStride: refineStride,
              ...(o.refineSize ? { maxSize: o.refineSize, fineIterations: o.refineFine ?? 0 } : {}),
            })
          : null;
      if (rf) tick(`refined frame ${b + 1}/${moving.length} (${rf.accepted}/${rf.iterations} steps accepted)`, 1);
      const p = rf ? rf.sequence : net;
      const sequence: number[][] = [];
      for (let k = 0; k < p.length; k += PARAMS_PER_STEP) sequence.push(Array.from(p.subarray(k, k + PARAMS_PER_STEP)));
      const a = affines[b];
      const u = sequenceField(p, H, W);
      let field = a ? composeAfterAffine(a, fixed.geometry, u) : u;
      // the full-resolution check: worse than the unregistered pair → the identity
      const fallback = guard && norm ? worseThanNone(norm, normaliseIntensity(moving[b].data), H, W, field) : null;
      if (fallback) field = new Float32Array(2 * H * W);
      const spread =
        K > 0
          ? displacementSpread(
              passes.map((ps) => ps[b]),
              fixed.geometry,
            )
          : null;
      const affine = a
        ? { ...a, parameters: AFFINE_PARAMETERS[a.kind], convention: 'T(p) = T_A(p + u_gauss(p)), T_A(p) = matrix·(p − centre) + centre + translation (mm)' }
        : null;
      return {
        field,
        parameters: fallback ? 0 : p.length + (a ? AFFINE_PARAMETERS[a.kind] : 0),
        ...(fallback ? { fallback: 'identity' as const } : {}),
        ...(spread ? { images: [{ dir: 'uncertainty', data: spread.std }] } : {}),
        params: {
          ...(spread
            ? {
                uncertainty: {
                  meanStdMm: spread.meanMm,
                  passes: K,
                  keep,
                  definition: 'per pixel sqrt(var_x + var_y) of the displacement (mm) over the noisy passes',
                },
              }
            : {}),
          ...(fallback
            ? {
                fallback: 'identity',
                fallbackReason: `the registered frame's MSE ${fallback.mseRegistered.toPrecision(4)} was above the unregistered pair's ${fallback.mseIdentity.toPrecision(4)} (normalised intensities)`,
              }
            : {}),
          steps: sequence.length,
          units: R2N2_PARAMS_UNITS,
          ...(rf ? { refine: { iterations: rf.iterations, accepted: rf.accepted, mseBefore: rf.before, mseAfter: rf.after, network: Array.from(net) } } : {}),
          ...(fa !== 'none'
            ? {
                flipAverage: fa,
                passes: flips,
                passSteps,
                passesNote: 'rows are the passes one after another, mapped back to this image, weights divided by the number of passes',
              }
            : {}),
          affine,
          sequence,
        },
      };
    });
  }
}

/**
 * The spread of K fields (`[2, H, W]` normalised each) as mm on `g`: per pixel √(var_x + var_y)
 * of the physical displacement over the fields (population variance), and its mean over pixels.
 */
export function displacementSpread(fields: Float32Array[], g: Geometry): { std: Float32Array; meanMm: number } {
  const phys = fields.map((f) => fieldFromNormalised(f, g).data);
  const N = g.size[0] * g.size[1];
  const std = new Float32Array(N);
  let total = 0;
  for (let p = 0; p < N; p++) {
    let sx = 0,
      sy = 0,
      qx = 0,
      qy = 0;
    for (const d of phys) {
      sx += d[2 * p];
      sy += d[2 * p + 1];
      qx += d[2 * p] ** 2;
      qy += d[2 * p + 1] ** 2;
    }
    const k = phys.length;
    const v = Math.max(0, qx / k - (sx / k) ** 2) + Math.max(0, qy / k - (sy / k) ** 2);
    std[p] = Math.sqrt(v);
    total += std[p];
  }
  return { std, meanMm: N ? total / N : 0 };
}

/**
 * The full-resolution never-worse check: the MSE of the fixed frame against the moving frame
 * warped by `field` (`[2, H, W]` normalised) and against the unwarped moving frame, both over the
 * same pixels, those the field maps inside the moving frame (a field that pushes badly matched
 * pixels out of view gains nothing by it); both frames normalised. Returns the two when the
 * registered one is larger (the frame is then written as the identity), else null.
 */
export function worseThanNone(
  fixed: Float32Array,
  moving: Float32Array,
  H: number,
  W: number,
  field: Float32Array,
): { mseIdentity: number; mseRegistered: number } | null {
  const w = warpSamples(moving, H, W, field);
  const after = maskedMseArrays(fixed, w.out, w.mask);
  const before = maskedMseArrays(fixed, moving, w.mask);
  return after > before ? { mseIdentity: before, mseRegistered: after } : null;
}
