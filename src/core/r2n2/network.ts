/**
 * The R2N2 network (docs/method.md), written with tfjs ops over named variables so that the state
 * of the convolutional GRUs is carried across steps explicitly, weight noise can be applied in
 * training only, and the weights save/load by name on any backend.
 *
 * One step: input `[B, b·n, b·n, 4]` = (fixed, warped moving, x, y) → space-to-depth by b
 * (`inputBlock`; b = 1, the default, leaves it as it is) → 7×7/2 conv → three GR2U blocks
 * (residual stack → ConvGRU with state → skip = act(h) + residual → position network → 3×3/2
 * conv) → parameter network → 5 raw outputs (σ, w, φ); the position is the certainty-weighted
 * mean of the blocks' spatial-softmax positions.
 */
import * as tf from '@tensorflow/tfjs-core';
import seedrandom from 'seedrandom';
import { gauss } from '../random.js';
import { type Compute, DEFAULT_COMPUTE, tanh } from '../tensors.js';

import { type Activation, type R2N2Config, checkConfig, inputBlock, inputChannels } from './config.js';
export { type Activation, type R2N2Config, DEFAULT_CONFIG, checkConfig, imageSize, inputBlock, inputChannels } from './config.js';

/**
 * Space-to-depth `[B, b·n, b·n, C]` → `[B, n, n, b²·C]`: output channel (i·b + j)·C + c holds
 * channel c of the pixel at row offset i, column offset j of each b×b block. Reshapes and one
 * rank-4 transpose (gradients on every backend).
 */
export function spaceToDepth(x: tf.Tensor4D, b: number): tf.Tensor4D {
  if (b === 1) return x;
  const [B, H, W, C] = x.shape;
  const h = H / b;
  const w = W / b;
  if (!Number.isInteger(h) || !Number.isInteger(w)) throw new Error(`space-to-depth: ${H}×${W} is not a multiple of ${b}`);
  // rows (i1, i) and, with the channels, columns (j1, j, c) split; swap i and j1
  const t = tf.transpose(tf.reshape(x, [B * h, b, w, b * C]), [0, 2, 1, 3]); // [B·h, w, b(i), b·C (j, c)]
  return tf.reshape(t, [B, h, w, b * b * C]) as tf.Tensor4D;
}

/**
 * The input conv kernel for block b from one for block 1 (`[k, k, 4, C]` → `[k, k, 4·b², C]`):
 * each of the b² copies of a channel gets the kernel / b², so the network starts as on the
 * b×b box-averaged pair (fine-tuning from a block-1 model).
 */
export function expandInputKernel(kernel: tf.Tensor4D, b: number): tf.Tensor4D {
  return tf.tidy(
    () =>
      tf.div(
        tf.concat(
          Array.from({ length: b * b }, () => kernel),
          2,
        ),
        tf.scalar(b * b),
      ) as tf.Tensor4D,
  );
}

/**
 * The input conv kernel `[k, k, C·b², out]` of a model without the gradient channels as one with
 * them (`[k, k, (C + 2)·b², out]`): zeros for the two new channels of each of the b² blocks, so the
 * network starts computing exactly what it computed (fine-tuning with `--input-gradient`).
 */
export function addGradientChannels(kernel: tf.Tensor4D, b: number): tf.Tensor4D {
  const [k1, k2, cin, cout] = kernel.shape;
  const C = cin / (b * b);
  return tf.tidy(() => {
    const split = tf.reshape(kernel, [k1, k2, b * b, C, cout]);
    return tf.reshape(
      tf.pad(split, [
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 2],
        [0, 0],
      ]),
      [k1, k2, (C + 2) * b * b, cout],
    ) as tf.Tensor4D;
  });
}

/** Every weight's name and shape, in a fixed order (the order of the weights file). */
export function weightShapes(c: R2N2Config): [string, number[]][] {
  const out: [string, number[]][] = [];
  const conv = (name: string, k: number, cin: number, cout: number) => {
    out.push([`${name}/kernel`, [k, k, cin, cout]], [`${name}/bias`, [cout]]);
  };
  conv('input', 7, inputChannels(c) * inputBlock(c) ** 2, c.channels[0]);
  for (let l = 0; l < 3; l++) {
    const ch = c.channels[l];
    for (let r = 0; r < c.residualBlocks; r++) {
      conv(`block${l}/res${r}/conv1`, 3, ch, ch);
      conv(`block${l}/res${r}/conv2`, 3, ch, ch);
    }
    conv(`block${l}/gru/gates_x`, 3, ch, 2 * ch);
    out.push([`block${l}/gru/gates_h/kernel`, [3, 3, ch, 2 * ch]]);
    conv(`block${l}/gru/cand_x`, 3, ch, ch);
    out.push([`block${l}/gru/cand_h/kernel`, [3, 3, ch, ch]]);
    conv(`block${l}/pos1`, 1, ch, 1);
    conv(`block${l}/pos2`, 1, ch, 1);
    conv(`block${l}/down`, 3, ch, l < 2 ? c.channels[l + 1] : c.paramChannels);
  }
  conv('param/conv', 3, c.paramChannels, c.paramChannels);
  conv('param/value', 3, c.paramChannels / 2, c.paramChannels / 2);
  out.push(['param/fc1/kernel', [c.paramChannels / 2, c.hidden]], ['param/fc1/bias', [c.hidden]]);
  out.push(['param/fc2/kernel', [c.hidden, 5]], ['param/fc2/bias', [5]]);
  return out;
}

