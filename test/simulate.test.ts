import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makeSimulatedSeries, sampleCubic, salientPoints } from '../src/core/phantom/simulate.js';
import { simulate } from '../src/app/simulate.js';
import { evaluateTre } from '../src/app/evaluate-tre.js';
import { openSeries } from '../src/io/series.js';
import { writeImage2D } from '../src/io/image.js';
import { itkRead } from '../src/io/itk.js';
import { readLandmarkFile } from '../src/io/landmarks.js';
import { physicalToIndex, type Geometry, type Point } from '../src/core/image/geometry.js';
import { tmpDir, runCliHere, describeWithSunnybrook, SUNNYBROOK } from './helpers.js';

let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir('r2n2-simulate-');
});
afterAll(() => t.cleanup());

/** A 96×80 test image: smooth background, a bright horizontal band (an "edge") and Gaussian blobs. */
const G: Geometry = { size: [96, 80], spacing: [1.5, 1.25], origin: [-20, 10], direction: [1, 0, 0, 1] };
const BLOBS: Point[] = [
  [20, 20],
  [50, 30],
  [70, 55],
  [30, 60],
]; // [col, row]
function testImage(): Float32Array {
  const [W, H] = G.size;
  const d = new Float32Array(W * H);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      let v = 100 + 20 * Math.sin(j / 9) + (i > 45 ? 300 : 0);
      for (const [bj, bi] of BLOBS) v += 800 * Math.exp(-((j - bj) ** 2 + (i - bi) ** 2) / (2 * 2.2 ** 2));
      d[i * W + j] = v;
    }
  }
  return d;
}

