/**
 * `r2n2 apply` as a function (transformix's job for any method's result directory): the fields
 * of a result applied to other data on the same frames.
 *
 *   --images SERIES  another series (another contrast, a processed copy), pulled onto the fixed
 *                    grid through each frame's field: OUT/images/<frame>.nii.gz
 *   --labels SERIES  label maps likewise (nearest, or per-label linear then arg-max):
 *                    OUT/labels/<frame>.nii.gz (int32)
 *   --points PATH    landmark files: `from fixed` maps fixed-frame points into every frame
 *                    (T(p) = p + u(p)); `from moving` maps each frame's points to the fixed frame
 *                    through the inverse field: OUT/points/<frame>.csv (x,y mm)
 *   --write-inverse  OUT/inverse/<frame>.nii.gz, the inverse fields (core/transformation/inverse.ts)
 *
 * Frames are matched by name (a series may cover some frames only: labels drawn on a few); a
 * series with other names but as many frames as the registered series is matched by position
 * (said in apply.json). The fixed frame goes through the identity on the fixed grid. With
 * `stack`, OUT/images.nii.gz and OUT/labels.nii.gz hold the frames in series order (when the
 * series covers every frame).
 * Every file is written atomically; apply.json (written first, then again at the end) holds the
 * settings key: a rerun skips finished frames, and one with other settings needs `force`.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import { type DisplacementField, mapPoint } from '../core/transformation/field.js';
import type { Point } from '../core/image/geometry.js';
import { type Interpolation, type LabelInterpolation, mapPointsForward, resampleLabels, resampleThroughField } from '../core/transformation/apply.js';
import { compositionResidual, invertField } from '../core/transformation/inverse.js';
import { readField, writeField, writeImage2D, writeLabels2D, writeStack } from '../io/image.js';
import { type Series, openSeries } from '../io/series.js';
import { listLandmarkDir, landmarksMm, readLandmarkFile, writeLandmarkCsv } from '../io/landmarks.js';
import { readSummary, resultFile, resultPaths } from '../io/result.js';
import { withOutputLock, writeTextAtomic } from '../io/atomic.js';

export type PointsFrom = 'fixed' | 'moving';

export interface ApplyOptions {
  result: string;
  out: string;
  images?: string;
  interpolation?: Interpolation;
  labels?: string;
  labelInterpolation?: LabelInterpolation;
  points?: string;
  pointsFrom?: PointsFrom;
  writeInverse?: boolean;
  stack?: boolean;
  force?: boolean;
  onStart?: (frames: number) => void;
  onFrame?: (info: { frame: string; skipped: boolean; inverseResidualMaxPx?: number }) => void;
}

export interface ApplyFrame {
  name: string;
  fixed: boolean;
  images?: string;
  labels?: string;
  points?: string;
  inverse?: string;
  /** |T(T⁻¹(q)) − q| of the inverse, px (when one was computed or read). */
  inverseResidualMeanPx?: number;
  inverseResidualMaxPx?: number;
  /** Fraction of the fixed grid mapped inside the applied image (1 for the fixed frame). */
  insideFraction?: number;
}

export interface ApplyReport {
  format: 'r2n2-apply';
  version: 1;
  result: string;
  fixedFrame: string;
  settingsKey: string;
  settings: Record<string, unknown>;
  matchedBy: { images?: 'name' | 'position'; labels?: 'name' | 'position' };
  complete: boolean;
  frames: ApplyFrame[];
  skipped: string[];
}

export const APPLY_FILE = 'apply.json';
const exists = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false,
  );

/** The result's frames in series order (the fixed frame included). */
async function resultOrder(result: string, summary: Awaited<ReturnType<typeof readSummary>>): Promise<string[]> {
  const listed = summary.seriesFrames;
  if (Array.isArray(listed) && listed.every((n) => typeof n === 'string')) return listed as string[];
  // older results: the registered series, if it is still there
  if (summary.series) {
    const s = await openSeries(path.resolve(result, summary.series)).catch(() => null);
    if (s) return s.frames.map((f) => f.name);
  }
  return [summary.fixedFrame, ...summary.frames.map((f) => f.name)];
}

/**
 * Frame name → index in `series`: by name when any frame's name is there (frames it lacks are
 * left out: label maps are often drawn on a few frames only), else by position when the counts
 * agree.
 */
