/**
 * 2D image files ↔ plain typed arrays with geometry beside them. The core never sees itk-wasm.
 *
 * Reads .nrrd/.nhdr, .nii/.nii.gz, .mha/.mhd, .png, .jpg/.jpeg, .tif/.tiff and single DICOM
 * files. A 3D image with one slice (DICOM always reads so) is squeezed to 2D; RGB(A) is turned
 * into luminance (Rec. 601: 0.299 R + 0.587 G + 0.114 B). Writes float32 scalar images and
 * 2-component displacement fields to .nii.gz/.nii/.nrrd/.mha keeping spacing, origin and
 * direction; .png/.jpg get an 8-bit windowed copy (for looking at, not for computing).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { gunzipSync } from 'node:zlib';
import { Image, ImageType, FloatTypes, IntTypes, PixelTypes } from 'itk-wasm';
import { UserError, fsUserError } from '../errors.js';
import { type Geometry, geometryProblem, geometryFrom3D, header3D, vectorTo3D, vectorFrom3D } from '../core/image/geometry.js';
import type { DisplacementField } from '../core/transformation/field.js';
import { itkRead, itkWrite } from './itk.js';
import { writeAtomic } from './atomic.js';
import { niftiHeader3D } from './nifti.js';

/** A 2D scalar image: `data[row·W + col]`, float32, with its geometry. */
export interface Image2D {
  geometry: Geometry;
  data: Float32Array;
}

export const IMAGE_EXTENSIONS = ['.nrrd', '.nhdr', '.nii', '.nii.gz', '.mha', '.mhd', '.png', '.jpg', '.jpeg', '.tif', '.tiff', '.dcm', '.ima', '.bmp'];
const FIELD_EXTENSIONS = ['.nii.gz', '.nii', '.nrrd', '.mha'];

/** The image extension of a file name, `.nii.gz` counted as one; '' when none. */
export function imageExtension(file: string): string {
  const lower = file.toLowerCase();
  if (lower.endsWith('.nii.gz')) return '.nii.gz';
  return path.extname(lower);
}

/** File name without directory and image extension (`frame_001.nii.gz` → `frame_001`). */
export function imageStem(file: string): string {
  const base = path.basename(file);
  const ext = imageExtension(base);
  return ext ? base.slice(0, base.length - ext.length) : base;
}

/**
 * JPEG, BMP and DICOM files cut short are read by ITK without an error either (the missing part
 * as zeros): a JPEG must end with its end-of-image marker, a BMP hold the size its header says,
 * and a DICOM file's pixel data element reach its stated length (or, encapsulated, end with
 * the sequence delimiter).
 */
async function checkOtherComplete(file: string, ext: string): Promise<void> {
  const buf = await fs.readFile(file);
  const cut = (what: string) => new UserError(`${file} is incomplete (${what}): it was cut short (an interrupted copy or download?); copy it again`);
  if (ext === '.jpg' || ext === '.jpeg') {
    const tail = buf.subarray(Math.max(0, buf.length - 64));
    let end = false;
    for (let i = 0; i + 1 < tail.length; i++) if (tail[i] === 0xff && tail[i + 1] === 0xd9) end = true;
    if (!end) throw cut('no JPEG end-of-image marker');
    return;
  }
  if (ext === '.bmp') {
    if (buf.length >= 6 && buf.toString('latin1', 0, 2) === 'BM' && buf.length < buf.readUInt32LE(2))
      throw cut(`${buf.length} of ${buf.readUInt32LE(2)} bytes`);
    return;
  }
  // DICOM (Part 10): the last Pixel Data element (7FE0,0010), little endian
  if (!(buf.length > 132 && buf.toString('latin1', 128, 132) === 'DICM')) return;
  const tag = Buffer.from([0xe0, 0x7f, 0x10, 0x00]);
  const at = buf.lastIndexOf(tag);
  if (at < 0) return;
  const vr = buf.toString('latin1', at + 4, at + 6);
  const explicit = /^[A-Z]{2}$/.test(vr);
  const long = explicit && ['OB', 'OW', 'OF', 'OD', 'OL', 'UN', 'UT', 'SQ'].includes(vr);
  const lenAt = explicit ? (long ? at + 8 : at + 6) : at + 4;
  if (lenAt + 4 > buf.length) throw cut('the pixel data element is cut');
  const len = long || !explicit ? buf.readUInt32LE(lenAt) : buf.readUInt16LE(lenAt);
  const start = lenAt + (long || !explicit ? 4 : 2);
  if (len === 0xffffffff) {
    // encapsulated: items until the sequence delimitation item (FFFE,E0DD)
    const delim = Buffer.from([0xfe, 0xff, 0xdd, 0xe0]);
    if (buf.lastIndexOf(delim) < start) throw cut('no end of the encapsulated pixel data');
    return;
  }
  if (buf.length < start + len) throw cut(`pixel data ${buf.length - start} of ${len} bytes`);
}

