import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FloatTypes, Image, ImageType, IntTypes, PixelTypes } from 'itk-wasm';
import { readImage2D, writeImage2D, writeGreyPng, writeField, readField, toUint8, type Image2D } from '../src/io/image.js';
import { itkDicomTags, itkRead, itkReadInfo, itkWrite, itkKeepsModules, itkKeptModuleCount } from '../src/io/itk.js';
import { readDicomTagsNode } from '@itk-wasm/dicom';
import { readImageNode, writeImageNode } from '@itk-wasm/image-io';
import { openSeries } from '../src/io/series.js';
import { writeAtomic } from '../src/io/atomic.js';
import type { Geometry } from '../src/core/image/geometry.js';
import { UserError } from '../src/errors.js';
import { tmpDir, BIRL, HAVE_BIRL } from './helpers.js';

const geom: Geometry = { size: [7, 5], spacing: [0.7, 1.3], origin: [10.5, -3.25], direction: [Math.cos(0.3), -Math.sin(0.3), Math.sin(0.3), Math.cos(0.3)] };
const pixels = Float32Array.from({ length: 35 }, (_, i) => Math.sin(i) * 100 + 0.125);
const img: Image2D = { geometry: geom, data: pixels };

let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir();
});
afterAll(() => t.cleanup());

/** A 6×4 Int16 frame (0.5 × 0.75 mm pixels) filled with `value`, InstanceNumber `instance` when given: a DICOM test frame. */
function dicomFrame(value: number, instance?: number): Image {
  const it = new Image(new ImageType(2, IntTypes.Int16, PixelTypes.Scalar, 1));
  it.size = [6, 4];
  it.spacing = [0.5, 0.75];
  it.origin = [0, 0];
  it.direction = new Float64Array([1, 0, 0, 1]);
  it.data = new Int16Array(24).fill(value);
  if (instance !== undefined) it.metadata = new Map([['0020|0013', String(instance)]]);
  return it;
}

function expectGeometry(a: Geometry, b: Geometry, digits: number) {
  expect(a.size).toEqual(b.size);
  for (let k = 0; k < 2; k++) {
    expect(a.spacing[k]).toBeCloseTo(b.spacing[k], digits);
    expect(a.origin[k]).toBeCloseTo(b.origin[k], digits);
  }
  for (let k = 0; k < 4; k++) expect(a.direction[k]).toBeCloseTo(b.direction[k], digits);
}

