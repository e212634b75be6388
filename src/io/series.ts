/**
 * A series: the frames of one 2D+t acquisition, all on one grid.
 *
 * (a) a directory of 2D image files, frames in natural name order (`f2` before `f10`), named
 *     by file stem; (b) one 3D file whose last axis is time, frames `frame_000`…; (c) a
 *     directory of DICOM files (one frame each), ordered by InstanceNumber, then
 *     TriggerTime / AcquisitionTime, then name.
 * Geometry is checked from the file headers when the series is opened, before any work.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { orderBy } from 'natural-orderby';
import { UserError } from '../errors.js';
import { type Geometry, sameGeometry, describeGeometry } from '../core/image/geometry.js';
import type { Image } from 'itk-wasm';
import { IMAGE_EXTENSIONS, type Image2D, geometryOf, imageExtension, imageStem, itkToImage2D, readImage2D, readItkImage } from './image.js';
import { hasDicomMagic, itkDicomTags, itkReadInfo } from './itk.js';
import { listFiles } from './atomic.js';

export interface SeriesFrame {
  name: string;
  /** Source file (for a 3D volume: the volume itself). */
  file: string;
}

export interface Series {
  source: string;
  kind: 'directory' | 'volume' | 'dicom';
  geometry: Geometry;
  frames: SeriesFrame[];
  readFrame(index: number): Promise<Image2D>;
}

const USAGE = 'a series is a directory of 2D frames, one 3D file whose last axis is time, or a DICOM series directory';

async function isDicomFile(file: string): Promise<boolean> {
  const ext = imageExtension(file);
  if (ext === '.dcm' || ext === '.ima') return true;
  if (ext !== '') return false;
  return hasDicomMagic(file);
}

/** Natural sort of names (`frame2` < `frame10`), the order users expect from file browsers. */
export function naturalSort<T>(items: T[], key: (t: T) => string): T[] {
  return orderBy(items, [key], ['asc']);
}

