import { refineObjective, refineSequence, solveSpd, imageGradient, limitFolding } from '../src/core/r2n2/refine.js';
import { sequenceAt, sequenceField } from '../src/core/transformation/gaussian.js';

// A smooth analytic image (pixel coordinates) and a pair made from it with a known sequence:
// F(p) = M(p + u(p)) exactly, M sampled on the grid.
const N = 48;
const image = (x: number, y: number) =>
  Math.exp(-((x - 18) ** 2 + (y - 20) ** 2) / 90) - 0.8 * Math.exp(-((x - 31) ** 2 + (y - 29) ** 2) / 60) + 0.3 * Math.sin(x / 7) * Math.cos(y / 9);
const TRUE = [0.1, -0.2, 0.3, 0.2, 0.15, -0.1, 0.5, -0.3, 0.25, 0.25, 0.35, -0.12, 0.08, 1.2];

function pair(seq: number[], n = N, img = image) {
  const M = new Float32Array(n * n);
  const F = new Float32Array(n * n);
  const s = (n - 1) / 2;
  const k = (N - 1) / (n - 1); // the same scene at another sampling
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      M[i * n + j] = img(j * k, i * k);
      const [ux, uy] = sequenceAt(seq, j / s - 1, i / s - 1);
      F[i * n + j] = img((j + ux * s) * k, (i + uy * s) * k);
    }
  }
  return { F, M };
}

const perturbed = () => TRUE.map((v, i) => (i % 7 < 2 ? v + 0.04 : i % 7 < 4 ? v * 1.2 : i % 7 < 6 ? v * 0.6 : v + 0.2));

function fieldError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const fa = sequenceField(a, N, N);
  const fb = sequenceField(b, N, N);
  let s = 0;
  for (let p = 0; p < N * N; p++) s += Math.hypot(fa[p] - fb[p], fa[N * N + p] - fb[N * N + p]);
  return ((s / (N * N)) * (N - 1)) / 2; // mean, pixels
}

