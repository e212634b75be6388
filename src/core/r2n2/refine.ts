/**
 * Test-time refinement of an R2N2 Gaussian sequence: Levenberg–Marquardt on the image
 * mean squared error `mean_mask (M(p + u(p)) − F(p))²`, over the sequence's own 7·T numbers,
 * so the result is still a sequence of T local Gaussians (same compactness, same `params/`
 * format) that fits the pair better than the network's one-shot estimate.
 *
 * Plain JS over typed arrays (backend-free): with T ≤ ~20 steps the normal equations are at most
 * 140×140, and each pass over the pixels costs T exponentials plus the Jacobian of the Gaussians
 * that reach the pixel (exp(−q) ≥ `reach`, default 1e-3: a Gaussian contributes less than that
 * fraction of its weight beyond). Most of the time is the normal matrix JᵀJ (≈6× a pass for
 * the cost and gradient alone at 10 steps), so a trial step gets the cost and gradient only and
 * JᵀJ is built after an accepted one. (Reusing JᵀJ over two accepted steps was measured: fewer
 * passes, but 0.18–0.20 mm instead of 0.15 after 20 iterations on held-out phantom seeds.)
 * JᵀJ is summed over every second pixel per axis by default (`normalStride`): half the time for
 * the same TRE (docs/cli.md, "--refine-stride"); the cost and gradient always use every pixel.
 *
 * Parameters inside the solver: per step (c_x, c_y, ln σ_x, ln σ_y, w_x, w_y, φ); σ in log so it
 * stays positive. Coordinates are normalised (`linspace(−1, 1, n)`), as everywhere (docs/method.md).
 * The moving image's gradient is the bilinear interpolation of its central differences
 * (one-sided at the border), the usual choice in ITK/elastix, smoother than the bilinear
 * kernel's own piecewise-constant derivative.
 */
import { PARAMS_PER_STEP, gaussianCoefficients } from '../transformation/gaussian.js';
import { EDGE_TOL } from '../transformation/warp.js';
import { pyramidLevel } from '../image/resample.js';

import { type RefineOptions, type RefineResult, REFINE_DEFAULTS } from './refine-options.js';
export { type RefineOptions, type RefineResult, REFINE_DEFAULTS } from './refine-options.js';

/**
 * Keeps each Gaussian of θ (solver parameters, in place) from folding the field on its own. One
 * Gaussian's displacement w·g(p) has the Jacobian determinant det(I + w ∇gᵀ) = 1 + w·∇g, whose
 * minimum over p is 1 − √2·e^(−1/2)·√(wᵀQw), Q = [[a, b], [b, c]] the quadratic form (normalised
 * units; the determinant is the same in pixel units). Where that falls below `minDet` the weight
 * is scaled to reach it exactly. Returns how many Gaussians were limited.
 */
export function limitFolding(th: Float64Array, minDet: number): number {
  const bound = ((1 - minDet) / (Math.SQRT2 * Math.exp(-0.5))) ** 2; // largest wᵀQw
  let n = 0;
  for (let k = 0; k + PARAMS_PER_STEP <= th.length; k += PARAMS_PER_STEP) {
    const [a, b, c] = gaussianCoefficients(Math.exp(th[k + 2]), Math.exp(th[k + 3]), th[k + 6]);
    const wx = th[k + 4];
    const wy = th[k + 5];
    const q = a * wx * wx + 2 * b * wx * wy + c * wy * wy;
    if (q > bound) {
      const f = Math.sqrt(bound / q);
      th[k + 4] = wx * f;
      th[k + 5] = wy * f;
      n++;
    }
  }
  return n;
}

/** Central-difference gradient `[2, H, W]` (pixel units), one-sided at the border. */
export function imageGradient(img: ArrayLike<number>, H: number, W: number): { gx: Float32Array; gy: Float32Array } {
  const gx = new Float32Array(H * W);
  const gy = new Float32Array(H * W);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const p = i * W + j;
      if (W > 1) gx[p] = j === 0 ? img[p + 1] - img[p] : j === W - 1 ? img[p] - img[p - 1] : (img[p + 1] - img[p - 1]) / 2;
      if (H > 1) gy[p] = i === 0 ? img[p + W] - img[p] : i === H - 1 ? img[p] - img[p - W] : (img[p + W] - img[p - W]) / 2;
    }
  }
  return { gx, gy };
}

