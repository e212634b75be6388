/** Summary statistics of a sample, as TRE tables report them. */
export interface Summary {
  n: number;
  mean: number;
  /** Population standard deviation (divide by n), as numpy.std's default. */
  std: number;
  median: number;
  /** 90th percentile with linear interpolation between order statistics (numpy's default). */
  p90: number;
  max: number;
  min: number;
}

/** Percentile `q` in [0, 100] of an ascending-sorted array, linear interpolation (numpy "linear"). */
export function percentileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = ((n - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Summary of a sample; all fields NaN for an empty sample. */
export function summarize(values: ArrayLike<number>): Summary {
  const n = values.length;
  if (n === 0) return { n: 0, mean: NaN, std: NaN, median: NaN, p90: NaN, max: NaN, min: NaN };
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += s[i];
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (s[i] - mean) ** 2;
  return {
    n,
    mean,
    std: Math.sqrt(ss / n),
    median: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    max: s[n - 1],
    min: s[0],
  };
}
