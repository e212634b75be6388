/**
 * The R2N2 model directory:
 *
 *   model.json    { format: "r2n2-model", version: 1, config, training, data, created,
 *                   weightsManifest: [{ paths: ["weights.bin"], weights: [{ name, shape, dtype }] }] }
 *   weights.bin   the weights in tfjs's weights format (float32, little endian, manifest order)
 *
 * loadable on any backend (`tf.io.decodeWeights`). Checkpoints use the same layout plus the
 * optimiser state and the training state (checkpoint/). Every problem with a model file is a
 * one-line UserError naming the file.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { R2N2_VERSION } from '../version.js';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors.js';
import { type R2N2Config, type Weights, checkConfig, weightShapes } from '../core/r2n2/network.js';
import { writeAtomic, writeTextAtomic } from './atomic.js';

import { MODEL_FILE, WEIGHTS_FILE } from './model-files.js';
export { MODEL_FILE, WEIGHTS_FILE } from './model-files.js';

export interface ModelJson {
  format: 'r2n2-model';
  version: 1;
  /** The r2n2 version that wrote it (absent in models written before 2026-12-08). */
  r2n2Version?: string;
  config: R2N2Config;
  training?: Record<string, unknown>;
  data?: Record<string, unknown>;
  created?: string;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

/** Encodes named tensors (in the given order) to one buffer + manifest entries. */
export async function encodeTensors(named: [string, tf.Tensor][]): Promise<{ data: Buffer; specs: tf.io.WeightsManifestEntry[] }> {
  const map: tf.NamedTensorMap = {};
  for (const [k, t] of named) map[k] = t;
  const { data, specs } = await tf.io.encodeWeights(map);
  return { data: Buffer.from(data as ArrayBuffer), specs };
}

/** Writes `dir/model.json` + `dir/weights.bin` atomically (weights first, then the JSON). */
export async function saveModel(dir: string, config: R2N2Config, weights: Weights, extra: Pick<ModelJson, 'training' | 'data'> = {}): Promise<void> {
  const named = weightShapes(config).map(([name]) => [name, weights.get(name) as tf.Tensor] as [string, tf.Tensor]);
  const { data, specs } = await encodeTensors(named);
  await writeAtomic(path.join(dir, WEIGHTS_FILE), (tmp) => fs.writeFile(tmp, data));
  const json: ModelJson = {
    format: 'r2n2-model',
    version: 1,
    r2n2Version: R2N2_VERSION,
    config,
    ...extra,
    created: new Date().toISOString(),
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }],
  };
  await writeTextAtomic(path.join(dir, MODEL_FILE), JSON.stringify(json, null, 1) + '\n');
}

export interface LoadedModel {
  dir: string;
  json: ModelJson;
  config: R2N2Config;
  /** Plain tensors (not variables) by weight name; dispose when done. */
  tensors: Map<string, tf.Tensor>;
}

/** What to do about a model directory that cannot be read. */
const fix = 'train one with "r2n2 train" or give a model directory written by it';