export type Weights = Map<string, tf.Variable>;

/**
 * Seeded initial weights: Glorot-uniform kernels, zero biases, the last layer zero (docs/method.md),
 * so an untrained network starts with w = tanh(0) = 0: the identity.
 */
export function initWeights(c: R2N2Config, seed: number): Weights {
  checkConfig(c);
  const rng = seedrandom(`r2n2-init-${seed}`);
  const w: Weights = new Map();
  for (const [name, shape] of weightShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isKernel = name.endsWith('/kernel');
    if (isKernel && !name.startsWith('param/fc2')) {
      const rf = shape.length === 4 ? shape[0] * shape[1] : 1;
      const fanIn = rf * shape[shape.length - 2];
      const fanOut = rf * shape[shape.length - 1];
      const lim = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) data[i] = (rng() * 2 - 1) * lim;
    }
    w.set(name, tf.variable(tf.tensor(data, shape), true, `r2n2/${name}/${seed}/${Math.random().toString(36).slice(2)}`));
  }
  return w;
}

export function disposeWeights(w: Weights): void {
  for (const v of w.values()) v.dispose();
  w.clear();
}

/** Multiplicative Gaussian weight noise (DropConnect-like) for training: name → factor tensor. */
export type WeightNoise = Map<string, tf.Tensor>;

/** Noise `N(1, sqrt(1−k)/k)` for the GRU proposal and output weights (docs/method.md), seeded. */
export function sampleWeightNoise(c: R2N2Config, keep: number, rng: () => number): WeightNoise {
  const noise: WeightNoise = new Map();
  if (!(keep > 0 && keep < 1)) return noise;
  const std = Math.sqrt(1 - keep) / keep;
  for (const [name, shape] of weightShapes(c)) {
    if (!/gru\/cand_[xh]\/kernel$/.test(name)) continue;
    const n = shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = 1 + std * gauss(rng);
    noise.set(name, tf.tensor(d, shape));
  }
  return noise;
}

/** Recurrent state: one `[B, h, w, ch]` tensor per block. */
export type State = tf.Tensor4D[];

export function initialState(c: R2N2Config, batch: number): State {
  const sizes = [c.netSize / 2, c.netSize / 4, c.netSize / 8];
  return sizes.map((s, l) => tf.zeros([batch, s, s, c.channels[l]]) as tf.Tensor4D);
}

export interface StepOutput {
  /** Raw parameter outputs `[B, 5]` (σx, σy, wx, wy, φ before their maps). */
  raw: tf.Tensor2D;
  /** Position `[B, 2]` (x, y) in normalised coordinates. */
  position: tf.Tensor2D;
  state: State;
}

/** Spatial softmax per channel of `[B, h, w, C]` → `[B, h·w, C]` (each column sums to 1). */
function spatialSoftmax(x: tf.Tensor4D): tf.Tensor3D {
  const [B, h, w, C] = x.shape;
  const flat = tf.transpose(tf.reshape(x, [B, h * w, C]), [0, 2, 1]); // [B, C, hw]
  return tf.transpose(tf.softmax(flat), [0, 2, 1]) as tf.Tensor3D;
}

/** Flattened normalised coordinates of an h×w grid: `[h·w, 2]` (x, y), align-corners. */
const coordCache = new Map<string, Float32Array>();
function coords(h: number, w: number): Float32Array {
  const key = `${h}x${w}`;
  let c = coordCache.get(key);
  if (!c) {
    c = new Float32Array(h * w * 2);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        c[2 * (i * w + j)] = w > 1 ? -1 + (2 * j) / (w - 1) : 0;
        c[2 * (i * w + j) + 1] = h > 1 ? -1 + (2 * i) / (h - 1) : 0;
      }
    coordCache.set(key, c);
  }
  return c;
}

/**
 * One recurrent step. `input` `[B, m, m, 4]` (fixed, warped moving, x, y; m = `imageSize(c)`);
 * returns the raw parameters, the position and the new state (the old state is not disposed:
 * the caller owns both). `noise` (training only) multiplies the named weights; `compute` says how
 * tanh runs (core/tensors.ts).
 */