/** θ (solver parameters, ln σ) from a sequence (σ), and back. */
function toTheta(seq: ArrayLike<number>, o: { sigmaMin: number; sigmaMax: number }): Float64Array {
  const th = new Float64Array(seq.length);
  for (let k = 0; k < seq.length; k += PARAMS_PER_STEP) {
    th[k] = seq[k];
    th[k + 1] = seq[k + 1];
    th[k + 2] = Math.log(Math.min(o.sigmaMax, Math.max(o.sigmaMin, seq[k + 2])));
    th[k + 3] = Math.log(Math.min(o.sigmaMax, Math.max(o.sigmaMin, seq[k + 3])));
    th[k + 4] = seq[k + 4];
    th[k + 5] = seq[k + 5];
    th[k + 6] = seq[k + 6];
  }
  return th;
}

function fromTheta(th: Float64Array): Float32Array {
  const s = new Float32Array(th.length);
  for (let k = 0; k < th.length; k += PARAMS_PER_STEP) {
    s[k] = th[k];
    s[k + 1] = th[k + 1];
    s[k + 2] = Math.exp(th[k + 2]);
    s[k + 3] = Math.exp(th[k + 3]);
    s[k + 4] = th[k + 4];
    s[k + 5] = th[k + 5];
    // a Gaussian is the same under φ → φ + π
    const phi = th[k + 6] % Math.PI;
    s[k + 6] = phi < 0 ? phi + Math.PI : phi;
  }
  return s;
}

interface Pass {
  /** Masked MSE (mean over the pixels whose sample lies inside the moving image). */
  cost: number;
  /** Jᵀr and (when asked) JᵀJ (P×P, full), over the same pixels, divided by their count. */
  g: Float64Array;
  A?: Float64Array;
}

/**
 * What a pass computes: `cost` the masked MSE and its gradient half Jᵀr over every pixel; `both`
 * also the Gauss–Newton matrix JᵀJ from every `stride`-th pixel per axis; `normal` only JᵀJ,
 * visiting only its pixels (the gradient stays zero, the cost is over those pixels): for a θ
 * whose cost and gradient a previous pass already gave.
 */
type PassMode = 'cost' | 'both' | 'normal';

