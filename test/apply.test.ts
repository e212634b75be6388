import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { tmpDir, runCliHere, describeWithSunnybrook, SUNNYBROOK, ROOT } from './helpers.js';
import { invertField, compositionResidual } from '../src/core/transformation/inverse.js';
import { resampleThroughField, resampleLabels, insideMask } from '../src/core/transformation/apply.js';
import { warpSamples } from '../src/core/transformation/warp.js';
import { fieldFromNormalised, type DisplacementField } from '../src/core/transformation/field.js';
import { type Geometry, identityGeometry } from '../src/core/image/geometry.js';
import { readField, readImage2D, writeImage2D } from '../src/io/image.js';
import { openSeries } from '../src/io/series.js';
import { readLandmarkFile } from '../src/io/landmarks.js';

/** A smooth field (mm) on g: a Gaussian bump of peak `amp` px along x and y (skewed). */
function bumpField(g: Geometry, amp: number): DisplacementField {
  const [W, H] = g.size;
  const data = new Float32Array(2 * W * H);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < W; j++) {
      const b = Math.exp(-(((j - W / 2) / (W / 5)) ** 2) - ((i - H / 2) / (H / 6)) ** 2);
      data[2 * (i * W + j)] = amp * b * g.spacing[0];
      data[2 * (i * W + j) + 1] = -0.6 * amp * b * g.spacing[1];
    }
  return { geometry: g, data };
}

describe('inverse fields (core/transformation/inverse.ts)', () => {
  const g: Geometry = { size: [64, 48], spacing: [1.5, 0.8], origin: [-10, 5], direction: [0.8, -0.6, 0.6, 0.8] };
  test('a smooth field: forward ∘ inverse within 0.05 px of identity (Newton converges to 1e-3 px); inverse ∘ forward within the interpolation error of v', () => {
    const f = bumpField(g, 4);
    const r = invertField(f);
    expect(r.residualMaxPx).toBeLessThan(1e-3);
    expect(compositionResidual(f, r.field).maxPx).toBeLessThan(0.05);
    // T⁻¹(T(p)) samples v between grid points: bilinear error of a 4 px bump 13 px wide (measured 0.21 px)
    expect(compositionResidual(r.field, f).maxPx).toBeLessThan(0.3);
    expect(compositionResidual(r.field, bumpField(g, 1)).maxPx).toBeGreaterThan(0.5); // and the check can fail
  });
  test('a field that stretches (|∇u| > 1, where the plain fixed-point step diverges) is inverted too', () => {
    // u_x = 1.6·x near the centre (a stretch by 2.6: det ∇T > 0, but |∇u| > 1)
    const h = identityGeometry(40, 40);
    const data = new Float32Array(2 * 40 * 40);
    for (let i = 0; i < 40; i++) for (let j = 0; j < 40; j++) data[2 * (i * 40 + j)] = 1.6 * (j - 20) * Math.exp(-(((j - 20) / 8) ** 2) - ((i - 20) / 8) ** 2);
    const f = { geometry: h, data };
    const r = invertField(f);
    expect(r.residualMaxPx).toBeLessThan(1e-3);
  });
});

