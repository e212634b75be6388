/**
 * Kernels the tfjs wasm backend (4.22.0) lacks for gradients, and autograd gaps of tfjs-core,
 * registered once at start-up (`installWasmGradientKernels`). Each is tested numerically
 * against the cpu backend (test/backend.test.ts). Facts and timings: docs/backends.md.
 *
 * - Conv2DBackpropFilter: missing on wasm; computed with the forward Conv2D (XNNPACK) on
 *   transposed tensors (batch↔channel swap of the padded input, dy as a dilated filter).
 * - Conv2DBackpropInput, stride 1: the wasm kernel is a plain loop; a forward Conv2D with the
 *   flipped filter is ~10× faster. Other strides keep the original kernel.
 * - DepthwiseConv2dNativeBackpropInput/Filter, MaxPoolGrad: bridged to the cpu kernel
 *   (wasm's MaxPoolGrad drops windows whose values are all negative).
 * - UnsortedSegmentSum (gather's gradient): via scatterND, which sums duplicate indices.
 * - GatherNd: tfjs-core registers no gradient; params get scatterND(dy), indices none.
 */
import * as tf from '@tensorflow/tfjs-core';
import { alias } from '../core/tensors.js';

type Info = tf.TensorInfo;
type Attrs = Record<string, unknown>;
interface KernelArgs {
  inputs: Record<string, Info>;
  backend: tf.KernelBackend;
  attrs?: Attrs;
}

/** Runs the cpu backend's kernel on copies of the inputs and copies the outputs back. */
export function bridgeToCpu(kernelName: string, backendName = 'wasm'): void {
  const cpuKernel = tf.getKernel(kernelName, 'cpu');
  if (!cpuKernel) throw new Error(`no cpu kernel ${kernelName}`);
  if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({
    kernelName,
    backendName,
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs) => {
      const cpu = tf.engine().findBackend('cpu');
      const cpuInputs: Record<string, Info> = {};
      const tmp: tf.DataId[] = [];
      for (const [k, t] of Object.entries(inputs)) {
        const id = cpu.write(backend.readSync(t.dataId) as tf.backend_util.BackendValues, t.shape, t.dtype);
        cpuInputs[k] = { dataId: id, shape: t.shape, dtype: t.dtype };
        tmp.push(id);
      }
      const out = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs } as never) as Info | Info[];
      const back = (o: Info): Info => {
        const v = cpu.readSync(o.dataId) as tf.backend_util.BackendValues;
        cpu.disposeData(o.dataId, true);
        return { dataId: backend.write(v, o.shape, o.dtype), shape: o.shape, dtype: o.dtype };
      };
      tmp.forEach((id) => cpu.disposeData(id, true));
      return Array.isArray(out) ? out.map(back) : back(out);
    }) as unknown as tf.KernelFunc,
  });
}

function convInfo(xShape: number[], filterShape: number[], attrs: Attrs) {
  if (attrs.dataFormat && attrs.dataFormat !== 'NHWC') throw new Error('only NHWC convolutions are supported');
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as 'valid',
    attrs.dimRoundingMode as 'floor' | undefined,
    false,
    'channelsLast',
  );
}

export function conv2dBackpropFilterViaConv(backendName: string): void {
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName,
    kernelFunc: (({ inputs, attrs }: KernelArgs) =>
      tf.tidy(() => {
        const filterShape = (attrs as Attrs).filterShape as number[];
        const info = convInfo(inputs.x.shape, filterShape, attrs as Attrs);
        const [KH, KW, Ci, Co] = filterShape;
        const { top, bottom, left, right } = info.padInfo;
        const X = alias(inputs.x) as tf.Tensor4D;
        const DY = alias(inputs.dy) as tf.Tensor4D;
        const xt = tf.transpose(
          tf.pad(X, [
            [0, 0],
            [top, bottom],
            [left, right],
            [0, 0],
          ]),
          [3, 1, 2, 0],
        ); // [Ci,Hp,Wp,B]
        const f = tf.transpose(DY, [1, 2, 0, 3]); // [Ho,Wo,B,Co]
        let out = tf.conv2d(xt as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid', 'NHWC', [info.strideHeight, info.strideWidth]); // [Ci,≥KH,≥KW,Co]
        if (out.shape[1] !== KH || out.shape[2] !== KW) out = tf.slice(out, [0, 0, 0, 0], [Ci, KH, KW, Co]);
        return tf.transpose(out, [1, 2, 0, 3]);
      })) as unknown as tf.KernelFunc,
  });
}

