/**
 * Synthetic 2D+t breathing-chest series (a coronal slice), with exact landmarks.
 *
 * Anatomy is an analytic reference image R(r) over physical coordinates r (mm; x to the right
 * of the image, y down the rows): body with a bright fat rim, two lungs with vessels, liver,
 * spleen, heart (myocardium + blood pool), aortic arch, ribs, low-frequency tissue texture.
 *
 * Motion is a smooth forward map φ_t(r) = r + d_t(r) from reference to frame t:
 * - breathing: the diaphragm and lung bases move caudally (+y) by D·b(t), fading to zero at
 *   the apex, toward the body wall and slowly below the liver, with a small lateral rib-cage
 *   expansion; b(t) is an irregular cycle (varying period and per-cycle depth);
 * - cardiac: a radial contraction about the heart centre with its own period.
 * Frame t is I_t(q) = s(t)·R(φ_t⁻¹(q)) + noise, with s(t) a slow intensity drift. φ_t⁻¹ is
 * found by fixed-point iteration to 1e-6 mm (the map is a contraction, |∇d| < 0.6).
 * Landmarks are placed on structures in the reference and moved exactly: m_t = φ_t(r).
 */
import seedrandom from 'seedrandom';
import type { Geometry, Point } from '../image/geometry.js';

export interface PhantomOptions {
  /** Image width and height in pixels. */
  size: number;
  frames: number;
  seed: number;
  /** Field of view in mm (square); spacing = fovMm / size. */
  fovMm?: number;
  /** Time between frames, seconds. */
  frameSeconds?: number;
  /** Gaussian noise std, as a fraction of the tissue scale. */
  noise?: number;
  /** Intensity scale (tissue ≈ 0.4·scale). */
  intensityScale?: number;
}

interface Ellipse {
  cx: number;
  cy: number;
  ax: number;
  ay: number;
  cos: number;
  sin: number;
  value: number;
  reach: number;
}
interface Blob {
  cx: number;
  cy: number;
  sigma: number;
  amp: number;
}

export interface PhantomMotion {
  /** Breathing depth b(t) per frame (≈0 exhale, ≈1 deep inhale). */
  breathing: number[];
  /** Cardiac contraction c(t) per frame (0 relaxed, negative contracted). */
  cardiac: number[];
  /** Intensity drift factor s(t) per frame. */
  drift: number[];
}

export interface PhantomSeries {
  geometry: Geometry;
  options: Required<PhantomOptions>;
  /** Diaphragm excursion D (mm) at b = 1. */
  diaphragmMm: number;
  motion: PhantomMotion;
  landmarkNames: string[];
  /** Landmarks in the reference anatomy (mm). */
  referenceLandmarks: Point[];
  /** Displacement d_t(r) of frame t at reference point r (mm). */
  displacement(t: number, r: Point): Point;
  /** φ_t(r) = r + d_t(r). */
  forward(t: number, r: Point): Point;
  /** φ_t⁻¹(q) and the residual |φ_t(r) − q| of the solution (mm). */
  inverse(t: number, q: Point): { point: Point; residual: number };
  /** Landmarks of frame t (mm), exact. */
  landmarks(t: number): Point[];
  /** Reference image value R(r) (no drift, no noise, unit scale). */
  reference(r: Point): number;
  /** Frame t as a row-major float32 image on `geometry`. */
  renderFrame(t: number): Float32Array;
  /** Frame t and its organ label map (PHANTOM_LABELS, 0 = other), rendered through the same φ_t⁻¹. */
  renderFrameAndLabels(t: number): { image: Float32Array; labels: Int32Array };
  /** The organ label at reference point r (PHANTOM_LABELS; 0 = anything else). */
  label(r: Point): number;
}

/** The phantom's label map values (painter's order: the last shape covering a point wins). */
export const PHANTOM_LABELS: Record<number, string> = {
  1: 'right lung',
  2: 'left lung',
  3: 'liver',
  4: 'spleen',
  5: 'myocardium',
  6: 'blood pool',
  7: 'aorta',
};

const EDGE_MM = 0.7;

function ellipse(cx: number, cy: number, ax: number, ay: number, theta: number, value: number): Ellipse {
  return { cx, cy, ax, ay, cos: Math.cos(theta), sin: Math.sin(theta), value, reach: Math.max(ax, ay) + 8 * EDGE_MM };
}