describe('resampling through a field (core/transformation/apply.ts)', () => {
  const g = identityGeometry(32, 24);
  const img = Float32Array.from({ length: 32 * 24 }, (_, k) => Math.sin(k * 0.37) * 10 + (k % 7));
  const zero: DisplacementField = { geometry: g, data: new Float32Array(2 * 32 * 24) };
  test('the identity reproduces the image exactly with every interpolation, and labels exactly', () => {
    for (const interp of ['nearest', 'linear', 'cubic'] as const) expect(Array.from(resampleThroughField(img, g, zero, interp).data)).toEqual(Array.from(img));
    const labels = Int32Array.from(img, (v) => Math.max(0, Math.round(v / 4)));
    expect(Array.from(resampleLabels(labels, g, zero, 'nearest'))).toEqual(Array.from(labels));
    expect(Array.from(resampleLabels(labels, g, zero, 'linear'))).toEqual(Array.from(labels));
  });
  test('linear equals the warp of a registration (warpSamples) on a smooth field', () => {
    const u = new Float32Array(2 * 32 * 24);
    for (let k = 0; k < 32 * 24; k++) {
      u[k] = 0.05 * Math.sin(k * 0.01);
      u[32 * 24 + k] = -0.04 * Math.cos(k * 0.013);
    }
    const a = resampleThroughField(img, g, fieldFromNormalised(u, g), 'linear');
    const b = warpSamples(img, 24, 32, u);
    for (let k = 0; k < a.data.length; k++) {
      expect(a.inside[k]).toBe(b.mask[k]);
      expect(Math.abs(a.data[k] - b.out[k])).toBeLessThan(1e-3);
    }
  });
  test('an integer shift moves labels exactly (nearest and linear); outside is 0', () => {
    const labels = Int32Array.from({ length: 32 * 24 }, (_, k) => (k % 32 > 10 && k % 32 < 20 ? 2 : k % 32 > 24 ? 5 : 0));
    const shift: DisplacementField = { geometry: g, data: Float32Array.from({ length: 2 * 32 * 24 }, (_, k) => (k % 2 === 0 ? 3 : 0)) };
    for (const mode of ['nearest', 'linear'] as const) {
      const out = resampleLabels(labels, g, shift, mode);
      for (let i = 0; i < 24; i++) for (let j = 0; j < 32; j++) expect(out[i * 32 + j]).toBe(j + 3 < 32 ? labels[i * 32 + j + 3] : 0);
    }
  });
  test('an image on another grid of the same space is sampled through physical coordinates', () => {
    // the same picture at half the resolution (2 mm pixels), sampled by the identity on the 1 mm grid
    const coarse: Geometry = { size: [16, 12], spacing: [2, 2], origin: [0, 0], direction: [1, 0, 0, 1] };
    const ramp = Float32Array.from({ length: 16 * 12 }, (_, k) => 3 * (k % 16) * 2 + 0.5 * Math.floor(k / 16) * 2);
    const fine: DisplacementField = {
      geometry: { size: [30, 22], spacing: [1, 1], origin: [0, 0], direction: [1, 0, 0, 1] },
      data: new Float32Array(2 * 30 * 22),
    };
    const r = resampleThroughField(ramp, coarse, fine, 'linear');
    for (let i = 0; i < 22; i++) for (let j = 0; j < 30; j++) expect(r.data[i * 30 + j]).toBeCloseTo(3 * j + 0.5 * i, 4);
  });
});

