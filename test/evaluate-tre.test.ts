import { promises as fs } from 'node:fs';
import path from 'node:path';
import { evaluateTre } from '../src/app/evaluate-tre.js';
import { writeField } from '../src/io/image.js';
import { writeSummary } from '../src/io/result.js';
import { formatLandmarkCsv } from '../src/io/landmarks.js';
import type { Geometry, Point } from '../src/core/image/geometry.js';
import { tmpDir, runCliHere, lcg, HAVE_BIRL, BIRL } from './helpers.js';

let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir();
});
afterAll(() => t.cleanup());

const geom: Geometry = { size: [40, 30], spacing: [1.25, 0.8], origin: [-20, 5], direction: [1, 0, 0, 1] };

async function makeLandmarks(dir: string, frames: number, n: number, seed: number): Promise<Point[][]> {
  const r = lcg(seed);
  const all: Point[][] = [];
  await fs.mkdir(dir, { recursive: true });
  for (let k = 0; k < frames; k++) {
    const pts: Point[] = Array.from({ length: n }, () => [-20 + r() * 48, 5 + r() * 23] as Point);
    all.push(pts);
    await fs.writeFile(path.join(dir, `frame_${String(k).padStart(3, '0')}.csv`), formatLandmarkCsv(pts));
  }
  return all;
}

