/**
 * What `r2n2 train` reports while it runs: validation on held-out series (the loss of a fixed
 * seeded draw of pairs, and the TRE before and after where landmarks exist) and the curves
 * (loss.png, loss.csv).
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import type { R2N2Config, Weights } from '../core/r2n2/network.js';
import { inferSequence, sequenceLoss } from '../core/r2n2/sequence.js';
import type { Geometry, Point } from '../core/image/geometry.js';
import { sequenceMapPoint } from '../core/transformation/gaussian.js';
import { linePlot } from '../core/qc/plot.js';
import { writeGreyPng } from '../io/image.js';
import type { TrainState } from '../io/checkpoint.js';
import { writeTextAtomic } from '../io/atomic.js';
import type { Compute } from '../core/tensors.js';
import type { SeriesData } from './train-data.js';
import type { TrainSettings } from './train-settings.js';

/** Mean TRE (mm) of a Gaussian sequence at the fixed landmarks: |f + u(f) − m|. */
function sequenceTre(steps: Float32Array, g: Geometry, fixedPts: Point[], movingPts: Point[]): number {
  let sum = 0;
  fixedPts.forEach((p, k) => {
    const q = sequenceMapPoint(steps, g, p);
    sum += Math.hypot(q[0] - movingPts[k][0], q[1] - movingPts[k][1]);
  });
  return sum / Math.max(fixedPts.length, 1);
}

/**
 * The validation figures of the kept weights: the mean loss over `st.valPairs` seeded pairs of each
 * validation series, and the TRE before and after where both frames have landmarks.
 */
export async function validationFigures(
  c: R2N2Config,
  kept: Weights,
  val: SeriesData[],
  st: TrainSettings,
  ls: number | undefined,
  compute: Compute,
): Promise<{ loss: number; treMm?: number; treBeforeMm?: number }> {
  const vr = seedrandom(`r2n2-val-${st.seed}`);
  let sum = 0;
  let cnt = 0;
  let tre = 0;
  let treBefore = 0;
  let treCnt = 0;
  for (const d of val) {
    for (let k = 0; k < st.valPairs; k++) {
      let m = Math.floor(vr() * d.frames.length);
      if (m === d.fixed) m = (m + 1) % d.frames.length;
      const lossImages = d.lossFrames ? { fixed: [d.lossFrames[d.fixed]], moving: [d.lossFrames[m]], size: ls as number } : undefined;
      const lt = tf.tidy(() => sequenceLoss(c, kept, [d.frames[d.fixed]], [d.frames[m]], { steps: st.steps, lambda: st.lambda, lossImages, compute }));
      const l = (await lt.data())[0];
      lt.dispose();
      sum += l;
      cnt++;
      const fl = d.landmarks?.get(d.fixed);
      const ml = d.landmarks?.get(m);
      if (fl && ml && fl.length === ml.length) {
        const [p] = await inferSequence(c, kept, [d.frames[d.fixed]], [d.frames[m]], { steps: st.steps, compute });
        tre += sequenceTre(p, d.geometry, fl, ml);
        treBefore += sequenceTre(new Float32Array(0), d.geometry, fl, ml);
        treCnt++;
      }
    }
  }
  return { loss: sum / cnt, ...(treCnt ? { treMm: tre / treCnt, treBeforeMm: treBefore / treCnt } : {}) };
}

/** `loss.png` (the loss and its 25-iteration running mean, log scale) and `loss.csv` (with validation). */
export async function writeCurves(out: string, losses: number[], validation: TrainState['validation']): Promise<void> {
  const smooth = losses.map((_, i) => {
    const w = losses.slice(Math.max(0, i - 24), i + 1);
    return w.reduce((a, b) => a + b, 0) / w.length;
  });
  const valCurve = losses.map(() => NaN);
  const valTre = losses.map(() => NaN);
  for (const v of validation) {
    valCurve[v.iteration - 1] = v.loss;
    if (v.treMm !== undefined) valTre[v.iteration - 1] = v.treMm;
  }
  const plot = linePlot([losses, smooth], 640, 360, { log: true, levels: [190, 0] });
  await writeGreyPng(path.join(out, 'loss.png'), plot, [0, 255]);
  const cell = (v: number) => (Number.isNaN(v) ? '' : String(v));
  await writeTextAtomic(
    path.join(out, 'loss.csv'),
    'iteration,loss,validation,validation_tre_mm\n' + losses.map((l, i) => `${i + 1},${l},${cell(valCurve[i])},${cell(valTre[i])}`).join('\n') + '\n',
  );
}