describe('image round trips keep pixels and geometry', () => {
  // NRRD/MHA/MHD keep geometry exactly (double); NIfTI stores float32
  test.each([
    ['nrrd', 12],
    ['mha', 12],
    ['mhd', 12],
    ['nii', 6],
    ['nii.gz', 6],
  ])('.%s', async (ext, digits) => {
    const f = path.join(t.dir, `img.${ext}`);
    await writeImage2D(f, img);
    const r = await readImage2D(f);
    expectGeometry(r.geometry, geom, digits as number);
    expect(Array.from(r.data)).toEqual(Array.from(pixels));
  });
  test('.png keeps 8-bit pixels and spacing (the format has no origin/direction)', async () => {
    const g: Geometry = { size: [7, 5], spacing: [0.5, 0.25], origin: [0, 0], direction: [1, 0, 0, 1] };
    const data = Float32Array.from({ length: 35 }, (_, i) => i * 7);
    const f = path.join(t.dir, 'img.png');
    await writeImage2D(f, { geometry: g, data }, [0, 255]);
    const r = await readImage2D(f);
    expect(Array.from(r.data)).toEqual(Array.from(data));
    expect(r.geometry.spacing[0]).toBeCloseTo(0.5, 3);
    expect(r.geometry.spacing[1]).toBeCloseTo(0.25, 3);
  });
  test('writeGreyPng: a picture ITK reads back with the windowed 8-bit values, no temporary left', async () => {
    const W = 9,
      H = 4;
    const data = Float32Array.from({ length: W * H }, (_, i) => i * 9 - 20); // below, inside and above the window
    const dir = path.join(t.dir, 'grey');
    const file = path.join(dir, 'pic.png');
    await writeGreyPng(file, { data, W, H }, [0, 255]);
    const back = await readImage2D(file);
    expect(back.geometry.size).toEqual([W, H]);
    expect(Array.from(back.data)).toEqual(Array.from(toUint8(data, [0, 255])));
    expect(back.data[0]).toBe(0);
    expect(back.data[W * H - 1]).toBe(255);
    expect(await fs.readdir(dir)).toEqual(['pic.png']);
    await expect(writeGreyPng(file, { data, W: W + 1, H }, [0, 255])).rejects.toThrow(/36 values for 10×4/);
    await expect(writeGreyPng(path.join(file, 'x.png'), { data, W, H })).rejects.toThrow(/^cannot write .*pic\.png\/x\.png/);
  });
  test('.jpg (lossy) reads back close', async () => {
    const g: Geometry = { size: [16, 16], spacing: [1, 1], origin: [0, 0], direction: [1, 0, 0, 1] };
    const data = Float32Array.from({ length: 256 }, (_, i) => 60 + (i % 16) * 8);
    const f = path.join(t.dir, 'img.jpg');
    await writeImage2D(f, { geometry: g, data }, [0, 255]);
    const r = await readImage2D(f);
    let err = 0;
    for (let i = 0; i < 256; i++) err = Math.max(err, Math.abs(r.data[i] - data[i]));
    expect(err).toBeLessThan(12);
  });
  test('a single DICOM file reads as 2D (its nz=1 squeezed), with its spacing', async () => {
    const it = new Image(new ImageType(2, IntTypes.Int16, PixelTypes.Scalar, 1));
    it.size = [6, 4];
    it.spacing = [0.5, 0.75];
    it.origin = [0, 0];
    it.direction = new Float64Array([1, 0, 0, 1]);
    it.data = Int16Array.from({ length: 24 }, (_, i) => i * 3 - 20);
    const f = path.join(t.dir, 'one.dcm');
    await itkWrite(it, f);
    const r = await readImage2D(f);
    expect(r.geometry.size).toEqual([6, 4]);
    expect(r.geometry.spacing).toEqual([0.5, 0.75]);
    expect(Array.from(r.data)).toEqual(Array.from(it.data as Int16Array));
  });
  (HAVE_BIRL ? test : test.skip)('an RGB JPEG (BIRL) reads as luminance', async () => {
    const r = await readImage2D(path.join(BIRL, 'artificial_reference.jpg'));
    expect(r.geometry.size).toEqual([800, 600]);
    let max = 0;
    for (const v of r.data) max = Math.max(max, v);
    expect(max).toBeLessThanOrEqual(255.001);
    expect(max).toBeGreaterThan(100);
  });
});

describe('displacement fields', () => {
  test.each(['nii.gz', 'nrrd', 'mha'])('2-component field round trip .%s', async (ext) => {
    const data = Float32Array.from({ length: 70 }, (_, i) => (i % 2 ? -1 : 1) * i * 0.37);
    const f = path.join(t.dir, `field.${ext}`);
    await writeField(f, { geometry: geom, data });
    const r = await readField(f);
    expect(Array.from(r.data)).toEqual(Array.from(data));
    expectGeometry(r.geometry, geom, 6);
  });
  test('a scalar image is not a field', async () => {
    const f = path.join(t.dir, 'scalar.nrrd');
    await writeImage2D(f, img);
    await expect(readField(f)).rejects.toThrow(/1 component.*2D displacement field has 2/);
  });
});