/**
 * itk-wasm writes through its own file system layer, which can leave a short file without an
 * error when the disk fills up: every image written is read back whole (a few ms for 256²)
 * before it is renamed into place, and flushed to disk.
 */
async function writeVerified(image: Image, tmp: string): Promise<void> {
  const pixels = image.size.reduce((a, b) => a * b, 1) * image.imageType.components * (COMPONENT_BYTES[String(image.imageType.componentType)] ?? 4);
  // a full disk shows as any failure here: then say so
  const diskFull = async (): Promise<NodeJS.ErrnoException | null> => {
    const free = await fs.statfs(path.dirname(tmp)).then(
      (st) => st.bavail * st.bsize,
      () => null,
    );
    if (free === null || free > Math.max(pixels, 2 ** 20)) return null;
    const e = new Error('no space left on the device') as NodeJS.ErrnoException;
    e.code = 'ENOSPC';
    e.path = path.dirname(tmp);
    return e;
  };
  try {
    await itkWrite(image, tmp);
  } catch (err) {
    throw (await diskFull()) ?? err;
  }
  if (!(await writtenWhole(tmp, pixels))) throw (await diskFull()) ?? new Error('the file came out incomplete');
  const fh = await fs.open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Whether a file itk-wasm wrote holds all of its `pixelBytes` (cheaply, without decoding it):
 * gzip streams (`.nii.gz`, NRRD with gzip encoding) end with the length of their uncompressed
 * data modulo 2³², which must be the NIfTI header (352 bytes) plus the pixels, or the pixels;
 * uncompressed files must be at least as long as their pixels.
 */
async function writtenWhole(file: string, pixelBytes: number): Promise<boolean> {
  const st = await fs.stat(file).catch(() => null);
  if (!st || st.size === 0) return false;
  const lower = file.toLowerCase();
  const gz = lower.endsWith('.gz');
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(Math.min(4096, st.size));
    await fh.read(head, 0, head.length, 0);
    const nrrdGzip = lower.endsWith('.nrrd') && /\nencoding: *(gzip|gz)\s*\n/.test(head.toString('latin1'));
    if (gz || nrrdGzip) {
      const tail = Buffer.alloc(4);
      await fh.read(tail, 0, 4, st.size - 4);
      const isize = tail.readUInt32LE(0);
      return gz ? isize === (352 + pixelBytes) % 2 ** 32 || isize === (348 + pixelBytes) % 2 ** 32 : isize === pixelBytes % 2 ** 32;
    }
    const compressedMeta = /CompressedData = True/.test(head.toString('latin1'));
    return compressedMeta || lower.endsWith('.png') || lower.endsWith('.jpg') || lower.endsWith('.jpeg') || st.size >= pixelBytes;
  } finally {
    await fh.close();
  }
}

