/**
 * A 2D+t series with known motion made from one real image (`r2n2 simulate`).
 *
 * The image is the reference anatomy R; frame t is rendered through the inverse of a smooth
 * forward map φ_t(r) = r + d_t(r), as the phantom is: I_t(q) = s(t)·R(φ_t⁻¹(q)) + noise, with
 * R sampled by Keys cubic interpolation (a = −0.5, edge values beyond the border), s(t) a slow
 * intensity drift and Gaussian noise. Landmarks are salient points of R (Shi–Tomasi corners)
 * moved exactly: m_t = φ_t(r). All coordinates are the image's in-plane physical ones (mm).
 *
 * Motions (amplitude A mm, temporal waveform w(t) in [0, 1], seeded):
 * - `breathing`: mostly cranio-caudal (+y), largest at a diaphragm-like edge (the row of the
 *   strongest vertical intensity change, or `edgeY`), growing from zero above it and fading
 *   slowly below it, inside a band of half-width `halfWidthMm` about `centre` whose lateral
 *   sides are sharp (≈ 1 pixel): the moving organs slide along the still body wall. A small
 *   lateral expansion (0.08·A) depends on x alone. w(t): an irregular cycle (per-cycle depth
 *   0.8–1.1, period jitter), `cycles` cycles over the series.
 * - `cardiac`: radial contraction about `centre`, peak A at radius R (`radiusMm`), plus a twist
 *   of up to `twistDeg` degrees fading with distance. w(t): end-diastole (0) at frame 0,
 *   end-systole (1) at 35% of each cycle.
 * - `random`: two smooth random fields (sums of Gaussian bumps of width ≈ FOV/5) mixed by two
 *   smooth random temporal weights, scaled so the largest displacement over the series is A.
 * φ_t⁻¹ is found by fixed-point iteration (warm-started from the neighbouring pixel) to
 * 1e-7 mm; the worst residual over all frames is reported.
 */
import seedrandom from 'seedrandom';
import { type Geometry, type Point, indexToPhysical, physicalToIndex } from '../image/geometry.js';
import { gaussianBlur } from '../image/resample.js';
import { gauss } from '../random.js';

export type MotionKind = 'breathing' | 'cardiac' | 'random';
export const MOTION_KINDS: MotionKind[] = ['breathing', 'cardiac', 'random'];

export interface SimulateOptions {
  motion: MotionKind;
  frames: number;
  seed: number;
  /** Peak displacement, mm (default: breathing 12, cardiac 6, random 4). */
  amplitudeMm?: number;
  /** Motion cycles over the series (default: breathing 2, cardiac 1, random 1). */
  cycles?: number;
  /** Noise std as a fraction of the reference's 1st–99th percentile range (default 0.01). */
  noise?: number;
  /** Intensity drift: s(t) = 1 + drift·sin(…) + drift/2·t/T (default 0.03). */
  drift?: number;
  /** Number of landmarks (default 40). */
  landmarks?: number;
  /** Motion centre, mm (default: the image centre). */
  centre?: Point;
  /** Breathing: y (mm) of the diaphragm-like edge (default: detected). */
  edgeY?: number;
  /** Breathing: half-width (mm) of the moving band (default 35% of the field of view). */
  halfWidthMm?: number;
  /** Cardiac: radius (mm) of the largest contraction (default 12% of the shorter field of view). */
  radiusMm?: number;
  /** Cardiac: twist at the centre, degrees (default 6). */
  twistDeg?: number;
}

export type ResolvedSimulateOptions = Required<Omit<SimulateOptions, 'edgeY' | 'halfWidthMm' | 'radiusMm' | 'twistDeg'>> & {
  edgeY: number | null;
  halfWidthMm: number | null;
  radiusMm: number | null;
  twistDeg: number | null;
};

export interface SimulatedSeries {
  geometry: Geometry;
  options: ResolvedSimulateOptions;
  /** Motion parameters actually used (detected or given), for the record. */
  params: Record<string, number | number[]>;
  /** w(t) per frame. */
  waveform: number[];
  /** s(t) per frame. */
  drift: number[];
  referenceLandmarks: Point[];
  displacement(t: number, r: Point): Point;
  forward(t: number, r: Point): Point;
  inverse(t: number, q: Point, start?: Point): { point: Point; residual: number };
  landmarks(t: number): Point[];
  /** Frame t and the worst inverse residual over its pixels (mm). */
  renderFrame(t: number): { data: Float32Array; residual: number };
  /** φ_t⁻¹ over the grid (pixel-interleaved x, y mm), for the true fields. */
  inverseGrid(t: number): Float64Array;
  /** u(p) = φ_m(φ_f⁻¹(p)) − p on the grid, given φ_f⁻¹ from `inverseGrid(fixed)`. */
  truthField(fixedInverse: Float64Array, moving: number): Float32Array;
  /** Smallest det ∇φ_t over the grid and frames (a map that folds has ≤ 0). */
  minJacobian(): number;
}

