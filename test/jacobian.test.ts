import path from 'node:path';
import { existsSync } from 'node:fs';
import { jacobianDeterminant, jacobianStats } from '../src/core/metrics/jacobian.js';
import type { DisplacementField } from '../src/core/transformation/field.js';
import type { Geometry } from '../src/core/image/geometry.js';
import { indexToPhysical } from '../src/core/image/geometry.js';
import { writeField, writeSummary } from '../src/io/index.js';
import { tmpDir, runCliHere } from './helpers.js';

const g: Geometry = { size: [30, 20], spacing: [0.8, 1.5], origin: [3, -2], direction: [Math.cos(0.4), -Math.sin(0.4), Math.sin(0.4), Math.cos(0.4)] };

/** u(p) = (A − I)(p − c) in physical units: T(p) = A(p − c) + c, det J = det A everywhere. */
function affineField(A: number[], geometry = g): DisplacementField {
  const [W, H] = geometry.size;
  const data = new Float32Array(2 * W * H);
  const c = [10, 5];
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      const p = indexToPhysical(geometry, [j, i]);
      const q = [p[0] - c[0], p[1] - c[1]];
      data[2 * (i * W + j)] = (A[0] - 1) * q[0] + A[1] * q[1];
      data[2 * (i * W + j) + 1] = A[2] * q[0] + (A[3] - 1) * q[1];
    }
  return { geometry, data };
}

describe('Jacobian determinant', () => {
  test('a known affine map has det J = det A at every pixel (rotated grid, anisotropic spacing)', () => {
    const A = [1.2, 0.3, -0.1, 0.9]; // det = 1.08 + 0.03 = 1.11
    const det = jacobianDeterminant(affineField(A));
    for (const d of det) expect(d).toBeCloseTo(1.11, 4);
    const s = jacobianStats(det);
    expect(s.folding).toBe(0);
    expect(s.sdLogJ).toBeLessThan(1e-4);
  });
  test('identity has det 1; a reflection (folding) is detected', () => {
    expect(Array.from(jacobianDeterminant(affineField([1, 0, 0, 1]))).every((d) => Math.abs(d - 1) < 1e-5)).toBe(true);
    const s = jacobianStats(jacobianDeterminant(affineField([-1, 0, 0, 1])));
    expect(s.folding).toBe(1);
    expect(s.max).toBeCloseTo(-1, 4);
  });
  test('SDlogJ by hand: half the pixels det 2, half det 1/2 → std of ±log 2 = log 2', () => {
    const s = jacobianStats([2, 2, 0.5, 0.5]);
    expect(s.sdLogJ).toBeCloseTo(Math.log(2), 10);
    expect(s.mean).toBeCloseTo(1.25, 10);
  });
});