/** One pass over the pixels (see `PassMode`) for the residuals r = M(p + u(p)) − F(p). */
function pass(
  F: ArrayLike<number>,
  M: ArrayLike<number>,
  G: { gx: Float32Array; gy: Float32Array },
  H: number,
  W: number,
  th: Float64Array,
  mode: PassMode,
  qMax: number,
  stride = 1,
): Pass {
  const normal = mode !== 'cost';
  const sampledOnly = mode === 'normal';
  const T = th.length / PARAMS_PER_STEP;
  const P = th.length;
  // per step: a, b, c and their derivatives w.r.t. ln σx, ln σy, φ
  const co = new Float64Array(T * 12);
  for (let k = 0; k < T; k++) {
    const sx = Math.exp(th[7 * k + 2]);
    const sy = Math.exp(th[7 * k + 3]);
    const phi = th[7 * k + 6];
    const [a, b, c] = gaussianCoefficients(sx, sy, phi);
    const cos2 = Math.cos(phi) ** 2;
    const sin2 = Math.sin(phi) ** 2;
    const s2p = Math.sin(2 * phi);
    const c2p = Math.cos(2 * phi);
    const ix = 1 / (sx * sx);
    const iy = 1 / (sy * sy);
    const o = 12 * k;
    co[o] = a;
    co[o + 1] = b;
    co[o + 2] = c;
    // d/d ln σx
    co[o + 3] = -cos2 * ix;
    co[o + 4] = (s2p * ix) / 2;
    co[o + 5] = -sin2 * ix;
    // d/d ln σy
    co[o + 6] = -sin2 * iy;
    co[o + 7] = (-s2p * iy) / 2;
    co[o + 8] = -cos2 * iy;
    // d/dφ
    co[o + 9] = (s2p * (iy - ix)) / 2;
    co[o + 10] = (c2p * (iy - ix)) / 2;
    co[o + 11] = (s2p * (ix - iy)) / 2;
  }
  const sxs = (W - 1) / 2;
  const sys = (H - 1) / 2;
  const ex = new Float64Array(T);
  const ddx = new Float64Array(T);
  const ddy = new Float64Array(T);
  const active = new Int32Array(T);
  const A = normal ? new Float64Array(P * P) : undefined;
  const g = new Float64Array(P);
  const jr = new Float64Array(P); // the Jacobian row of the active steps, 7 per step
  let cost = 0;
  let count = 0;
  let countA = 0;
  const step = sampledOnly ? stride : 1;
  for (let i = 0; i < H; i += step) {
    const rowA = normal && i % stride === 0;
    const yn = H > 1 ? -1 + (2 * i) / (H - 1) : 0;
    for (let j = 0; j < W; j += step) {
      const xn = W > 1 ? -1 + (2 * j) / (W - 1) : 0;
      let ux = 0;
      let uy = 0;
      let na = 0;
      for (let k = 0; k < T; k++) {
        const dx = xn - th[7 * k];
        const dy = yn - th[7 * k + 1];
        const o = 12 * k;
        const q = co[o] * dx * dx + 2 * co[o + 1] * dx * dy + co[o + 2] * dy * dy;
        if (q > qMax) continue;
        const e = Math.exp(-q);
        ux += th[7 * k + 4] * e;
        uy += th[7 * k + 5] * e;
        ex[na] = e;
        ddx[na] = dx;
        ddy[na] = dy;
        active[na++] = k;
      }
      // the warp's cell and border convention (core/transformation/warp.ts warpSamples), inlined as there: a
      // shared helper filling scratch arrays measured 20–40% slower per warp
      let X = j + ux * sxs;
      let Y = i + uy * sys;
      if (!(X >= -EDGE_TOL && Y >= -EDGE_TOL && X <= W - 1 + EDGE_TOL && Y <= H - 1 + EDGE_TOL)) continue;
      X = Math.min(Math.max(X, 0), W - 1);
      Y = Math.min(Math.max(Y, 0), H - 1);
      const x0 = Math.min(Math.floor(X), W - 2 < 0 ? 0 : W - 2);
      const y0 = Math.min(Math.floor(Y), H - 2 < 0 ? 0 : H - 2);
      const x1 = Math.min(x0 + 1, W - 1);
      const y1 = Math.min(y0 + 1, H - 1);
      const fx = X - x0;
      const fy = Y - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const p00 = y0 * W + x0;
      const p01 = y0 * W + x1;
      const p10 = y1 * W + x0;
      const p11 = y1 * W + x1;
      const r = w00 * M[p00] + w01 * M[p01] + w10 * M[p10] + w11 * M[p11] - F[i * W + j];
      cost += r * r;
      count++;
      const sampleA = rowA && j % stride === 0;
      if (sampleA) countA++;
      if (na === 0) continue;
      // ∂r/∂u in normalised units
      const mx = (w00 * G.gx[p00] + w01 * G.gx[p01] + w10 * G.gx[p10] + w11 * G.gx[p11]) * sxs;
      const my = (w00 * G.gy[p00] + w01 * G.gy[p01] + w10 * G.gy[p10] + w11 * G.gy[p11]) * sys;
      for (let m = 0; m < na; m++) {
        const k = active[m];
        const e = ex[m];
        const dx = ddx[m];
        const dy = ddy[m];
        const o = 12 * k;
        const s = (th[7 * k + 4] * mx + th[7 * k + 5] * my) * e; // ∂r/∂(−q)
        const dxx = dx * dx;
        const dxy = 2 * dx * dy;
        const dyy = dy * dy;
        const b = 7 * m;
        jr[b] = 2 * s * (co[o] * dx + co[o + 1] * dy);
        jr[b + 1] = 2 * s * (co[o + 1] * dx + co[o + 2] * dy);
        jr[b + 2] = -s * (co[o + 3] * dxx + co[o + 4] * dxy + co[o + 5] * dyy);
        jr[b + 3] = -s * (co[o + 6] * dxx + co[o + 7] * dxy + co[o + 8] * dyy);
        jr[b + 4] = mx * e;
        jr[b + 5] = my * e;
        jr[b + 6] = -s * (co[o + 9] * dxx + co[o + 10] * dxy + co[o + 11] * dyy);
        if (sampledOnly) continue;
        const gk = 7 * k;
        for (let a = 0; a < 7; a++) g[gk + a] += jr[b + a] * r;
      }
      if (!sampleA) continue;
      // upper triangle of JᵀJ, 7×7 blocks of active steps (k < l: whole block; k = l: a ≤ b)
      for (let m1 = 0; m1 < na; m1++) {
        const b1 = 7 * m1;
        const k7 = 7 * active[m1];
        for (let m2 = m1; m2 < na; m2++) {
          const b2 = 7 * m2;
          const l7 = 7 * active[m2];
          for (let a = 0; a < 7; a++) {
            const ja = jr[b1 + a];
            const row = (k7 + a) * P + l7;
            for (let c = m1 === m2 ? a : 0; c < 7; c++) A![row + c] += ja * jr[b2 + c];
          }
        }
      }
    }
  }
  // no pixel inside the moving image (or, sampled, none of the sampled ones): A stays zero
  if (count === 0) return { cost: Infinity, g, A };
  for (let u = 0; u < P; u++) g[u] /= count;
  if (A) {
    for (let u = 0; u < P; u++) {
      for (let v = u; v < P; v++) {
        A[u * P + v] /= Math.max(countA, 1);
        A[v * P + u] = A[u * P + v];
      }
    }
  }
  return { cost: cost / count, g, A };
}