/** Keys cubic kernel, a = −0.5 (Catmull–Rom). */
function keys(x: number): number {
  const a = Math.abs(x);
  if (a < 1) return 1.5 * a * a * a - 2.5 * a * a + 1;
  if (a < 2) return -0.5 * a * a * a + 2.5 * a * a - 4 * a + 2;
  return 0;
}

/** Cubic interpolation of `data` (row-major W×H) at continuous index (x = col, y = row); edge values outside. */
export function sampleCubic(data: ArrayLike<number>, W: number, H: number, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  let v = 0;
  for (let m = -1; m <= 2; m++) {
    const wy = keys(y - (y0 + m));
    if (wy === 0) continue;
    const row = Math.min(H - 1, Math.max(0, y0 + m)) * W;
    for (let n = -1; n <= 2; n++) {
      const wx = keys(x - (x0 + n));
      if (wx === 0) continue;
      v += wy * wx * data[row + Math.min(W - 1, Math.max(0, x0 + n))];
    }
  }
  return v;
}

/** 1st and 99th percentiles of a sample. */
function robustRange(data: ArrayLike<number>): [number, number] {
  const s = Float32Array.from(data).sort();
  return [s[Math.floor(0.01 * (s.length - 1))], s[Math.floor(0.99 * (s.length - 1))]];
}

/**
 * Salient points of an image: Shi–Tomasi corners (smallest eigenvalue of the structure tensor
 * of the σ = 1 px smoothed image, tensor window σ = 2 px), at least `minDist` pixels apart and
 * 6% of the image away from its border, strongest first; continuous indices `[col, row]`.
 */
export function salientPoints(data: ArrayLike<number>, W: number, H: number, count: number, minDist = Math.max(4, Math.min(W, H) / 20)): Point[] {
  const g = gaussianBlur(data, H, W, 1);
  const ixx = new Float32Array(W * H);
  const iyy = new Float32Array(W * H);
  const ixy = new Float32Array(W * H);
  for (let i = 1; i < H - 1; i++) {
    for (let j = 1; j < W - 1; j++) {
      const k = i * W + j;
      const gx = (g[k + 1] - g[k - 1]) / 2;
      const gy = (g[k + W] - g[k - W]) / 2;
      ixx[k] = gx * gx;
      iyy[k] = gy * gy;
      ixy[k] = gx * gy;
    }
  }
  const sxx = gaussianBlur(ixx, H, W, 2);
  const syy = gaussianBlur(iyy, H, W, 2);
  const sxy = gaussianBlur(ixy, H, W, 2);
  const margin = Math.max(3, Math.round(0.06 * Math.min(W, H)));
  const cands: { k: number; r: number }[] = [];
  let best = 0;
  const resp = new Float32Array(W * H);
  for (let k = 0; k < W * H; k++) {
    const tr = (sxx[k] + syy[k]) / 2;
    const det = sxx[k] * syy[k] - sxy[k] * sxy[k];
    resp[k] = tr - Math.sqrt(Math.max(0, tr * tr - det));
    if (resp[k] > best) best = resp[k];
  }
  for (let i = margin; i < H - margin; i++) {
    for (let j = margin; j < W - margin; j++) {
      const k = i * W + j;
      const r = resp[k];
      if (r <= 0.01 * best) continue;
      // a local maximum in its 3×3 neighbourhood
      if (
        r < resp[k - 1] ||
        r < resp[k + 1] ||
        r < resp[k - W] ||
        r < resp[k + W] ||
        r < resp[k - W - 1] ||
        r < resp[k - W + 1] ||
        r < resp[k + W - 1] ||
        r < resp[k + W + 1]
      )
        continue;
      cands.push({ k, r });
    }
  }
  cands.sort((a, b) => b.r - a.r);
  const out: Point[] = [];
  for (const c of cands) {
    if (out.length >= count) break;
    const j = c.k % W;
    const i = (c.k - j) / W;
    if (out.every((p) => Math.hypot(p[0] - j, p[1] - i) >= minDist)) out.push([j, i]);
  }
  return out;
}