describe('evaluate tre', () => {
  test('identity TRE from the CLI (--fixed-frame 0 --json) equals an independent computation to 1e-3 mm', async () => {
    const dir = path.join(t.dir, 'ident');
    const pts = await makeLandmarks(dir, 6, 9, 7);
    // independent computation: plain loops, pooled over frames 1..5
    const d: number[] = [];
    for (let k = 1; k < 6; k++) for (let i = 0; i < 9; i++) d.push(Math.hypot(pts[k][i][0] - pts[0][i][0], pts[k][i][1] - pts[0][i][1]));
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    const std = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
    const sorted = [...d].sort((a, b) => a - b);
    const median = (sorted[22] + sorted[21]) / 2 === sorted[22] ? sorted[22] : sorted[22]; // 45 values: index 22
    const pos = 0.9 * 44;
    const p90 = sorted[Math.floor(pos)] + (sorted[Math.floor(pos) + 1] - sorted[Math.floor(pos)]) * (pos - Math.floor(pos));
    const r = await runCliHere(['evaluate', 'tre', '--landmarks', dir, '--fixed-frame', '0', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.fixedFrame).toBe('frame_000');
    expect(j.after).toBeNull();
    expect(j.frames).toHaveLength(5);
    expect(Math.abs(j.before.mean_mm - mean)).toBeLessThan(1e-3);
    expect(Math.abs(j.before.std_mm - std)).toBeLessThan(1e-3);
    expect(Math.abs(j.before.median_mm - median)).toBeLessThan(1e-3);
    expect(Math.abs(j.before.p90_mm - p90)).toBeLessThan(1e-3);
    expect(Math.abs(j.before.max_mm - sorted[44])).toBeLessThan(1e-3);
    expect(j.before.mean_px).toBeNull(); // no geometry given
  });

  test('after registration: a known affine field, TRE computed by hand', async () => {
    const dir = path.join(t.dir, 'affine');
    const lm = path.join(dir, 'landmarks');
    const res = path.join(dir, 'result');
    // fixed landmarks f; the true map T(p) = A p + b; moving landmarks = T(f) + a known residual
    const A = [
      [1.02, 0.03],
      [-0.01, 0.97],
    ];
    const b = [1.5, -2];
    const T = (p: Point): Point => [A[0][0] * p[0] + A[0][1] * p[1] + b[0], A[1][0] * p[0] + A[1][1] * p[1] + b[1]];
    const f: Point[] = [
      [-10, 10],
      [0, 15],
      [12, 20],
      [20, 8],
    ];
    const resid: Point[] = [
      [0.3, 0.4],
      [0, 0],
      [-0.6, 0.8],
      [0, -1],
    ]; // |.| = 0.5, 0, 1, 1
    const m = f.map((p, i) => [T(p)[0] + resid[i][0], T(p)[1] + resid[i][1]] as Point);
    await fs.mkdir(lm, { recursive: true });
    await fs.writeFile(path.join(lm, 'fix.csv'), formatLandmarkCsv(f));
    await fs.writeFile(path.join(lm, 'mov.csv'), formatLandmarkCsv(m));
    // the field of T on the grid: u(p) = T(p) − p (affine, so bilinear interpolation is exact)
    const [W, H] = geom.size;
    const data = new Float32Array(2 * W * H);
    for (let j = 0; j < H; j++)
      for (let i = 0; i < W; i++) {
        const p: Point = [geom.origin[0] + i * geom.spacing[0], geom.origin[1] + j * geom.spacing[1]];
        const q = T(p);
        data[2 * (j * W + i)] = q[0] - p[0];
        data[2 * (j * W + i) + 1] = q[1] - p[1];
      }
    await writeField(path.join(res, 'fields', 'mov.nii.gz'), { geometry: geom, data });
    await writeSummary(res, {
      format: 'r2n2-result',
      version: 1,
      method: 'test-affine',
      backend: 'none',
      fixedFrame: 'fix',
      frames: [{ name: 'mov', field: 'fields/mov.nii.gz', seconds: 0, parameters: 6 }],
    });
    const ev = await evaluateTre({ landmarks: lm, result: res });
    expect(ev.fixedFrame).toBe('fix');
    const after = ev.report.after!;
    expect(after.mean_mm).toBeCloseTo((0.5 + 0 + 1 + 1) / 4, 4);
    expect(after.max_mm).toBeCloseTo(1, 4);
    const before = f.map((p, i) => Math.hypot(p[0] - m[i][0], p[1] - m[i][1]));
    expect(ev.report.before.mean_mm).toBeCloseTo(before.reduce((a, c) => a + c, 0) / 4, 10);
    // pixel figures come from the field's geometry: residual (0.3, 0.4) mm = (0.24, 0.5) px
    expect(ev.frames[0].afterPx![0]).toBeCloseTo(Math.hypot(0.3 / 1.25, 0.4 / 0.8), 4);

    // the CLI prints the same, as a table and as JSON
    const r = await runCliHere(['evaluate', 'tre', '--landmarks', lm, '--result', res, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).after.mean_mm).toBeCloseTo(0.625, 4);
    const table = await runCliHere(['evaluate', 'tre', '--landmarks', lm, '--result', res, '--csv', path.join(dir, 'tre.csv')]);
    expect(table.stdout).toMatch(/fixed frame: fix \(result\)\s+method: test-affine/);
    expect(table.stdout).toMatch(/mean\s+\S+\s+0\.6[23]\s/);
    const csv = (await fs.readFile(path.join(dir, 'tre.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('frame,landmark,before_mm,after_mm,before_px,after_px');
    expect(csv).toHaveLength(5);
    expect(Number(csv[3].split(',')[3])).toBeCloseTo(1, 4);
  });

  test('landmark count mismatch: an error naming both files, nothing on stdout', async () => {
    const dir = path.join(t.dir, 'mismatch');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'a.csv'), 'x,y\n0,0\n1,1\n');
    await fs.writeFile(path.join(dir, 'b.csv'), 'x,y\n0,0\n');
    const r = await runCliHere(['evaluate', 'tre', '--landmarks', dir, '--fixed-frame', 'a']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: .*a\.csv has 2 landmarks but .*b\.csv has 1/);
  });

  test('a corrupt result directory and a field off the grid are clear errors', async () => {
    const dir = path.join(t.dir, 'corrupt');
    await fs.mkdir(path.join(dir, 'lm'), { recursive: true });
    await fs.writeFile(path.join(dir, 'lm', 'a.csv'), 'x,y\n0,0\n');
    await fs.writeFile(path.join(dir, 'lm', 'b.csv'), 'x,y\n1,0\n');
    await fs.writeFile(path.join(dir, 'summary.json'), '{"fixedFrame": "a", "frames": [');
    let r = await runCliHere(['evaluate', 'tre', '--landmarks', path.join(dir, 'lm'), '--result', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*summary\.json is not valid JSON/);
    await fs.writeFile(path.join(dir, 'summary.json'), JSON.stringify({ fixedFrame: 'a', frames: [{ name: 'b', field: 'fields/b.nii.gz' }] }));
    r = await runCliHere(['evaluate', 'tre', '--landmarks', path.join(dir, 'lm'), '--result', dir]);
    expect(r.stderr).toMatch(/^error: cannot read .*b\.nii\.gz: no such file/);
    expect(r.stdout).toBe('');
    r = await runCliHere(['evaluate', 'tre', '--landmarks', path.join(dir, 'lm')]);
    expect(r.stderr).toMatch(/no fixed frame known: pass --fixed-frame/);
    r = await runCliHere(['evaluate', 'tre', '--landmarks', path.join(dir, 'lm'), '--fixed-frame', 'zz']);
    expect(r.stderr).toMatch(/no frame named "zz"/);
  });

  (HAVE_BIRL ? test : test.skip)('BIRL pixel landmarks with the images as a series (../shared/data)', async () => {
    const s = path.join(t.dir, 'birl', 'frames');
    const lm = path.join(t.dir, 'birl', 'landmarks');
    await fs.mkdir(s, { recursive: true });
    await fs.mkdir(lm, { recursive: true });
    for (const n of ['artificial_reference', 'artificial_moving-elastic']) {
      await fs.symlink(path.join(BIRL, `${n}.jpg`), path.join(s, `${n}.jpg`));
      await fs.symlink(path.join(BIRL, `${n}.csv`), path.join(lm, `${n}.csv`));
    }
    const r = await runCliHere(['evaluate', 'tre', '--landmarks', lm, '--series', s, '--fixed-frame', 'artificial_reference', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.before.n).toBe(12);
    // spacing 1 mm: mm and px agree
    expect(j.before.mean_mm).toBeCloseTo(j.before.mean_px, 9);
    expect(j.before.mean_px).toBeGreaterThan(30);
  });
});