/** An itk-wasm image, read with a user-facing error naming the file. */
export async function readItkImage(file: string): Promise<Image> {
  let img: Image;
  try {
    img = await itkRead(file);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  await checkComplete(file, img);
  return img;
}

const COMPONENT_BYTES: Record<string, number> = { int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, int64: 8, uint64: 8, float64: 8 };

/**
 * NIfTI files hold all of their pixels or are rejected: ITK reads a truncated `.nii` or `.nii.gz`
 * without a word, filling the rest with zeros (NRRD, MetaImage and PNG readers fail on their
 * own). A `.nii.gz` must decompress completely, and the data must reach vox_offset + the pixel
 * bytes the header announces.
 */
async function checkComplete(file: string, img: Image, values = true): Promise<void> {
  const lower = file.toLowerCase();
  const ext = imageExtension(file);
  if (ext === '.jpg' || ext === '.jpeg' || ext === '.bmp' || ext === '.dcm' || ext === '.ima' || ext === '') return checkOtherComplete(file, ext);
  if (!lower.endsWith('.nii') && !lower.endsWith('.nii.gz')) return;
  let buf: Buffer = await fs.readFile(file);
  const bad = (what: string) => new UserError(`${file} is ${what}: it was cut short (an interrupted copy or download?); copy it again`);
  if (lower.endsWith('.gz')) {
    try {
      buf = gunzipSync(buf);
    } catch (err) {
      throw bad((err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR' ? 'truncated (its compressed data ends early)' : 'corrupt (not valid gzip data)');
    }
  }
  if (buf.length < 348) throw bad(`shorter than a NIfTI header (${buf.length} bytes)`);
  const le = buf.readInt32LE(0);
  const little = le === 348 || le === 540;
  const sizeofHdr = little ? le : buf.readInt32BE(0);
  const voxOffset =
    sizeofHdr === 540 ? Number(little ? buf.readBigInt64LE(168) : buf.readBigInt64BE(168)) : little ? buf.readFloatLE(108) : buf.readFloatBE(108);
  const per = COMPONENT_BYTES[String(img.imageType.componentType)] ?? 0;
  const expected = img.size.reduce((a, b) => a * b, 1) * img.imageType.components * per;
  if (per > 0 && buf.length < voxOffset + expected) throw bad(`incomplete (${buf.length - voxOffset} of ${expected} pixel bytes)`);
  // ITK's NIfTI reader turns NaN and ±Inf into 0 without a word: look at the stored values
  const type = String(img.imageType.componentType);
  if (values && (type === 'float32' || type === 'float64')) {
    const count = expected / per;
    let bad = 0;
    for (let i = 0; i < count; i++) {
      const at = voxOffset + i * per;
      const v = type === 'float32' ? (little ? buf.readFloatLE(at) : buf.readFloatBE(at)) : little ? buf.readDoubleLE(at) : buf.readDoubleBE(at);
      if (!Number.isFinite(v)) bad++;
    }
    if (bad > 0) throw new UserError(`${file} has ${bad} NaN or infinite pixel value(s); replace them (e.g. with 0) before registering`);
  }
}

function toFloat32(src: ArrayLike<number>, components: number, isColour: boolean): Float32Array {
  const n = src.length / components;
  const out = new Float32Array(n);
  if (components === 1) {
    for (let i = 0; i < n; i++) out[i] = src[i];
  } else if (isColour) {
    for (let i = 0; i < n; i++) {
      const k = i * components;
      out[i] = 0.299 * src[k] + 0.587 * src[k + 1] + 0.114 * src[k + 2];
    }
  }
  return out;
}

/**
 * The 2D geometry of an itk-wasm image of dimension 2 or 3. For a 3D image the third axis is
 * either space (`'space'`: a one-slice image such as a DICOM file, placed in 3D; an oblique
 * slice gets in-plane coordinates, see `geometryFrom3D`) or time (`'time'`: a 2D+t volume,
 * whose frames take the upper-left 2×2 direction block and no placement).
 */
export function geometryOf(img: Image, thirdAxis: 'space' | 'time' = 'space'): Geometry {
  const d = Array.from(img.direction as ArrayLike<number>, Number);
  const dim = img.imageType.dimension;
  const size: [number, number] = [img.size[0], img.size[1]];
  if (dim === 3 && thirdAxis === 'space') {
    return geometryFrom3D(size, {
      origin: [img.origin[0], img.origin[1], img.origin[2]],
      spacing: [img.spacing[0], img.spacing[1], img.spacing[2]],
      direction: d,
    });
  }
  return {
    size,
    spacing: [img.spacing[0], img.spacing[1]],
    origin: [img.origin[0], img.origin[1]],
    direction: dim === 2 ? [d[0], d[1], d[2], d[3]] : [d[0], d[1], d[dim], d[dim + 1]],
  };
}

/** Rejects NaN/Inf pixels with a message naming the file. */
export function checkFinite(data: Float32Array, file: string): void {
  let bad = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad++;
  if (bad > 0) throw new UserError(`${file} has ${bad} NaN or infinite pixel value(s); replace them (e.g. with 0) before registering`);
}

/**
 * Converts an itk-wasm image to 2D scalar float32. 3D images must have exactly `slices`
 * slices; `slice` picks one (used to split a 2D+t volume into frames).
 */
export function itkToImage2D(img: Image, file: string, slice = 0, thirdAxis: 'space' | 'time' = 'space'): Image2D {
  const dim = img.imageType.dimension;
  const pixelType = String(img.imageType.pixelType);
  const comps = img.imageType.components;
  if (dim < 2 || dim > 3) throw new UserError(`${file} is ${dim}D; r2n2 registers 2D images (a series may be one 3D file whose last axis is time)`);
  const isColour = pixelType === 'RGB' || pixelType === 'RGBA';
  if (comps !== 1 && !isColour) throw new UserError(`${file} has ${comps}-component ${pixelType} pixels; expected a scalar (grey) or RGB image`);
  if (!img.data) throw new UserError(`cannot read ${file}: no pixel data`);
  const geometry = geometryOf(img, thirdAxis);
  const problem = geometryProblem(geometry);
  if (problem) throw new UserError(`${file}: ${problem}; fix the image header`);
  const n = geometry.size[0] * geometry.size[1];
  const nz = dim === 3 ? img.size[2] : 1;
  if (slice < 0 || slice >= nz) throw new UserError(`${file} has ${nz} slice(s), slice ${slice} asked`);
  const start = slice * n * comps;
  const sub = (img.data as unknown as { subarray(a: number, b: number): ArrayLike<number> }).subarray(start, start + n * comps);
  const data = toFloat32(sub, comps, isColour);
  checkFinite(data, file);
  return { geometry, data };
}

/**
 * Reads one 2D image. A 3D file with one slice is squeezed; a 3D file with more slices is an
 * error (it is a series: see `openSeries`).
 */
export async function readImage2D(file: string): Promise<Image2D> {
  const img = await readItkImage(file);
  if (img.imageType.dimension === 3 && img.size[2] !== 1) {
    throw new UserError(`${file} is 3D (${img.size.join('×')}), not a 2D image; pass it as a series (last axis = time)`);
  }
  return itkToImage2D(img, file);
}

/**
 * An itk-wasm image on a 2D geometry: 2D, or a one-slice 3D image when the geometry has a 3D
 * placement (so the file overlays its 3D source). A 2-component field is then written with 3D
 * vectors (`A · u`, mm), as ITK and 3D Slicer expect of a 3D displacement field.
 */
function makeItkImage(geometry: Geometry, components: 1 | 2, data: Float32Array | Uint8Array | Int32Array, componentType: string, flat = false): Image {
  const placed = geometry.placement && !flat ? { ...geometry, placement: geometry.placement } : null;
  const dim = placed ? 3 : 2;
  const comps = placed && components === 2 ? 3 : components;
  const type = new ImageType(dim, componentType as typeof FloatTypes.Float32, comps === 1 ? PixelTypes.Scalar : PixelTypes.Vector, comps);
  const img = new Image(type);
  if (placed) {
    const h = header3D(placed);
    img.size = [geometry.size[0], geometry.size[1], 1];
    img.spacing = [...h.spacing];
    img.origin = [...h.origin];
    img.direction = new Float64Array(h.direction);
    if (comps === 3) {
      const n = geometry.size[0] * geometry.size[1];
      const v3 = new Float32Array(3 * n);
      for (let i = 0; i < n; i++) {
        const w = vectorTo3D(placed.placement, [data[2 * i], data[2 * i + 1]]);
        v3[3 * i] = w[0];
        v3[3 * i + 1] = w[1];
        v3[3 * i + 2] = w[2];
      }
      data = v3;
    }
  } else {
    img.size = [...geometry.size];
    img.spacing = [...geometry.spacing];
    img.origin = [...geometry.origin];
    img.direction = new Float64Array(geometry.direction);
  }
  img.data = data;
  return img;
}

/** An Image2D as a float32 2D itk-wasm image in its in-plane coordinates (for itk-wasm pipelines such as elastix). */
export function image2DToItk(image: Image2D): Image {
  return makeItkImage(image.geometry, 1, image.data, FloatTypes.Float32, true);
}

/** Maps `[lo, hi]` linearly to 0..255 (default window: the image's min..max). */
export function toUint8(data: Float32Array, window?: [number, number]): Uint8Array {
  let lo = Infinity;
  let hi = -Infinity;
  if (window) [lo, hi] = window;
  else
    for (const v of data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.max(0, Math.min(255, Math.round((data[i] - lo) * scale)));
  return out;
}

/**
 * Writes a 2D scalar image atomically. Medical formats keep float32 and the geometry; .png and
 * .jpg get an 8-bit copy windowed to `window` (default min..max) that keeps only the spacing.
 */
export async function writeImage2D(file: string, image: Image2D, window?: [number, number]): Promise<void> {
  const ext = imageExtension(file);
  const eightBit = ext === '.png' || ext === '.jpg' || ext === '.jpeg' || ext === '.bmp';
  const itk = eightBit
    ? makeItkImage(image.geometry, 1, toUint8(image.data, window), IntTypes.UInt8, true)
    : makeItkImage(image.geometry, 1, image.data, FloatTypes.Float32);
  try {
    await writeAtomic(file, (tmp) => writeVerified(itk, tmp));
  } catch (err) {
    throw writeError(file, err);
  }
}

/**
 * Writes an 8-bit greyscale PNG of a picture (a QC mosaic, a plot) atomically, `window` mapped
 * to 0..255 (default min..max). Encoded with pngjs and Node's zlib (level 6). For a 392×262
 * QC mosaic this takes ≈10 ms. itk-wasm takes ≈40 ms alone and ≈180 ms inside a
 * `register series` run, because its PNG pipeline is instantiated for every file. Pictures
 * have no geometry; medical images keep `writeImage2D`.
 */
export async function writeGreyPng(file: string, picture: { data: Float32Array; W: number; H: number }, window?: [number, number]): Promise<void> {
  const { data, W, H } = picture;
  if (data.length !== W * H) throw new Error(`picture is ${data.length} values for ${W}×${H}`);
  const png = new PNG({ width: W, height: H });
  png.data = Buffer.from(toUint8(data, window).buffer);
  // one grey byte per pixel in, one out
  const bytes = PNG.sync.write(png, { colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false, deflateLevel: 6 });
  try {
    await writeAtomic(file, (tmp) => fs.writeFile(tmp, bytes));
  } catch (err) {
    throw writeError(file, err);
  }
}

/** Writes a displacement field (2-component float32 vector image, mm) atomically. */
export async function writeField(file: string, field: DisplacementField): Promise<void> {
  const ext = imageExtension(file);
  if (!FIELD_EXTENSIONS.includes(ext)) throw new UserError(`cannot write ${file}: displacement fields are written as ${FIELD_EXTENSIONS.join(', ')}`);
  const itk = makeItkImage(field.geometry, 2, field.data, FloatTypes.Float32);
  try {
    await writeAtomic(file, (tmp) => writeVerified(itk, tmp));
  } catch (err) {
    throw writeError(file, err);
  }
}

/** A failed write as a UserError naming the file (a filesystem error says what to do). */
function writeError(file: string, err: unknown): UserError {
  const fsErr = fsUserError(err);
  return new UserError(`cannot write ${file}: ${fsErr ? fsErr.message : (err as Error).message}`);
}

/** Writes a 2D label map (int32, the image's geometry) atomically. */
export async function writeLabels2D(file: string, geometry: Geometry, labels: Int32Array): Promise<void> {
  const itk = makeItkImage(geometry, 1, labels, IntTypes.Int32);
  try {
    await writeAtomic(file, (tmp) => writeVerified(itk, tmp));
  } catch (err) {
    throw writeError(file, err);
  }
}

/**
 * Writes frames on one 2D grid as one 2D+t image, time as the last axis (what `openSeries` reads
 * back as a series, and ITK-SNAP / 3D Slicer open as one volume): spacing `[sx, sy, 1]`, origin
 * `[ox, oy, 0]`, the in-plane direction (a slice's 3D placement is not kept: the stack is in its
 * in-plane coordinates). `components` 2: a field per frame (x, y in mm, pixel-interleaved).
 */
export async function writeStack(file: string, geometry: Geometry, frames: (Float32Array | Int32Array)[], components: 1 | 2 = 1): Promise<void> {
  const [W, H] = geometry.size;
  const n = W * H * components;
  const labels = frames.length > 0 && frames[0] instanceof Int32Array;
  const type = new ImageType(3, labels ? IntTypes.Int32 : FloatTypes.Float32, components === 1 ? PixelTypes.Scalar : PixelTypes.Vector, components);
  const img = new Image(type);
  img.size = [W, H, frames.length];
  img.spacing = [geometry.spacing[0], geometry.spacing[1], 1];
  img.origin = [geometry.origin[0], geometry.origin[1], 0];
  const d = geometry.direction;
  img.direction = new Float64Array([d[0], d[1], 0, d[2], d[3], 0, 0, 0, 1]);
  const data = labels ? new Int32Array(n * frames.length) : new Float32Array(n * frames.length);
  frames.forEach((f, t) => {
    if (f.length !== n) throw new Error(`stack frame ${t} holds ${f.length} values, expected ${n}`);
    data.set(f, t * n);
  });
  img.data = data;
  try {
    await writeAtomic(file, (tmp) => writeVerified(img, tmp));
  } catch (err) {
    throw writeError(file, err);
  }
}

/** Reads a displacement field written by `writeField` (or ITK/transformix, 2D, 2 components). */
export async function readField(file: string): Promise<DisplacementField> {
  const img = await readItkImage(file);
  const dim = img.imageType.dimension;
  const comps = img.imageType.components;
  if (dim === 3 && img.size[2] !== 1) throw new UserError(`${file} is a 3D field; expected a 2D displacement field`);
  if (!img.data) throw new UserError(`cannot read ${file}: no pixel data`);
  let geometry = geometryOf(img);
  let squeezed = false;
  if (dim === 2 && comps === 3 && /\.nii(\.gz)?$/i.test(file)) {
    // a one-slice 3D field that ITK's NIfTI reader squeezed to 2D: its 3D header from the file
    const h = await niftiHeader3D(file).catch(() => null);
    if (h && h.size[0] === geometry.size[0] && h.size[1] === geometry.size[1] && h.size[2] === 1) {
      geometry = geometryFrom3D(geometry.size, h);
      squeezed = true;
    }
  }
  if (comps !== 2 && !(comps === 3 && (dim === 3 || squeezed)))
    throw new UserError(`${file} has ${comps} component(s) per pixel; a 2D displacement field has 2 (x, y in mm)`);
  const n = geometry.size[0] * geometry.size[1];
  const data = new Float32Array(2 * n);
  const src = img.data as ArrayLike<number>;
  for (let i = 0; i < n; i++) {
    if (comps === 3) {
      // a 3D vector: its in-plane part (for a plain 2D image stored as 3D, x and y)
      const v: [number, number, number] = [src[3 * i], src[3 * i + 1], src[3 * i + 2]];
      const u = geometry.placement ? vectorFrom3D(geometry.placement, v) : [v[0], v[1]];
      data[2 * i] = u[0];
      data[2 * i + 1] = u[1];
    } else {
      data[2 * i] = src[comps * i];
      data[2 * i + 1] = src[comps * i + 1];
    }
  }
  checkFinite(data, file);
  return { geometry, data };
}
