/**
 * What a finished result directory gets besides its per-frame files (written when the run is
 * complete, from the files on disk, so shards and resumed runs end the same way):
 *
 *   warped.nii.gz   every frame of the series in order, registered (the fixed frame as it is),
 *                   time as the last axis: one corrected stack (io/image.ts writeStack)
 *   fields.nii.gz   the frames' fields likewise (2 components, mm; the fixed frame's is zero)
 *   motion.csv      per frame: mean / max displacement, change from the previous frame, NCC to
 *                   the fixed frame before and after (core/metrics/motion.ts)
 *   qc/motion.png   mean (black) and max (grey) displacement per frame
 *
 * Memory: the stacks hold every frame at once (3 × 4 bytes per pixel per frame: 140 frames of
 * 256² ≈ 110 MB); `stack: false` writes only motion.csv and its plot.
 */
import path from 'node:path';
import { type DisplacementField } from '../core/transformation/field.js';
import { insideMask } from '../core/transformation/apply.js';
import { type MotionRow, displacementStats, fieldChange, motionCsv, ncc } from '../core/metrics/motion.js';
import { linePlot } from '../core/qc/plot.js';
import type { Image2D } from '../io/image.js';
import { readField, readImage2D, writeGreyPng, writeStack } from '../io/image.js';
import { writeTextAtomic } from '../io/atomic.js';
import { type ResultFormat, resultPaths } from '../io/result.js';

export const stackFiles = (format: ResultFormat = 'nii.gz') => ({ warped: `warped.${format}`, fields: `fields.${format}` });
export const MOTION_FILE = 'motion.csv';

export interface ProductsInput {
  out: string;
  /** Every frame of the input, series order. */
  frames: { name: string; index: number }[];
  fixedName: string;
  fixed: Image2D;
  read(index: number): Promise<Image2D>;
  fallbacks: Set<string>;
  stack: boolean;
  /** The image format of the frames' files and the stacks (default nii.gz). */
  format?: ResultFormat;
  /** Frames registered in this run, kept in memory (physical field, warped frame, moving frame, inside mask): not read back. */
  cache?: Map<string, { field: Float32Array; warped: Float32Array; moving: Float32Array; inside: ArrayLike<number> }>;
}

export async function writeSeriesProducts(o: ProductsInput): Promise<MotionRow[]> {
  const [W, H] = o.fixed.geometry.size;
  const zero = new Float32Array(2 * W * H);
  const warpedStack: Float32Array[] = [];
  const fieldStack: Float32Array[] = [];
  const rows: MotionRow[] = [];
  let prev: Float32Array | null = null;
  for (const f of o.frames) {
    const isFixed = f.name === o.fixedName;
    let field: DisplacementField;
    let warped: Float32Array;
    let moving: Float32Array;
    let inside: ArrayLike<number> | null = null;
    const kept = o.cache?.get(f.name);
    if (kept && !isFixed) {
      field = { geometry: o.fixed.geometry, data: kept.field };
      warped = kept.warped;
      moving = kept.moving;
      inside = kept.inside;
    } else if (isFixed) {
      field = { geometry: o.fixed.geometry, data: zero };
      warped = o.fixed.data;
      moving = o.fixed.data;
    } else {
      const rp = resultPaths(f.name, o.format);
      field = await readField(path.join(o.out, rp.field));
      warped = (await readImage2D(path.join(o.out, rp.warped))).data;
      moving = (await o.read(f.index)).data;
    }
    const s = displacementStats(field.data);
    rows.push({
      frame: f.name,
      index: f.index,
      fixed: isFixed,
      meanMm: s.meanMm,
      maxMm: s.maxMm,
      changeMm: prev ? fieldChange(field.data, prev) : NaN,
      nccBefore: ncc(o.fixed.data, moving),
      nccAfter: isFixed ? ncc(o.fixed.data, moving) : ncc(o.fixed.data, warped, inside ?? insideMask(field)),
      fallback: o.fallbacks.has(f.name),
    });
    prev = field.data;
    if (o.stack) {
      warpedStack.push(warped);
      fieldStack.push(field.data);
    }
  }
  if (o.stack) {
    const files = stackFiles(o.format);
    await writeStack(path.join(o.out, files.warped), o.fixed.geometry, warpedStack, 1);
    await writeStack(path.join(o.out, files.fields), o.fixed.geometry, fieldStack, 2);
  }
  await writeTextAtomic(path.join(o.out, MOTION_FILE), motionCsv(rows));
  await writeGreyPng(path.join(o.out, 'qc', 'motion.png'), linePlot([rows.map((r) => r.meanMm), rows.map((r) => r.maxMm)]), [0, 255]);
  return rows;
}
