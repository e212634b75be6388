/**
 * The training checkpoint directory (`MODEL_DIR/checkpoint`): a model (model.json + weights.bin,
 * io/model.ts) plus `optimizer.bin` / `optimizer.json` (AMSGrad's m, v, vmax per weight and, with
 * `--ema`, the running average, as `m/<name>`, `v/<name>`, `vmax/<name>`, `ema/<name>`) and
 * `state.json` (TrainState, written last). A checkpoint is one unit: written whole into a sibling
 * `checkpoint.new-<pid>`, then swapped in by renames; `recoverCheckpoint` finishes or undoes a
 * swap a kill interrupted, so a run killed at any moment resumes from the last complete one.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import type { R2N2Config, Weights } from '../core/r2n2/network.js';
import { writeAtomic, writeTextAtomic } from './atomic.js';
import { encodeTensors, saveModel } from './model.js';

export const CHECKPOINT_DIR = 'checkpoint';
const STATE_FILE = 'state.json';

/** `state.json`: where training stands (the weights and optimiser tensors are beside it). */
export interface TrainState {
  format: 'r2n2-checkpoint';
  iteration: number;
  /** The seedrandom state of the pair sampler. */
  rng: object;
  losses: number[];
  validation: { iteration: number; loss: number; treMm?: number; treBeforeMm?: number }[];
  /** The settings, architecture and series the checkpoint belongs to (a resume must match it). */
  key: string;
  optimizerT: number;
  seconds: number;
}

/**
 * Finishes or undoes a checkpoint swap a kill interrupted: `checkpoint` missing while a complete
 * `checkpoint.new-<pid>` (state.json written last) or `checkpoint.old-<pid>` is there → that one
 * becomes `checkpoint`; leftovers of dead runs are removed.
 */
export async function recoverCheckpoint(ckpt: string): Promise<void> {
  const dir = path.dirname(ckpt);
  const base = path.basename(ckpt);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const side = names.filter((n) => n.startsWith(`${base}.new-`) || n.startsWith(`${base}.old-`));
  if (side.length === 0) return;
  if (!existsSync(path.join(ckpt, STATE_FILE))) {
    // a complete new one is newer than an old one
    const pick = [...side.filter((n) => n.includes('.new-')), ...side.filter((n) => n.includes('.old-'))].find((n) =>
      existsSync(path.join(dir, n, STATE_FILE)),
    );
    if (pick) {
      await fs.rm(ckpt, { recursive: true, force: true });
      await fs.rename(path.join(dir, pick), ckpt);
    }
  }
  for (const n of side) await fs.rm(path.join(dir, n), { recursive: true, force: true });
}

/** Whether `ckpt` holds a complete checkpoint. */
export function haveCheckpoint(ckpt: string): boolean {
  return existsSync(path.join(ckpt, STATE_FILE));
}

/** The state of a complete checkpoint; a one-line error when it is unreadable. */
export async function readCheckpointState(ckpt: string): Promise<TrainState> {
  const file = path.join(ckpt, STATE_FILE);
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (err) {
    throw new UserError(`${file} is unreadable (${(err as Error).message}); remove ${ckpt} to start over`);
  }
}

/** The optimiser (and average) tensors of a checkpoint by name (`m/<weight>`, …); dispose them. */
export async function readCheckpointTensors(ckpt: string): Promise<tf.NamedTensorMap> {
  const ob = await fs.readFile(path.join(ckpt, 'optimizer.bin'));
  const specs = JSON.parse(await fs.readFile(path.join(ckpt, 'optimizer.json'), 'utf8'));
  return tf.io.decodeWeights(Uint8Array.from(ob).buffer, specs);
}

/** Writes a checkpoint whole beside `ckpt`, then swaps it in (see the module comment). */
export async function writeCheckpoint(ckpt: string, config: R2N2Config, weights: Weights, tensors: [string, tf.Tensor][], state: TrainState): Promise<void> {
  const fresh = `${ckpt}.new-${process.pid}`;
  await fs.rm(fresh, { recursive: true, force: true });
  await saveModel(fresh, config, weights, { training: { iteration: state.iteration } });
  const { data: buf, specs } = await encodeTensors(tensors);
  await writeAtomic(path.join(fresh, 'optimizer.bin'), (tmp) => fs.writeFile(tmp, buf));
  await writeTextAtomic(path.join(fresh, 'optimizer.json'), JSON.stringify(specs));
  await writeTextAtomic(path.join(fresh, STATE_FILE), JSON.stringify(state));
  const old = `${ckpt}.old-${process.pid}`;
  if (existsSync(ckpt)) await fs.rename(ckpt, old);
  await fs.rename(fresh, ckpt);
  await fs.rm(old, { recursive: true, force: true });
}
