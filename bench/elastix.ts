// elastix (via @itk-wasm/elastix, a devDependency) as the comparison method of the benchmarks.
// Its field comes from transformix applied to images holding the x and y physical coordinates
// of the moving grid (linear interpolation is exact on them): T(p) at every fixed pixel, u = T(p) − p.
import { elastixNode, transformixNode, defaultParameterMapNode } from '@itk-wasm/elastix';
import type { JsonCompatible } from 'itk-wasm';
import { image2DToItk, type Image2D } from '../dist/io/image.js';
import { indexToPhysical, type Geometry } from '../dist/core/image/geometry.js';
import type { MethodResult } from './common.js';

/** An elastix parameter map: key → values (all strings). */
export type ParameterMap = Record<string, string[]>;

/** The tuned B-spline map (docs/backends.md): MSE, fixed iterations, random samples, final grid in mm. */
export async function bsplineMap({ resolutions = 3, gridMm = 16, iterations = 500, samples = 4096 } = {}): Promise<ParameterMap> {
  const { parameterMap } = await defaultParameterMapNode('bspline', { numberOfResolutions: resolutions, finalGridSpacing: gridMm });
  const m: ParameterMap = { ...(parameterMap as ParameterMap) };
  for (const k of Object.keys(m)) if (/^Metric\d+Weight$/.test(k)) delete m[k];
  m.Registration = ['MultiResolutionRegistration'];
  m.Metric = ['AdvancedMeanSquares'];
  m.MaximumNumberOfIterations = [String(iterations)];
  m.NumberOfSpatialSamples = [String(samples)];
  m.WriteResultImage = ['false'];
  return m;
}

/**
 * The maps an experienced elastix user would try beyond the generic one (../shared/docs/PEERS.md):
 * normalised correlation or Mattes MI, 1000 iterations, 10000 random samples, a 16 or 8 mm grid,
 * with or without an affine stage first. `npm run bench -- real` runs each as method
 * `elastix:NAME`; the best is chosen on the tune half.
 */
export async function strongMaps(): Promise<Record<string, ParameterMap[]>> {
  const strong = async (metric: string, gridMm: number) => ({
    ...(await bsplineMap({ gridMm, iterations: 1000, samples: 10000 })),
    Metric: [metric],
  });
  const ncc = await strong('AdvancedNormalizedCorrelation', 16);
  return {
    ncc: [ncc],
    ncc8: [await strong('AdvancedNormalizedCorrelation', 8)],
    mi: [await strong('AdvancedMattesMutualInformation', 16)],
    'affine-ncc': [{ ...(await affineMap({ iterations: 1000, samples: 10000 })), Metric: ['AdvancedNormalizedCorrelation'] }, ncc],
  };
}

/** The tuned affine map: MSE, 3 resolutions, fixed iterations, random samples. */
export async function affineMap({ resolutions = 3, iterations = 500, samples = 4096 } = {}): Promise<ParameterMap> {
  const { parameterMap } = await defaultParameterMapNode('affine', { numberOfResolutions: resolutions });
  const m: ParameterMap = { ...(parameterMap as ParameterMap) };
  m.Metric = ['AdvancedMeanSquares'];
  m.MaximumNumberOfIterations = [String(iterations)];
  m.NumberOfSpatialSamples = [String(samples)];
  m.WriteResultImage = ['false'];
  return m;
}

function coordinateImages(g: Geometry): [Image2D, Image2D] {
  const [W, H] = g.size;
  const x = new Float32Array(W * H);
  const y = new Float32Array(W * H);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      const p = indexToPhysical(g, [j, i]);
      x[i * W + j] = p[0];
      y[i * W + j] = p[1];
    }
  return [
    { geometry: g, data: x },
    { geometry: g, data: y },
  ];
}

/**
 * Registers moving to fixed with elastix (the maps run one after the other); returns the physical
 * field (interleaved mm), the registration seconds (elastix only) and the parameter count.
 */
export async function elastixRegister(fixed: Image2D, moving: Image2D, maps: ParameterMap[]): Promise<MethodResult> {
  const t0 = performance.now();
  const { transformParameterObject } = await elastixNode(maps as unknown as JsonCompatible, { fixed: image2DToItk(fixed), moving: image2DToItk(moving) });
  const seconds = (performance.now() - t0) / 1000;
  const tpo = (transformParameterObject as unknown as ParameterMap[]).map((m) => ({
    ...m,
    FinalBSplineInterpolationOrder: ['1'],
    ResultImagePixelType: ['float'],
    DefaultPixelValue: ['NaN'],
  }));
  const [cx, cy] = coordinateImages(moving.geometry);
  const tx = (await transformixNode(image2DToItk(cx), tpo as unknown as JsonCompatible)).result.data as Float32Array;
  const ty = (await transformixNode(image2DToItk(cy), tpo as unknown as JsonCompatible)).result.data as Float32Array;
  const g = fixed.geometry;
  const [W, H] = g.size;
  const data = new Float32Array(2 * W * H);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      const p = indexToPhysical(g, [j, i]);
      const k = i * W + j;
      data[2 * k] = tx[k] - p[0];
      data[2 * k + 1] = ty[k] - p[1];
    }
  const parameters = (transformParameterObject as unknown as ParameterMap[]).reduce((a, m) => a + Number(m.NumberOfParameters?.[0] ?? 0), 0);
  return { field: { geometry: g, data }, seconds, parameters };
}
