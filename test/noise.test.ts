/** The noise estimate that the B-spline's adaptive defaults read (core/image/intensity noiseLevel). */
import { noiseLevel } from '../src/core/image/intensity.js';
import { NOISE_RULE, noiseAdaptation } from '../src/bspline/register.js';
import { gauss } from '../src/core/random.js';
import seedrandom from 'seedrandom';

/** A smooth 128² image (a few broad blobs and a ramp) over [0, 1]-ish, no noise. */
function smooth(W = 128, H = 128): Float32Array {
  const d = new Float32Array(W * H);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++)
      d[i * W + j] = 0.3 * (j / W) + Math.exp(-((i - 40) ** 2 + (j - 50) ** 2) / 400) + 0.6 * Math.exp(-((i - 90) ** 2 + (j - 80) ** 2) / 300);
  return d;
}

function range(d: Float32Array): number {
  const s = Float32Array.from(d).sort();
  return s[Math.floor(0.99 * (s.length - 1))] - s[Math.floor(0.01 * (s.length - 1))];
}

test('a smooth image has (nearly) no noise; added Gaussian noise is found at its level, in units of the 1st–99th percentile range', () => {
  const clean = smooth();
  expect(noiseLevel(clean, 128, 128)).toBeLessThan(0.002);
  const r = range(clean);
  for (const level of [0.01, 0.03, 0.06]) {
    const rng = seedrandom(`noise-${level}`);
    const noisy = clean.map((v) => v + level * r * gauss(rng));
    const est = noiseLevel(noisy, 128, 128);
    // the range itself grows a little with the noise: within 15%
    expect(Math.abs(est - level) / level).toBeLessThan(0.15);
  }
});

test('scale and offset do not change it; a flat or tiny image is 0', () => {
  const rng = seedrandom('noise-scale');
  const d = smooth().map((v) => v + 0.02 * gauss(rng));
  const a = noiseLevel(d, 128, 128);
  expect(
    noiseLevel(
      d.map((v) => 1000 * v - 7),
      128,
      128,
    ),
  ).toBeCloseTo(a, 4);
  expect(noiseLevel(new Float32Array(64 * 64).fill(3), 64, 64)).toBe(0);
  expect(noiseLevel(new Float32Array([1, 2, 3, 4]), 2, 2)).toBe(0);
});

test("the B-spline's noise rule: clean images keep λ and ⅔ of the size rule's σ, noisy ones 3λ and all of it, linear between", () => {
  const clean = smooth();
  const r = range(clean);
  const at = (level: number) => {
    const rng = seedrandom(`rule-${level}`);
    return noiseAdaptation(
      clean,
      clean.map((v) => v + level * r * gauss(rng)),
      128,
      128,
    );
  };
  expect(at(0)).toMatchObject({ lambdaFactor: 1, sigmaFactor: NOISE_RULE.sigmaMin });
  expect(at(0.08)).toMatchObject({ lambdaFactor: NOISE_RULE.lambdaMax, sigmaFactor: 1 });
  // the larger of the two images' noise decides, in between the factors follow t
  const mid = at(0.035);
  const t = (mid.noise - NOISE_RULE.from) / (NOISE_RULE.to - NOISE_RULE.from);
  expect(t).toBeGreaterThan(0.2);
  expect(t).toBeLessThan(0.8);
  expect(mid.lambdaFactor).toBeCloseTo(1 + (NOISE_RULE.lambdaMax - 1) * t, 10);
  expect(mid.sigmaFactor).toBeCloseTo(NOISE_RULE.sigmaMin + (1 - NOISE_RULE.sigmaMin) * t, 10);
});