/** Smooth membership in [0, 1] of point (x, y) in an ellipse (edge width ≈ EDGE_MM). */
function membership(e: Ellipse, x: number, y: number): number {
  const dx = x - e.cx;
  const dy = y - e.cy;
  if (Math.abs(dx) > e.reach || Math.abs(dy) > e.reach) return 0;
  const u = e.cos * dx + e.sin * dy;
  const v = -e.sin * dx + e.cos * dy;
  const rho = Math.sqrt((u / e.ax) ** 2 + (v / e.ay) ** 2);
  const len = Math.hypot(u, v);
  if (rho === 0) return 1;
  const d = len * (1 - 1 / rho); // signed distance along the ray from the centre
  if (d > 8 * EDGE_MM) return 0;
  if (d < -8 * EDGE_MM) return 1;
  return 1 / (1 + Math.exp(d / EDGE_MM));
}

/** A point on an ellipse's boundary at angle `a` in its own frame. */
function onEllipse(e: Ellipse, a: number): Point {
  const u = e.ax * Math.cos(a);
  const v = e.ay * Math.sin(a);
  return [e.cx + e.cos * u - e.sin * v, e.cy + e.sin * u + e.cos * v];
}

/** Uniform draws from the series' generator: U(a, b) in [a, b), J(s) in [−s, s). */
interface Draws {
  U: (a: number, b: number) => number;
  J: (s: number) => number;
}

/** The anatomy of one phantom (mm, painter's order): its shapes, blobs (vessels) and texture waves. */
function makeAnatomy({ U, J }: Draws) {
  const k = () => U(0.93, 1.07);
  const bodyOuter = ellipse(J(4), 30 + J(4), 150 * k(), 215, 0, 0.75);
  const bodyInner = ellipse(bodyOuter.cx, bodyOuter.cy, bodyOuter.ax - 12, bodyOuter.ay - 12, 0, 0.42);
  const liver = ellipse(-45 + J(5), 140 + J(4), 105 * k(), 65 * k(), 0.15 + J(0.05), 0.5);
  const spleen = ellipse(75 + J(5), 128 + J(4), 50 * k(), 40 * k(), J(0.2), 0.33);
  const lungR = ellipse(-66 + J(4), -35 + J(4), 50 * k(), 100 * k(), -0.08 + J(0.04), 0.06);
  const lungL = ellipse(68 + J(4), -30 + J(4), 46 * k(), 95 * k(), 0.08 + J(0.04), 0.06);
  const heartC: Point = [20 + J(4), 48 + J(4)];
  const heartTheta = 0.5 + J(0.1);
  const myocardium = ellipse(heartC[0], heartC[1], 48 * k(), 38 * k(), heartTheta, 0.55);
  const bloodPool = ellipse(heartC[0], heartC[1], myocardium.ax - 11, myocardium.ay - 10, heartTheta, 0.85);
  const aorta = ellipse(5 + J(3), -62 + J(3), 13, 13, 0, 0.85);
  const ribs: Ellipse[] = [];
  for (const s of [-1, 1]) for (let i = 0; i < 5; i++) ribs.push(ellipse(s * (126 + J(3)), -105 + i * 38 + J(3), 9, 5, s * 0.3, 0.9));
  const shapes = [bodyOuter, bodyInner, liver, spleen, lungR, lungL, myocardium, bloodPool, aorta, ...ribs];

  const blobs: Blob[] = [];
  const vesselIn = (lung: Ellipse, count: number) => {
    const placed: Blob[] = [];
    let guard = 0;
    while (placed.length < count && guard++ < 10000) {
      const a = U(0, 2 * Math.PI);
      const rr = Math.sqrt(U(0.05, 0.6));
      const edge = onEllipse(lung, a); // a boundary point, pulled toward the centre by rr
      const x = lung.cx + (edge[0] - lung.cx) * rr;
      const y = lung.cy + (edge[1] - lung.cy) * rr;
      if (placed.every((b) => Math.hypot(b.cx - x, b.cy - y) > 22)) placed.push({ cx: x, cy: y, sigma: U(2.5, 4), amp: 0.5 });
    }
    blobs.push(...placed);
    return placed;
  };
  const vesselsR = vesselIn(lungR, 7);
  const vesselsL = vesselIn(lungL, 7);
  const liverVessel: Blob = { cx: liver.cx + J(15), cy: liver.cy - 10 + J(8), sigma: 4.5, amp: -0.25 };
  blobs.push(liverVessel);
  const waves = Array.from({ length: 6 }, () => {
    const lambda = U(18, 60);
    const a = U(0, Math.PI);
    return { kx: (2 * Math.PI * Math.cos(a)) / lambda, ky: (2 * Math.PI * Math.sin(a)) / lambda, phase: U(0, 2 * Math.PI), amp: 0.012 };
  });
  return {
    shapes,
    blobs,
    waves,
    bodyOuter,
    bodyInner,
    liver,
    spleen,
    lungR,
    lungL,
    heartC,
    myocardium,
    bloodPool,
    aorta,
    ribs,
    vesselsR,
    vesselsL,
    liverVessel,
  };
}
type Anatomy = ReturnType<typeof makeAnatomy>;

