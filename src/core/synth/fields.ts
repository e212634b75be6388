/**
 * Random smooth motions with a known field, for training data without limit (`r2n2 train
 * --synth`, `--stills`; `r2n2 synth`). A motion is a function of the normalised position
 * q ∈ [−1, 1]² (x along columns, y along rows; corners aligned, docs/method.md) that returns the
 * displacement u(q) in normalised units, the convention of the network's fields: the pair
 * (fixed F, moving M) that it registers satisfies M(q + u(q)) = F(q). It can be evaluated on
 * any grid, so the frames can be rendered finer than the network's size and the teacher field
 * sampled at the network's size.
 *
 * Kinds (each seeded by `rng`, amplitude = the largest |u| over the image):
 * - `affine`: a small rotation, scale and shear about a random centre, and a translation;
 * - `smooth`: a sum of 6 random low-frequency plane waves (wavelengths ≥ 0.6 of the image);
 * - `bumps`: 1–6 local Gaussian displacements (σ 0.05–0.3), the R2N2 model's own building block;
 * - `sliding`: breathing-like: one direction of motion inside a band whose sides are sharp
 *   (≈ one pixel of the network's image), growing towards an edge and fading beyond it, the organs
 *   sliding along a still wall (as `simulate --motion breathing`);
 * - `cardiac`: radial contraction about a random centre (peak at radius R) with a twist fading
 *   with distance (as `simulate --motion cardiac`).
 * A drawn motion is the sum of 1–3 kinds; it is scaled down until det ∇(q + u) ≥ 0.25 on a
 * 33 × 33 grid (no folding), which can leave it below the drawn amplitude.
 */

import { uniform } from '../random.js';

export type MotionKind = 'affine' | 'smooth' | 'bumps' | 'sliding' | 'cardiac';
export const MOTION_KINDS: MotionKind[] = ['affine', 'smooth', 'bumps', 'sliding', 'cardiac'];

/** A displacement (normalised units) at a normalised position. */
export type MotionFn = (x: number, y: number) => [number, number];