function matchFrames(series: Series, order: string[], what: string): { index: Map<string, number>; by: 'name' | 'position' } {
  const names = series.frames.map((f) => f.name);
  const byName = new Map(names.map((n, i) => [n, i]));
  if (order.some((n) => byName.has(n))) return { index: byName, by: 'name' };
  if (names.length === order.length) return { index: new Map(order.map((n, i) => [n, i])), by: 'position' };
  throw new UserError(
    `${series.source} (${what}) has ${names.length} frames and none named as the ${order.length} registered ones (${order.slice(0, 3).join(', ')}…); name its files as the frames, or give one file per frame in the same order`,
  );
}

export async function applyResult(o: ApplyOptions): Promise<ApplyReport> {
  if (!o.images && !o.labels && !o.points && !o.writeInverse) throw new UserError('nothing to apply: give --images, --labels, --points and/or --write-inverse');
  const summary = await readSummary(o.result);
  const order = await resultOrder(o.result, summary);
  const fixedName = summary.fixedFrame;
  const registered = new Map(summary.frames.map((f) => [f.name, f]));
  const pointsFrom = o.pointsFrom ?? 'fixed';
  const settings = {
    result: path.resolve(o.result),
    images: o.images ? path.resolve(o.images) : null,
    interpolation: o.interpolation ?? 'linear',
    labels: o.labels ? path.resolve(o.labels) : null,
    labelInterpolation: o.labelInterpolation ?? 'nearest',
    points: o.points ? path.resolve(o.points) : null,
    pointsFrom,
    writeInverse: !!o.writeInverse,
  };
  const key = createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 12);
  const reportFile = path.join(o.out, APPLY_FILE);
  if (!o.force) {
    const prev = await fs.readFile(reportFile, 'utf8').catch(() => null);
    if (prev !== null) {
      let k: unknown = null;
      try {
        k = (JSON.parse(prev) as ApplyReport).settingsKey;
      } catch {
        k = key; // an interrupted write: the frames on disk are checked one by one below
      }
      if (k !== key) throw new UserError(`${o.out} already holds an apply result with other settings; pass --force to overwrite it, or choose another --out`);
    }
  }

  const images = o.images ? await openSeries(o.images, { checkAll: false }) : null;
  const labels = o.labels ? await openSeries(o.labels, { checkAll: false }) : null;
  const imageMatch = images ? matchFrames(images, order, 'images') : null;
  const labelMatch = labels ? matchFrames(labels, order, 'labels') : null;

  // points: one file for every frame, or a directory with one file per frame
  let pointFile: ((frame: string) => string | null) | null = null;
  if (o.points) {
    const st = await fs.stat(o.points).catch(() => null);
    if (!st) throw new UserError(`${o.points} does not exist; --points takes a landmark file or a directory of them (one per frame, named as the frames)`);
    if (st.isDirectory()) {
      const dir = await listLandmarkDir(o.points);
      if (pointsFrom === 'fixed') {
        const f = dir.get(fixedName);
        if (!f)
          throw new UserError(
            `${o.points} has no landmark file for the fixed frame "${fixedName}"; with --points-from fixed, the fixed frame's points are mapped into every frame`,
          );
        pointFile = () => f;
      } else pointFile = (frame) => dir.get(frame) ?? null;
    } else {
      const file = o.points;
      pointFile = () => file;
    }
  }

  const base: Omit<ApplyReport, 'frames' | 'complete' | 'skipped'> = {
    format: 'r2n2-apply',
    version: 1,
    result: path.resolve(o.result),
    fixedFrame: fixedName,
    settingsKey: key,
    settings,
    matchedBy: { ...(imageMatch ? { images: imageMatch.by } : {}), ...(labelMatch ? { labels: labelMatch.by } : {}) },
  };
  return withOutputLock(o.out, applyLocked);
  async function applyLocked(): Promise<ApplyReport> {
    await writeTextAtomic(reportFile, JSON.stringify({ ...base, complete: false, frames: [], skipped: [] }, null, 2) + '\n');

    o.onStart?.(order.length);
    const frames: ApplyFrame[] = [];
    const skipped: string[] = [];
    const imageStack: Float32Array[] = [];
    const labelStack: Int32Array[] = [];
    // the fixed frame goes through the identity on the fixed grid, so every output shares that grid
    const grid = await firstGeometry(o.result, summary);
    const identity: DisplacementField = { geometry: grid, data: new Float32Array(2 * grid.size[0] * grid.size[1]) };
    for (const name of order) {
      const isFixed = name === fixedName;
      const entry = registered.get(name);
      if (!isFixed && !entry)
        throw new UserError(`${o.result}/summary.json has no field for frame "${name}"; finish that registration first (the same command continues it)`);
      const outs = {
        images: imageMatch?.index.has(name) ? `images/${name}.nii.gz` : undefined,
        labels: labelMatch?.index.has(name) ? `labels/${name}.nii.gz` : undefined,
        points: pointFile && pointFile(name) ? `points/${name}.csv` : undefined,
        inverse: o.writeInverse && !isFixed ? `inverse/${name}.nii.gz` : undefined,
      };
      const files = Object.values(outs).filter((v): v is string => !!v);
      const done = !o.force && (await Promise.all(files.map((f) => exists(path.join(o.out, f))))).every(Boolean);
      const field: DisplacementField = isFixed ? identity : await readField(resultFile(o.result, (entry as { field: string }).field));
      const frame: ApplyFrame = { name, fixed: isFixed, ...outs };
      const needStack = (o.stack ?? true) && ((imageMatch && imageMatch.index.size >= order.length) || (labelMatch && labelMatch.index.size >= order.length));
      if (done && !needStack) {
        skipped.push(name);
        frames.push(frame);
        o.onFrame?.({ frame: name, skipped: true });
        continue;
      }
      // the inverse: the result's own when it wrote one, else computed here
      let inverse: DisplacementField | null = null;
      const wantInverse = !isFixed && (o.writeInverse || (pointFile && pointsFrom === 'moving' && pointFile(name)));
      if (wantInverse) {
        // the result's own inverse, as its summary names it (any --format), else where older results put it
        const own = resultFile(o.result, entry?.inverse ?? `inverse/${name}.nii.gz`);
        if (await exists(own)) {
          inverse = await readField(own);
          const r = compositionResidual(field, inverse);
          frame.inverseResidualMeanPx = r.meanPx;
          frame.inverseResidualMaxPx = r.maxPx;
        } else {
          // invertField measures its own residual: not computed twice
          const r = invertField(field);
          inverse = r.field;
          frame.inverseResidualMeanPx = r.residualMeanPx;
          frame.inverseResidualMaxPx = r.residualMaxPx;
        }
      }
      if (images && imageMatch && outs.images) {
        const img = await images.readFrame(imageMatch.index.get(name) as number);
        const r = resampleThroughField(img.data, img.geometry, field, o.interpolation ?? 'linear');
        const data = r.data;
        frame.insideFraction = r.inside.reduce((a, b) => a + b, 0) / r.inside.length;
        if (!done) await writeImage2D(path.join(o.out, outs.images as string), { geometry: grid, data });
        imageStack.push(data);
      }
      if (labels && labelMatch && outs.labels) {
        const img = await labels.readFrame(labelMatch.index.get(name) as number);
        const data = resampleLabels(img.data, img.geometry, field, o.labelInterpolation ?? 'nearest');
        if (!done) await writeLabels2D(path.join(o.out, outs.labels as string), grid, data);
        labelStack.push(data);
      }
      if (!done && outs.points && pointFile) {
        const lf = await readLandmarkFile(pointFile(name) as string);
        const pts = landmarksMm(lf, grid, 'they are taken on the fixed grid');
        const mapped: Point[] = isFixed
          ? pts
          : pointsFrom === 'fixed'
            ? mapPointsForward(pts, field)
            : pts.map((q) => mapPoint(inverse as DisplacementField, q));
        await writeLandmarkCsv(path.join(o.out, outs.points), mapped);
      }
      if (!done && outs.inverse && inverse) await writeField(path.join(o.out, outs.inverse), inverse);
      if (done) skipped.push(name);
      frames.push(frame);
      o.onFrame?.({ frame: name, skipped: done, inverseResidualMaxPx: frame.inverseResidualMaxPx });
    }
    if (o.stack ?? true) {
      // a stack needs every frame
      if (images && imageStack.length === order.length) await writeStack(path.join(o.out, 'images.nii.gz'), grid, imageStack, 1);
      if (labels && labelStack.length === order.length) await writeStack(path.join(o.out, 'labels.nii.gz'), grid, labelStack, 1);
    }
    const report: ApplyReport = { ...base, complete: true, frames, skipped };
    await writeTextAtomic(reportFile, JSON.stringify(report, null, 2) + '\n');
    return report;
  }
}

/** The fixed grid of a result: the geometry of its first field. */
async function firstGeometry(result: string, summary: Awaited<ReturnType<typeof readSummary>>) {
  const first = summary.frames[0];
  if (!first) throw new UserError(`${result}/summary.json lists no registered frame`);
  return (await readField(resultFile(result, first.field ?? resultPaths(first.name).field))).geometry;
}
