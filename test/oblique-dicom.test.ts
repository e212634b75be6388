/**
 * Oblique DICOM geometry on real cardiac short-axis cine (Sunnybrook SCD0000101, slice 3): the
 * frames are read in in-plane coordinates (orthonormal, pixel spacing) and every output keeps
 * the input's 3D placement, so it overlays the DICOM in a 3D viewer.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openSeries } from '../src/io/series.js';
import { readImage2D, readField, writeImage2D, writeField } from '../src/io/image.js';
import { itkRead } from '../src/io/itk.js';
import { niftiHeader3D } from '../src/io/nifti.js';
import { sameGeometry, describeGeometry, indexToPhysical, type Geometry } from '../src/core/image/geometry.js';
import { describeWithSunnybrook, SUNNYBROOK, tmpDir, runCli, runCliHere } from './helpers.js';

const PATIENT = 'SCD0000101';
const SLICE = 3; // ED phase 19, ES phase 8
const instance = (phase: number) => 20 * SLICE + phase;
const PHASES = [8, 12, 19];
const phaseName = (p: number) => `phase_${String(p).padStart(2, '0')}`;

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(tol);
}

describeWithSunnybrook('oblique DICOM (Sunnybrook short-axis cine)', () => {
  const { dir, cleanup } = tmpDir('r2n2-oblique-');
  const dicomDir = path.join(dir, 'dicom');
  const sliceDir = path.join(SUNNYBROOK, 'series', PATIENT, `slice_${String(SLICE).padStart(2, '0')}`);

  beforeAll(async () => {
    await fs.mkdir(dicomDir);
    for (const p of PHASES) await fs.copyFile(path.join(SUNNYBROOK, 'dicom', PATIENT, `${instance(p)}.dcm`), path.join(dicomDir, `${instance(p)}.dcm`));
  });
  afterAll(cleanup);

  test('frames read in in-plane coordinates: pixels equal the .mha copies, direction orthonormal', async () => {
    const series = await openSeries(dicomDir);
    expect(series.kind).toBe('dicom');
    expect(series.frames.map((f) => f.name)).toEqual(PHASES.map((p) => String(instance(p))));
    const g = series.geometry;
    const [a, b, c, d] = g.direction;
    expect(Math.hypot(a, c)).toBeCloseTo(1, 9);
    expect(Math.hypot(b, d)).toBeCloseTo(1, 9);
    expect(a * b + c * d).toBeCloseTo(0, 9);
    // the 3D header keeps the scanner's placement
    const dcm = await itkRead(path.join(dicomDir, `${instance(8)}.dcm`));
    expect(g.placement).toBeDefined();
    expectClose(g.placement!.origin, Array.from(dcm.origin), 1e-9);
    for (let k = 0; k < PHASES.length; k++) {
      const frame = await series.readFrame(k);
      const mha = await readImage2D(path.join(sliceDir, 'frames', `${phaseName(PHASES[k])}.mha`));
      expect(sameGeometry(frame.geometry, mha.geometry)).toBe(true);
      expect(frame.geometry.spacing[0]).toBeCloseTo(dcm.spacing[0], 9);
      expect(Array.from(frame.data)).toEqual(Array.from(mha.data));
    }
    // in-plane mm are the 3D distances: pixel (10, 0) is 10 column spacings from pixel (0, 0)
    const p = indexToPhysical(g, [10, 0]);
    expect(Math.hypot(p[0], p[1])).toBeCloseTo(10 * dcm.spacing[0], 6);
  });

  test('a field and an image written for a DICOM frame have its 3D geometry and read back', async () => {
    const series = await openSeries(dicomDir);
    const g = series.geometry;
    const [W, H] = g.size;
    const field = new Float32Array(2 * W * H);
    for (let i = 0; i < W * H; i++) {
      field[2 * i] = 0.5 + (i % W) / W;
      field[2 * i + 1] = (-0.25 * Math.floor(i / W)) / H;
    }
    const ffile = path.join(dir, 'field.nii.gz');
    await writeField(ffile, { geometry: g, data: field });
    const dcm = await itkRead(path.join(dicomDir, `${instance(8)}.dcm`));
    // the NIfTI header holds the 3D placement (ITK's reader squeezes one-slice vector images)
    const raw = await niftiHeader3D(ffile);
    expect(raw!.size).toEqual([W, H, 1]);
    expectClose(raw!.origin, Array.from(dcm.origin), 1e-3);
    expectClose(raw!.direction, Array.from(dcm.direction as ArrayLike<number>), 1e-5);
    expectClose(raw!.spacing, Array.from(dcm.spacing), 1e-5);
    // and the vectors are 3D: A · u
    const mha = path.join(dir, 'field.mha');
    await writeField(mha, { geometry: g, data: field });
    const v3 = await itkRead(mha);
    expect(v3.imageType.components).toBe(3);
    const a = g.placement!.axes;
    const k = 1000;
    expect(v3.data![3 * k + 2]).toBeCloseTo(a[4] * field[2 * k] + a[5] * field[2 * k + 1], 5);
    expect(sameGeometry((await readField(mha)).geometry, g)).toBe(true);
    const back = await readField(ffile);
    expect(sameGeometry(back.geometry, g)).toBe(true);
    expectClose(back.data, field, 1e-5);
    // a scalar image (a warped frame, a label map) likewise
    const ifile = path.join(dir, 'image.mha');
    await writeImage2D(ifile, { geometry: g, data: new Float32Array(W * H).fill(3) });
    const img = await itkRead(ifile);
    expect(img.size).toEqual([W, H, 1]);
    expectClose(Array.from(img.direction as ArrayLike<number>), Array.from(dcm.direction as ArrayLike<number>), 1e-9);
    const img2 = await readImage2D(ifile);
    expect(sameGeometry(img2.geometry, g)).toBe(true);
  });

  test('a frame of another slice is refused, and the message gives direction and 3D placement', async () => {
    const mixed = path.join(dir, 'mixed');
    await fs.mkdir(mixed);
    await fs.copyFile(path.join(dicomDir, `${instance(8)}.dcm`), path.join(mixed, 'a.dcm'));
    await fs.copyFile(path.join(SUNNYBROOK, 'dicom', PATIENT, `${20 * (SLICE + 1) + 8}.dcm`), path.join(mixed, 'b.dcm'));
    await expect(openSeries(mixed)).rejects.toThrow(
      /lies in another plane than .*direction \(1 0; 0 1\), in 3D at .*put the files of each slice in a directory of their own/,
    );
  });

  test("register, then evaluate dice with label maps in the frames' geometry (2D copies and 3D-placed)", async () => {
    const out = path.join(dir, 'bspline');
    const r = runCli([
      'baseline',
      'bspline',
      dicomDir,
      '--out',
      out,
      '--fixed-frame',
      String(instance(19)),
      '--iterations',
      '20',
      '--init',
      'none',
      '--qc',
      'false',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const dcm = await itkRead(path.join(dicomDir, `${instance(19)}.dcm`));
    for (const sub of ['fields', 'warped']) {
      const raw = await niftiHeader3D(path.join(out, sub, `${instance(8)}.nii.gz`));
      expectClose(raw!.origin, Array.from(dcm.origin), 1e-3);
      expectClose(raw!.direction, Array.from(dcm.direction as ArrayLike<number>), 1e-5);
    }
    // labels as the dataset ships them: 2D, origin 0, identity direction
    const flat = path.join(dir, 'labels2d');
    const placed = path.join(dir, 'labels3d');
    await fs.mkdir(flat);
    await fs.mkdir(placed);
    const series = await openSeries(dicomDir);
    for (const p of [8, 19]) {
      const src = path.join(sliceDir, 'labels', `${phaseName(p)}.mha`);
      await fs.copyFile(src, path.join(flat, `${instance(p)}.mha`));
      const lab = await readImage2D(src);
      await writeImage2D(path.join(placed, `${instance(p)}.nii.gz`), { geometry: series.geometry, data: lab.data });
    }
    const results = [flat, placed].map((labels) => {
      const e = runCli(['evaluate', 'dice', '--result', out, '--labels', labels, '--json']);
      expect(e.stderr).toBe('');
      expect(e.code).toBe(0);
      const j = JSON.parse(e.stdout) as { meanBefore: number; meanAfter: number; labels?: string };
      delete j.labels;
      return j;
    });
    expect(results[1]).toEqual(results[0]);
    expect(results[0].meanBefore).toBeGreaterThan(0.3);
    expect(results[0].meanAfter).toBeGreaterThan(results[0].meanBefore);
  });

  test('a label map of another grid is refused with both geometries printed', async () => {
    const out = path.join(dir, 'bspline');
    const bad = path.join(dir, 'labels-bad');
    await fs.mkdir(bad);
    const geom: Geometry = { size: [256, 256], spacing: [1, 1], origin: [0, 0], direction: [1, 0, 0, 1] };
    for (const p of [8, 19]) await writeImage2D(path.join(bad, `${instance(p)}.nii.gz`), { geometry: geom, data: new Float32Array(256 * 256) });
    const e = await runCliHere(['evaluate', 'dice', '--result', out, '--labels', bad]);
    expect(e.code).not.toBe(0);
    expect(e.stderr).toContain(describeGeometry(geom));
    expect(e.stderr).toMatch(/spacing 1\.36719×1\.36719 mm.*direction/);
  });
});
