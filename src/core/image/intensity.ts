/** Intensity normalisation before registration (docs/method.md): z-score, then clamp. */
import { percentileWindow } from '../qc/render.js';

/**
 * `(x − mean)/std` clamped to `[−clamp, clamp]` (default 2, the reference code's), over all
 * pixels; a constant image becomes all zeros. Returns a new array.
 */
export function normaliseIntensity(data: ArrayLike<number>, clamp = 2): Float32Array {
  const n = data.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += data[i];
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (data[i] - mean) ** 2;
  const std = Math.sqrt(v / n);
  const out = new Float32Array(n);
  if (!(std > 0)) return out;
  for (let i = 0; i < n; i++) out[i] = Math.min(clamp, Math.max(-clamp, (data[i] - mean) / std));
  return out;
}

/** What a network sees of an image, to tell whether a series resembles a model's training data. */
export interface ImageStatistics {
  /** Millimetres per pixel of the network's image (the longer side of the field of view / netSize). */
  mmPerNetPixel: number;
  /** Fraction of pixels at the clamp after `normaliseIntensity` (bright or dark tails). */
  clampedFraction: number;
  /** Skewness of the normalised intensities (e.g. a dark background with bright anatomy > 0). */
  skewness: number;
}

/** `ImageStatistics` of a `[H, W]` image with pixel spacing `[sx, sy]` mm, for a network of `netSize` pixels. */
export function imageStatistics(data: ArrayLike<number>, W: number, H: number, spacing: [number, number], netSize: number): ImageStatistics {
  const z = normaliseIntensity(data);
  let clamped = 0;
  let m = 0;
  for (const v of z) {
    if (Math.abs(v) >= 2) clamped++;
    m += v;
  }
  m /= z.length;
  let m2 = 0;
  let m3 = 0;
  for (const v of z) {
    m2 += (v - m) ** 2;
    m3 += (v - m) ** 3;
  }
  m2 /= z.length;
  m3 /= z.length;
  return { mmPerNetPixel: Math.max(W * spacing[0], H * spacing[1]) / netSize, clampedFraction: clamped / z.length, skewness: m2 > 0 ? m3 / m2 ** 1.5 : 0 };
}

/** The range `[min, max]` of each statistic over several images. */
export type StatisticsRange = { [K in keyof ImageStatistics]: [number, number] };

export function statisticsRange(all: ImageStatistics[]): StatisticsRange {
  const r = (k: keyof ImageStatistics): [number, number] => [Math.min(...all.map((s) => s[k])), Math.max(...all.map((s) => s[k]))];
  return { mmPerNetPixel: r('mmPerNetPixel'), clampedFraction: r('clampedFraction'), skewness: r('skewness') };
}

/**
 * How `s` lies outside a training range (pixel size beyond ×1.5 either way, clamped fraction
 * beyond ±0.05, skewness beyond ±0.75): one phrase per statistic, empty when it looks alike.
 */
export function unlikeTraining(s: ImageStatistics, range: StatisticsRange): string[] {
  const out: string[] = [];
  const f = (v: number) => v.toFixed(2);
  const [p0, p1] = range.mmPerNetPixel;
  if (s.mmPerNetPixel < p0 / 1.5 || s.mmPerNetPixel > p1 * 1.5) out.push(`${f(s.mmPerNetPixel)} mm per network pixel (trained ${f(p0)}–${f(p1)})`);
  const [c0, c1] = range.clampedFraction;
  if (s.clampedFraction < c0 - 0.05 || s.clampedFraction > c1 + 0.05)
    out.push(`${f(100 * s.clampedFraction)}% of the pixels at the intensity clamp (trained ${f(100 * c0)}–${f(100 * c1)}%)`);
  const [k0, k1] = range.skewness;
  if (s.skewness < k0 - 0.75 || s.skewness > k1 + 0.75) out.push(`intensity skewness ${f(s.skewness)} (trained ${f(k0)}–${f(k1)})`);
  return out;
}

/**
 * The image's noise as a fraction of its 1st–99th percentile range (the unit of `simulate
 * --noise`): Immerkær's estimate (Fast noise variance estimation, CVIU 1996), the mean absolute
 * response to the Laplacian difference mask [1 −2 1; −2 4 −2; 1 −2 1] (which cancels any local
 * plane and most of smooth structure) times √(π/2)/6 over the inner pixels of `[H, W]`. Fine
 * texture counts as noise in part: a floor, not a measurement of the scanner. 0 for a flat image.
 */
export function noiseLevel(data: ArrayLike<number>, W: number, H: number): number {
  if (W < 3 || H < 3) return 0;
  const [lo, hi] = percentileWindow(data);
  if (!(hi > lo)) return 0;
  let s = 0;
  for (let i = 1; i < H - 1; i++)
    for (let j = 1; j < W - 1; j++) {
      const k = i * W + j;
      const r =
        data[k - W - 1] -
        2 * data[k - W] +
        data[k - W + 1] -
        2 * data[k - 1] +
        4 * data[k] -
        2 * data[k + 1] +
        data[k + W - 1] -
        2 * data[k + W] +
        data[k + W + 1];
      s += Math.abs(r);
    }
  return (Math.sqrt(Math.PI / 2) * s) / (6 * (W - 2) * (H - 2)) / (hi - lo);
}
