/**
 * Compute backend, chosen once at start-up.
 *
 * `auto` tries, in order: `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node` (optional
 * dependencies that need a libtensorflow download; they are usually absent or fail to load,
 * which is caught), the WebAssembly backend (SIMD, our gradient kernels registered), and the
 * pure-JS cpu backend (7–500× slower than wasm: a warning says so). Each candidate must pass
 * a small conv2d gradient smoke test before it is accepted, so a backend that loads but lacks
 * a kernel is skipped with its reason.
 */
import * as tf from '@tensorflow/tfjs-core';
// The umbrella's Node bundle registers every gradient (and the chained ops) on the shared
// tfjs-core; tfjs-core's own Node bundle registers none, and its ESM files cannot be loaded
// by Node (extensionless imports). It also registers the cpu backend.
import '@tensorflow/tfjs';
import { installWasmGradientKernels } from './wasm-kernels.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** The tfjs backend now active: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** What was asked for. */
  requested: BackendChoice;
  /** Package that provided it (e.g. '@tensorflow/tfjs-node-gpu'). */
  provider: string;
  /** Candidates tried before it, with the reason each was not taken. */
  skipped: { provider: string; reason: string }[];
  /** wasm only: SIMD on, thread count. */
  simd?: boolean;
  threads?: number;
  /** A warning for the user (e.g. the slow cpu fallback), or null. */
  warning: string | null;
}

interface Candidate {
  provider: string;
  name: string;
  load: () => Promise<void>;
}

const CANDIDATES: Record<Exclude<BackendChoice, 'auto'>, Candidate[]> = {
  tensorflow: [
    { provider: '@tensorflow/tfjs-node-gpu', name: 'tensorflow', load: async () => void (await import('@tensorflow/tfjs-node-gpu' as string)) },
    { provider: '@tensorflow/tfjs-node', name: 'tensorflow', load: async () => void (await import('@tensorflow/tfjs-node' as string)) },
  ],
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

/** conv2d forward + filter/input gradients on a tiny input: catches missing kernels early. */
export function smokeTest(): void {
  tf.tidy(() => {
    const x = tf.randomUniform([1, 6, 6, 2], -1, 1, 'float32', 1);
    const w = tf.variable(tf.randomUniform([3, 3, 2, 3], -1, 1, 'float32', 2), true, `r2n2-smoke-${Math.random()}`);
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.conv2d(x as tf.Tensor4D, w as unknown as tf.Tensor4D, 1, 'same'))) as tf.Scalar, [w]);
    const g = grads[w.name];
    const bad = !Number.isFinite(value.dataSync()[0]) || g.dataSync().some((v) => !Number.isFinite(v));
    w.dispose();
    if (bad) throw new Error('gradient smoke test gave non-finite values');
  });
}

let active: BackendInfo | null = null;

/** The backend chosen by `initBackend`, or null before it ran. */
export function activeBackend(): BackendInfo | null {
  return active;
}

function short(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split('\n')[0].slice(0, 200);
}

/**
 * Selects and initialises the backend. Throws when an explicitly requested backend cannot be
 * used (with the reason); `auto` falls through to the next candidate.
 */
export async function initBackend(requested: BackendChoice = 'auto'): Promise<BackendInfo> {
  // prod mode: no debug checks, and tfjs's console banners ("install our node backend") stay off
  tf.enableProdMode();
  const order: Candidate[] = requested === 'auto' ? [...CANDIDATES.tensorflow, ...CANDIDATES.wasm, ...CANDIDATES.cpu] : CANDIDATES[requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const c of order) {
    try {
      await c.load();
      if (!tf.findBackendFactory(c.name)) throw new Error(`${c.provider} registered no "${c.name}" backend`);
      const ok = await tf.setBackend(c.name);
      await tf.ready();
      if (!ok || tf.getBackend() !== c.name) throw new Error(`backend ${c.name} failed to initialise`);
      smokeTest();
      const info: BackendInfo = {
        name: c.name,
        requested,
        provider: c.provider,
        skipped,
        warning: c.name === 'cpu' ? 'using the pure-JavaScript cpu backend: 7–500× slower than wasm' : null,
      };
      if (c.name === 'wasm') {
        info.simd = Boolean(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'));
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        info.threads = wasm.getThreadsCount();
      }
      active = info;
      return info;
    } catch (err) {
      skipped.push({ provider: c.provider, reason: short(err) });
    }
  }
  const why = skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ');
  throw new Error(`backend "${requested}" is not available (${why})${requested === 'tensorflow' ? '; install @tensorflow/tfjs-node (needs a libtensorflow download) or use --backend wasm' : ''}`);
}