async function headerGeometry(file: string): Promise<Geometry> {
  let img: Image;
  try {
    img = await itkReadInfo(file);
  } catch (err) {
    throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (img.imageType.dimension === 3 && img.size[2] !== 1) {
    throw new UserError(`${file} is 3D (${img.size.join('×')}); a directory series holds 2D frames (or pass the 3D file itself as the series)`);
  }
  return geometryOf(img);
}

function checkSameGrid(frames: SeriesFrame[], geoms: Geometry[]): void {
  for (let i = 1; i < frames.length; i++) {
    if (!sameGeometry(geoms[0], geoms[i])) {
      const otherPlane = geoms[0].placement && geoms[i].placement && sameGeometry({ ...geoms[0], placement: undefined }, { ...geoms[i], placement: undefined });
      if (otherPlane) {
        throw new UserError(
          `${frames[i].file} lies in another plane than ${frames[0].file} (${describeGeometry(geoms[i])} against ${describeGeometry(geoms[0])}); ` +
            'a series is one slice over time: put the files of each slice in a directory of their own',
        );
      }
      throw new UserError(
        `${frames[i].file} (${describeGeometry(geoms[i])}) is not on the grid of ${frames[0].file} (${describeGeometry(geoms[0])}); ` +
          'all frames of a series must share size, spacing, origin and direction: resample them first',
      );
    }
  }
}

async function dicomOrder(files: string[]): Promise<string[]> {
  const TAGS = ['0020|0013', '0018|1060', '0008|0032', '0008|0033'];
  const rows = [] as { file: string; inst: number; time: number }[];
  for (const file of files) {
    let tags: Map<string, string>;
    try {
      tags = await itkDicomTags(file, TAGS);
    } catch (err) {
      throw new UserError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const num = (k: string) => {
      const v = parseFloat((tags.get(k) ?? '').trim());
      return Number.isFinite(v) ? v : NaN;
    };
    const time = [num('0018|1060'), num('0008|0032'), num('0008|0033')].find((v) => !Number.isNaN(v)) ?? NaN;
    rows.push({ file, inst: num('0020|0013'), time });
  }
  const natural = naturalSort(rows, (r) => path.basename(r.file));
  const unique = (vals: number[]) => vals.every((v) => !Number.isNaN(v)) && new Set(vals).size === vals.length;
  if (unique(rows.map((r) => r.inst))) return [...natural].sort((a, b) => a.inst - b.inst).map((r) => r.file);
  if (unique(rows.map((r) => r.time))) return [...natural].sort((a, b) => a.time - b.time).map((r) => r.file);
  return natural.map((r) => r.file);
}

async function openDirectory(dir: string, checkAll: boolean): Promise<Series> {
  const names = (await listFiles(dir)).map((n) => path.join(dir, n));
  const images: string[] = [];
  const dicoms: string[] = [];
  for (const f of names) {
    if (await isDicomFile(f)) dicoms.push(f);
    else if (IMAGE_EXTENSIONS.includes(imageExtension(f))) images.push(f);
  }
  const all = [...images, ...dicoms];
  if (all.length === 0) throw new UserError(`${dir} holds no image files (${IMAGE_EXTENSIONS.join(' ')}); ${USAGE}`);
  if (all.length < 2) throw new UserError(`${dir} holds a single frame; a series needs at least 2 frames`);
  const kind = images.length === 0 ? 'dicom' : 'directory';
  const ordered = kind === 'dicom' ? await dicomOrder(dicoms) : naturalSort(all, (f) => path.basename(f));
  const frames = ordered.map((file) => ({ name: imageStem(file), file }));
  const seen = new Map<string, string>();
  for (const f of frames) {
    const prev = seen.get(f.name);
    if (prev) throw new UserError(`${prev} and ${f.file} have the same frame name "${f.name}"; keep one file per frame name`);
    seen.set(f.name, f.file);
  }
  const geoms: Geometry[] = [];
  for (const f of checkAll ? frames : frames.slice(0, 1)) geoms.push(await headerGeometry(f.file));
  checkSameGrid(frames.slice(0, geoms.length), geoms);
  return {
    source: dir,
    kind,
    geometry: geoms[0],
    frames,
    async readFrame(i: number) {
      const img = await readImage2D(frames[i].file);
      if (!sameGeometry(geoms[0], img.geometry)) checkSameGrid([frames[0], frames[i]], [geoms[0], img.geometry]);
      return img;
    },
  };
}

async function openVolume(file: string): Promise<Series> {
  const img = await readItkImage(file);
  if (img.imageType.dimension !== 3) {
    throw new UserError(`${file} is a ${img.imageType.dimension}D image; ${USAGE}`);
  }
  const nt = img.size[2];
  if (nt < 2) throw new UserError(`${file} has a single frame (last axis of length ${nt}); a series needs at least 2 frames`);
  const first = itkToImage2D(img, file, 0, 'time');
  const width = String(nt - 1).length < 3 ? 3 : String(nt - 1).length;
  const frames = Array.from({ length: nt }, (_, t) => ({ name: `frame_${String(t).padStart(width, '0')}`, file }));
  return {
    source: file,
    kind: 'volume',
    geometry: first.geometry,
    frames,
    async readFrame(i: number) {
      return itkToImage2D(img, file, i, 'time');
    },
  };
}

export interface OpenSeriesOptions {
  /**
   * Read every frame's header now and fail before any work if one is off the grid (default
   * true; ~17 ms a frame). When false only the first header is read and each frame is checked
   * as it is read.
   */
  checkAll?: boolean;
}

/** Opens a series; throws a UserError naming the path and the fix when it is not one. */
export async function openSeries(source: string, opts: OpenSeriesOptions = {}): Promise<Series> {
  let st;
  try {
    st = await fs.stat(source);
  } catch {
    throw new UserError(`series ${source} does not exist; ${USAGE}`);
  }
  return st.isDirectory() ? openDirectory(source, opts.checkAll ?? true) : openVolume(source);
}

/**
 * Resolves `--fixed-frame NAME|INDEX` against frame names: an exact name first, then an
 * integer index (0-based). Returns the index.
 */
export function resolveFrame(names: string[], spec: string | number, where: string): number {
  const s = String(spec).trim();
  const byName = names.indexOf(s);
  if (byName >= 0) return byName;
  if (/^-?\d+$/.test(s)) {
    const i = Number(s);
    if (i >= 0 && i < names.length) return i;
    throw new UserError(`frame index ${i} is out of range for ${where} (${names.length} frames: 0..${names.length - 1})`);
  }
  const some = names.slice(0, 5).join(', ') + (names.length > 5 ? ', …' : '');
  throw new UserError(`no frame named "${s}" in ${where} (frames: ${some}); give a frame name or a 0-based index`);
}
