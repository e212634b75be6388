/**
 * Compute backend, chosen once at start-up.
 *
 * `auto` tries, in order: `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` (optional
 * dependencies that need a libtensorflow download; they are usually absent or fail to load,
 * which is caught), WebGPU through Dawn (optional `webgpu` package; a hardware adapter only:
 * Vulkan on Linux), the WebAssembly backend (SIMD, our gradient kernels registered), and the
 * pure-JS cpu backend (7–500× slower than wasm: a warning says so). Each candidate must pass
 * a small conv2d gradient smoke test before it is accepted, so a backend that loads but lacks
 * a kernel is skipped with its reason.
 */
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
// The umbrella's Node bundle registers every gradient (and the chained ops) on the shared
// tfjs-core; tfjs-core's own Node bundle registers none, and its ESM files cannot be loaded
// by Node (extensionless imports). It also registers the cpu backend.
import '@tensorflow/tfjs';
import { installWasmGradientKernels } from './wasm-kernels.js';
import { MAX_THREADS, withWasmThreads } from './wasm-threads.js';

import type { BackendChoice } from './choices.js';
export { type BackendChoice, BACKEND_CHOICES } from './choices.js';

export interface BackendInfo {
  /** The tfjs backend now active: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** What was asked for. */
  requested: BackendChoice;
  /** Package that provided it (e.g. '@tensorflow/tfjs-node-gpu'). */
  provider: string;
  /** Candidates tried before it, with the reason each was not taken. */
  skipped: { provider: string; reason: string }[];
  /** webgpu only: the adapter (vendor, architecture, description). */
  adapter?: string;
  /** wasm only: SIMD on, thread count. */
  simd?: boolean;
  threads?: number;
  /** A warning for the user (e.g. the slow cpu fallback), or null. */
  warning: string | null;
}

interface Candidate {
  provider: string;
  name: string;
  /** Loads and registers the backend; `auto` says whether this is an automatic pick. */
  load: (auto: boolean) => Promise<void>;
}

/** Adapter of the WebGPU backend, once loaded. */
let webgpuAdapter: string | undefined;

/**
 * Makes WebGPU available to tfjs in Node: Dawn's bindings (the optional `webgpu` package,
 * prebuilt for linux/macOS/windows) provide `navigator.gpu`, which the tfjs webgpu backend
 * reads when it is imported. A software adapter (llvmpipe, SwiftShader) works but is slower
 * than wasm on the CPU, so `auto` refuses it; `--backend webgpu` takes it.
 */
async function loadWebGpu(auto: boolean): Promise<void> {
  // On Linux a GPU shows as a device node; without one, `auto` does not load Dawn at all (a
  // software adapter would only be refused, after its driver printed warnings to stderr).
  if (auto && process.platform === 'linux' && !linuxGpuPresent()) throw new Error('no GPU device (/dev/nvidia*, /dev/dri/renderD*)');
  const { dawn, gpu, adapter } = await requestWebGpuAdapter();
  if (!adapter) throw new Error('no WebGPU adapter (no Vulkan/Metal/D3D12 driver for a GPU was found)');
  const info = adapter.info ?? {};
  const software = info.architecture === 'software' || /llvmpipe|swiftshader|lavapipe/i.test(`${info.description ?? ''} ${info.device ?? ''}`);
  webgpuAdapter = [info.vendor, info.architecture, info.description].filter(Boolean).join(' / ') || 'unknown adapter';
  if (auto && software) throw new Error(`only a software adapter (${webgpuAdapter}): slower than wasm`);
  Object.assign(globalThis, dawn.globals);
  const nav = (globalThis as { navigator?: object }).navigator;
  Object.defineProperty(globalThis, 'navigator', { value: Object.assign(Object.create(nav ?? null), { gpu }), configurable: true, writable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
}

/** Dawn's bindings (the optional `webgpu` package) and the adapter they find, or null. */
async function requestWebGpuAdapter() {
  const dawn = (await import('webgpu' as string)) as {
    create: (opts: string[]) => { requestAdapter: (o?: object) => Promise<GpuAdapter | null> };
    globals: object;
  };
  const gpu = dawn.create([]);
  return { dawn, gpu, adapter: await gpu.requestAdapter({ powerPreference: 'high-performance' }) };
}

/**
 * Whether `--backend webgpu` can run here: null when a WebGPU adapter (hardware or software) is
 * found, else why not. For tests and checks that need one; loads nothing into tfjs.
 */
export async function webgpuUnavailable(): Promise<string | null> {
  try {
    return (await requestWebGpuAdapter()).adapter ? null : 'no WebGPU adapter';
  } catch (err) {
    return short(err);
  }
}

function linuxGpuPresent(): boolean {
  try {
    return (
      fs.readdirSync('/dev').some((f) => /^nvidia\d+$/.test(f)) ||
      (fs.existsSync('/dev/dri') && fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD')))
    );
  } catch {
    return false;
  }
}

interface GpuAdapter {
  info?: { vendor?: string; architecture?: string; description?: string; device?: string };
}

/** Threads the native TensorFlow backend may use (set by `initBackend` before it is loaded). */
let tensorflowThreads = 1;

/**
 * Loads a tfjs-node package. TensorFlow reads its settings from the environment once, when the
 * library loads, so they are set first (a value the user exported wins): oneDNN's custom ops off
 * (its results differ from the other backends' in the last digits), `--threads` intra-op threads
 * and one inter-op thread (on a few cores more threads only contend), and only errors logged.
 */
async function loadTfjsNode(pkg: string): Promise<void> {
  const env = process.env;
  env.TF_ENABLE_ONEDNN_OPTS ??= '0';
  env.TF_NUM_INTRAOP_THREADS ??= String(tensorflowThreads);
  env.TF_NUM_INTEROP_THREADS ??= '1';
  env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  await import(pkg);
}

const CANDIDATES: Record<Exclude<BackendChoice, 'auto'>, Candidate[]> = {
  tensorflow: [
    { provider: '@tensorflow/tfjs-node-gpu', name: 'tensorflow', load: () => loadTfjsNode('@tensorflow/tfjs-node-gpu') },
    { provider: '@tensorflow/tfjs-node', name: 'tensorflow', load: () => loadTfjsNode('@tensorflow/tfjs-node') },
  ],
  webgpu: [{ provider: 'webgpu (Dawn) + @tensorflow/tfjs-backend-webgpu', name: 'webgpu', load: loadWebGpu }],
  wasm: [
    {
      provider: '@tensorflow/tfjs-backend-wasm',
      name: 'wasm',
      load: async () => {
        await import('@tensorflow/tfjs-backend-wasm');
        installWasmGradientKernels('wasm');
      },
    },
  ],
  cpu: [{ provider: '@tensorflow/tfjs-backend-cpu', name: 'cpu', load: async () => undefined }],
};

/** conv2d forward + filter/input gradients on a tiny input: catches missing kernels early. Asynchronous read-back (GPU backends have no synchronous one in Node). */
export async function smokeTest(): Promise<void> {
  const w = tf.variable(tf.randomUniform([3, 3, 2, 3], -1, 1, 'float32', 2), true, `r2n2-smoke-${Math.random()}`);
  const { value, grads } = tf.tidy(() => {
    const x = tf.randomUniform([1, 6, 6, 2], -1, 1, 'float32', 1);
    return tf.variableGrads(() => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as unknown as tf.Tensor4D, 1, 'same'))) as tf.Scalar, [w]);
  });
  const g = grads[w.name];
  const bad = !Number.isFinite((await value.data())[0]) || (await g.data()).some((v) => !Number.isFinite(v));
  tf.dispose([w, value, g]);
  if (bad) throw new Error('gradient smoke test gave non-finite values');
}