describe('r2n2 apply, stacks and motion traces on the phantom', () => {
  const t = tmpDir('r2n2-apply-');
  const series = path.join(t.dir, 'series-01');
  /** `r2n2 register series` of the phantom series with the bundled model into `out`, in this process. */
  const registerPhantom = ([out, ...extra]: string[]) =>
    runCliHere(['register', 'series', path.join(series, 'frames'), '--model', path.join(ROOT, 'fixtures', 'models', 'phantom'), '--out', out, ...extra]);
  beforeAll(async () => {
    const r = await runCliHere(['phantom', '--out', t.dir, '--series', '1', '--frames', '8', '--size', '128', '--seed', '3', '--truth']);
    expect(r.code).toBe(0);
  });
  afterAll(() => t.cleanup());

  test("the truth applied to each frame's labels gives the fixed frame's labels (up to nearest-neighbour boundary pixels); points go forward and back within 0.05 px", async () => {
    const out = path.join(t.dir, 'applied');
    const r = await runCliHere([
      'apply',
      '--result',
      path.join(series, 'truth'),
      '--labels',
      path.join(series, 'labels'),
      '--points',
      path.join(series, 'landmarks'),
      '--write-inverse',
      '--out',
      out,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(await fs.readFile(path.join(out, 'apply.json'), 'utf8'));
    expect(report.complete).toBe(true);
    expect(report.frames).toHaveLength(8);
    const fixedName = report.fixedFrame as string;
    const fixed = await readImage2D(path.join(series, 'labels', `${fixedName}.nrrd`));
    const [W, H] = fixed.geometry.size;
    let differing = 0;
    for (const f of report.frames) {
      const a = await readImage2D(path.join(out, 'labels', `${f.name}.nii.gz`));
      if (f.fixed) {
        expect(Array.from(a.data)).toEqual(Array.from(fixed.data));
        continue;
      }
      expect(f.inverseResidualMaxPx).toBeLessThan(0.05);
      const inside = insideMask(await readField(path.join(series, 'truth', 'fields', `${f.name}.nii.gz`)));
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++) {
          const k = i * W + j;
          if (!inside[k] || a.data[k] === fixed.data[k]) continue;
          differing++;
          // a pixel that differs lies on a label boundary of the fixed frame (8-neighbourhood)
          let edge = false;
          for (let di = -1; di <= 1; di++)
            for (let dj = -1; dj <= 1; dj++)
              if (i + di >= 0 && j + dj >= 0 && i + di < H && j + dj < W && fixed.data[(i + di) * W + j + dj] !== fixed.data[k]) edge = true;
          expect(edge).toBe(true);
        }
    }
    expect(differing).toBeGreaterThan(0); // boundary pixels do move, so the check above checked something
    // the stack holds the per-frame label maps in series order
    const stack = await openSeries(path.join(out, 'labels.nii.gz'));
    expect(stack.frames).toHaveLength(8);
    const third = await stack.readFrame(2);
    expect(Array.from(third.data)).toEqual(Array.from((await readImage2D(path.join(out, 'labels', `${report.frames[2].name}.nii.gz`))).data));
    // fixed-frame landmarks mapped forward land on each frame's true landmarks; mapped back they return
    const px = fixed.geometry.spacing[0];
    const back = path.join(t.dir, 'back');
    const truth = path.join(series, 'truth');
    const b = await runCliHere(['apply', '--result', truth, '--points', path.join(out, 'points'), '--points-from', 'moving', '--out', back]);
    expect(b.code).toBe(0);
    const start = (await readLandmarkFile(path.join(series, 'landmarks', `${fixedName}.csv`))).points;
    for (const f of report.frames) {
      const fwd = (await readLandmarkFile(path.join(out, 'points', `${f.name}.csv`))).points;
      const truth = (await readLandmarkFile(path.join(series, 'landmarks', `${f.name}.csv`))).points;
      fwd.forEach((p, k) => expect(Math.hypot(p[0] - truth[k][0], p[1] - truth[k][1]) / px).toBeLessThan(0.05));
      const ret = (await readLandmarkFile(path.join(back, 'points', `${f.name}.csv`))).points;
      ret.forEach((p, k) => expect(Math.hypot(p[0] - start[k][0], p[1] - start[k][1]) / px).toBeLessThan(0.05));
    }
  });

  test('evaluate tre / dice / jacobian --mask: only the region counts', async () => {
    const summary = JSON.parse(await fs.readFile(path.join(series, 'truth', 'summary.json'), 'utf8'));
    const fixedLabels = await readImage2D(path.join(series, 'labels', `${summary.fixedFrame}.nrrd`));
    const lungs = path.join(t.dir, 'lungs.nii.gz');
    const inLungs = Float32Array.from(fixedLabels.data, (v) => (v === 1 || v === 2 ? 1 : 0));
    await writeImage2D(lungs, { geometry: fixedLabels.geometry, data: inLungs });
    const truth = path.join(series, 'truth');
    const all = JSON.parse((await runCliHere(['evaluate', 'tre', '--result', truth, '--landmarks', path.join(series, 'landmarks'), '--json'])).stdout);
    const tre = await runCliHere(['evaluate', 'tre', '--result', truth, '--landmarks', path.join(series, 'landmarks'), '--mask', lungs, '--json']);
    expect(tre.code).toBe(0);
    const masked = JSON.parse(tre.stdout);
    // the 8 lung vessels lie in the lungs; the domes, the aortic arch and the liver vessel mostly not
    expect(masked.before.n).toBeLessThan(all.before.n);
    expect(masked.before.n % 7).toBe(0);
    expect(masked.before.n / 7).toBeGreaterThanOrEqual(8);
    const dice = JSON.parse(
      (await runCliHere(['evaluate', 'dice', '--result', truth, '--labels', path.join(series, 'labels'), '--mask', lungs, '--json'])).stdout,
    );
    const allDice = JSON.parse((await runCliHere(['evaluate', 'dice', '--result', truth, '--labels', path.join(series, 'labels'), '--json'])).stdout);
    const labels = dice.perLabel.map((p: { label: number }) => p.label);
    expect(labels).toEqual(expect.arrayContaining([1, 2]));
    // organs away from the lungs (the liver, the spleen) are not counted
    expect(labels.length).toBeLessThan(allDice.perLabel.length);
    expect(labels).not.toContain(4);
    const jac = JSON.parse((await runCliHere(['evaluate', 'jacobian', '--result', truth, '--mask', lungs, '--json'])).stdout);
    expect(jac.frames[0].n).toBe(inLungs.reduce((a, b) => a + b, 0));
    const bad = await runCliHere(['evaluate', 'jacobian', '--result', truth, '--mask', path.join(t.dir, 'nope.nii.gz')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/mask .*nope\.nii\.gz does not exist/);
  });

  test('register series --uncertainty K: zero spread without noise, growing with it; the std images and per-frame numbers are written', async () => {
    const run = async (keep: string) => {
      const out = path.join(t.dir, `unc-${keep}`);
      const r = await registerPhantom([out, '--uncertainty', '4', '--uncertainty-keep', keep, '--no-qc', '--no-stack', '--jobs', '1']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/uncertainty {2}4 noisy passes/);
      return out;
    };
    const mean = async (out: string) => {
      const s = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
      expect(s.frames).toHaveLength(7);
      for (const f of s.frames) expect(existsSync(path.join(out, f.uncertainty))).toBe(true);
      return s.frames.reduce((a: number, f: { uncertaintyMm: number }) => a + f.uncertaintyMm, 0) / s.frames.length;
    };
    const none = await run('1');
    expect(await mean(none)).toBe(0);
    const img = await readImage2D(path.join(none, 'uncertainty', (await fs.readdir(path.join(none, 'uncertainty')))[0]));
    expect(img.data.every((v) => v === 0)).toBe(true);
    const some = await mean(await run('0.9'));
    const more = await mean(await run('0.6'));
    expect(some).toBeGreaterThan(0);
    expect(more).toBeGreaterThan(some);
    const bad = await registerPhantom([path.join(t.dir, 'unc-bad'), '--uncertainty', '1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--uncertainty takes a whole number of passes ≥ 2/);
  });

  test('register series --adapt N: fine-tunes on the series first, keeps the adapted model, reports the loss before and after; a rerun reuses it', async () => {
    const model = path.join(ROOT, 'fixtures', 'models', 'phantom');
    const out = path.join(t.dir, 'adapted');
    const saved = path.join(t.dir, 'adapted-model');
    const args = [
      'register',
      'series',
      path.join(series, 'frames'),
      '--model',
      model,
      '--out',
      out,
      '--adapt',
      '3',
      '--save-adapted',
      saved,
      '--no-qc',
      '--no-stack',
      '--jobs',
      '1',
    ];
    const r = await runCliHere(args);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/adapted {6}from .*: 3 iterations in [\d.]+ s; image loss on this series [\d.]+ → [\d.]+/);
    const s = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
    expect(s.adaptation).toMatchObject({ iterations: 3, resumed: false });
    expect(Number.isFinite(s.adaptation.lossBefore) && Number.isFinite(s.adaptation.lossAfter)).toBe(true);
    expect(s.model).toBe(saved);
    expect(s.settings.model).toBe(saved);
    const m = JSON.parse(await fs.readFile(path.join(saved, 'model.json'), 'utf8'));
    expect(m.training.from).toBe(model);
    // the weights changed
    expect((await fs.readFile(path.join(saved, 'weights.bin'))).equals(await fs.readFile(path.join(model, 'weights.bin')))).toBe(false);
    const again = await runCliHere(args);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/3 iterations \(done before, kept\)/);
    expect(again.stdout).toMatch(/registered {3}0 frame\(s\); 7 already done/);
    const bad = await runCliHere([...args.slice(0, 7), '--adapt', '-1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--adapt takes a whole number/);
  });

  test("register series warns when the series looks unlike the model's training data (model.json data.statistics)", async () => {
    const model = path.join(ROOT, 'fixtures', 'models', 'phantom');
    const json = JSON.parse(await fs.readFile(path.join(model, 'model.json'), 'utf8'));
    expect(json.data.statistics.mmPerNetPixel).toEqual([6, 6]);
    const plain = await registerPhantom([path.join(t.dir, 'alike'), '--no-qc', '--no-stack', '--jobs', '1']);
    expect(plain.code).toBe(0);
    expect(plain.stderr).not.toMatch(/looks unlike/);
    // the same anatomy with inverted contrast (bright background): skewness of the other sign
    const inverted = path.join(t.dir, 'inverted');
    await fs.mkdir(inverted);
    for (const f of await fs.readdir(path.join(series, 'frames'))) {
      const img = await readImage2D(path.join(series, 'frames', f));
      await writeImage2D(path.join(inverted, f), { ...img, data: img.data.map((v) => 2000 - v) });
    }
    const r = await runCliHere(['register', 'series', inverted, '--model', model, '--out', path.join(t.dir, 'unlike'), '--no-qc', '--no-stack', '--jobs', '1']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: .*inverted looks unlike the data .* was trained on: intensity skewness -0\.\d+ \(trained 0\.45–0\.60\)/m);
    expect(JSON.parse(await fs.readFile(path.join(t.dir, 'unlike', 'summary.json'), 'utf8')).unlikeTraining).toHaveLength(1);
  });

  test('a rerun skips finished frames, other settings are refused, nothing to apply is an error', async () => {
    const out = path.join(t.dir, 'applied2');
    const args = ['apply', '--result', path.join(series, 'truth'), '--images', path.join(series, 'frames'), '--out', out];
    expect((await runCliHere(args)).code).toBe(0);
    const again = await runCliHere(args);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/8 done before/);
    const other = await runCliHere([...args, '--interpolation', 'cubic']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/other settings; pass --force/);
    const none = await runCliHere(['apply', '--result', path.join(series, 'truth'), '--out', out]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/nothing to apply/);
    const missing = await runCliHere(['apply', '--result', path.join(t.dir, 'nope'), '--images', path.join(series, 'frames'), '--out', path.join(t.dir, 'x')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/summary\.json not found/);
  });

  test('a registration writes the corrected stack, the fields stack and motion.csv; --no-stack writes motion.csv only', async () => {
    const out = path.join(t.dir, 'bs');
    const r = await runCliHere([
      'baseline',
      'bspline',
      path.join(series, 'frames'),
      '--out',
      out,
      '--iterations',
      '20',
      '--init-iterations',
      '10',
      '--write-inverse',
      '--quiet',
    ]);
    expect(r.code).toBe(0);
    const summary = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
    // --write-inverse: each frame's inverse, forward ∘ inverse within 0.05 px (this registration does not fold)
    for (const f of summary.frames) {
      expect(existsSync(path.join(out, f.inverse))).toBe(true);
      expect(f.inverseResidualMaxPx).toBeLessThan(0.05);
    }
    expect(summary.seriesFrames).toHaveLength(8);
    const warped = await openSeries(path.join(out, 'warped.nii.gz'));
    expect(warped.frames).toHaveLength(8);
    const fieldsImg = path.join(out, 'fields.nii.gz');
    expect(existsSync(fieldsImg)).toBe(true);
    for (let k = 0; k < 8; k++) {
      const name = summary.seriesFrames[k];
      const frame = await warped.readFrame(k);
      const own =
        name === summary.fixedFrame
          ? await readImage2D(path.join(series, 'frames', `${name}.nrrd`))
          : await readImage2D(path.join(out, 'warped', `${name}.nii.gz`));
      expect(Array.from(frame.data)).toEqual(Array.from(own.data));
    }
    const csv = (await fs.readFile(path.join(out, 'motion.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('frame,index,fixed,mean_displacement_mm,max_displacement_mm,change_from_previous_mm,ncc_before,ncc_after,fallback');
    expect(csv).toHaveLength(9);
    const rows = csv.slice(1).map((l) => l.split(','));
    const fixedRow = rows.find((c) => c[0] === summary.fixedFrame) as string[];
    expect(fixedRow[2]).toBe('1');
    expect(Number(fixedRow[3])).toBe(0);
    // the registration raises the similarity to the fixed frame on most frames
    const better = rows.filter((c) => c[2] === '0' && Number(c[7]) > Number(c[6])).length;
    expect(better).toBeGreaterThanOrEqual(5);
    // breathing moves the frames by millimetres
    expect(Math.max(...rows.map((c) => Number(c[4])))).toBeGreaterThan(1);
    expect(existsSync(path.join(out, 'qc', 'motion.png'))).toBe(true);
    const plain = path.join(t.dir, 'bs-nostack');
    expect(
      (
        await runCliHere([
          'baseline',
          'bspline',
          path.join(series, 'frames'),
          '--out',
          plain,
          '--iterations',
          '5',
          '--init-iterations',
          '5',
          '--no-stack',
          '--no-qc',
          '--quiet',
        ])
      ).code,
    ).toBe(0);
    expect(existsSync(path.join(plain, 'motion.csv'))).toBe(true);
    expect(existsSync(path.join(plain, 'warped.nii.gz'))).toBe(false);
  });
});

describeWithSunnybrook('r2n2 apply on real cine MR (Sunnybrook)', () => {
  const t = tmpDir('r2n2-apply-real-');
  const slice = path.join(SUNNYBROOK, 'series', 'SCD0000101', 'slice_02');
  afterAll(() => t.cleanup());

  test('inverse of the true fields of a real image with known motion: forward ∘ inverse within 0.05 px', async () => {
    const sim = path.join(t.dir, 'sim');
    expect((await runCliHere(['simulate', path.join(slice, 'frames'), '--frame', 'phase_08', '--motion', 'cardiac', '--frames', '6', '--out', sim])).code).toBe(
      0,
    );
    const out = path.join(t.dir, 'inv');
    const r = await runCliHere(['apply', '--result', path.join(sim, 'truth'), '--write-inverse', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const moving = report.frames.filter((f: { fixed: boolean }) => !f.fixed);
    expect(moving.length).toBe(5);
    for (const f of moving) expect(f.inverseResidualMaxPx).toBeLessThan(0.05);
  });

  test('the expert contours of two frames, brought to the fixed frame of a registered series', async () => {
    const res = path.join(t.dir, 'bs');
    expect(
      (
        await runCliHere([
          'baseline',
          'bspline',
          path.join(slice, 'frames'),
          '--out',
          res,
          '--fixed-frame',
          'phase_19',
          '--iterations',
          '20',
          '--init-iterations',
          '10',
          '--max-size',
          '128',
          '--no-qc',
          '--quiet',
        ])
      ).code,
    ).toBe(0);
    // the corrected stack and the motion trace of the real series
    const stack = await openSeries(path.join(res, 'warped.nii.gz'));
    expect(stack.frames).toHaveLength(20);
    const k = stack.frames.length - 1;
    const names = JSON.parse(await fs.readFile(path.join(res, 'summary.json'), 'utf8')).seriesFrames as string[];
    expect(Array.from((await stack.readFrame(k)).data)).toEqual(Array.from((await readImage2D(path.join(res, 'warped', `${names[k]}.nii.gz`))).data));
    const motion = (await fs.readFile(path.join(res, 'motion.csv'), 'utf8')).trim().split('\n');
    expect(motion).toHaveLength(21);
    // evaluated inside the ED contour only
    const masked = await runCliHere([
      'evaluate',
      'dice',
      '--result',
      res,
      '--labels',
      path.join(slice, 'labels'),
      '--mask',
      path.join(slice, 'labels', 'phase_19.mha'),
      '--json',
    ]);
    expect(masked.code).toBe(0);
    expect(JSON.parse(masked.stdout).mask).toMatch(/phase_19\.mha$/);
    const out = path.join(t.dir, 'labels');
    const r = await runCliHere(['apply', '--result', res, '--labels', path.join(slice, 'labels'), '--out', out]);
    expect(r.code).toBe(0);
    expect((await fs.readdir(path.join(out, 'labels'))).sort()).toEqual(['phase_08.nii.gz', 'phase_19.nii.gz']);
    // two label frames of 20: no stack
    expect(existsSync(path.join(out, 'labels.nii.gz'))).toBe(false);
    const es = await readImage2D(path.join(out, 'labels', 'phase_08.nii.gz'));
    const ed = await readImage2D(path.join(slice, 'labels', 'phase_19.mha'));
    // the ES contour, registered to ED, overlaps the ED contour better than before
    const before = await readImage2D(path.join(slice, 'labels', 'phase_08.mha'));
    const dice = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let i = 0,
        s = 0;
      for (let k = 0; k < a.length; k++) {
        if (a[k] === 1 && b[k] === 1) i++;
        s += (a[k] === 1 ? 1 : 0) + (b[k] === 1 ? 1 : 0);
      }
      return (2 * i) / s;
    };
    expect(dice(es.data, ed.data)).toBeGreaterThan(dice(before.data, ed.data));
  });
});