describe('simulate (core)', () => {
  const ref = { geometry: G, data: testImage() };

  test('cubic sampling interpolates: exact at pixel centres, edge values outside', () => {
    const [W, H] = G.size;
    expect(sampleCubic(ref.data, W, H, 7, 11)).toBeCloseTo(ref.data[11 * W + 7], 3);
    expect(sampleCubic(ref.data, W, H, -5, 0)).toBeCloseTo(ref.data[0], 3);
  });

  test('salient points find the blobs', () => {
    const [W, H] = G.size;
    const pts = salientPoints(ref.data, W, H, 10);
    for (const b of BLOBS) expect(Math.min(...pts.map((p) => Math.hypot(p[0] - b[0], p[1] - b[1])))).toBeLessThan(3.5);
  });

  for (const motion of ['breathing', 'cardiac', 'random'] as const) {
    test(`${motion}: landmarks are the forward map of the reference ones; inverse residual < 1e-6 mm; blobs land on their mapped centres`, () => {
      const s = makeSimulatedSeries(ref, { motion, frames: 12, seed: 4, noise: 0, drift: 0, amplitudeMm: 4 });
      const peak = s.waveform.indexOf(Math.max(...s.waveform));
      const lm = s.landmarks(peak);
      s.referenceLandmarks.forEach((r, k) => expect(lm[k]).toEqual(s.forward(peak, r)));
      const { data, residual } = s.renderFrame(peak);
      expect(residual).toBeLessThan(1e-6);
      const [W, H] = G.size;
      let moved = 0;
      for (const [bj, bi] of BLOBS) {
        const r: Point = [G.origin[0] + bj * G.spacing[0], G.origin[1] + bi * G.spacing[1]];
        const m = s.forward(peak, r);
        moved = Math.max(moved, Math.hypot(m[0] - r[0], m[1] - r[1]));
        const [ci, cj] = physicalToIndex(G, m);
        // intensity-weighted centroid above the window's minimum, in a 9×9 window
        const i0 = Math.round(ci);
        const j0 = Math.round(cj);
        let bg = Infinity;
        for (let jj = j0 - 4; jj <= j0 + 4; jj++) for (let ii = i0 - 4; ii <= i0 + 4; ii++) bg = Math.min(bg, data[jj * W + ii]);
        let sw = 0,
          si = 0,
          sj = 0;
        for (let jj = j0 - 4; jj <= j0 + 4; jj++)
          for (let ii = i0 - 4; ii <= i0 + 4; ii++) {
            if (ii < 0 || jj < 0 || ii >= W || jj >= H) continue;
            const v = data[jj * W + ii] - bg;
            sw += v;
            si += v * ii;
            sj += v * jj;
          }
        // (a deformed blob's centroid is not exactly its mapped centre: a loose bound)
        expect(Math.hypot(si / sw - ci, sj / sw - cj)).toBeLessThan(0.75);
      }
      // each pixel is the reference sampled at the inverse map (noise and drift off)
      for (const k of [0, 1234, 4000, W * H - 1]) {
        const q: Point = [G.origin[0] + (k % W) * G.spacing[0], G.origin[1] + Math.floor(k / W) * G.spacing[1]];
        const idx = physicalToIndex(G, s.inverse(peak, q).point);
        expect(data[k]).toBeCloseTo(sampleCubic(ref.data, W, H, idx[0], idx[1]), 2);
      }
      expect(moved).toBeGreaterThan(0.5); // the motion is real
      expect(s.minJacobian()).toBeGreaterThan(0.1); // no folding (simulate refuses ≤ 0.1)
    });
  }

  test('breathing is largest at the edge and slides at the sides of the band', () => {
    const s = makeSimulatedSeries(ref, { motion: 'breathing', frames: 12, seed: 4, amplitudeMm: 5, halfWidthMm: 40 });
    const peak = s.waveform.indexOf(Math.max(...s.waveform));
    const a = 5 * s.waveform[peak];
    const edgeY = s.params.edgeYmm as number;
    expect(Math.abs(edgeY - (G.origin[1] + 45.5 * G.spacing[1]))).toBeLessThanOrEqual(G.spacing[1]); // the band starts at row 46
    const cx = (s.params.centreMm as number[])[0];
    expect(s.displacement(peak, [cx, edgeY])[1]).toBeCloseTo(a, 1);
    expect(s.displacement(peak, [cx, edgeY - 0.6 * 80 * 1.25])[1]).toBeLessThan(0.2 * a);
    // sliding: 2 mm inside the band's side against 2 mm outside
    const inside = s.displacement(peak, [cx + 38, edgeY])[1];
    const outside = s.displacement(peak, [cx + 42, edgeY])[1];
    expect(inside - outside).toBeGreaterThan(0.9 * a);
  });

  test('cardiac contracts towards the centre by the amplitude at the radius', () => {
    const s = makeSimulatedSeries(ref, { motion: 'cardiac', frames: 20, seed: 1, amplitudeMm: 3, radiusMm: 20, twistDeg: 0, centre: [50, 60] });
    const es = s.waveform.indexOf(Math.max(...s.waveform));
    expect(s.waveform[0]).toBe(0);
    expect(es).toBe(7); // 35% of the cycle
    const d = s.displacement(es, [70, 60]);
    expect(d[0]).toBeCloseTo(-3 * s.waveform[es], 6);
    expect(d[1]).toBeCloseTo(0, 9);
  });

  test('deterministic for a seed, different for another', () => {
    const a = makeSimulatedSeries(ref, { motion: 'random', frames: 5, seed: 2 });
    const b = makeSimulatedSeries(ref, { motion: 'random', frames: 5, seed: 2 });
    const c = makeSimulatedSeries(ref, { motion: 'random', frames: 5, seed: 3 });
    expect(Array.from(a.renderFrame(3).data)).toEqual(Array.from(b.renderFrame(3).data));
    expect(a.displacement(3, [30, 40])).not.toEqual(c.displacement(3, [30, 40]));
  });
});