/** Reads and validates `dir/model.json` alone (format, version, config); one-line errors. */
export async function readModelJson(dir: string): Promise<ModelJson> {
  const file = path.join(dir, MODEL_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserError(`${file} not found; ${fix}`);
  }
  let json: ModelJson;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}); it is truncated or not a model: ${fix}`);
  }
  if (!json || json.format !== 'r2n2-model') throw new UserError(`${file} is not an r2n2 model (no "format": "r2n2-model"); ${fix}`);
  if (json.version !== 1)
    throw new UserError(`${file} has model format version ${json.version}; this r2n2 reads version 1: use the r2n2 version that wrote it or retrain`);
  try {
    checkConfig(json.config);
  } catch (err) {
    throw new UserError(`${file}: bad "config": ${(err as Error).message}`);
  }
  return json;
}

/**
 * Decodes `buf` (tfjs weights format, described by `specs` from `specsFile`) and takes the
 * config's weights, each named `prefix + name`: the byte count, presence, shape and finiteness are
 * checked (one-line errors naming `file`; `again` is what to do about a truncated file). Other
 * tensors in the buffer are disposed.
 */
async function decodeChecked(
  buf: Buffer,
  specs: tf.io.WeightsManifestEntry[],
  config: R2N2Config,
  prefix: string,
  file: string,
  specsFile: string,
  again: string,
): Promise<Map<string, tf.Tensor>> {
  const expectedBytes = specs.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1) * 4, 0);
  if (buf.byteLength !== expectedBytes) {
    throw new UserError(
      `${file} holds ${buf.byteLength} bytes but ${specsFile} describes ${expectedBytes}; the file is truncated or from another model: ${again}`,
    );
  }
  const decoded = tf.io.decodeWeights(Uint8Array.from(buf).buffer, specs);
  const fail = (msg: string): never => {
    Object.values(decoded).forEach((x) => x.dispose());
    throw new UserError(`${file}: ${msg}`);
  };
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, shape] of weightShapes(config)) {
    const t = decoded[prefix + name];
    if (!t) {
      Object.values(decoded).forEach((x) => x.dispose());
      throw new UserError(`${file} lacks weight "${prefix + name}" that the config in ${specsFile} needs; the model does not match its config: retrain`);
    }
    if (t.shape.join('x') !== shape.join('x'))
      fail(`weight "${prefix + name}" has shape [${t.shape}] but the config needs [${shape}]; the model does not match its config: retrain`);
    const d = await t.data(); // asynchronous: WebGPU has no synchronous read-back in Node
    for (let i = 0; i < d.length; i++)
      if (!Number.isFinite(d[i])) fail(`weight "${prefix + name}" holds NaN or infinite values; the training diverged: retrain with a lower learning rate`);
    tensors.set(name, t);
  }
  const kept = new Set([...tensors.values()]);
  for (const t of Object.values(decoded)) if (!kept.has(t)) t.dispose();
  return tensors;
}

/** Reads and validates a model directory; the tensors match the config's shapes exactly. */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const file = path.join(dir, MODEL_FILE);
  const json = await readModelJson(dir);
  const group = json.weightsManifest?.[0];
  if (!group || !Array.isArray(group.weights) || !group.paths?.length) throw new UserError(`${file} has no weightsManifest; ${fix}`);
  const wfile = path.join(dir, group.paths[0]);
  let buf: Buffer;
  try {
    buf = await fs.readFile(wfile);
  } catch {
    throw new UserError(`${wfile} not found (named by ${file}); copy the whole model directory`);
  }
  const tensors = await decodeChecked(buf, group.weights, json.config, '', wfile, file, 'copy the model directory again');
  return { dir, json, config: json.config, tensors };
}

/** Weights (variables) from loaded tensors. */
export function toVariables(m: LoadedModel, trainable = false): Weights {
  const w: Weights = new Map();
  for (const [name, t] of m.tensors) w.set(name, tf.variable(t, trainable, `r2n2-load/${name}/${Math.random().toString(36).slice(2)}`));
  return w;
}

/**
 * The weight average (`train --ema`) held by a training checkpoint directory (`MODEL_DIR/checkpoint`
 * or a copy of it), as a model: what the finished run would have saved at that iteration. Its
 * `weights.bin` holds the raw weights (what `--resume` continues from); the average is in
 * `optimizer.bin` under `ema/<name>`. Returns null when the checkpoint has no average (trained
 * without `--ema`: its `weights.bin` is then the model), one-line errors for unreadable files.
 */
export async function loadCheckpointAverage(dir: string): Promise<LoadedModel | null> {
  const json = await readModelJson(dir);
  const specsFile = path.join(dir, 'optimizer.json');
  const binFile = path.join(dir, 'optimizer.bin');
  let specs: tf.io.WeightsManifestEntry[];
  try {
    specs = JSON.parse(await fs.readFile(specsFile, 'utf8'));
  } catch (err) {
    throw new UserError(`${specsFile} is missing or unreadable (${(err as Error).message}); give a training checkpoint directory (MODEL_DIR/checkpoint)`);
  }
  if (!Array.isArray(specs)) throw new UserError(`${specsFile} is not a weights manifest; give a training checkpoint directory (MODEL_DIR/checkpoint)`);
  if (!specs.some((x) => x.name.startsWith('ema/'))) return null;
  let buf: Buffer;
  try {
    buf = await fs.readFile(binFile);
  } catch {
    throw new UserError(`${binFile} not found (named by ${specsFile}); copy the whole checkpoint directory`);
  }
  const tensors = await decodeChecked(buf, specs, json.config, 'ema/', binFile, specsFile, 'copy the checkpoint directory again');
  return { dir, json, config: json.config, tensors };
}
