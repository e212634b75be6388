/** `evaluate dice`: Dice per label per frame for a result directory and a directory of label maps. */
import path from 'node:path';
import { UserError } from '../errors.js';
import { sameGeometry, describeGeometry } from '../core/geometry.js';
import { dicePerLabel, warpLabelsNearest } from '../core/dice.js';
import { summarize } from '../core/stats.js';
import { readSummary, readField, readImage2D, resultFile, imageStem, IMAGE_EXTENSIONS, imageExtension, listFiles } from '../io/index.js';

export interface DiceFrame {
  name: string;
  before: Record<string, number>;
  after: Record<string, number>;
}

export interface DiceEvaluation {
  result: string;
  labels: string;
  fixedFrame: string;
  frames: DiceFrame[];
  /** Mean Dice per label over frames, before and after. */
  perLabel: { label: number; before: number; after: number }[];
  meanBefore: number;
  meanAfter: number;
}

export async function evaluateDice(result: string, labelsDir: string): Promise<DiceEvaluation> {
  const summary = await readSummary(result);
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
    for (const [img, name] of [[moving, file], [fixed, fixedFile]] as const) {
      if (!sameGeometry(img.geometry, field.geometry)) throw new UserError(`${name} (${describeGeometry(img.geometry)}) is not on the grid of the field ${f.field} (${describeGeometry(field.geometry)})`);
    }
    const warped = warpLabelsNearest(moving.data, field);
    frames.push({ name: f.name, before: Object.fromEntries(dicePerLabel(fixed.data, moving.data)), after: Object.fromEntries(dicePerLabel(fixed.data, warped)) });
  }
  if (frames.length === 0) throw new UserError(`no frame of ${result} has a label map in ${labelsDir} (files named like the frames, e.g. ${summary.frames[0]?.name}.nii.gz)`);
  const labels = [...new Set(frames.flatMap((f) => Object.keys(f.after)))].map(Number).sort((a, b) => a - b);
  const perLabel = labels.map((l) => ({
    label: l,
    before: summarize(frames.map((f) => f.before[l] ?? 0)).mean,
    after: summarize(frames.map((f) => f.after[l] ?? 0)).mean,
  }));
  return {
    result,
    labels: labelsDir,
    fixedFrame: summary.fixedFrame,
    frames,
    perLabel,
    meanBefore: summarize(perLabel.map((p) => p.before)).mean,
    meanAfter: summarize(perLabel.map((p) => p.after)).mean,
  };
}