/** The reference image: intensity at a point (mm) of the undeformed anatomy. */
function referenceIntensity({ shapes, waves, blobs }: Anatomy): (r: Point) => number {
  return (r: Point): number => {
    const [x, y] = r;
    let v = 0;
    for (const e of shapes) {
      const m = membership(e, x, y);
      if (m > 0) v += (e.value - v) * m;
    }
    if (v > 0.1) {
      let tex = 0;
      for (const w of waves) tex += w.amp * Math.cos(w.kx * x + w.ky * y + w.phase);
      v *= 1 + tex;
    }
    for (const b of blobs) {
      const dx = x - b.cx;
      const dy = y - b.cy;
      const r2 = dx * dx + dy * dy;
      if (r2 < 25 * b.sigma * b.sigma) v += b.amp * Math.exp(-r2 / (2 * b.sigma * b.sigma));
    }
    return v;
  };
}

/** The organ label at a point (mm) of the undeformed anatomy: inside an ellipse = membership above one half. */
function organLabel(a: Anatomy): (r: Point) => number {
  const { lungR, lungL, liver, spleen, myocardium, bloodPool, aorta, shapes, bodyOuter, bodyInner, ribs } = a;
  const labelled: [Ellipse, number][] = [
    [lungR, 1],
    [lungL, 2],
    [liver, 3],
    [spleen, 4],
    [myocardium, 5],
    [bloodPool, 6],
    [aorta, 7],
  ];
  const paintOrder = shapes.filter((e) => labelled.some(([l]) => l === e) || e === bodyOuter || e === bodyInner || ribs.includes(e));
  return (r: Point): number => {
    let v = 0;
    for (const e of paintOrder) {
      if (membership(e, r[0], r[1]) > 0.5) v = labelled.find(([l]) => l === e)?.[1] ?? 0;
    }
    return v;
  };
}

/** Named landmarks on structures of the undeformed anatomy (mm). */
function anatomyLandmarks({ lungR, lungL, vesselsR, vesselsL, aorta, liverVessel }: Anatomy): { landmarkNames: string[]; referenceLandmarks: Point[] } {
  const domeR = onEllipse(lungR, Math.PI / 2);
  const domeL = onEllipse(lungL, Math.PI / 2);
  const landmarkNames = [
    ...vesselsR.slice(0, 4).map((_, i) => `right-lung-vessel-${i + 1}`),
    ...vesselsL.slice(0, 4).map((_, i) => `left-lung-vessel-${i + 1}`),
    'right-diaphragm-dome',
    'left-diaphragm-dome',
    'aortic-arch',
    'liver-vessel',
  ];
  const referenceLandmarks: Point[] = [
    ...vesselsR.slice(0, 4).map((b) => [b.cx, b.cy] as Point),
    ...vesselsL.slice(0, 4).map((b) => [b.cx, b.cy] as Point),
    domeR,
    domeL,
    [aorta.cx, aorta.cy],
    [liverVessel.cx, liverVessel.cy],
  ];
  return { landmarkNames, referenceLandmarks };
}

