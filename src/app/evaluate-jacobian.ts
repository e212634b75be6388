/** `evaluate jacobian`: det J statistics per frame of a result directory (and optional det-J images). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tempSibling } from '../io/atomic.js';
import { jacobianDeterminant, jacobianStats, type JacobianStats } from '../core/metrics/jacobian.js';
import { readSummary, readField, resultFile, writeImage2D } from '../io/index.js';
import { maskFor, readMaskSet } from '../io/masks.js';

export interface JacobianFrame extends JacobianStats {
  name: string;
}

export interface JacobianEvaluation {
  result: string;
  method: string;
  fixedFrame: string;
  frames: JacobianFrame[];
  /** The evaluation mask, when given. */
  mask?: string;
  /** Over all pixels (in the mask) of all frames. */
  overall: { folding: number; foldingPixels: number; sdLogJ: number; min: number; max: number; framesWithFolding: number };
  written?: string;
}

/** `mask`: a label image on the fixed grid (nonzero = in): the statistics count only there. */
export async function evaluateJacobian(
  result: string,
  o: { write?: boolean; mask?: string; onFrame?: (name: string) => void } = {},
): Promise<JacobianEvaluation> {
  const summary = await readSummary(result);
  const maskSet = o.mask ? await readMaskSet(o.mask) : null;
  const frames: JacobianFrame[] = [];
  // --write: the images go to a temporary sibling, renamed into place once every frame is done
  // (a field that cannot be read leaves no partial jacobian/ behind)
  const finalDir = path.join(result, 'jacobian');
  const tmpDir = o.write ? tempSibling(finalDir) : null;
  if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
  let fold = 0,
    n = 0,
    sumsq = 0,
    sum = 0,
    min = Infinity,
    max = -Infinity;
  try {
    for (const f of summary.frames) {
      const field = await readField(resultFile(result, f.field));
      const full = jacobianDeterminant(field);
      const mask = maskSet ? maskFor(maskSet, summary.fixedFrame, field.geometry, 'evaluation') : null;
      const det = mask ? full.filter((_, k) => mask[k]) : full;
      const s = jacobianStats(det);
      frames.push({ name: f.name, ...s });
      fold += s.foldingPixels;
      for (const d of det) {
        const l = Math.log(Math.min(1e9, Math.max(1e-9, d)));
        sum += l;
        sumsq += l * l;
      }
      n += s.n;
      min = Math.min(min, s.min);
      max = Math.max(max, s.max);
      if (tmpDir) await writeImage2D(path.join(tmpDir, `${f.name}.nii.gz`), { geometry: field.geometry, data: full });
      o.onFrame?.(f.name);
    }
    if (tmpDir) {
      await fs.rm(finalDir, { recursive: true, force: true });
      await fs.rename(tmpDir, finalDir);
    }
  } catch (err) {
    if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
  const mean = sum / Math.max(n, 1);
  return {
    result,
    method: summary.method,
    fixedFrame: summary.fixedFrame,
    frames,
    overall: {
      folding: fold / Math.max(n, 1),
      foldingPixels: fold,
      sdLogJ: Math.sqrt(Math.max(0, sumsq / Math.max(n, 1) - mean * mean)),
      min,
      max,
      framesWithFolding: frames.filter((f) => f.foldingPixels > 0).length,
    },
    written: o.write ? path.join(result, 'jacobian') : undefined,
    ...(maskSet ? { mask: maskSet.file } : {}),
  };
}
