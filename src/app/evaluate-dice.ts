/**
 * `evaluate dice`: Dice and HD95 per label per frame for a result directory and a directory of
 * label maps, and per label over frames the mean and the Learn2Reg robustness value (the 30%
 * quantile of Dice over the frames: the level that the worst 30% of frames fall below).
 */
import path from 'node:path';
import { maskFor, readMaskSet } from '../io/masks.js';
import { UserError } from '../errors.js';
import { sameGeometry, describeGeometry } from '../core/image/geometry.js';
import { dicePerLabel, hd95PerLabel, warpLabelsNearest } from '../core/metrics/dice.js';
import { summarize, percentileSorted } from '../core/metrics/stats.js';
import { readSummary, readField, readImage2D, resultFile, imageStem, IMAGE_EXTENSIONS, imageExtension, listFiles } from '../io/index.js';

export interface DiceFrame {
  name: string;
  before: Record<string, number>;
  after: Record<string, number>;
  /** 95th-percentile Hausdorff distance per label, mm (null where one map lacks the label). */
  hd95Before: Record<string, number | null>;
  hd95After: Record<string, number | null>;
}

/** Figures of one label over the frames, before and after registration. */
export interface DiceLabelFigures {
  label: number;
  /** Mean Dice. */
  before: number;
  after: number;
  /** 30% quantile of Dice over frames (Learn2Reg's robustness, DSC30). */
  dsc30Before: number;
  dsc30After: number;
  /** Mean HD95, mm; null when a frame lacks the label in one map. */
  hd95Before: number | null;
  hd95After: number | null;
}

export interface DiceEvaluation {
  result: string;
  labels: string;
  fixedFrame: string;
  frames: DiceFrame[];
  /** Per label over frames, before and after. */
  perLabel: DiceLabelFigures[];
  meanBefore: number;
  meanAfter: number;
  /** The evaluation mask, when given. */
  mask?: string;
}

/** `mask`: a label image on the fixed grid (nonzero = in): labels outside it are not counted (set to 0 in both maps). */
export async function evaluateDice(result: string, labelsDir: string, o: { mask?: string } = {}): Promise<DiceEvaluation> {
  const summary = await readSummary(result);
  const maskSet = o.mask ? await readMaskSet(o.mask) : null;
  let names: string[];
  try {
    names = (await listFiles(labelsDir)).filter((f) => IMAGE_EXTENSIONS.includes(imageExtension(f)));
  } catch {
    throw new UserError(`${labelsDir} is not a directory of label maps (one image per frame, named like the frames)`);
  }
  const files = new Map(names.map((n) => [imageStem(n), path.join(labelsDir, n)]));
  const fixedFile = files.get(summary.fixedFrame);
  if (!fixedFile) throw new UserError(`no label map for the fixed frame "${summary.fixedFrame}" in ${labelsDir}`);
  const fixed = await readImage2D(fixedFile);
  const frames: DiceFrame[] = [];
  for (const f of summary.frames) {
    const file = files.get(f.name);
    if (!file) continue;
    const moving = await readImage2D(file);
    const field = await readField(resultFile(result, f.field));
    for (const [img, name] of [
      [moving, file],
      [fixed, fixedFile],
    ] as const) {
      if (!sameGeometry(img.geometry, field.geometry))
        throw new UserError(`${name} (${describeGeometry(img.geometry)}) is not on the grid of the field ${f.field} (${describeGeometry(field.geometry)})`);
    }
    const mask = maskSet ? maskFor(maskSet, summary.fixedFrame, field.geometry, 'evaluation') : null;
    const only = (a: ArrayLike<number>) => (mask ? Float32Array.from(a, (v, k) => (mask[k] ? v : 0)) : a);
    const warped = only(warpLabelsNearest(moving.data, field));
    const fixedIn = only(fixed.data);
    const movingIn = only(moving.data);
    const [W, H] = field.geometry.size;
    const hd = (m: ArrayLike<number>) =>
      Object.fromEntries([...hd95PerLabel(fixedIn, m, W, H, field.geometry.spacing)].map(([l, v]) => [l, Number.isFinite(v) ? v : null]));
    frames.push({
      name: f.name,
      before: Object.fromEntries(dicePerLabel(fixedIn, movingIn)),
      after: Object.fromEntries(dicePerLabel(fixedIn, warped)),
      hd95Before: hd(movingIn),
      hd95After: hd(warped),
    });
  }
  if (frames.length === 0)
    throw new UserError(`no frame of ${result} has a label map in ${labelsDir} (files named like the frames, e.g. ${summary.frames[0]?.name}.nii.gz)`);
  const labels = [...new Set(frames.flatMap((f) => Object.keys(f.after)))].map(Number).sort((a, b) => a - b);
  const q30 = (v: number[]) => percentileSorted(Float64Array.from(v).sort(), 30);
  const meanHd = (v: (number | null | undefined)[]) => (v.every((x) => typeof x === 'number') ? summarize(v as number[]).mean : null);
  const perLabel = labels.map((l) => {
    const before = frames.map((f) => f.before[l] ?? 0);
    const after = frames.map((f) => f.after[l] ?? 0);
    return {
      label: l,
      before: summarize(before).mean,
      after: summarize(after).mean,
      dsc30Before: q30(before),
      dsc30After: q30(after),
      hd95Before: meanHd(frames.map((f) => f.hd95Before[l])),
      hd95After: meanHd(frames.map((f) => f.hd95After[l])),
    };
  });
  return {
    result,
    labels: labelsDir,
    fixedFrame: summary.fixedFrame,
    frames,
    perLabel,
    meanBefore: summarize(perLabel.map((p) => p.before)).mean,
    meanAfter: summarize(perLabel.map((p) => p.after)).mean,
    ...(maskSet ? { mask: maskSet.file } : {}),
  };
}
