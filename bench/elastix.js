// elastix (via @itk-wasm/elastix, a devDependency) as the comparison method of the benchmarks.
// Its field comes from transformix applied to images holding the x and y physical coordinates
// of the moving grid (linear interpolation is exact on them): T(p) at every fixed pixel, u = T(p) − p.
import { elastixNode, transformixNode, defaultParameterMapNode } from '@itk-wasm/elastix';
import { image2DToItk } from '../dist/io/image.js';
import { indexToPhysical } from '../dist/core/image/geometry.js';

/** The tuned B-spline map (docs/backends.md): MSE, fixed iterations, random samples, final grid in mm. */
export async function bsplineMap({ resolutions = 3, gridMm = 16, iterations = 500, samples = 4096 } = {}) {
  const { parameterMap } = await defaultParameterMapNode('bspline', { numberOfResolutions: resolutions, finalGridSpacing: gridMm });
  const m = { ...parameterMap };
  for (const k of Object.keys(m)) if (/^Metric\d+Weight$/.test(k)) delete m[k];
  m.Registration = ['MultiResolutionRegistration'];
  m.Metric = ['AdvancedMeanSquares'];
  m.MaximumNumberOfIterations = [String(iterations)];
  m.NumberOfSpatialSamples = [String(samples)];
  m.WriteResultImage = ['false'];
  return m;
}

/** The tuned affine map: MSE, 3 resolutions, fixed iterations, random samples. */
export async function affineMap({ resolutions = 3, iterations = 500, samples = 4096 } = {}) {
  const { parameterMap } = await defaultParameterMapNode('affine', { numberOfResolutions: resolutions });
  const m = { ...parameterMap };
  m.Metric = ['AdvancedMeanSquares'];
  m.MaximumNumberOfIterations = [String(iterations)];
  m.NumberOfSpatialSamples = [String(samples)];
  m.WriteResultImage = ['false'];
  return m;
}

function coordinateImages(g) {
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
 * Registers moving to fixed (Image2D each) with elastix; returns the physical field
 * (DisplacementField, interleaved mm), the registration seconds (elastix only) and the
 * parameter count.
 */
export async function elastixRegister(fixed, moving, maps) {
  const t0 = performance.now();
  const { transformParameterObject } = await elastixNode(maps, { fixed: image2DToItk(fixed), moving: image2DToItk(moving) });
  const seconds = (performance.now() - t0) / 1000;
  const tpo = transformParameterObject.map((m) => ({
    ...m,
    FinalBSplineInterpolationOrder: ['1'],
    ResultImagePixelType: ['float'],
    DefaultPixelValue: ['NaN'],
  }));
  const [cx, cy] = coordinateImages(moving.geometry);
  const tx = (await transformixNode(image2DToItk(cx), tpo)).result.data;
  const ty = (await transformixNode(image2DToItk(cy), tpo)).result.data;
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
  const parameters = transformParameterObject.reduce((a, m) => a + Number(m.NumberOfParameters?.[0] ?? 0), 0);
  return { field: { geometry: g, data }, seconds, parameters };
}
