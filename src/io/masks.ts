/**
 * Registration masks (`--fixed-mask`, `--moving-mask`): a label image (nonzero = in the region),
 * or, for the moving frames of a series, a series of them (a directory, a 3D file or a DICOM
 * directory) whose frames carry the same names as the series' frames.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { type Geometry, describeGeometry, sameGeometry } from '../core/image/geometry.js';
import { readImage2D } from './image.js';
import { openSeries } from './series.js';

export interface Mask {
  file: string;
  geometry: Geometry;
  /** 1 inside, 0 outside, `[H, W]` row-major. */
  data: Uint8Array;
}

/** A mask for every frame (one image), or one per frame name (a series). */
export interface MaskSet {
  file: string;
  single: Mask | null;
  frames: Record<string, Mask>;
}

function toMask(file: string, geometry: Geometry, values: ArrayLike<number>): Mask {
  const data = new Uint8Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) throw new UserError(`${file} holds NaN values; a mask is a label image (nonzero = in the region)`);
    if (values[i] !== 0) {
      data[i] = 1;
      n++;
    }
  }
  if (n === 0) throw new UserError(`${file} is empty (no nonzero pixel); a mask marks the region the similarity counts in`);
  return { file, geometry, data };
}

/** Reads a mask set: a 2D image, or a series of masks named as the frames. */
export async function readMaskSet(source: string): Promise<MaskSet> {
  let st;
  try {
    st = await fs.stat(source);
  } catch {
    throw new UserError(`mask ${source} does not exist; give a label image (nonzero = in) or a directory of them named as the frames`);
  }
  if (st.isFile()) {
    try {
      const img = await readImage2D(source);
      return { file: path.resolve(source), single: toMask(source, img.geometry, img.data), frames: {} };
    } catch (err) {
      // a 3D file: a series of masks
      if (!(err instanceof UserError) || !/3D|dimension|frames/i.test(err.message)) throw err;
    }
  }
  const series = await openSeries(source);
  const frames: Record<string, Mask> = {};
  for (let i = 0; i < series.frames.length; i++) {
    const img = await series.readFrame(i);
    frames[series.frames[i].name] = toMask(`${source} (frame ${series.frames[i].name})`, img.geometry, img.data);
  }
  return { file: path.resolve(source), single: null, frames };
}

/** The mask of frame `name` on `geometry`; a UserError naming the file when it is missing or on another grid. */
export function maskFor(set: MaskSet, name: string, geometry: Geometry, what: string): Uint8Array {
  const m = set.single ?? set.frames[name];
  if (!m)
    throw new UserError(
      `${set.file} has no mask for frame "${name}" (it has ${Object.keys(set.frames).slice(0, 5).join(', ')}${Object.keys(set.frames).length > 5 ? ', …' : ''}); name the ${what} masks as the frames, or give one mask image for all`,
    );
  if (!sameGeometry(m.geometry, geometry)) {
    throw new UserError(
      `${what} mask ${m.file} (${describeGeometry(m.geometry)}) is not on the grid of the frames (${describeGeometry(geometry)}); resample it onto the frames' grid`,
    );
  }
  return m.data;
}
