/**
 * `register series --adapt N`: fine-tune a model on the series it is about to register,
 * unsupervised as training is (pairs of the series' fixed frame and its other frames, the same
 * loss), starting from the model's weights and its own training recipe, then register with the
 * adapted model. The adapted model is a model directory (kept with `--save-adapted DIR`, else in
 * the result directory's `adapted-model/`), so a later run can start from it (on real cardiac cine
 * it did not carry to the patient's other slices: docs/cli.md); a run killed while adapting
 * resumes the adaptation from its checkpoint.
 *
 * The gain is measured on the series itself: the mean image loss (masked MSE of the normalised
 * pair at the network's size, after the sequence) over every frame with the model before and
 * after adaptation.
 */
import { existsSync, promises as fs } from 'node:fs';
import { writeTextAtomic } from '../io/atomic.js';
import path from 'node:path';
import { TRAIN_DEFAULTS, type TrainSettings, train } from './train.js';
import { type LoadedModel, loadModel, toVariables } from '../io/model.js';
import { openSeries, resolveFrame } from '../io/series.js';
import { inferSequence, maskedMseArrays, networkImage } from '../core/r2n2/sequence.js';
import { imageSize, disposeWeights } from '../core/r2n2/network.js';
import { sequenceField } from '../core/transformation/gaussian.js';
import { warpSamples } from '../core/transformation/warp.js';
import { autoFixedFrame } from './fixed-frame.js';
import type { FixedFrameCriterion } from '../core/image/fixed-frame.js';
import { activeCompute } from '../backend/compute.js';

export interface AdaptOptions {
  model: LoadedModel;
  series: string;
  /** Training iterations (pairs per iteration: `batch`). */
  iterations: number;
  /** Stop adapting after this many seconds (at the end of an iteration). */
  seconds?: number;
  /** Where the adapted model goes. */
  out: string;
  learningRate?: number;
  batch?: number;
  steps: number;
  fixedFrame?: string;
  criterion?: FixedFrameCriterion;
  signal?: AbortSignal;
  onIteration?: (info: { iteration: number; loss: number }) => void;
}

export interface AdaptReport {
  model: string;
  from: string;
  iterations: number;
  seconds: number;
  /** Mean image loss over the series' frames, the model before and after adaptation. */
  lossBefore: number;
  lossAfter: number;
  timeLimited: boolean;
  interrupted: string | null;
  /** Continued from a checkpoint of an interrupted adaptation. */
  resumed: boolean;
  /** The same adaptation was finished before: its model taken as it is. */
  reused?: boolean;
}

/** The training recipe of an adaptation: the model's own (steps, λ, keep, flips, intensity), small steps. */
export function adaptSettings(model: LoadedModel, o: Pick<AdaptOptions, 'iterations' | 'learningRate' | 'batch' | 'steps' | 'criterion'>): TrainSettings {
  const t = (model.json.training ?? {}) as Partial<TrainSettings>;
  return {
    ...TRAIN_DEFAULTS,
    steps: o.steps,
    lambda: t.lambda ?? TRAIN_DEFAULTS.lambda,
    keep: t.keep ?? TRAIN_DEFAULTS.keep,
    flip: t.flip ?? TRAIN_DEFAULTS.flip,
    intensityAugment: t.intensityAugment ?? TRAIN_DEFAULTS.intensityAugment,
    clip: t.clip ?? TRAIN_DEFAULTS.clip,
    criterion: o.criterion ?? 'image',
    iterations: o.iterations,
    batch: o.batch ?? 4,
    learningRate: o.learningRate ?? 1e-4,
    checkpointEvery: Math.max(1, Math.min(50, o.iterations)),
    ema: 0,
  };
}

/** Mean image loss of `model` over every frame of `series` against its fixed frame (network size, normalised). */
export async function seriesLoss(
  model: LoadedModel,
  series: string,
  steps: number,
  fixedFrame?: string,
  criterion: FixedFrameCriterion = 'image',
): Promise<number> {
  const s = await openSeries(series, { checkAll: false });
  const names = s.frames.map((f) => f.name);
  const fixedIndex = fixedFrame && fixedFrame !== 'auto' ? resolveFrame(names, fixedFrame, s.source) : (await autoFixedFrame(s, criterion)).index;
  const n = imageSize(model.config);
  const [W, H] = s.geometry.size;
  const fixed = networkImage((await s.readFrame(fixedIndex)).data, H, W, n);
  const weights = toVariables(model);
  try {
    let total = 0;
    let count = 0;
    const others = names.map((_, i) => i).filter((i) => i !== fixedIndex);
    for (let k = 0; k < others.length; k += 8) {
      const chunk = others.slice(k, k + 8);
      const moving = await Promise.all(chunk.map(async (i) => networkImage((await s.readFrame(i)).data, H, W, n)));
      const ps = await inferSequence(
        model.config,
        weights,
        moving.map(() => fixed),
        moving,
        { steps, stopThreshold: 0, compute: activeCompute() },
      );
      ps.forEach((p, b) => {
        const w = warpSamples(moving[b], n, n, sequenceField(p, n, n));
        total += maskedMseArrays(fixed, w.out, w.mask);
        count++;
      });
    }
    return count ? total / count : NaN;
  } finally {
    disposeWeights(weights);
  }
}

/** `adaptation.json` in the adapted model's directory: what it was adapted from and how, written last. */
const MARKER = 'adaptation.json';

export async function adaptModel(o: AdaptOptions): Promise<{ report: AdaptReport; model: LoadedModel }> {
  const started = performance.now();
  const settings = adaptSettings(o.model, o);
  const key = {
    from: path.resolve(o.model.dir),
    fromCreated: o.model.json.created ?? null,
    series: path.resolve(o.series),
    iterations: o.iterations,
    seconds: o.seconds ?? null,
    learningRate: settings.learningRate,
    steps: o.steps,
    fixedFrame: o.fixedFrame ?? 'auto',
  };
  // the same adaptation finished before: the model as it is (a registration resumed with it stays the same)
  const marker = await fs.readFile(path.join(o.out, MARKER), 'utf8').then(
    (t) => JSON.parse(t) as { key: unknown; report: AdaptReport },
    () => null,
  );
  if (marker && JSON.stringify(marker.key) === JSON.stringify(key) && existsSync(path.join(o.out, 'model.json'))) {
    return { model: await loadModel(o.out), report: { ...marker.report, reused: true } };
  }
  const resumed = existsSync(path.join(o.out, 'checkpoint'));
  const r = await train({
    series: [o.series],
    val: [],
    out: o.out,
    config: o.model.config,
    settings,
    resume: resumed,
    from: o.model.dir,
    timeLimitSeconds: o.seconds,
    signal: o.signal,
    onIteration: (i) => o.onIteration?.({ iteration: i.iteration, loss: i.loss }),
  });
  const adapted = await loadModel(o.out);
  const lossBefore = await seriesLoss(o.model, o.series, o.steps, o.fixedFrame, o.criterion);
  const lossAfter = await seriesLoss(adapted, o.series, o.steps, o.fixedFrame, o.criterion);
  const report: AdaptReport = {
    model: path.resolve(o.out),
    from: path.resolve(o.model.dir),
    iterations: r.iterations,
    seconds: (performance.now() - started) / 1000,
    lossBefore,
    lossAfter,
    timeLimited: r.timeLimited,
    interrupted: r.interrupted,
    resumed,
  };
  if (!r.interrupted) await writeTextAtomic(path.join(o.out, MARKER), JSON.stringify({ key, report }, null, 2) + '\n');
  return { model: adapted, report };
}