function conv2dBackpropInputStride1(backendName: string): void {
  const orig = tf.getKernel('Conv2DBackpropInput', backendName);
  if (!orig) throw new Error(`no ${backendName} Conv2DBackpropInput kernel`);
  tf.unregisterKernel('Conv2DBackpropInput', backendName);
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName,
    // the original kernel binds its C function in setupFunc, run when the backend initialises
    setupFunc: orig.setupFunc,
    disposeFunc: orig.disposeFunc,
    kernelFunc: ((args: KernelArgs) => {
      const attrs = args.attrs as Attrs;
      const strides = attrs.strides as number | [number, number];
      const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
      if (sh !== 1 || sw !== 1 || (attrs.dataFormat && attrs.dataFormat !== 'NHWC')) return orig.kernelFunc(args as never);
      return tf.tidy(() => {
        const inputShape = attrs.inputShape as number[];
        const W = alias(args.inputs.filter) as tf.Tensor4D;
        const DY = alias(args.inputs.dy) as tf.Tensor4D;
        const [KH, KW] = W.shape;
        const info = convInfo(inputShape, W.shape, { ...attrs, strides: 1 });
        const t = KH - 1 - info.padInfo.top;
        const l = KW - 1 - info.padInfo.left;
        const b = inputShape[1] - info.outHeight + KH - 1 - t;
        const r = inputShape[2] - info.outWidth + KW - 1 - l;
        const wf = tf.transpose(tf.reverse(W, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
        return tf.conv2d(DY, wf, 1, [
          [0, 0],
          [t, b],
          [l, r],
          [0, 0],
        ]);
      });
    }) as unknown as tf.KernelFunc,
  });
}

function unsortedSegmentSumViaScatter(backendName: string): void {
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName,
    kernelFunc: (({ inputs, attrs }: KernelArgs) =>
      tf.tidy(() => {
        const X = alias(inputs.x);
        const ids = alias(inputs.segmentIds);
        const n = ids.size;
        const rest = X.shape.slice(ids.rank);
        return tf.scatterND(tf.reshape(ids, [n, 1]), tf.reshape(X, [n, ...rest]), [(attrs as Attrs).numSegments as number, ...rest]);
      })) as unknown as tf.KernelFunc,
  });
}

let gatherNdGradientRegistered = false;
/** GatherNd's gradient (backend-independent; tfjs-core has none). */
export function registerGatherNdGradient(): void {
  if (gatherNdGradientRegistered) return;
  gatherNdGradientRegistered = true;
  tf.registerGradient({
    kernelName: 'GatherNd',
    inputsToSave: ['params', 'indices'],
    gradFunc: (dy, saved) => {
      const [params, indices] = saved;
      return {
        params: () => tf.scatterND(indices, dy as tf.Tensor, params.shape),
        indices: () => tf.zerosLike(indices),
      };
    },
  });
}

const installed = new Set<string>();
/** Registers our kernels on a wasm backend (idempotent). The cpu backend must be registered too. */
export function installWasmGradientKernels(backendName = 'wasm'): void {
  if (installed.has(backendName)) return;
  installed.add(backendName);
  conv2dBackpropFilterViaConv(backendName);
  conv2dBackpropInputStride1(backendName);
  bridgeToCpu('DepthwiseConv2dNativeBackpropInput', backendName);
  bridgeToCpu('DepthwiseConv2dNativeBackpropFilter', backendName);
  bridgeToCpu('MaxPoolGrad', backendName);
  unsortedSegmentSumViaScatter(backendName);
  registerGatherNdGradient();
}