/** The motion traces per frame: breathing depth (irregular cycles), cardiac contraction, intensity drift. */
function motionTraces({ U }: Draws, frames: number, frameSeconds: number) {
  const diaphragmMm = U(14, 24);
  const breathHz = 1 / U(3.5, 5);
  const heartSeconds = U(0.75, 1.1);
  const heartPhase = U(0, 2 * Math.PI);
  const [p1, p2, p3] = [U(0, 6.3), U(0, 6.3), U(0, 6.3)];
  const cycleDepth = Array.from({ length: Math.ceil(frames * frameSeconds * breathHz * 1.5) + 3 }, () => U(0.7, 1.1));
  const breathing: number[] = [];
  const cardiac: number[] = [];
  const drift: number[] = [];
  let theta = U(0, 2 * Math.PI);
  const dtInt = 0.005;
  let tNow = 0;
  const duration = frames * frameSeconds;
  for (let t = 0; t < frames; t++) {
    const tf = t * frameSeconds;
    while (tNow < tf) {
      const f = breathHz * (1 + 0.12 * Math.sin((2 * Math.PI * tNow) / 23 + p1) + 0.06 * Math.sin((2 * Math.PI * tNow) / 11.3 + p2));
      theta += 2 * Math.PI * f * dtInt;
      tNow += dtInt;
    }
    const cyc = theta / (2 * Math.PI);
    const c0 = Math.floor(cyc);
    const w = 0.5 - 0.5 * Math.cos(Math.PI * (cyc - c0));
    const depth = cycleDepth[c0 % cycleDepth.length] * (1 - w) + cycleDepth[(c0 + 1) % cycleDepth.length] * w;
    breathing.push(depth * Math.pow(0.5 - 0.5 * Math.cos(theta), 1.6));
    cardiac.push(-0.09 * Math.pow(0.5 - 0.5 * Math.cos((2 * Math.PI * tf) / heartSeconds + heartPhase), 2));
    drift.push(1 + 0.05 * Math.sin((2 * Math.PI * tf) / (0.8 * duration) + p3) + (0.03 * tf) / duration);
  }
  return { diaphragmMm, breathing, cardiac, drift };
}

/** The displacement (mm) of the anatomy at frame t at a reference point r: breathing below the lung apices, the heart's contraction. */
function motionDisplacement({ lungR, heartC }: Anatomy, { diaphragmMm, breathing, cardiac }: ReturnType<typeof motionTraces>): (t: number, r: Point) => Point {
  const yApex = lungR.cy - 25;
  const heartS2 = 2 * 40 * 40;
  return (t: number, r: Point): Point => {
    const [x, y] = r;
    const b = breathing[t] * diaphragmMm;
    const lat = Math.exp(-((x / 125) ** 4));
    const grow = 0.5 * (1 + Math.tanh((y - yApex) / 45));
    const fade = 1 - 0.35 / (1 + Math.exp(-(y - 150) / 35));
    let dx = 0.12 * b * (x / 100) * grow * lat;
    let dy = b * grow * lat * fade;
    const hx = x - heartC[0];
    const hy = y - heartC[1];
    const g = cardiac[t] * Math.exp(-(hx * hx + hy * hy) / heartS2);
    dx += g * hx;
    dy += g * hy;
    return [dx, dy];
  };
}

