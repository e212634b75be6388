/**
 * `evaluate tre` as a function: reads the landmark directory (and a result directory and/or
 * series when given), computes identity and after-registration TRE with core/metrics/tre.ts.
 */
import path from 'node:path';
import { maskFor, readMaskSet } from '../io/masks.js';
import { UserError } from '../errors.js';
import { type Geometry, type Point, sameGeometry, describeGeometry, physicalToIndex } from '../core/image/geometry.js';
import { type DisplacementField, mapPoint, insideGrid } from '../core/transformation/field.js';
import { type FrameTre, type TreReport, frameTre, treReport } from '../core/metrics/tre.js';
import type { FixedFrameCriterion } from '../core/image/fixed-frame.js';
import { autoFixedFrame } from './fixed-frame.js';
import { listLandmarkDir, readLandmarkFile, landmarksMm } from '../io/landmarks.js';
import { openSeries, resolveFrame, type Series } from '../io/series.js';
import { readSummary, readField, resultFile } from '../io/index.js';

export interface EvaluateTreOptions {
  landmarks: string;
  result?: string;
  series?: string;
  /** Frame name or 0-based index; default: the result's fixed frame, else auto from the series. */
  fixedFrame?: string;
  fixedFrameCriterion?: FixedFrameCriterion;
  /** A label image on the fixed grid (nonzero = in): only landmarks whose fixed position falls in it (nearest pixel) count. */
  mask?: string;
  onFrame?: (name: string) => void;
  warn?: (msg: string) => void;
}

export interface TreEvaluation {
  fixedFrame: string;
  fixedFrameSource: 'option' | 'result' | 'auto';
  method: string | null;
  landmarks: string;
  result: string | null;
  convention: string;
  geometry: Geometry | null;
  /** With a mask: its file and how many landmarks fell in it. */
  mask?: string;
  landmarksInMask?: number;
  landmarksTotal?: number;
  report: TreReport;
  frames: FrameTre[];
}

export const TRE_CONVENTION =
  'before = |f - m|, after = |f + u(f) - m|: f fixed-frame landmarks, m moving-frame landmarks, u the field (fixed -> moving, mm), bilinear at f';