export function step(c: R2N2Config, weights: Weights, input: tf.Tensor4D, state: State, noise?: WeightNoise, compute: Compute = DEFAULT_COMPUTE): StepOutput {
  const W = (name: string): tf.Tensor => {
    const v = weights.get(name);
    if (!v) throw new Error(`missing weight ${name}`);
    const n = noise?.get(name);
    return n ? tf.mul(v, n) : v;
  };
  const conv = (x: tf.Tensor4D, name: string, stride = 1, bias = true): tf.Tensor4D => {
    const y = tf.conv2d(x, W(`${name}/kernel`) as tf.Tensor4D, stride, 'same');
    return (bias ? tf.add(y, W(`${name}/bias`)) : y) as tf.Tensor4D;
  };
  const ts = compute.tanhViaSigmoid;
  const act = (x: tf.Tensor, a: Activation): tf.Tensor => (a === 'tanh' ? tanh(x, ts) : tf.leakyRelu(x, 0.2));
  const a = c.activation;
  const B = input.shape[0];
  let x = act(conv(spaceToDepth(input, inputBlock(c)), 'input', 2), a) as tf.Tensor4D;
  const positions: tf.Tensor2D[] = [];
  const certainties: tf.Tensor2D[] = [];
  const next: State = [];
  for (let l = 0; l < 3; l++) {
    let r = x;
    for (let k = 0; k < c.residualBlocks; k++) {
      const y = conv(act(conv(r, `block${l}/res${k}/conv1`), a) as tf.Tensor4D, `block${l}/res${k}/conv2`);
      r = act(tf.add(r, y), a) as tf.Tensor4D;
    }
    // ConvGRU: gates r, z from x and h; candidate from x and r ⊙ h
    const h = state[l];
    const ch = c.channels[l];
    const gates = tf.sigmoid(tf.add(conv(r, `block${l}/gru/gates_x`), tf.conv2d(h, W(`block${l}/gru/gates_h/kernel`) as tf.Tensor4D, 1, 'same')));
    const [rg, zg] = tf.split(gates, [ch, ch], 3);
    const cand = tanh(
      tf.add(conv(r, `block${l}/gru/cand_x`), tf.conv2d(tf.mul(rg, h) as tf.Tensor4D, W(`block${l}/gru/cand_h/kernel`) as tf.Tensor4D, 1, 'same')),
      ts,
    );
    const hNew = tf.add(tf.mul(tf.sub(tf.scalar(1), zg), h), tf.mul(zg, cand)) as tf.Tensor4D;
    next.push(hNew);
    const s = tf.add(act(hNew, a), r) as tf.Tensor4D;
    // position network: two spatial softmaxes, expected position and certainty
    const [, hh, ww] = s.shape;
    const S1 = spatialSoftmax(conv(s, `block${l}/pos1`)); // [B, hw, 1]
    const S2 = spatialSoftmax(conv(s, `block${l}/pos2`));
    const grid = tf.tensor2d(coords(hh, ww), [hh * ww, 2]);
    positions.push(tf.reshape(tf.matMul(tf.reshape(S1, [B, hh * ww]), grid), [B, 2]) as tf.Tensor2D);
    certainties.push(tf.sub(tf.scalar(2), tf.sum(tf.abs(tf.sub(S1, S2)), [1])) as tf.Tensor2D); // [B, 1]
    x = act(conv(s, `block${l}/down`, 2), a) as tf.Tensor4D;
  }
  const cs = tf.stack(certainties, 0); // [3, B, 1]
  const ps = tf.stack(positions, 0); // [3, B, 2]
  const position = tf.div(tf.sum(tf.mul(cs, ps), 0), tf.add(tf.sum(cs, 0), tf.scalar(1e-6))) as tf.Tensor2D;
  // parameter network
  const y = conv(x, 'param/conv');
  const half = c.paramChannels / 2;
  const [ya, yb] = tf.split(y, [half, half], 3) as tf.Tensor4D[];
  const Sa = spatialSoftmax(ya); // [B, hw, half]
  const vb = conv(act(yb, a) as tf.Tensor4D, 'param/value');
  const [, ph, pw] = vb.shape;
  const v = tf.sum(tf.mul(Sa, tf.reshape(vb, [B, ph * pw, half])), 1); // [B, half]
  const hid = act(tf.add(tf.matMul(v as tf.Tensor2D, W('param/fc1/kernel') as tf.Tensor2D), W('param/fc1/bias')), a);
  const raw = tf.add(tf.matMul(hid as tf.Tensor2D, W('param/fc2/kernel') as tf.Tensor2D), W('param/fc2/bias')) as tf.Tensor2D;
  return { raw, position, state: next };
}

export function parameterCount(c: R2N2Config): number {
  return weightShapes(c).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
}