describe('r2n2 evaluate jacobian', () => {
  const t = tmpDir('r2n2-jac-');
  afterAll(() => t.cleanup());
  test('reports folding per frame, writes det-J images with --write', async () => {
    const dir = t.dir;
    await writeField(path.join(dir, 'fields', 'a.nii.gz'), affineField([1.2, 0.3, -0.1, 0.9]));
    await writeField(path.join(dir, 'fields', 'b.nii.gz'), affineField([-1, 0, 0, 1]));
    await writeSummary(dir, {
      format: 'r2n2-result',
      version: 1,
      method: 'test',
      backend: 'none',
      fixedFrame: 'f',
      frames: [
        { name: 'a', field: 'fields/a.nii.gz', seconds: 0, parameters: 6 },
        { name: 'b', field: 'fields/b.nii.gz', seconds: 0, parameters: 6 },
      ],
    });
    const r = await runCliHere(['evaluate', 'jacobian', '--result', dir, '--json', '--write']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ev = JSON.parse(r.stdout);
    expect(ev.frames[0].folding).toBe(0);
    expect(ev.frames[0].mean).toBeCloseTo(1.11, 3);
    expect(ev.frames[1].folding).toBe(1);
    expect(ev.overall.framesWithFolding).toBe(1);
    expect(ev.overall.folding).toBeCloseTo(0.5, 6);
    expect(existsSync(path.join(dir, 'jacobian', 'b.nii.gz'))).toBe(true);
    const text = await runCliHere(['evaluate', 'jacobian', '--result', dir]);
    expect(text.stdout).toMatch(/overall: folding 50\.0000 % \(600 px in 1 frame\(s\)\)/);
    const bad = await runCliHere(['evaluate', 'jacobian', '--result', path.join(dir, 'nope')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/summary\.json not found/);
  });
});

describe('Dice (r2n2 evaluate dice)', () => {
  const t = tmpDir('r2n2-dice-');
  afterAll(() => t.cleanup());
  test('a square shifted 3 px: Dice 0.7 before by hand, 1 after the true field; label 2 kept apart', async () => {
    const { writeImage2D } = await import('../src/io/index.js');
    const geo: Geometry = { size: [40, 30], spacing: [0.5, 2], origin: [0, 0], direction: [1, 0, 0, 1] };
    const square = (dx: number) => {
      const d = new Float32Array(40 * 30);
      for (let i = 5; i < 15; i++) for (let j = 10 + dx; j < 20 + dx; j++) d[i * 40 + j] = 1;
      for (let i = 20; i < 25; i++) for (let j = 30; j < 35; j++) d[i * 40 + j] = 2; // does not move
      return d;
    };
    const dir = t.dir;
    await writeImage2D(path.join(dir, 'labels', 'f.nrrd'), { geometry: geo, data: square(0) });
    await writeImage2D(path.join(dir, 'labels', 'm.nrrd'), { geometry: geo, data: square(3) });
    const u = new Float32Array(2 * 40 * 30);
    for (let i = 0; i < 30; i++) for (let j = 0; j < 40; j++) if (i < 18) u[2 * (i * 40 + j)] = 3 * 0.5; // +3 columns in mm, upper part only
    await writeField(path.join(dir, 'res', 'fields', 'm.nii.gz'), { geometry: geo, data: u });
    await writeSummary(path.join(dir, 'res'), {
      format: 'r2n2-result',
      version: 1,
      method: 'shift',
      backend: 'none',
      fixedFrame: 'f',
      frames: [{ name: 'm', field: 'fields/m.nii.gz', seconds: 0, parameters: 2 }],
    });
    const r = await runCliHere(['evaluate', 'dice', '--result', path.join(dir, 'res'), '--labels', path.join(dir, 'labels'), '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ev = JSON.parse(r.stdout);
    expect(ev.frames[0].before['1']).toBeCloseTo(0.7, 10);
    expect(ev.frames[0].after['1']).toBe(1);
    expect(ev.frames[0].after['2']).toBe(1);
    expect(ev.meanAfter).toBe(1);
    // HD95: the square's left and right sides are 3 columns (1.5 mm) apart, nothing farther
    expect(ev.frames[0].hd95Before['1']).toBeCloseTo(1.5, 10);
    expect(ev.frames[0].hd95After['1']).toBe(0);
    expect(ev.frames[0].hd95Before['2']).toBe(0);
    expect(ev.perLabel[0].hd95Before).toBeCloseTo(1.5, 10);
    // one frame: the 30% quantile is its Dice
    expect(ev.perLabel[0].dsc30Before).toBeCloseTo(0.7, 10);
    const text = await runCliHere(['evaluate', 'dice', '--result', path.join(dir, 'res'), '--labels', path.join(dir, 'labels')]);
    expect(text.stdout).toMatch(/DSC30 before .*HD95 before/);
    expect(text.stdout).toMatch(/^\s+1\s+0\.7000\s+1\.0000\s+0\.7000\s+1\.0000\s+1\.50\s+0\.00$/m);
  });

  test('HD95 ignores the worst 5% of boundary points, is 0 for equal maps and Infinity for a missing label', async () => {
    const { hd95 } = await import('../src/core/metrics/dice.js');
    const W = 40;
    const H = 40;
    const a = new Float32Array(W * H);
    for (let i = 5; i < 15; i++) for (let j = 5; j < 15; j++) a[i * W + j] = 1;
    const b = Float32Array.from(a);
    b[35 * W + 35] = 1; // one stray pixel 20+ px away
    expect(hd95(a, a, W, H, [1, 1], 1)).toBe(0);
    expect(hd95(a, b, W, H, [1, 1], 1)).toBe(0); // 1 of 37 boundary points is an outlier: below 5%
    expect(hd95(a, new Float32Array(W * H), W, H, [1, 1], 1)).toBe(Infinity);
    // the same shift along columns and rows: spacing scales it
    const c = new Float32Array(W * H);
    for (let i = 5; i < 15; i++) for (let j = 8; j < 18; j++) c[i * W + j] = 1;
    expect(hd95(a, c, W, H, [1, 1], 1)).toBeCloseTo(3, 10);
    expect(hd95(a, c, W, H, [2, 1], 1)).toBeCloseTo(6, 10);
  });
});

describe('evaluate jacobian --write and tre on bad files (simulated series, its truth as the result)', () => {
  let t: ReturnType<typeof tmpDir>;
  let sim: string;
  beforeAll(async () => {
    t = tmpDir('r2n2-jac-bad-');
    expect((await runCliHere(['phantom', '--out', path.join(t.dir, 'ph'), '--series', '1', '--frames', '2', '--size', '48', '--seed', '1'])).code).toBe(0);
    sim = path.join(t.dir, 'sim');
    const img = path.join(t.dir, 'ph', 'series-01', 'frames', 'frame_000.nrrd');
    expect((await runCliHere(['simulate', img, '--out', sim, '--frames', '4', '--landmarks', '6', '--quiet'])).code).toBe(0);
  });
  afterAll(() => t.cleanup());

  test('a truncated field fails with one line and leaves no partial jacobian/ directory', async () => {
    const { promises: fs } = await import('node:fs');
    const truth = path.join(sim, 'truth');
    const fields = (await fs.readdir(path.join(truth, 'fields'))).sort();
    const last = path.join(truth, 'fields', fields[fields.length - 1]);
    const whole = await fs.readFile(last);
    await fs.writeFile(last, whole.subarray(0, Math.floor(whole.length / 2)));
    const r = await runCliHere(['evaluate', 'jacobian', '--result', truth, '--write', '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(path.join(truth, 'jacobian'))).toBe(false);
    expect((await fs.readdir(truth)).filter((e) => e.startsWith('.r2n2-tmp-'))).toEqual([]);
    await fs.writeFile(last, whole);
    const ok = await runCliHere(['evaluate', 'jacobian', '--result', truth, '--write', '--quiet']);
    expect(ok.code).toBe(0);
    expect((await fs.readdir(path.join(truth, 'jacobian'))).length).toBe(fields.length);
  });

  test('moving landmarks far outside the image: the TRE is given with a named warning', async () => {
    const { promises: fs } = await import('node:fs');
    const lm = path.join(t.dir, 'lm');
    await fs.cp(path.join(sim, 'landmarks'), lm, { recursive: true });
    const files = (await fs.readdir(lm)).sort();
    const summary = JSON.parse(await fs.readFile(path.join(sim, 'truth', 'summary.json'), 'utf8'));
    const victim = files.find((f) => f !== `${summary.fixedFrame}.csv`) as string;
    const text = await fs.readFile(path.join(lm, victim), 'utf8');
    const lines = text.trim().split('\n');
    // the first landmark 100 m away (px written as mm, or another image's file)
    const k = lines.findIndex((l) => /^-?\d/.test(l));
    lines[k] = '100000,100000';
    await fs.writeFile(path.join(lm, victim), lines.join('\n') + '\n');
    const r = await runCliHere(['evaluate', 'tre', '--landmarks', lm, '--result', path.join(sim, 'truth')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/1 moving landmark\(s\) lie outside the image .*first in .*check their units/);
  });
});
