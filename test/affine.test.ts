import path from 'node:path';
import { promises as fs } from 'node:fs';
import { initBackend } from '../src/backend/index.js';
import { makePhantomSeries } from '../src/core/phantom/phantom.js';
import { type AffineTransform, applyAffine, affineField, gridCentre, registerAffine, centreOfMass } from '../src/core/transformation/affine.js';
import { fieldFromNormalised, mapPoint } from '../src/core/transformation/field.js';
import { type Geometry, indexToPhysical, physicalToIndex } from '../src/core/image/geometry.js';
import { writeImage2D, readField } from '../src/io/index.js';
import { tmpDir, runCli } from './helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/**
 * moving(q) = R(T⁻¹(q)) with R the phantom's analytic reference anatomy, so T maps the fixed
 * frame R onto the moving one exactly: no interpolation, no invented border (a resampled image
 * would put zeros where the rotated anatomy leaves the field of view, which biases any fit).
 */
function transformImage(ref: (p: [number, number]) => number, g: Geometry, a: AffineTransform): Float32Array {
  const [W, H] = g.size;
  const [m00, m01, m10, m11] = a.matrix;
  const det = m00 * m11 - m01 * m10;
  const inv = [m11 / det, -m01 / det, -m10 / det, m00 / det];
  const out = new Float32Array(W * H);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      const q = indexToPhysical(g, [j, i]);
      const x = q[0] - a.centre[0] - a.translation[0];
      const y = q[1] - a.centre[1] - a.translation[1];
      out[i * W + j] = ref([inv[0] * x + inv[1] * y + a.centre[0], inv[2] * x + inv[3] * y + a.centre[1]]);
    }
  return out;
}

const s = makePhantomSeries({ size: 128, frames: 2, seed: 4 });
const g = s.geometry;
const identity: AffineTransform = { kind: 'affine', matrix: [1, 0, 0, 1], translation: [0, 0], centre: gridCentre(g) };
const fixed = transformImage(s.reference, g, identity);
const th = (7 * Math.PI) / 180;
const sc = 1.05;
const truth: AffineTransform = {
  kind: 'similarity',
  matrix: [sc * Math.cos(th), -sc * Math.sin(th), sc * Math.sin(th), sc * Math.cos(th)],
  translation: [9, -6],
  centre: gridCentre(g),
};
const moving = transformImage(s.reference, g, truth);
// check points: a grid over the body (inside both images)
const points: [number, number][] = [];
for (let i = 30; i <= 98; i += 17) for (let j = 30; j <= 98; j += 17) points.push(indexToPhysical(g, [j, i]));
const pxError = (map: (p: [number, number]) => [number, number]) =>
  Math.max(
    ...points.map((p) => {
      const a = physicalToIndex(g, map(p));
      const b = physicalToIndex(g, applyAffine(truth, p));
      return Math.hypot(a[0] - b[0], a[1] - b[1]);
    }),
  );

describe('global transformations', () => {
  test('the affine field in normalised units maps points like T itself', () => {
    const u = fieldFromNormalised(affineField(truth, g), g);
    expect(pxError((p) => mapPoint(u, p))).toBeLessThan(1e-3);
  });
  test('composing after a pre-alignment: T(p) = T_A(p + u(p)) for a field u found on M∘T_A', async () => {
    const { composeAfterAffine } = await import('../src/core/transformation/affine.js');
    const [W, H] = g.size;
    const u = new Float32Array(2 * W * H);
    u.fill(2 / (W - 1), 0, W * H); // +1 column everywhere
    u.fill(-4 / (H - 1), W * H); // −2 rows
    const total = fieldFromNormalised(composeAfterAffine(truth, g, u), g);
    const shift = (p: [number, number]): [number, number] => {
      const i = physicalToIndex(g, p);
      return indexToPhysical(g, [i[0] + 1, i[1] - 2]);
    };
    expect(pxError((p) => mapPoint(total, p))).toBeGreaterThan(0.5); // not T itself…
    const err = Math.max(
      ...points.map((p) => {
        const a = physicalToIndex(g, mapPoint(total, p));
        const b = physicalToIndex(g, applyAffine(truth, shift(p)));
        return Math.hypot(a[0] - b[0], a[1] - b[1]);
      }),
    );
    expect(err).toBeLessThan(1e-3); // …but T_A after the shift
  });
  test('centre of mass follows a translation', () => {
    const shifted: AffineTransform = { ...truth, matrix: [1, 0, 0, 1], translation: [12, 0] };
    const a = centreOfMass(fixed, g);
    const b = centreOfMass(transformImage(s.reference, g, shifted), g);
    expect(b[0] - a[0]).toBeCloseTo(12, 0);
  });
  test('registerAffine recovers a rotation + scaling + translation to < 0.1 px (affine and similarity), no tensor left behind', async () => {
    const { memory } = await import('@tensorflow/tfjs-core');
    const before = memory().numTensors;
    for (const kind of ['affine', 'similarity'] as const) {
      const r = registerAffine(fixed, moving, g, { kind, levels: 3, iterations: [150, 100, 50], learningRate: [0.01, 0.005, 0.002], loss: 'mse' });
      expect(pxError((p) => applyAffine(r, p))).toBeLessThan(0.1);
    }
    expect(memory().numTensors).toBe(before);
  });
});

describe('r2n2 baseline bspline --init affine', () => {
  const t = tmpDir('r2n2-affine-');
  afterAll(() => t.cleanup());
  test('pair mode with the affine stage alone (--iterations 0) recovers the known transformation; evaluate reads the composed field', async () => {
    await writeImage2D(path.join(t.dir, 'fixed.nrrd'), { geometry: g, data: fixed });
    await writeImage2D(path.join(t.dir, 'moving.nrrd'), { geometry: g, data: moving });
    const out = path.join(t.dir, 'res');
    const r = runCli([
      'baseline',
      'bspline',
      '--fixed',
      path.join(t.dir, 'fixed.nrrd'),
      '--moving',
      path.join(t.dir, 'moving.nrrd'),
      '--out',
      out,
      '--init',
      'affine',
      '--iterations',
      '0',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const field = await readField(path.join(out, 'fields', 'moving.nii.gz'));
    expect(pxError((p) => mapPoint(field, p))).toBeLessThan(0.1);
    const p = JSON.parse(await fs.readFile(path.join(out, 'params', 'moving.json'), 'utf8'));
    expect(p.affine.kind).toBe('affine');
    expect(p.affine.matrix[0]).toBeCloseTo(truth.matrix[0], 2);
    expect(p.affine.translation[0]).toBeCloseTo(9, 0);
    expect(p.parameters).toBe(6 + p.levels.reduce((a: number, l: { controlGrid: number[] }) => a + 2 * l.controlGrid[0] * l.controlGrid[1], 0));
    // evaluate tre on the composed field: landmarks written in mm, moving = T(fixed)
    const lm = path.join(t.dir, 'lm');
    await fs.mkdir(lm);
    await fs.writeFile(path.join(lm, 'fixed.csv'), 'x,y\n' + points.map((q) => q.join(',')).join('\n') + '\n');
    await fs.writeFile(path.join(lm, 'moving.csv'), 'x,y\n' + points.map((q) => applyAffine(truth, q).join(',')).join('\n') + '\n');
    const e = runCli(['evaluate', 'tre', '--result', out, '--landmarks', lm, '--json']);
    expect(e.code).toBe(0);
    const ev = JSON.parse(e.stdout);
    expect(ev.before.mean_px).toBeGreaterThan(3);
    expect(ev.after.max_px).toBeLessThan(0.1);
  });
});