export interface Motion {
  fn: MotionFn;
  /** The kinds summed, in order. */
  kinds: MotionKind[];
  /** The largest |u| on the check grid (normalised units). */
  amplitude: number;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const U = uniform;

/** One kind's raw motion (unscaled; `pixel` = one pixel of the network's image in normalised units). */
function rawMotion(kind: MotionKind, rng: () => number, pixel: number): MotionFn {
  switch (kind) {
    case 'affine': {
      const th = U(rng, -0.15, 0.15);
      const s = [U(rng, -0.1, 0.1), U(rng, -0.1, 0.1)];
      const sh = U(rng, -0.08, 0.08);
      const [cx, cy] = [U(rng, -0.3, 0.3), U(rng, -0.3, 0.3)];
      const [tx, ty] = [U(rng, -0.05, 0.05), U(rng, -0.05, 0.05)];
      const c = Math.cos(th);
      const si = Math.sin(th);
      // (A − I)(q − c) + t, A = R(θ)·[[1+s₀, sh], [0, 1+s₁]]
      const a00 = c * (1 + s[0]) - 1;
      const a01 = c * sh - si * (1 + s[1]);
      const a10 = si * (1 + s[0]);
      const a11 = si * sh + c * (1 + s[1]) - 1;
      return (x, y) => [a00 * (x - cx) + a01 * (y - cy) + tx, a10 * (x - cx) + a11 * (y - cy) + ty];
    }
    case 'smooth': {
      const waves = Array.from({ length: 6 }, () => {
        const f = U(rng, 0.3, 1.6); // cycles over the 2-unit image
        const dir = U(rng, 0, 2 * Math.PI);
        return { kx: Math.PI * f * Math.cos(dir), ky: Math.PI * f * Math.sin(dir), ph: U(rng, 0, 2 * Math.PI), ax: U(rng, -1, 1), ay: U(rng, -1, 1) };
      });
      return (x, y) => {
        let ux = 0;
        let uy = 0;
        for (const w of waves) {
          const v = Math.cos(w.kx * x + w.ky * y + w.ph);
          ux += w.ax * v;
          uy += w.ay * v;
        }
        return [ux, uy];
      };
    }
    case 'bumps': {
      const bumps = Array.from({ length: 1 + Math.floor(rng() * 6) }, () => ({
        cx: U(rng, -0.8, 0.8),
        cy: U(rng, -0.8, 0.8),
        s2: 2 * U(rng, 0.05, 0.3) ** 2,
        vx: U(rng, -1, 1),
        vy: U(rng, -1, 1),
      }));
      return (x, y) => {
        let ux = 0;
        let uy = 0;
        for (const b of bumps) {
          const g = Math.exp(-((x - b.cx) ** 2 + (y - b.cy) ** 2) / b.s2);
          ux += g * b.vx;
          uy += g * b.vy;
        }
        return [ux, uy];
      };
    }
    case 'sliding': {
      // in a frame turned by one of four directions: motion along +v inside |w − c| < half
      const turn = Math.floor(rng() * 4);
      const [ex, ey] = [
        [1, 0],
        [0, 1],
        [-1, 0],
        [0, -1],
      ][turn];
      const cw = U(rng, -0.3, 0.3);
      const half = U(rng, 0.25, 0.6);
      const edge = U(rng, -0.2, 0.5);
      const rise = U(rng, 0.15, 0.35);
      const below = U(rng, 0.2, 0.6);
      const top = edge - U(rng, 0.4, 0.9);
      const lateral = U(rng, 0, 0.1);
      return (x, y) => {
        // v: along the motion, w: across it
        const v = ex * y - ey * x;
        const w = ex * x + ey * y;
        const band = sigmoid((half - Math.abs(w - cw)) / (0.5 * pixel));
        const grow = sigmoid((v - top) / (0.25 * rise)) * (v <= edge ? 1 : Math.exp(-(v - edge) / below));
        const lw = (w - cw) / half;
        const along = band * grow;
        const across = lateral * lw * Math.exp(-lw * lw) * grow;
        // back to x, y: +v is (−ey, ex), +w is (ex, ey)
        return [-ey * along + ex * across, ex * along + ey * across];
      };
    }
    case 'cardiac': {
      const [cx, cy] = [U(rng, -0.4, 0.4), U(rng, -0.4, 0.4)];
      const R = U(rng, 0.08, 0.3);
      const twist = U(rng, -1, 1); // the turn's displacement at rho = R, relative to the contraction's (0.6·twist/2)
      const sign = rng() < 0.8 ? 1 : -1; // mostly contraction, sometimes expansion
      return (x, y) => {
        const dx = x - cx;
        const dy = y - cy;
        const rho2 = (dx * dx + dy * dy) / (R * R);
        const radial = (-sign * Math.exp(0.5 * (1 - rho2))) / R; // × (dx, dy): 1 at rho = R
        const ang = ((0.5 * twist) / R) * Math.exp(-0.5 * rho2);
        return [radial * dx - ang * dy, radial * dy + ang * dx];
      };
    }
  }
}

/** Largest |u| and smallest det ∇(q + u) of `fn` on a (g+1)² grid over [−1, 1]². */
export function motionExtent(fn: MotionFn, g = 32): { peak: number; minDet: number } {
  const h = 1e-3;
  let peak = 0;
  let minDet = Infinity;
  for (let i = 0; i <= g; i++) {
    const y = -1 + (2 * i) / g;
    for (let j = 0; j <= g; j++) {
      const x = -1 + (2 * j) / g;
      const u = fn(x, y);
      peak = Math.max(peak, Math.hypot(u[0], u[1]));
      const ax = fn(x + h, y);
      const bx = fn(x - h, y);
      const ay = fn(x, y + h);
      const by = fn(x, y - h);
      const j00 = 1 + (ax[0] - bx[0]) / (2 * h);
      const j01 = (ay[0] - by[0]) / (2 * h);
      const j10 = (ax[1] - bx[1]) / (2 * h);
      const j11 = 1 + (ay[1] - by[1]) / (2 * h);
      minDet = Math.min(minDet, j00 * j11 - j01 * j10);
    }
  }
  return { peak, minDet };
}

export interface DrawMotionOptions {
  /** Kinds to choose from (each motion sums 1–3 of them, drawn with repetition). */
  kinds: MotionKind[];
  /** Largest amplitude (normalised units); each motion's is log-uniform in [amplitude/10, amplitude]. */
  amplitude: number;
  /** Side of the network's image (the sliding edge is one of its pixels wide). */
  n: number;
}

/** A random motion (see the file's comment); every draw comes from `rng` in a fixed order. */
export function drawMotion(rng: () => number, o: DrawMotionOptions): Motion {
  if (o.kinds.length === 0) throw new Error('drawMotion: no motion kinds');
  const count = 1 + Math.floor(rng() * 3);
  const kinds: MotionKind[] = Array.from({ length: count }, () => o.kinds[Math.floor(rng() * o.kinds.length)]);
  const pixel = 2 / (o.n - 1);
  const parts = kinds.map((k) => {
    const f = rawMotion(k, rng, pixel);
    const { peak } = motionExtent(f, 16);
    const w = U(rng, 0.3, 1) / Math.max(peak, 1e-9);
    return { f, w };
  });
  const target = o.amplitude * Math.pow(10, -rng());
  const sum: MotionFn = (x, y) => {
    let ux = 0;
    let uy = 0;
    for (const p of parts) {
      const u = p.f(x, y);
      ux += p.w * u[0];
      uy += p.w * u[1];
    }
    return [ux, uy];
  };
  let { peak, minDet } = motionExtent(sum);
  let scale = peak > 0 ? target / peak : 0;
  // shrink until nothing folds (det J is affine in the scale for one direction: halve and check)
  for (let k = 0; k < 12; k++) {
    const s = scale;
    const r = motionExtent((x, y) => {
      const u = sum(x, y);
      return [s * u[0], s * u[1]];
    });
    ({ peak, minDet } = r);
    if (minDet >= 0.25) break;
    scale *= 0.7;
  }
  const s = scale;
  return {
    fn: (x, y) => {
      const u = sum(x, y);
      return [s * u[0], s * u[1]];
    },
    kinds,
    amplitude: peak,
  };
}

/** The motion on an n×n grid as a normalised field `[2, n, n]` (channel 0 = x). */
export function motionField(fn: MotionFn, n: number): Float32Array {
  const N = n * n;
  const out = new Float32Array(2 * N);
  for (let i = 0; i < n; i++) {
    const y = -1 + (2 * i) / (n - 1);
    for (let j = 0; j < n; j++) {
      const u = fn(-1 + (2 * j) / (n - 1), y);
      out[i * n + j] = u[0];
      out[N + i * n + j] = u[1];
    }
  }
  return out;
}
