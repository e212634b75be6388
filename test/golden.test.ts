/**
 * Golden accuracy: each method on small fixed cases the project generates, its figures against
 * those recorded in test/golden.json. A figure more than 30% worse fails (an error: TRE, inverse
 * residual (+ 10⁻³ px, a floor for a residual of ~0), SDlogJ; the smallest det J: 30% closer to folding); a figure more than 30% better is
 * reported, so that the record can be brought up to date:
 *
 *   R2N2_GOLDEN_WRITE=1 npm test -- test/golden.test.ts    # rewrite test/golden.json
 *
 * Cases: a 128² phantom series (breathing, 8 frames; frames 2, 4, 6 to frame 0) and, where
 * ../shared exists, a series simulated from a real cine frame (SCD0000301 slice 5, breathing
 * 10 mm, 6 frames of 256²; frames 1, 3, 5 to the simulation's fixed frame).
 */
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { makePhantomSeries } from '../src/core/phantom/phantom.js';
import { registerBspline, BSPLINE_DEFAULTS } from '../src/bspline/register.js';
import { fieldFromNormalised, mapPoint } from '../src/core/transformation/field.js';
import { frameTre } from '../src/core/metrics/tre.js';
import { jacobianDeterminant, jacobianStats } from '../src/core/metrics/jacobian.js';
import { invertField } from '../src/core/transformation/inverse.js';
import { loadModel } from '../src/io/model.js';
import { r2n2Registrar } from '../src/app/register.js';
import type { Geometry, Point } from '../src/core/image/geometry.js';
import type { Image2D } from '../src/io/image.js';
import { readImage2D } from '../src/io/image.js';
import { readLandmarkFile } from '../src/io/landmarks.js';
import { ROOT, SUNNYBROOK, HAVE_SUNNYBROOK, runCliHere, tmpDir } from './helpers.js';

const GOLDEN = path.join(ROOT, 'test', 'golden.json');
const WRITE = process.env.R2N2_GOLDEN_WRITE === '1';
/** Figure name → value; errors are `*Mm`, `*Px`, `sdLogJ`, the det J minimum is `minDetJ`. */
type Figures = Record<string, number>;
const golden: Record<string, Figures> = existsSync(GOLDEN) ? JSON.parse(readFileSync(GOLDEN, 'utf8')) : {};
const measured: Record<string, Figures> = {};

beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(async () => {
  if (WRITE) await fs.writeFile(GOLDEN, JSON.stringify({ ...golden, ...measured }, null, 2) + '\n');
});

/** Checks `got` against the record of `name` (or records it with R2N2_GOLDEN_WRITE=1). */
function check(name: string, got: Figures): void {
  measured[name] = got;
  if (WRITE) return;
  const want = golden[name];
  expect(want).toBeDefined(); // a new case: record it with R2N2_GOLDEN_WRITE=1
  const better: string[] = [];
  for (const [k, v] of Object.entries(want)) {
    const g = got[k];
    expect(Number.isFinite(g)).toBe(true);
    if (k === 'minDetJ') {
      // closer to folding (0) by more than 30% of its distance
      expect({ figure: `${name} ${k}`, value: g }).toEqual({ figure: `${name} ${k}`, value: g >= 0.7 * v ? g : `${g} (golden ${v})` });
    } else {
      expect({ figure: `${name} ${k}`, value: g }).toEqual({ figure: `${name} ${k}`, value: g <= 1.3 * v + 1e-9 ? g : `${g} (golden ${v})` });
      if (g < 0.7 * v) better.push(`${k} ${g.toPrecision(4)} (golden ${v.toPrecision(4)})`);
    }
  }
  if (better.length) console.warn(`golden ${name}: better than recorded, update test/golden.json (R2N2_GOLDEN_WRITE=1): ${better.join(', ')}`);
}

/** Mean TRE (mm) of the fields at the fixed landmarks. */
function meanTre(geometry: Geometry, fixedPts: Point[], movingPts: Point[][], fields: Float32Array[]): number {
  let s = 0;
  fields.forEach((u, k) => {
    const f = fieldFromNormalised(u, geometry);
    const t = frameTre(`m${k}`, fixedPts, movingPts[k], geometry, (q) => mapPoint(f, q));
    s += t.afterMm!.reduce((a, b) => a + b, 0) / t.afterMm!.length;
  });
  return s / fields.length;
}