export async function evaluateTre(o: EvaluateTreOptions): Promise<TreEvaluation> {
  const warn = o.warn ?? (() => undefined);
  const lmFiles = await listLandmarkDir(o.landmarks);
  const summary = o.result ? await readSummary(o.result) : null;
  const series: Series | null = o.series ? await openSeries(o.series, { checkAll: false }) : null;

  // fields are read one at a time; the first also gives the geometry when no series is given
  const fieldCache = new Map<string, DisplacementField>();
  const loadField = async (rel: string) => {
    const file = resultFile(o.result as string, rel);
    let f = fieldCache.get(file);
    if (!f) {
      f = await readField(file);
      fieldCache.clear();
      fieldCache.set(file, f);
    }
    return { file, field: f };
  };

  let geometry: Geometry | null = series?.geometry ?? null;
  if (!geometry && summary && summary.frames.length > 0) geometry = (await loadField(summary.frames[0].field)).field.geometry;

  // ---- the fixed frame ----
  const names = series ? series.frames.map((f) => f.name) : summary ? [summary.fixedFrame, ...summary.frames.map((f) => f.name)] : [...lmFiles.keys()];
  let fixedFrame: string;
  let fixedFrameSource: TreEvaluation['fixedFrameSource'];
  if (o.fixedFrame !== undefined && o.fixedFrame !== 'auto') {
    fixedFrame = names[resolveFrame(names, o.fixedFrame, series ? series.source : summary ? (o.result as string) : o.landmarks)];
    fixedFrameSource = 'option';
    if (summary && summary.fixedFrame !== fixedFrame) {
      throw new UserError(
        `--fixed-frame ${o.fixedFrame} is not the fixed frame of ${o.result} ("${summary.fixedFrame}"); drop --fixed-frame or evaluate another result`,
      );
    }
  } else if (summary) {
    fixedFrame = summary.fixedFrame;
    fixedFrameSource = 'result';
  } else if (series) {
    const choice = await autoFixedFrame(series, o.fixedFrameCriterion ?? 'image');
    fixedFrame = series.frames[choice.index].name;
    fixedFrameSource = 'auto';
  } else {
    throw new UserError('no fixed frame known: pass --fixed-frame NAME|INDEX, or --result DIR, or --series DIR to choose it automatically');
  }
  const fixedFile = lmFiles.get(fixedFrame);
  if (!fixedFile)
    throw new UserError(`no landmarks for the fixed frame "${fixedFrame}" in ${o.landmarks} (expected ${path.join(o.landmarks, fixedFrame + '.csv')})`);
  const allFixed = landmarksMm(await readLandmarkFile(fixedFile), geometry);
  let keep: boolean[] = allFixed.map(() => true);
  let maskFile: string | undefined;
  if (o.mask) {
    if (!geometry) throw new UserError("--mask needs the frames' grid: pass --series or --result");
    const set = await readMaskSet(o.mask);
    const mask = maskFor(set, fixedFrame, geometry, 'evaluation');
    const [W, H] = geometry.size;
    keep = allFixed.map((p) => {
      const [x, y] = physicalToIndex(geometry as Geometry, p).map(Math.round);
      return x >= 0 && y >= 0 && x < W && y < H && mask[y * W + x] === 1;
    });
    if (!keep.some(Boolean))
      throw new UserError(
        `none of the ${allFixed.length} landmarks of ${fixedFile} lies inside the mask ${o.mask}; check that the mask is on the fixed frame's grid`,
      );
    maskFile = set.file;
  }
  const fixedPts = allFixed.filter((_, k) => keep[k]);

  // ---- the moving frames ----
  const todo: { name: string; field?: string }[] = [];
  if (summary) {
    for (const f of summary.frames) {
      if (f.name === fixedFrame) continue;
      if (!lmFiles.has(f.name))
        warn(`frame ${f.name} of ${o.result} has no landmark file in ${o.landmarks} (expected ${path.join(o.landmarks, f.name + '.csv')}): skipped`);
      else todo.push({ name: f.name, field: f.field });
    }
  } else {
    for (const name of lmFiles.keys()) if (name !== fixedFrame) todo.push({ name });
  }
  if (todo.length === 0) throw new UserError(`no frame besides the fixed frame "${fixedFrame}" has landmarks in ${o.landmarks}`);

  const frames: FrameTre[] = [];
  // landmarks outside the image: a wrong unit (px for mm) or another image's file
  if (geometry) {
    const g = geometry;
    const far = fixedPts.filter((p) => !insideGrid(g, p)).length;
    if (far > 0)
      warn(
        `${fixedFile}: ${far} of ${fixedPts.length} landmark(s) lie outside the image (${describeGeometry(g)}); check their units (mm) and that they belong to this series`,
      );
  }
  let outside = 0;
  /** Moving landmarks outside the image (over all frames), and the first file that has one. */
  let movingOutside = 0;
  let movingOutsideFile: string | null = null;
  for (const item of todo) {
    const file = lmFiles.get(item.name) as string;
    const movingAll = landmarksMm(await readLandmarkFile(file), geometry);
    if (movingAll.length !== allFixed.length) {
      throw new UserError(
        `${fixedFile} has ${allFixed.length} landmarks but ${file} has ${movingAll.length}; every frame needs the same landmarks in the same order`,
      );
    }
    const moving = movingAll.filter((_, k) => keep[k]);
    if (geometry) {
      const out = moving.filter((p) => !insideGrid(geometry as Geometry, p)).length;
      movingOutside += out;
      if (out > 0) movingOutsideFile ??= file;
    }
    let map: ((p: Point) => Point) | undefined;
    if (item.field) {
      const { file: ffile, field } = await loadField(item.field);
      if (geometry && !sameGeometry(geometry, field.geometry)) {
        throw new UserError(
          `${ffile} (${describeGeometry(field.geometry)}) is not on the grid of the series (${describeGeometry(geometry)}); was it computed for another series?`,
        );
      }
      outside += fixedPts.filter((p) => !insideGrid(field.geometry, p)).length;
      map = (p) => mapPoint(field, p);
    }
    frames.push(frameTre(item.name, fixedPts, moving, geometry, map));
    o.onFrame?.(item.name);
  }
  if (movingOutside > 0)
    warn(
      `${movingOutside} moving landmark(s) lie outside the image (${describeGeometry(geometry as Geometry)}), first in ${movingOutsideFile}; check their units (mm) and that they belong to this series: the TRE counts them as they are`,
    );
  if (outside > 0 && !geometry) warn(`${outside} fixed landmark(s) of ${fixedFile} lie outside the field grid; the field was extended from its border there`);
  return {
    fixedFrame,
    fixedFrameSource,
    method: summary?.method ?? null,
    landmarks: o.landmarks,
    result: o.result ?? null,
    convention: TRE_CONVENTION,
    geometry,
    ...(maskFile ? { mask: maskFile, landmarksInMask: fixedPts.length, landmarksTotal: allFixed.length } : {}),
    report: treReport(frames),
    frames,
  };
}