describe('refineSequence (Levenberg–Marquardt on the Gaussian sequence)', () => {
  // finite differences of the cost in the solver's parameters (σ through ln σ)
  function finiteDifferences(F: Float32Array, M: Float32Array, start: number[]): Float64Array {
    const fd = new Float64Array(start.length);
    const h = 1e-4;
    for (let u = 0; u < start.length; u++) {
      const at = (d: number) => {
        const q = start.slice();
        q[u] = u % 7 === 2 || u % 7 === 3 ? q[u] * Math.exp(d) : q[u] + d;
        return refineObjective(F, M, N, N, q, 1e-12).cost;
      };
      fd[u] = (at(h) - at(-h)) / (2 * h);
    }
    return fd;
  }

  test('the gradient is exact on a linear image (where central differences are the derivative)', () => {
    const { F, M } = pair(TRUE, N, (x, y) => 0.05 * x - 0.03 * y + 1);
    const start = perturbed();
    const { gradient } = refineObjective(F, M, N, N, start, 1e-12);
    const fd = finiteDifferences(F, M, start);
    const big = Math.max(...Array.from(fd, Math.abs));
    expect(Math.min(...Array.from(fd, Math.abs))).toBeGreaterThan(1e-3 * big); // every parameter matters
    fd.forEach((v, u) => expect(Math.abs(gradient[u] - v)).toBeLessThan(1e-4 * big));
  });

  test('on a curved image the gradient matches central differences up to the image gradient; JᵀJ is symmetric', () => {
    const { F, M } = pair(TRUE);
    const start = perturbed();
    const { cost, gradient, normal } = refineObjective(F, M, N, N, start, 1e-12);
    expect(cost).toBeGreaterThan(0);
    const fd = finiteDifferences(F, M, start);
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let u = 0; u < fd.length; u++) {
      dot += fd[u] * gradient[u];
      na += fd[u] ** 2;
      nb += gradient[u] ** 2;
    }
    // the image gradient is the interpolated central difference, not the bilinear kernel's own
    // derivative: equal up to the image's curvature
    expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.999);
    expect(Math.sqrt(nb / na)).toBeCloseTo(1, 1);
    const P = start.length;
    for (let u = 0; u < P; u++) {
      expect(normal[u * P + u]).toBeGreaterThanOrEqual(0);
      for (let v = 0; v < P; v++) expect(normal[u * P + v]).toBe(normal[v * P + u]);
    }
  });

  test('recovers a known sequence from a perturbed start; the cost never rises', () => {
    const { F, M } = pair(TRUE);
    const start = perturbed();
    const before = fieldError(start, TRUE);
    const r = refineSequence(F, M, N, N, start, { iterations: 40 });
    expect(r.sequence).toHaveLength(14);
    expect(r.after).toBeLessThan(r.before / 100);
    expect(r.accepted).toBeGreaterThan(3);
    expect(before).toBeGreaterThan(0.2); // pixels, mean over the image
    expect(fieldError(r.sequence, TRUE)).toBeLessThan(before / 10);
    for (let k = 6; k < 14; k += 7) {
      expect(r.sequence[k]).toBeGreaterThanOrEqual(0);
      expect(r.sequence[k]).toBeLessThan(Math.PI);
    }
    // fewer iterations: never a higher cost than where it started, and no better than more
    for (const it of [1, 3, 10]) {
      const q = refineSequence(F, M, N, N, start, { iterations: it });
      expect(q.after).toBeLessThanOrEqual(q.before);
      expect(q.after).toBeGreaterThanOrEqual(r.after);
    }
  });

  test('normalStride: JᵀJ from every s-th pixel per axis; cost and gradient unchanged; still recovers the sequence', () => {
    const { F, M } = pair(TRUE);
    const start = perturbed();
    const full = refineObjective(F, M, N, N, start, 1e-12, 1);
    const half = refineObjective(F, M, N, N, start, 1e-12, 2);
    expect(half.cost).toBe(full.cost);
    expect(Array.from(half.gradient)).toEqual(Array.from(full.gradient));
    // a sample of the pixels: the same mean outer product, near but not equal
    const P = start.length;
    let d = 0;
    let n = 0;
    for (let u = 0; u < P * P; u++) {
      d += (half.normal[u] - full.normal[u]) ** 2;
      n += full.normal[u] ** 2;
    }
    expect(Math.sqrt(d / n)).toBeGreaterThan(1e-6);
    expect(Math.sqrt(d / n)).toBeLessThan(0.1);
    for (let u = 0; u < P; u++) for (let v = 0; v < P; v++) expect(half.normal[u * P + v]).toBe(half.normal[v * P + u]);
    // one pixel in four along each axis of a 48² image: 12² = 144 samples, still enough here
    for (const normalStride of [1, 2, 4]) {
      const r = refineSequence(F, M, N, N, start, { iterations: 40, normalStride });
      expect(r.after).toBeLessThan(r.before / 100);
      expect(fieldError(r.sequence, TRUE)).toBeLessThan(fieldError(start, TRUE) / 10);
    }
    for (const bad of [0, 1.5]) expect(() => refineSequence(F, M, N, N, start, { normalStride: bad })).toThrow(/normalStride/);
  });

  test('maxSize refines on a reduced pair and still recovers the sequence', () => {
    const { F, M } = pair(TRUE);
    const start = perturbed();
    const r = refineSequence(F, M, N, N, start, { iterations: 40, maxSize: 24 });
    expect(fieldError(r.sequence, TRUE)).toBeLessThan(fieldError(start, TRUE) / 3);
    expect(() => refineSequence(F, M, N, N, start, { maxSize: 1 })).toThrow(/maxSize/);
  });

  test('fineIterations: coarse to fine ends closer to the truth than the reduced size alone, costs at full size', () => {
    const { F, M } = pair(TRUE);
    const start = perturbed();
    const coarse = refineSequence(F, M, N, N, start, { iterations: 40, maxSize: 16 });
    const fine = refineSequence(F, M, N, N, start, { iterations: 40, maxSize: 16, fineIterations: 10 });
    // the coarse stage is the same; the fine one starts from it
    const again = refineSequence(F, M, N, N, coarse.sequence, { iterations: 10 });
    expect(Array.from(fine.sequence)).toEqual(Array.from(again.sequence));
    expect(fine.iterations).toBe(coarse.iterations + again.iterations);
    expect(fine.accepted).toBe(coarse.accepted + again.accepted);
    // before and after are the full size's
    const costAt = (q: ArrayLike<number>) => refineSequence(F, M, N, N, q, { iterations: 0 }).before;
    expect(fine.before).toBe(costAt(start));
    expect(fine.after).toBe(again.after);
    expect(fine.after).toBeLessThan(costAt(coarse.sequence));
    expect(fieldError(fine.sequence, TRUE)).toBeLessThan(fieldError(coarse.sequence, TRUE));
    // at the frames' size already: nothing to continue, the same as without
    const atFull = refineSequence(F, M, N, N, start, { iterations: 5, fineIterations: 10 });
    expect(Array.from(atFull.sequence)).toEqual(Array.from(refineSequence(F, M, N, N, start, { iterations: 5 }).sequence));
    for (const bad of [-1, 0.5]) expect(() => refineSequence(F, M, N, N, start, { fineIterations: bad })).toThrow(/fineIterations/);
  });

  test('0 iterations return the sequence unchanged; bad input is an error', () => {
    const { F, M } = pair(TRUE);
    const start = perturbed();
    const r = refineSequence(F, M, N, N, start, { iterations: 0 });
    expect(Array.from(r.sequence)).toEqual(Array.from(Float32Array.from(start)));
    expect(r.after).toBe(r.before);
    expect(() => refineSequence(F, M, N, N, start.slice(0, 6))).toThrow(/multiple of 7/);
    expect(() => refineSequence(F, M.subarray(1), N, N, start)).toThrow(/48×48/);
    expect(() => refineSequence(F, M, N, N, start, { iterations: 1.5 })).toThrow(/whole number/);
    // an empty sequence has nothing to refine
    expect(refineSequence(F, M, N, N, []).sequence).toHaveLength(0);
  });

  test('limitFolding: one Gaussian alone never takes det J below minDet, and the bound is tight', () => {
    // det J of a sequence's field on a fine grid (central differences, normalised units)
    const minDetOf = (seq: ArrayLike<number>, n: number) => {
      const u = sequenceField(seq, n, n);
      const h = 2 / (n - 1);
      let m = Infinity;
      for (let i = 1; i < n - 1; i++) {
        for (let j = 1; j < n - 1; j++) {
          const p = i * n + j;
          const uxx = (u[p + 1] - u[p - 1]) / (2 * h);
          const uxy = (u[p + n] - u[p - n]) / (2 * h);
          const uyx = (u[n * n + p + 1] - u[n * n + p - 1]) / (2 * h);
          const uyy = (u[n * n + p + n] - u[n * n + p - n]) / (2 * h);
          m = Math.min(m, (1 + uxx) * (1 + uyy) - uxy * uyx);
        }
      }
      return m;
    };
    const toTh = (q: number[]) => Float64Array.from(q.map((v, i) => (i % 7 === 2 || i % 7 === 3 ? Math.log(v) : v)));
    const fromTh = (t: Float64Array) => Array.from(t, (v, i) => (i % 7 === 2 || i % 7 === 3 ? Math.exp(v) : v));
    // a needle: σ 0.05 × 0.1, rotated, weight 0.4 (folds: det J ≈ −3.7)
    const needle = [0.1, -0.1, 0.05, 0.1, 0.3, -0.25, 0.7];
    expect(minDetOf(needle, 401)).toBeLessThan(-2);
    const th = toTh(needle);
    expect(limitFolding(th, 0.5)).toBe(1);
    const limited = fromTh(th);
    expect(minDetOf(limited, 401)).toBeCloseTo(0.5, 2);
    expect(limited[4] / limited[5]).toBeCloseTo(0.3 / -0.25, 10); // direction kept
    // the true sequence of the tests above is left alone
    // refineSequence starts from and keeps to the limit (a needle added to the perturbed start)
    const { F, M } = pair(TRUE);
    const r = refineSequence(F, M, N, N, [...perturbed(), ...needle], { iterations: 10 });
    expect(limitFolding(toTh(Array.from(r.sequence)), 0.49)).toBe(0);
    expect(minDetOf(r.sequence, 201)).toBeGreaterThan(0);
    const t2 = toTh(TRUE);
    expect(limitFolding(t2, 0.5)).toBe(0);
    expect(
      fromTh(t2)
        .map((v, i) => v - TRUE[i])
        .every((d) => Math.abs(d) < 1e-12),
    ).toBe(true);
  });

  test('helpers: Cholesky solve and the central-difference gradient', () => {
    const S = Float64Array.from([4, 2, 0, 2, 5, 1, 0, 1, 3]);
    const x = solveSpd(S, Float64Array.from([2, 1, 4]), 3)!;
    const back = [0, 1, 2].map((i) => S[3 * i] * x[0] + S[3 * i + 1] * x[1] + S[3 * i + 2] * x[2]);
    back.forEach((v, i) => expect(v).toBeCloseTo([2, 1, 4][i], 12));
    expect(solveSpd(Float64Array.from([1, 2, 2, 1]), Float64Array.from([1, 1]), 2)).toBeNull();
    const g = imageGradient(Float32Array.from([0, 1, 4, 0, 1, 4, 0, 1, 4]), 3, 3);
    expect(Array.from(g.gx.subarray(0, 3))).toEqual([1, 2, 3]);
    expect(Array.from(g.gy)).toEqual(new Array(9).fill(0));
  });
});
