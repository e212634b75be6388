/**
 * The fixed frame of a series: the frame closest to the series mean.
 *
 * - `image` (default): smallest mean squared difference to the mean image of the series.
 * - `intensity`: mean intensity closest to the series' mean intensity (the R2N2 reference
 *   code's rule).
 *
 * Frames come through `frame(i)` so the series is streamed (two passes), never held whole.
 */
export type FixedFrameCriterion = 'image' | 'intensity';

export interface FixedFrameChoice {
  index: number;
  /** Per-frame distance to the mean under the criterion (MSE or |Δ mean intensity|). */
  distances: number[];
}

export async function chooseFixedFrame(
  count: number,
  frame: (i: number) => Promise<Float32Array>,
  criterion: FixedFrameCriterion = 'image',
): Promise<FixedFrameChoice> {
  if (count < 1) throw new Error('empty series');
  const distances: number[] = [];
  if (criterion === 'intensity') {
    const means: number[] = [];
    for (let i = 0; i < count; i++) {
      const d = await frame(i);
      let s = 0;
      for (let k = 0; k < d.length; k++) s += d[k];
      means.push(s / d.length);
    }
    const overall = means.reduce((a, b) => a + b, 0) / count;
    for (const m of means) distances.push(Math.abs(m - overall));
  } else {
    let mean: Float64Array | null = null;
    for (let i = 0; i < count; i++) {
      const d = await frame(i);
      if (!mean) mean = new Float64Array(d.length);
      for (let k = 0; k < d.length; k++) mean[k] += d[k];
    }
    const m = mean as Float64Array;
    for (let k = 0; k < m.length; k++) m[k] /= count;
    for (let i = 0; i < count; i++) {
      const d = await frame(i);
      let s = 0;
      for (let k = 0; k < d.length; k++) s += (d[k] - m[k]) ** 2;
      distances.push(s / d.length);
    }
  }
  let index = 0;
  for (let i = 1; i < count; i++) if (distances[i] < distances[index]) index = i;
  return { index, distances };
}