/**
 * The refinement's objective at `sequence`: the masked MSE, its gradient w.r.t. the solver
 * parameters (per step c_x, c_y, ln σ_x, ln σ_y, w_x, w_y, φ; `2·Jᵀr/N`) and the Gauss–Newton
 * matrix `JᵀJ/N` (P×P, row-major; over every `normalStride`-th pixel per axis). For tests and
 * diagnostics.
 */
export function refineObjective(
  fixed: ArrayLike<number>,
  moving: ArrayLike<number>,
  H: number,
  W: number,
  sequence: ArrayLike<number>,
  reach = REFINE_DEFAULTS.reach,
  normalStride = 1,
): { cost: number; gradient: Float64Array; normal: Float64Array } {
  const th = toTheta(sequence, { sigmaMin: 0, sigmaMax: Infinity });
  const r = pass(fixed, moving, imageGradient(moving, H, W), H, W, th, 'both', -Math.log(reach), normalStride);
  return { cost: r.cost, gradient: r.g.map((v) => 2 * v), normal: r.A ?? new Float64Array(th.length * th.length) };
}

/** Solves S x = b for symmetric positive definite S (P×P) by Cholesky; null when not SPD. */
export function solveSpd(S: Float64Array, b: Float64Array, P: number): Float64Array | null {
  const L = new Float64Array(P * P);
  for (let i = 0; i < P; i++) {
    for (let j = 0; j <= i; j++) {
      let s = S[i * P + j];
      for (let k = 0; k < j; k++) s -= L[i * P + k] * L[j * P + k];
      if (i === j) {
        if (!(s > 0)) return null;
        L[i * P + i] = Math.sqrt(s);
      } else L[i * P + j] = s / L[j * P + j];
    }
  }
  const y = new Float64Array(P);
  for (let i = 0; i < P; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * P + k] * y[k];
    y[i] = s / L[i * P + i];
  }
  const x = new Float64Array(P);
  for (let i = P - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < P; k++) s -= L[k * P + i] * x[k];
    x[i] = s / L[i * P + i];
  }
  return x;
}

/**
 * Refines `sequence` (7 numbers per step) so that the moving frame warped by it matches the
 * fixed frame better, by Levenberg–Marquardt on the masked MSE. `fixed` and `moving` are `[H, W]`
 * row-major, already intensity-normalised alike (the caller's job, e.g. `normaliseIntensity`).
 * The cost never increases from the start (the sequence with `limitFolding` applied, which
 * leaves the network's Gaussians as they are in practice): a step that would raise it is rejected
 * and the damping raised. `before` is the cost of the sequence as given.
 */
