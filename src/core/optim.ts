/**
 * Adam with the AMSGrad correction (Reddi et al. 2018), as PyTorch's `Adam(amsgrad=True)`
 * computes it (tfjs's Adam has no AMSGrad):
 *
 *   m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²        v̂ ← max(v̂, v)
 *   θ ← θ − lr/(1−β1^t) · m / (sqrt(v̂)/sqrt(1−β2^t) + ε)
 *
 * Backend-blind: the state lives in tfjs tensors beside each variable.
 */
import * as tf from '@tensorflow/tfjs-core';
import { sumTensors } from './tensors.js';

export interface AmsGradOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

interface Slot {
  m: tf.Tensor;
  v: tf.Tensor;
  vmax: tf.Tensor;
}

export class AmsGrad {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  learningRate: number;
  /** Steps taken so far. */
  t = 0;
  private slots = new Map<tf.Variable, Slot>();

  constructor(o: AmsGradOptions) {
    this.learningRate = o.learningRate;
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.epsilon = o.epsilon ?? 1e-8;
  }

  /** One step for every variable with a gradient (`grads` keyed like `tf.variableGrads`' output, by variable name). */
  apply(vars: tf.Variable[], grads: Record<string, tf.Tensor>): void {
    this.t += 1;
    const bc1 = 1 - this.beta1 ** this.t;
    const bc2 = 1 - this.beta2 ** this.t;
    for (const v of vars) {
      const g = grads[v.name];
      if (!g) continue;
      let s = this.slots.get(v);
      if (!s) {
        s = { m: tf.keep(tf.zerosLike(v)), v: tf.keep(tf.zerosLike(v)), vmax: tf.keep(tf.zerosLike(v)) };
        this.slots.set(v, s);
      }
      const slot = s;
      const next = tf.tidy(() => {
        const m = tf.add(tf.mul(slot.m, tf.scalar(this.beta1)), tf.mul(g, tf.scalar(1 - this.beta1)));
        const vv = tf.add(tf.mul(slot.v, tf.scalar(this.beta2)), tf.mul(tf.square(g), tf.scalar(1 - this.beta2)));
        const vmax = tf.maximum(slot.vmax, vv);
        const denom = tf.add(tf.div(tf.sqrt(vmax), tf.scalar(Math.sqrt(bc2))), tf.scalar(this.epsilon));
        v.assign(tf.sub(v, tf.mul(tf.div(m, denom), tf.scalar(this.learningRate / bc1))));
        return { m: tf.keep(m), vv: tf.keep(vv), vmax: tf.keep(vmax) };
      });
      slot.m.dispose();
      slot.v.dispose();
      slot.vmax.dispose();
      slot.m = next.m;
      slot.v = next.vv;
      slot.vmax = next.vmax;
    }
  }

  /** The state tensors of `vars`, in order (zeros for variables not stepped yet): for checkpoints. */
  exportState(vars: tf.Variable[]): { t: number; m: tf.Tensor[]; v: tf.Tensor[]; vmax: tf.Tensor[] } {
    const get = (x: tf.Variable, k: keyof Slot) => this.slots.get(x)?.[k] ?? tf.zerosLike(x);
    return { t: this.t, m: vars.map((x) => get(x, 'm')), v: vars.map((x) => get(x, 'v')), vmax: vars.map((x) => get(x, 'vmax')) };
  }

  /** Restores a state written by `exportState` (the tensors are copied). */
  importState(vars: tf.Variable[], s: { t: number; m: tf.Tensor[]; v: tf.Tensor[]; vmax: tf.Tensor[] }): void {
    this.dispose();
    this.t = s.t;
    vars.forEach((x, i) => this.slots.set(x, { m: tf.keep(tf.clone(s.m[i])), v: tf.keep(tf.clone(s.v[i])), vmax: tf.keep(tf.clone(s.vmax[i])) }));
  }

  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
      s.vmax.dispose();
    }
    this.slots.clear();
  }
}

/** Scales gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping. */
export async function clipByGlobalNorm(grads: Record<string, tf.Tensor>, maxNorm: number): Promise<{ grads: Record<string, tf.Tensor>; norm: number }> {
  const gs = Object.values(grads);
  // one read-back for all gradients (a sync per variable cost one round trip each, per iteration)
  const sq = tf.tidy(() => (gs.length ? sumTensors(gs.map((g) => tf.sum(tf.square(g)))) : tf.scalar(0)));
  // asynchronous: GPU backends (webgpu) cannot read back synchronously in Node
  const norm = Math.sqrt((await sq.data())[0]);
  sq.dispose();
  if (!(norm > maxNorm)) return { grads, norm };
  const out: Record<string, tf.Tensor> = {};
  for (const [k, g] of Object.entries(grads)) {
    out[k] = tf.mul(g, tf.scalar(maxNorm / norm));
    g.dispose();
  }
  return { grads: out, norm };
}