function short(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0].slice(0, 200);
}

/**
 * Selects and initialises the backend. Throws when an explicitly requested backend cannot be
 * used (with the reason); `auto` falls through to the next candidate. `o.webgpu`: the caller's
 * code reads tensors back only asynchronously, so WebGPU may be used (R2N2 training and
 * registration); otherwise `auto` leaves it out and an explicit `webgpu` is an error naming
 * `o.what`.
 */
export async function initBackend(requested: BackendChoice = 'auto', o: { webgpu?: boolean; what?: string; threads?: number } = {}): Promise<BackendInfo> {
  const threads = o.threads ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= MAX_THREADS))
    throw new Error(`threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`);
  tensorflowThreads = threads;
  // prod mode: no debug checks, and tfjs's console banners ("install our node backend") stay off
  tf.enableProdMode();
  // webgpu has no synchronous read-back in Node; only the code paths written for it take it
  if (requested === 'webgpu' && !o.webgpu)
    throw new Error(`${o.what ?? 'this computation'} does not run on the webgpu backend yet: use --backend auto, wasm or tensorflow`);
  const order: Candidate[] =
    requested === 'auto' ? [...CANDIDATES.tensorflow, ...(o.webgpu ? CANDIDATES.webgpu : []), ...CANDIDATES.wasm, ...CANDIDATES.cpu] : CANDIDATES[requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const c of order) {
    try {
      await c.load(requested === 'auto');
      if (!tf.findBackendFactory(c.name)) throw new Error(`${c.provider} registered no "${c.name}" backend`);
      const start = async () => {
        const ok = await tf.setBackend(c.name);
        await tf.ready();
        if (!ok || tf.getBackend() !== c.name) throw new Error(`backend ${c.name} failed to initialise`);
      };
      if (c.name === 'wasm' && threads > 1) {
        // the threaded build, else the single-threaded one (the reason is kept in `skipped`)
        try {
          await withWasmThreads(threads, start);
        } catch (err) {
          skipped.push({ provider: `${c.provider} (${threads} threads)`, reason: short(err) });
          await start();
        }
      } else {
        await start();
      }
      await smokeTest();
      const info: BackendInfo = {
        name: c.name,
        requested,
        provider: c.provider,
        skipped,
        warning: c.name === 'cpu' ? 'using the pure-JavaScript cpu backend: 7–500× slower than wasm' : null,
      };
      if (c.name === 'webgpu') info.adapter = webgpuAdapter;
      if (c.name === 'wasm') {
        info.simd = Boolean(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'));
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        info.threads = wasm.getThreadsCount();
      }
      return info;
    } catch (err) {
      skipped.push({ provider: c.provider, reason: short(err) });
    }
  }
  const why = skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ');
  throw new Error(
    `backend "${requested}" is not available (${why})${requested === 'tensorflow' ? '; install @tensorflow/tfjs-node (needs a libtensorflow download; offline: scripts/tfjs-node-offline.sh) or use --backend wasm' : ''}`,
  );
}
