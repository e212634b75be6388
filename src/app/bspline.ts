/** `baseline bspline` as a Registrar for app/run-frames.ts. */
import { UserError } from '../errors.js';
import type { Image2D } from '../io/image.js';
import { type MaskSet, maskFor } from '../io/masks.js';
import { type BsplineOptions, autoFinestSigma, checkOptions, perLevel, registerBspline } from '../bspline/register.js';
import type { Registrar } from './registrar.js';
import { AFFINE_DEFAULTS, AFFINE_PARAMETERS } from '../core/transformation/affine.js';
import { activeCompute } from '../backend/compute.js';

export const BSPLINE_PARAMS_UNITS =
  'control-point displacements in normalised units ([-1, 1] across the image, align-corners: one pixel = 2/(n-1)); x and y are [cpH, cpW] row-major per level; the dense field of a level is By·P·Bxᵀ (docs/method.md), levels add up';

/**
 * `masks`: the fixed-frame mask and the moving frames' masks (io/masks.ts); the similarity counts
 * only at fixed pixels inside the fixed mask that map inside the moving frame's mask.
 */
export function bsplineRegistrar(options: BsplineOptions, masks: { fixed?: MaskSet | null; moving?: MaskSet | null } = {}): Registrar {
  try {
    checkOptions(options);
  } catch (err) {
    throw new UserError(`${(err as Error).message} (see r2n2 baseline bspline --help)`);
  }
  const { onIteration: _unused, ...settings } = options;
  const units =
    Array.from({ length: options.levels }, (_, l) => perLevel(options.iterations, l, 'iterations')).reduce((a, b) => a + b, 0) +
    (options.init && options.init !== 'none' ? (options.initIterations ?? AFFINE_DEFAULTS.iterations).reduce((a, b) => a + b, 0) : 0);
  return {
    method: 'bspline',
    // the automatic blur is named in the settings; each frame's params record the σ it used
    settings: {
      ...settings,
      finestSigma: options.finestSigma ?? 'auto',
      ...(masks.fixed ? { fixedMask: masks.fixed.file } : {}),
      ...(masks.moving ? { movingMask: masks.moving.file } : {}),
    } as unknown as Record<string, unknown>,
    unitsPerFrame: units,
    async register(fixed: Image2D, moving: Image2D, tick, frame) {
      const [W, H] = fixed.geometry.size;
      const fixedMask = masks.fixed ? maskFor(masks.fixed, fixedName(masks.fixed), fixed.geometry, 'fixed') : null;
      const movingMask = masks.moving ? maskFor(masks.moving, frame ?? '', moving.geometry, 'moving') : null;
      const r = registerBspline(
        fixed.data,
        moving.data,
        H,
        W,
        {
          ...options,
          fixedMask,
          movingMask,
          onIteration: ({ level, iteration, loss }) =>
            tick(`${level < 0 ? options.init : `level ${level + 1}/${options.levels}`} it ${iteration + 1} loss ${loss.toPrecision(4)}`),
          compute: activeCompute(),
        },
        fixed.geometry,
      );
      const levels = r.levels.map((l) => {
        const n = l.controlGrid[0] * l.controlGrid[1];
        return {
          size: l.size,
          factor: l.factor,
          spacing: l.spacing,
          controlGrid: l.controlGrid,
          iterations: l.iterations,
          finalLoss: l.finalLoss,
          x: Array.from(l.params.subarray(0, n)),
          y: Array.from(l.params.subarray(n, 2 * n)),
        };
      });
      const affine = r.affine
        ? {
            ...r.affine,
            parameters: AFFINE_PARAMETERS[r.affine.kind],
            convention: 'T(p) = matrix·(p − centre) + centre + translation, p in mm (fixed → moving); the B-spline levels add to its field',
          }
        : null;
      return {
        field: r.field,
        parameters: r.parameters,
        finalLoss: r.finalLoss,
        params: {
          order: options.order,
          finestSigma: options.finestSigma ?? autoFinestSigma(W, H) * (r.adaptation?.sigmaFactor ?? 1),
          // the noise estimate and what it changed (--no-noise-adaptive: absent)
          noiseAdaptation: r.adaptation ?? null,
          units: BSPLINE_PARAMS_UNITS,
          affine,
          levels,
        },
      };
    },
  };
}

/** The fixed mask is one image (a series of masks gives its single frame). */
function fixedName(set: MaskSet): string {
  const names = Object.keys(set.frames);
  if (set.single || names.length === 1) return names[0] ?? '';
  throw new UserError(`--fixed-mask ${set.file} holds ${names.length} masks; give the fixed frame's mask as one image`);
}