/** The B-spline's figures: TRE, and of its fields the Jacobian and the inverse's residual. */
function bsplineFigures(fixed: Image2D, movings: Image2D[], fixedPts: Point[], movingPts: Point[][]): Figures {
  const [W, H] = fixed.geometry.size;
  const fields = movings.map((m) => registerBspline(fixed.data, m.data, H, W, BSPLINE_DEFAULTS, fixed.geometry).field);
  let minDet = Infinity;
  let sd = 0;
  let residual = 0;
  for (const u of fields) {
    const f = fieldFromNormalised(u, fixed.geometry);
    const s = jacobianStats(jacobianDeterminant(f));
    minDet = Math.min(minDet, s.min);
    sd += s.sdLogJ / fields.length;
    residual = Math.max(residual, invertField(f).residualMeanPx);
  }
  return { treMm: meanTre(fixed.geometry, fixedPts, movingPts, fields), minDetJ: minDet, sdLogJ: sd, inverseResidualPx: residual + 1e-3 };
}

async function r2n2Tre(modelDir: string, fixed: Image2D, movings: Image2D[], fixedPts: Point[], movingPts: Point[][], refine = 0): Promise<number> {
  const model = await loadModel(modelDir);
  const reg = r2n2Registrar(model, { steps: Number(model.json.training?.steps ?? 7), stopThreshold: 0, refine, ...(refine ? { refineSize: 128 } : {}) });
  const out = await reg.registerBatch!(fixed, movings, () => undefined);
  model.tensors.forEach((t) => t.dispose());
  return meanTre(
    fixed.geometry,
    fixedPts,
    movingPts,
    out.map((r) => r.field),
  );
}

describe('golden accuracy: phantom 128², breathing', () => {
  const s = makePhantomSeries({ size: 128, frames: 8, seed: 1 });
  const img = (t: number): Image2D => ({ geometry: s.geometry, data: s.renderFrame(t) });
  const fixed = img(0);
  const picks = [2, 4, 6];
  const movings = picks.map(img);
  const fixedPts = s.landmarks(0);
  const movingPts = picks.map((t) => s.landmarks(t));

  test('none (the case itself)', () => {
    check('phantom none', {
      treMm: meanTre(
        s.geometry,
        fixedPts,
        movingPts,
        movings.map(() => new Float32Array(2 * 128 * 128)),
      ),
    });
  });
  test('B-spline (defaults): TRE, det J, SDlogJ, inverse residual', () => {
    check('phantom bspline', bsplineFigures(fixed, movings, fixedPts, movingPts));
  });
  test('R2N2, the bundled phantom model alone and refined', async () => {
    const dir = path.join(ROOT, 'fixtures', 'models', 'phantom');
    check('phantom r2n2', { treMm: await r2n2Tre(dir, fixed, movings, fixedPts, movingPts) });
    check('phantom r2n2+r20', { treMm: await r2n2Tre(dir, fixed, movings, fixedPts, movingPts, 20) });
  });
});

(HAVE_SUNNYBROOK ? describe : describe.skip)('golden accuracy: a series simulated from real cine (skipped without ../shared)', () => {
  let t: ReturnType<typeof tmpDir>;
  let fixed: Image2D;
  let movings: Image2D[];
  let fixedPts: Point[];
  let movingPts: Point[][];
  beforeAll(async () => {
    t = tmpDir('r2n2-golden-');
    const src = path.join(SUNNYBROOK, 'series', 'SCD0000301', 'slice_05', 'frames', 'phase_01.mha');
    const out = path.join(t.dir, 'sim');
    const r = await runCliHere(['simulate', src, '--out', out, '--frames', '6', '--amplitude', '10', '--landmarks', '20', '--seed', '3', '--json']);
    expect(r.code).toBe(0);
    const fixedName = JSON.parse(r.stdout).fixedFrame as string;
    const names = (await fs.readdir(path.join(out, 'frames'))).map((f) => f.replace('.nrrd', '')).sort();
    const others = names.filter((n) => n !== fixedName).filter((_, k) => k % 2 === 0);
    fixed = await readImage2D(path.join(out, 'frames', `${fixedName}.nrrd`));
    movings = await Promise.all(others.map((n) => readImage2D(path.join(out, 'frames', `${n}.nrrd`))));
    fixedPts = (await readLandmarkFile(path.join(out, 'landmarks', `${fixedName}.csv`))).points;
    movingPts = await Promise.all(others.map(async (n) => (await readLandmarkFile(path.join(out, 'landmarks', `${n}.csv`))).points));
  });
  afterAll(() => t.cleanup());

  test('B-spline (defaults) and R2N2 (cine-mr alone)', async () => {
    check('cine-sim none', {
      treMm: meanTre(
        fixed.geometry,
        fixedPts,
        movingPts,
        movings.map(() => new Float32Array(2 * 256 * 256)),
      ),
    });
    check('cine-sim bspline', bsplineFigures(fixed, movings, fixedPts, movingPts));
    check('cine-sim r2n2', { treMm: await r2n2Tre(path.join(ROOT, 'fixtures', 'models', 'cine-mr'), fixed, movings, fixedPts, movingPts) });
  });
});