describe('series', () => {
  test('directory: natural order, names from stems', async () => {
    const d = path.join(t.dir, 'series-a');
    for (const n of ['f10', 'f2', 'f1']) await writeImage2D(path.join(d, `${n}.nrrd`), { geometry: geom, data: pixels.map((v) => v + Number(n.slice(1))) });
    const s = await openSeries(d);
    expect(s.kind).toBe('directory');
    expect(s.frames.map((f) => f.name)).toEqual(['f1', 'f2', 'f10']);
    expect((await s.readFrame(2)).data[0]).toBeCloseTo(pixels[0] + 10, 4);
  });
  test('one 3D file whose last axis is time', async () => {
    const it = new Image(new ImageType(3, 'float32' as never, PixelTypes.Scalar, 1));
    it.size = [4, 3, 5];
    it.spacing = [0.5, 0.6, 1];
    it.origin = [1, 2, 0];
    it.direction = new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    it.data = Float32Array.from({ length: 60 }, (_, i) => i);
    const f = path.join(t.dir, 'cine.nii.gz');
    await itkWrite(it, f);
    const s = await openSeries(f);
    expect(s.kind).toBe('volume');
    expect(s.frames.map((x) => x.name)).toEqual(['frame_000', 'frame_001', 'frame_002', 'frame_003', 'frame_004']);
    const fr = await s.readFrame(3);
    expect(fr.geometry.size).toEqual([4, 3]);
    expect(fr.data[0]).toBe(36);
    expect(fr.geometry.origin).toEqual([1, 2]);
  });
  test('a DICOM series directory (one frame per file)', async () => {
    const d = path.join(t.dir, 'dicom');
    await fs.mkdir(d);
    for (let k = 0; k < 3; k++) {
      await itkWrite(dicomFrame(k * 10), path.join(d, `IM${k + 1}.dcm`));
    }
    const s = await openSeries(d);
    expect(s.kind).toBe('dicom');
    expect(s.frames.map((f) => f.name)).toEqual(['IM1', 'IM2', 'IM3']);
    expect((await s.readFrame(2)).data[5]).toBe(20);
  });
  test('a DICOM series is ordered by InstanceNumber, not by file name', async () => {
    const d = path.join(t.dir, 'dicom-inst');
    await fs.mkdir(d);
    const inst = { a: 3, b: 1, c: 2 } as Record<string, number>;
    for (const name of ['a', 'b', 'c']) {
      await itkWrite(dicomFrame(inst[name], inst[name]), path.join(d, `${name}.dcm`));
    }
    const s = await openSeries(d);
    expect(s.frames.map((f) => f.name)).toEqual(['b', 'c', 'a']);
    expect((await s.readFrame(0)).data[0]).toBe(1);
  });
  test('frames on different grids: a clear error naming both files', async () => {
    const d = path.join(t.dir, 'series-bad');
    await writeImage2D(path.join(d, 'a.nrrd'), img);
    await writeImage2D(path.join(d, 'b.nrrd'), { geometry: { ...geom, size: [5, 7] }, data: pixels });
    await expect(openSeries(d)).rejects.toThrow(/b\.nrrd .* is not on the grid of .*a\.nrrd.*resample/);
  });
});