/** The row (continuous index) of the strongest mean vertical intensity change over the central 60% of columns, in the middle 80% of rows. */
export function strongestHorizontalEdge(data: ArrayLike<number>, W: number, H: number): number {
  const g = gaussianBlur(data, H, W, 2);
  const j0 = Math.floor(0.2 * W);
  const j1 = Math.ceil(0.8 * W);
  let bestRow = Math.floor(H / 2);
  let best = -1;
  for (let i = Math.max(1, Math.floor(0.1 * H)); i < Math.min(H - 1, Math.ceil(0.9 * H)); i++) {
    let s = 0;
    for (let j = j0; j < j1; j++) s += Math.abs(g[(i + 1) * W + j] - g[(i - 1) * W + j]);
    if (s > best) {
      best = s;
      bestRow = i;
    }
  }
  return bestRow;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Builds the series; nothing is rendered until `renderFrame`. */
export function makeSimulatedSeries(reference: { geometry: Geometry; data: Float32Array }, opts: SimulateOptions): SimulatedSeries {
  const geometry = reference.geometry;
  const [W, H] = geometry.size;
  const [sx, sy] = geometry.spacing;
  const defaults = { breathing: { amplitudeMm: 12, cycles: 2 }, cardiac: { amplitudeMm: 6, cycles: 1 }, random: { amplitudeMm: 4, cycles: 1 } }[opts.motion];
  const centreDefault = indexToPhysical(geometry, [(W - 1) / 2, (H - 1) / 2]);
  const options: ResolvedSimulateOptions = {
    noise: 0.01,
    drift: 0.03,
    landmarks: 40,
    centre: centreDefault,
    ...defaults,
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    edgeY: opts.edgeY ?? null,
    halfWidthMm: opts.halfWidthMm ?? null,
    radiusMm: opts.radiusMm ?? null,
    twistDeg: opts.twistDeg ?? null,
  } as ResolvedSimulateOptions;
  const { frames, amplitudeMm: A, cycles } = options;
  const rng = seedrandom(`r2n2-simulate-${options.motion}-${options.seed}`);
  const U = (a: number, b: number) => a + (b - a) * rng();
  const fovX = W * sx;
  const fovY = H * sy;
  // in-plane coordinates: x along columns, y along rows (the direction is used as given)
  const local = (r: Point): Point => {
    const idx = physicalToIndex(geometry, r);
    return [idx[0] * sx, idx[1] * sy];
  };
  const [cx, cy] = local(options.centre);
  const params: Record<string, number | number[]> = { centreMm: options.centre };

  // ---- temporal waveform w(t) ----
  const waveform: number[] = [];
  if (options.motion === 'breathing') {
    const depth = Array.from({ length: Math.ceil(cycles) + 3 }, () => U(0.8, 1.1));
    const [p1, p2] = [U(0, 6.3), U(0, 6.3)];
    let theta = 0;
    for (let t = 0; t < frames; t++) {
      if (t > 0)
        theta += ((2 * Math.PI * cycles) / frames) * (1 + 0.1 * Math.sin((2 * Math.PI * t) / frames + p1) + 0.05 * Math.sin((5 * Math.PI * t) / frames + p2));
      const cyc = theta / (2 * Math.PI);
      const c0 = Math.floor(cyc);
      const mix = 0.5 - 0.5 * Math.cos(Math.PI * (cyc - c0));
      waveform.push((depth[c0] * (1 - mix) + depth[c0 + 1] * mix) * Math.pow(0.5 - 0.5 * Math.cos(theta), 1.6));
    }
  } else if (options.motion === 'cardiac') {
    for (let t = 0; t < frames; t++) {
      const ph = ((t * cycles) / frames) % 1;
      waveform.push(ph < 0.35 ? 0.5 - 0.5 * Math.cos((Math.PI * ph) / 0.35) : 0.5 + 0.5 * Math.cos((Math.PI * (ph - 0.35)) / 0.65));
    }
  }
  const drift: number[] = [];
  const pd = U(0, 6.3);
  for (let t = 0; t < frames; t++) drift.push(1 + options.drift * Math.sin((2 * Math.PI * t) / (0.8 * frames) + pd) + (0.5 * options.drift * t) / frames);

  // ---- spatial model: d(t, x, y) in local coordinates ----
  let displacementLocal: (t: number, x: number, y: number) => Point;
  if (options.motion === 'breathing') {
    const edgeY = options.edgeY !== null ? local([options.centre[0], options.edgeY])[1] : strongestHorizontalEdge(reference.data, W, H) * sy;
    const half = options.halfWidthMm ?? 0.35 * fovX;
    const slide = Math.max(sx, 1); // the width of the sliding edge, mm
    const rise = 0.12 * fovY;
    const top = edgeY - 0.3 * fovY;
    const below = 0.3 * fovY;
    params.edgeYmm = indexToPhysical(geometry, [cx / sx, edgeY / sy])[1];
    params.halfWidthMm = half;
    displacementLocal = (t, x, y) => {
      const a = A * waveform[t];
      if (a === 0) return [0, 0];
      const lx = (x - cx) / half;
      const band = sigmoid((half - Math.abs(x - cx)) / (0.25 * slide));
      const grow = sigmoid((y - top) / (0.25 * rise)) * (y <= edgeY ? 1 : Math.exp(-(y - edgeY) / below));
      return [0.08 * a * lx * Math.exp(-lx * lx), a * band * grow];
    };
  } else if (options.motion === 'cardiac') {
    const R = options.radiusMm ?? 0.12 * Math.min(fovX, fovY);
    const twist = ((options.twistDeg ?? 6) * Math.PI) / 180;
    params.radiusMm = R;
    params.twistDeg = (twist * 180) / Math.PI;
    displacementLocal = (t, x, y) => {
      const w = waveform[t];
      if (w === 0) return [0, 0];
      const dx = x - cx;
      const dy = y - cy;
      const rho2 = (dx * dx + dy * dy) / (R * R);
      const radial = (-A * w * Math.exp(0.5 * (1 - rho2))) / R; // × (dx, dy): A·w at rho = R
      const ang = twist * w * Math.exp(-0.5 * rho2);
      const c = Math.cos(ang) - 1;
      const s = Math.sin(ang);
      return [radial * dx + c * dx - s * dy, radial * dy + s * dx + c * dy];
    };
  } else {
    const sigma = Math.min(fovX, fovY) / 5;
    const bumps = (n: number) => Array.from({ length: n }, () => ({ x: U(0, fovX), y: U(0, fovY), vx: U(-1, 1), vy: U(-1, 1) }));
    const fields = [bumps(12), bumps(12)];
    const weights = [0, 1].map(() => {
      const [a1, p1, a2, p2] = [U(0.5, 1), U(0, 6.3), U(0.2, 0.5), U(0, 6.3)];
      return Array.from({ length: frames }, (_, t) => {
        const ph = (2 * Math.PI * cycles * t) / frames;
        return a1 * (Math.sin(ph + p1) - Math.sin(p1)) + a2 * (Math.sin(2 * ph + p2) - Math.sin(p2));
      });
    });
    const raw = (t: number, x: number, y: number): Point => {
      let ux = 0;
      let uy = 0;
      for (let f = 0; f < 2; f++) {
        const w = weights[f][t];
        if (w === 0) continue;
        for (const b of fields[f]) {
          const g = w * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * sigma * sigma));
          ux += g * b.vx;
          uy += g * b.vy;
        }
      }
      return [ux, uy];
    };
    // scale: the largest |d| over a coarse grid and all frames is A
    let peak = 0;
    for (let t = 0; t < frames; t++)
      for (let i = 0; i <= 16; i++) for (let j = 0; j <= 16; j++) peak = Math.max(peak, Math.hypot(...raw(t, (j / 16) * fovX, (i / 16) * fovY)));
    const scale = peak > 0 ? A / peak : 0;
    params.bumpSigmaMm = sigma;
    for (let t = 0; t < frames; t++) waveform.push(Math.hypot(weights[0][t], weights[1][t]));
    displacementLocal = (t, x, y) => {
      const [ux, uy] = raw(t, x, y);
      return [scale * ux, scale * uy];
    };
  }

  // local ↔ physical: p = origin + D·(x, y), so a local displacement maps through D
  const D = geometry.direction;
  const displacement = (t: number, r: Point): Point => {
    const [x, y] = local(r);
    const [ux, uy] = displacementLocal(t, x, y);
    return [D[0] * ux + D[1] * uy, D[2] * ux + D[3] * uy];
  };
  const forward = (t: number, r: Point): Point => {
    const d = displacement(t, r);
    return [r[0] + d[0], r[1] + d[1]];
  };
  const inverse = (t: number, q: Point, start: Point = q) => {
    let r: Point = start;
    for (let it = 0; it < 200; it++) {
      const d = displacement(t, r);
      const nr: Point = [q[0] - d[0], q[1] - d[1]];
      const step = Math.abs(nr[0] - r[0]) + Math.abs(nr[1] - r[1]);
      r = nr;
      if (step < 1e-7) break;
    }
    const f = forward(t, r);
    return { point: r, residual: Math.hypot(f[0] - q[0], f[1] - q[1]) };
  };
  const inverseGrid = (t: number): Float64Array => {
    const out = new Float64Array(2 * W * H);
    for (let i = 0; i < H; i++) {
      let prev: Point | null = null;
      for (let j = 0; j < W; j++) {
        const q = indexToPhysical(geometry, [j, i]);
        const start: Point = prev ? [q[0] + prev[0], q[1] + prev[1]] : q;
        const { point } = inverse(t, q, start);
        prev = [point[0] - q[0], point[1] - q[1]];
        out[2 * (i * W + j)] = point[0];
        out[2 * (i * W + j) + 1] = point[1];
      }
    }
    return out;
  };

  const [lo, hi] = robustRange(reference.data);
  const landmarkIdx = salientPoints(reference.data, W, H, options.landmarks);
  const referenceLandmarks = landmarkIdx.map((p) => indexToPhysical(geometry, p));

  const renderFrame = (t: number) => {
    const noise = seedrandom(`r2n2-simulate-noise-${options.seed}-${t}`);
    const sigma = options.noise * (hi - lo);
    const inv = inverseGrid(t);
    const out = new Float32Array(W * H);
    let residual = 0;
    for (let k = 0; k < W * H; k++) {
      const r: Point = [inv[2 * k], inv[2 * k + 1]];
      const f = forward(t, r);
      const q = indexToPhysical(geometry, [k % W, Math.floor(k / W)]);
      residual = Math.max(residual, Math.hypot(f[0] - q[0], f[1] - q[1]));
      const idx = physicalToIndex(geometry, r);
      out[k] = drift[t] * sampleCubic(reference.data, W, H, idx[0], idx[1]) + (sigma > 0 ? sigma * gauss(noise) : 0);
    }
    return { data: out, residual };
  };

  const truthField = (fixedInverse: Float64Array, moving: number): Float32Array => {
    const out = new Float32Array(2 * W * H);
    for (let k = 0; k < W * H; k++) {
      const m = forward(moving, [fixedInverse[2 * k], fixedInverse[2 * k + 1]]);
      const p = indexToPhysical(geometry, [k % W, Math.floor(k / W)]);
      out[2 * k] = m[0] - p[0];
      out[2 * k + 1] = m[1] - p[1];
    }
    return out;
  };

  const minJacobian = (): number => {
    // central differences of φ on a grid every 2 px (the sliding edge is ≈ 1 px wide)
    const h = 0.25 * Math.min(sx, sy);
    let worst = Infinity;
    for (let t = 0; t < frames; t++) {
      if (waveform[t] === 0 && options.motion !== 'random') continue;
      for (let i = 0; i < H; i += 2) {
        for (let j = 0; j < W; j += 2) {
          const x = j * sx;
          const y = i * sy;
          const ax = displacementLocal(t, x + h, y);
          const bx = displacementLocal(t, x - h, y);
          const ay = displacementLocal(t, x, y + h);
          const by = displacementLocal(t, x, y - h);
          const j00 = 1 + (ax[0] - bx[0]) / (2 * h);
          const j01 = (ay[0] - by[0]) / (2 * h);
          const j10 = (ax[1] - bx[1]) / (2 * h);
          const j11 = 1 + (ay[1] - by[1]) / (2 * h);
          worst = Math.min(worst, j00 * j11 - j01 * j10);
        }
      }
    }
    return worst;
  };

  return {
    geometry,
    options,
    params,
    waveform,
    drift,
    referenceLandmarks,
    displacement,
    forward,
    inverse,
    landmarks: (t) => referenceLandmarks.map((r) => forward(t, r)),
    renderFrame,
    inverseGrid,
    truthField,
    minJacobian,
  };
}