export function refineSequence(
  fixed: ArrayLike<number>,
  moving: ArrayLike<number>,
  H: number,
  W: number,
  sequence: ArrayLike<number>,
  options: RefineOptions = {},
): RefineResult {
  const o = { ...REFINE_DEFAULTS, ...options };
  if (sequence.length % PARAMS_PER_STEP !== 0) throw new Error(`sequence length ${sequence.length} is not a multiple of ${PARAMS_PER_STEP}`);
  if (fixed.length !== H * W || moving.length !== H * W) throw new Error(`images are not ${H}×${W}`);
  if (!(Number.isInteger(o.iterations) && o.iterations >= 0)) throw new Error(`refine iterations must be a whole number ≥ 0, got ${o.iterations}`);
  if (!(o.maxSize >= 2)) throw new Error(`refine maxSize must be ≥ 2, got ${o.maxSize}`);
  if (!(Number.isInteger(o.fineIterations) && o.fineIterations >= 0))
    throw new Error(`refine fineIterations must be a whole number ≥ 0, got ${o.fineIterations}`);
  const factor = Math.max(H, W) / o.maxSize;
  if (factor > 1) {
    const f = pyramidLevel(fixed, H, W, factor);
    const m = pyramidLevel(moving, H, W, factor);
    const coarse = refineSequence(f.data, m.data, f.H, f.W, sequence, { ...o, maxSize: Infinity, fineIterations: 0 });
    if (o.fineIterations === 0) return coarse;
    // coarse to fine (the same JᵀJ stride: a sparser one at full size was measured worse, docs/cli.md);
    // the costs reported are the full size's, `before` that of the sequence as given
    const full = { ...o, maxSize: Infinity, fineIterations: 0 };
    const before = refineSequence(fixed, moving, H, W, sequence, { ...full, iterations: 0 }).before;
    const fine = refineSequence(fixed, moving, H, W, coarse.sequence, { ...full, iterations: o.fineIterations });
    return {
      sequence: fine.sequence,
      before,
      after: fine.after,
      iterations: coarse.iterations + fine.iterations,
      accepted: coarse.accepted + fine.accepted,
      normalPasses: coarse.normalPasses + fine.normalPasses,
    };
  }
  const G = imageGradient(moving, H, W);
  const qMax = -Math.log(o.reach);
  if (!(Number.isInteger(o.normalStride) && o.normalStride >= 1)) throw new Error(`refine normalStride must be a whole number ≥ 1, got ${o.normalStride}`);
  const run = (t: Float64Array, mode: PassMode) => pass(fixed, moving, G, H, W, t, mode, qMax, o.normalStride);
  const P = sequence.length;
  const lo = Math.log(o.sigmaMin);
  const hi = Math.log(o.sigmaMax);
  if (!(o.minDet < 1)) throw new Error(`refine minDet must be below 1, got ${o.minDet}`);
  let th = toTheta(sequence, o);
  if (o.iterations === 0 || P === 0) {
    const c = run(th, 'cost').cost;
    return { sequence: Float32Array.from(sequence), before: c, after: c, iterations: 0, accepted: 0, normalPasses: 0 };
  }
  const limited = limitFolding(th, o.minDet);
  let cur = run(th, 'both');
  let A = cur.A!;
  // the cost of the sequence as given: the start's, unless limitFolding changed it
  const before = limited > 0 ? run(toTheta(sequence, o), 'cost').cost : cur.cost;
  let normalPasses = 1;
  let accepted = 0;
  let lambda = o.damping;
  let it = 0;
  for (; it < o.iterations && Number.isFinite(cur.cost); it++) {
    let trace = 0;
    for (let u = 0; u < P; u++) trace += A[u * P + u];
    const floor = 1e-9 * (trace / P) + 1e-12;
    const S = Float64Array.from(A);
    for (let u = 0; u < P; u++) S[u * P + u] += lambda * A[u * P + u] + floor;
    const d = solveSpd(
      S,
      cur.g.map((v) => -v),
      P,
    );
    if (!d) {
      lambda *= 10;
      continue;
    }
    const next = Float64Array.from(th);
    for (let u = 0; u < P; u++) next[u] += d[u];
    for (let k = 0; k < P; k += PARAMS_PER_STEP) {
      next[k + 2] = Math.min(hi, Math.max(lo, next[k + 2]));
      next[k + 3] = Math.min(hi, Math.max(lo, next[k + 3]));
    }
    limitFolding(next, o.minDet);
    // the trial's cost and gradient (cheap); JᵀJ only after an accepted step
    const trial = run(next, 'cost');
    if (trial.cost < cur.cost) {
      const rel = (cur.cost - trial.cost) / cur.cost;
      th = next;
      cur = trial;
      accepted++;
      lambda = Math.max(lambda / 3, 1e-7);
      if (rel < o.tolerance || it === o.iterations - 1) {
        it++;
        break;
      }
      // the trial gave the cost and gradient at θ: JᵀJ needs only its own pixels
      A = run(th, 'normal').A!;
      normalPasses++;
    } else lambda *= 4;
  }
  return { sequence: fromTheta(th), before, after: cur.cost, iterations: it, accepted, normalPasses };
}