describe('itk-wasm pipeline modules kept between calls', () => {
  // itkRead / itkWrite run itk-wasm's pipelines with modules kept (src/io/itk.ts); the public
  // readImageNode / writeImageNode load them on every call. Same images, same bytes.
  test('kept modules are in use, and give what the public functions give, byte for byte', async () => {
    expect(await itkKeepsModules()).toBe(true);
    const src = path.join(t.dir, 'keep-src.nrrd');
    await writeImage2D(src, img);
    const a = await readImageNode(src);
    const b = await itkRead(src);
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    expect([b.imageType, b.size, [...b.spacing], [...b.origin], [...b.direction], [...b.metadata]]).toEqual([
      a.imageType,
      a.size,
      [...a.spacing],
      [...a.origin],
      [...a.direction],
      [...a.metadata],
    ]);
    expect((await itkReadInfo(src)).size).toEqual(a.size);
    for (const [ext, compress] of [
      ['nrrd', true],
      ['mha', true],
      ['nii.gz', true],
      ['nii', false],
      ['vtk', false],
    ] as const) {
      const pub = path.join(t.dir, `keep-pub.${ext}`);
      const kept = path.join(t.dir, `keep-kept.${ext}`);
      await writeImageNode(a, pub, { useCompression: compress });
      await itkWrite(b, kept);
      expect((await fs.readFile(kept)).equals(await fs.readFile(pub))).toBe(true);
    }
  });
  test('DICOM files without an extension read through GDCM directly; tags as readDicomTagsNode gives them', async () => {
    const d = path.join(t.dir, 'dicom-noext');
    await fs.mkdir(d);
    for (let k = 0; k < 3; k++) {
      await itkWrite(dicomFrame(100 + k, 3 - k), path.join(d, `x${k}.dcm`));
      await fs.rename(path.join(d, `x${k}.dcm`), path.join(d, `IM${k}`));
    }
    const s = await openSeries(d);
    expect(s.kind).toBe('dicom');
    expect(s.frames.map((f) => f.name)).toEqual(['IM2', 'IM1', 'IM0']);
    expect(Array.from((await s.readFrame(0)).data)).toEqual(new Array(24).fill(102));
    expect(s.geometry.spacing).toEqual([0.5, 0.75]);
    const tags = ['0020|0013', '0028|0010'];
    expect([...(await itkDicomTags(path.join(d, 'IM1'), tags))]).toEqual((await readDicomTagsNode(path.join(d, 'IM1'), { tagsToRead: { tags } })).tags);
  });
  test('a module grown past 64 MiB by a large image is dropped after its call (its memory does not shrink)', async () => {
    const big = new Image(new ImageType(3, FloatTypes.Float32, PixelTypes.Scalar, 1));
    big.size = [256, 256, 300]; // 75 MiB of float32
    big.spacing = [1, 1, 1];
    big.origin = [0, 0, 0];
    big.direction = new Float64Array([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    big.data = Float32Array.from({ length: 256 * 256 * 300 }, (_, i) => i % 997);
    const bigFile = path.join(t.dir, 'keep-big.nii');
    await itkWrite(big, bigFile);
    const small = path.join(t.dir, 'keep-small.nii');
    await writeImage2D(small, img);
    await itkRead(small);
    const n = itkKeptModuleCount();
    const back = await itkRead(bigFile);
    expect(back.size).toEqual([256, 256, 300]);
    expect((back.data as Float32Array)[256 * 256 * 300 - 1]).toBe((256 * 256 * 300 - 1) % 997);
    expect(itkKeptModuleCount()).toBe(n - 1);
    expect(Array.from((await readImage2D(small)).data)).toEqual(Array.from(pixels));
    expect(itkKeptModuleCount()).toBe(n);
  });
  test('a failed read leaves the next call working, in the same directory', async () => {
    const good = path.join(t.dir, 'keep-good.nrrd');
    await writeImage2D(good, img);
    const bad = path.join(t.dir, 'keep-bad.nrrd');
    await fs.writeFile(bad, 'NRRD0004\ntype: float\ndimension: 2\nsizes: 128 128\nencoding: raw\n\n1234');
    for (let k = 0; k < 3; k++) {
      await expect(itkRead(bad)).rejects.toThrow(/corrupt or unsupported/);
      expect(Array.from((await itkRead(good)).data as Float32Array)).toEqual(Array.from(pixels));
      await itkWrite(await itkRead(good), path.join(t.dir, 'keep-out.nii.gz'));
    }
  });
});

describe('bad input gives a one-line error naming the file', () => {
  test('missing file', async () => {
    await expect(readImage2D(path.join(t.dir, 'nope.nrrd'))).rejects.toThrow(/cannot read .*nope\.nrrd: no such file/);
  });
  test('corrupt file', async () => {
    const f = path.join(t.dir, 'bad.nrrd');
    await fs.writeFile(f, 'NRRD0004\ngarbage');
    const err = await readImage2D(f).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/cannot read .*bad\.nrrd: /);
    expect(err.message).not.toMatch(/\n/);
  });
  test('unsupported format', async () => {
    const f = path.join(t.dir, 'x.xyz');
    await fs.writeFile(f, 'hello');
    await expect(readImage2D(f)).rejects.toThrow(/x\.xyz: unsupported image format/);
  });
  test('wrong dimension: a 3D volume where a 2D image is expected', async () => {
    await expect(readImage2D(path.join(t.dir, 'cine.nii.gz'))).rejects.toThrow(/cine\.nii\.gz is 3D \(4×3×5\).*series/);
  });
  test('NaN pixels', async () => {
    const f = path.join(t.dir, 'nan.nrrd');
    const d = Float32Array.from(pixels);
    d[3] = NaN;
    d[9] = Infinity;
    await writeImage2D(f, { geometry: geom, data: d });
    await expect(readImage2D(f)).rejects.toThrow(/nan\.nrrd has 2 NaN or infinite pixel/);
  });
  test('a series that does not exist / holds one frame', async () => {
    await expect(openSeries(path.join(t.dir, 'none'))).rejects.toThrow(/series .*none does not exist/);
    const d = path.join(t.dir, 'single');
    await writeImage2D(path.join(d, 'a.nrrd'), img);
    await expect(openSeries(d)).rejects.toThrow(/single frame/);
  });
  test('a failed write leaves neither the output nor a temporary file', async () => {
    const d = path.join(t.dir, 'atomic');
    await expect(
      writeAtomic(path.join(d, 'out.nii.gz'), async (tmp) => {
        await fs.writeFile(tmp, 'partial');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(await fs.readdir(d)).toEqual([]);
  });
});