describe('simulate (files and CLI)', () => {
  test('writes frames, landmarks and truth; the truth gives ~0 TRE; a rerun keeps it; other settings are refused', async () => {
    const img = path.join(t.dir, 'ref.nrrd');
    await writeImage2D(img, { geometry: G, data: testImage() });
    const out = path.join(t.dir, 'sim');
    const r = await runCliHere([
      'simulate',
      img,
      '--out',
      out,
      '--motion',
      'cardiac',
      '--frames',
      '8',
      '--amplitude',
      '3',
      '--landmarks',
      '12',
      '--centre',
      '50,60',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/frames\s+8 of 96×80 px, spacing 1\.500×1\.250 mm/);
    const s = await openSeries(path.join(out, 'frames'));
    expect(s.frames.map((f) => f.name)).toEqual(Array.from({ length: 8 }, (_, i) => `frame_00${i}`));
    expect(s.geometry.spacing).toEqual([1.5, 1.25]);
    expect(s.geometry.origin).toEqual([-20, 10]);
    const lm = await readLandmarkFile(path.join(out, 'landmarks', 'frame_003.csv'));
    expect(lm.units).toBe('mm');
    expect(lm.points.length).toBeGreaterThanOrEqual(4);
    const ev = await evaluateTre({ landmarks: path.join(out, 'landmarks'), result: path.join(out, 'truth'), series: path.join(out, 'frames') });
    expect(ev.report.before.mean_mm).toBeGreaterThan(0.2);
    expect(ev.report.after!.max_mm).toBeLessThan(0.05 * ev.report.before.max_mm);
    const stat = await fs.stat(path.join(out, 'simulate.json'));
    const again = await runCliHere([
      'simulate',
      img,
      '--out',
      out,
      '--motion',
      'cardiac',
      '--frames',
      '8',
      '--amplitude',
      '3',
      '--landmarks',
      '12',
      '--centre',
      '50,60',
    ]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already there, kept/);
    expect((await fs.stat(path.join(out, 'simulate.json'))).mtimeMs).toBe(stat.mtimeMs);
    const other = await runCliHere(['simulate', img, '--out', out, '--motion', 'random', '--frames', '8']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/^error: .*other settings.*--force/);
    expect((await fs.readdir(t.dir)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  test('bad input is a one-line error: missing image, folding amplitude, bad --centre, a directory that is not ours', async () => {
    const img = path.join(t.dir, 'ref2.nrrd');
    await writeImage2D(img, { geometry: G, data: testImage() });
    const missing = await runCliHere(['simulate', path.join(t.dir, 'nope.nrrd'), '--out', path.join(t.dir, 'x')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: .*nope\.nrrd does not exist/);
    const fold = await runCliHere(['simulate', img, '--out', path.join(t.dir, 'fold'), '--motion', 'cardiac', '--amplitude', '40', '--radius', '10']);
    expect(fold.code).toBe(1);
    expect(fold.stderr).toMatch(/^error: --amplitude 40 mm folds the cardiac motion/);
    await expect(fs.stat(path.join(t.dir, 'fold'))).rejects.toThrow();
    const centre = await runCliHere(['simulate', img, '--out', path.join(t.dir, 'c'), '--centre', '12']);
    expect(centre.stderr).toMatch(/^error: --centre takes x,y in mm/);
    await fs.mkdir(path.join(t.dir, 'mine'));
    await fs.writeFile(path.join(t.dir, 'mine', 'notes.txt'), 'keep me');
    const theirs = await runCliHere(['simulate', img, '--out', path.join(t.dir, 'mine')]);
    expect(theirs.code).toBe(1);
    expect(theirs.stderr).toMatch(/exists and is not a simulated series/);
    expect(await fs.readFile(path.join(t.dir, 'mine', 'notes.txt'), 'utf8')).toBe('keep me');
  });
});

describeWithSunnybrook('simulate from one frame of an oblique DICOM series', () => {
  test('frames keep the DICOM 3D placement; in-plane spacing; landmarks found', async () => {
    const dicom = path.join(t.dir, 'dicom');
    await fs.mkdir(dicom);
    for (const n of [68, 79]) await fs.copyFile(path.join(SUNNYBROOK, 'dicom', 'SCD0000101', `${n}.dcm`), path.join(dicom, `${n}.dcm`));
    const out = path.join(t.dir, 'sim-dicom');
    const info = await simulate({ image: dicom, frame: '79', out, motion: 'breathing', frames: 3, seed: 1 });
    expect(info.landmarks).toBe(40);
    const raw = await itkRead(path.join(out, 'frames', 'frame_001.nrrd'));
    const src = await itkRead(path.join(dicom, '79.dcm'));
    expect(raw.size).toEqual([256, 256, 1]);
    Array.from(src.direction as ArrayLike<number>).forEach((v, k) => expect(raw.direction[k]).toBeCloseTo(v, 6));
    Array.from(src.origin).forEach((v, k) => expect(raw.origin[k]).toBeCloseTo(v, 3));
    const s = await openSeries(path.join(out, 'frames'));
    expect(s.geometry.direction).toEqual([1, 0, 0, 1]);
    expect(s.geometry.spacing[0]).toBeCloseTo(1.367188, 6);
  });
});