/** A seeded synthetic chest series: the anatomy, its motion per frame and the frames rendered through the exact inverse motion (docs/method.md). */
export function makePhantomSeries(opts: PhantomOptions): PhantomSeries {
  const options: Required<PhantomOptions> = {
    fovMm: 384,
    frameSeconds: 0.25,
    noise: 0.015,
    intensityScale: 1000,
    ...opts,
  };
  const { size, frames, fovMm, frameSeconds } = options;
  const rng = seedrandom(`r2n2-phantom-${options.seed}`);
  const U = (a: number, b: number) => a + (b - a) * rng();
  const J = (s: number) => U(-s, s);
  const spacing = fovMm / size;
  const origin = -((size - 1) / 2) * spacing;
  const geometry: Geometry = { size: [size, size], spacing: [spacing, spacing], origin: [origin, origin], direction: [1, 0, 0, 1] };

  const draws: Draws = { U, J };
  // the draws in this order: anatomy, then motion (a seed gives the same series as before)
  const anatomy = makeAnatomy(draws);
  const reference = referenceIntensity(anatomy);
  const label = organLabel(anatomy);
  const { landmarkNames, referenceLandmarks } = anatomyLandmarks(anatomy);
  const motion = motionTraces(draws, frames, frameSeconds);
  const { diaphragmMm, breathing, cardiac, drift } = motion;
  const displacement = motionDisplacement(anatomy, motion);
  const forward = (t: number, r: Point): Point => {
    const d = displacement(t, r);
    return [r[0] + d[0], r[1] + d[1]];
  };
  const inverseFrom = (t: number, q: Point, start: Point) => {
    let r: Point = start;
    for (let it = 0; it < 100; it++) {
      const d = displacement(t, r);
      const nr: Point = [q[0] - d[0], q[1] - d[1]];
      const step = Math.abs(nr[0] - r[0]) + Math.abs(nr[1] - r[1]);
      r = nr;
      if (step < 1e-7) break;
    }
    const f = forward(t, r);
    return { point: r, residual: Math.hypot(f[0] - q[0], f[1] - q[1]) };
  };
  const inverse = (t: number, q: Point) => inverseFrom(t, q, q);

  const render = (t: number, labels: Int32Array | null): Float32Array => {
    const out = new Float32Array(size * size);
    const noise = seedrandom(`r2n2-phantom-noise-${options.seed}-${t}`);
    const gauss = () => {
      const u1 = Math.max(noise(), 1e-12);
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * noise());
    };
    const scale = options.intensityScale * drift[t];
    const sigma = options.noise * options.intensityScale;
    for (let j = 0; j < size; j++) {
      const qy = origin + j * spacing;
      let prev: Point = [origin, qy];
      for (let i = 0; i < size; i++) {
        const qx = origin + i * spacing;
        const q: Point = [qx, qy];
        // warm start: the previous pixel's displacement
        const start: Point = [qx + (prev[0] - (qx - spacing)), qy + (prev[1] - qy)];
        const { point } = inverseFrom(t, q, i === 0 ? q : start);
        prev = point;
        out[j * size + i] = scale * reference(point) + sigma * gauss();
        if (labels) labels[j * size + i] = label(point);
      }
    }
    return out;
  };
  const renderFrame = (t: number) => render(t, null);
  const renderFrameAndLabels = (t: number) => {
    const labels = new Int32Array(size * size);
    return { image: render(t, labels), labels };
  };

  return {
    geometry,
    options,
    diaphragmMm,
    motion: { breathing, cardiac, drift },
    landmarkNames,
    referenceLandmarks,
    displacement,
    forward,
    inverse,
    landmarks: (t: number) => referenceLandmarks.map((r) => forward(t, r)),
    reference,
    renderFrame,
    renderFrameAndLabels,
    label,
  };
}

/**
 * The true displacement field (mm, pixel-interleaved, on the phantom grid) that maps the fixed
 * frame to a moving frame: u(p) = φ_m(φ_f⁻¹(p)) − p. `fixedInverse` caches φ_f⁻¹ over the grid
 * (from `phantomInverseGrid`) so a series needs it once.
 */
export function phantomInverseGrid(s: PhantomSeries, fixed: number): Float64Array {
  const [w, h] = s.geometry.size;
  const out = new Float64Array(2 * w * h);
  const sp = s.geometry.spacing[0];
  const o = s.geometry.origin[0];
  for (let j = 0; j < h; j++)
    for (let i = 0; i < w; i++) {
      const { point } = s.inverse(fixed, [o + i * sp, o + j * sp]);
      out[2 * (j * w + i)] = point[0];
      out[2 * (j * w + i) + 1] = point[1];
    }
  return out;
}

export function phantomTruthField(s: PhantomSeries, fixedInverse: Float64Array, moving: number): Float32Array {
  const [w, h] = s.geometry.size;
  const out = new Float32Array(2 * w * h);
  const sp = s.geometry.spacing[0];
  const o = s.geometry.origin[0];
  for (let j = 0; j < h; j++)
    for (let i = 0; i < w; i++) {
      const k = 2 * (j * w + i);
      const m = s.forward(moving, [fixedInverse[k], fixedInverse[k + 1]]);
      out[k] = m[0] - (o + i * sp);
      out[k + 1] = m[1] - (o + j * sp);
    }
  return out;
}
