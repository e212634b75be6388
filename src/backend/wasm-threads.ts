/**
 * Multi-threaded WebAssembly in Node.
 *
 * tfjs-backend-wasm 4.22 ships a threaded SIMD build (XNNPACK over a pthread pool), but in
 * Node it never uses it, for three reasons. `withWasmThreads` works around each one, only
 * while the backend initialises, and puts everything back afterwards:
 *
 * 1. The `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-wired to false in Node. We set it.
 * 2. The build starts its pthread workers from Blob URLs, and Node's `worker_threads` cannot
 *    load those. We record each Blob's text and give Emscripten a file path under a private
 *    temporary directory instead. The worker script gets a prologue that defines the bundle's
 *    module aliases (`require$$0`… for fs, path, perf_hooks, os). The main script is handed
 *    to the workers as a Blob, so the worker prologue maps `URL.createObjectURL` to its file.
 * 3. XNNPACK's pool is sized `hardwareConcurrency / 2` at start-up (the bundle assumes two
 *    hyper-threads per core), which is 1 on a 2-core machine. `os.cpus()` reports 2·N
 *    entries while the module starts.
 *
 * The pthread workers are `unref`'d, so an idle process can exit. The temporary directory is
 * removed once the workers have loaded.
 *
 * Measured on this project's 2-core machine (docs/backends.md): with 2 threads a
 * conv2d of [8,32,32,16]×[3,3,16,32] takes 3.3 ms instead of 5.2–6.1, a 512² matMul 8.5 ms
 * instead of 15.6, R2N2 registration 1.23× less, training 1.07× less, but the B-spline
 * (many small ops) 1.28× more. Results are bit-identical. If anything fails, the caller
 * falls back to a single thread.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

import { MAX_THREADS } from './choices.js';
export { MAX_THREADS, autoThreads } from './choices.js';

/** The bundle's names for the Node modules it requires (tf-backend-wasm.node.js, rollup). */
const PROLOGUE =
  "var require$$0=require('fs'),require$$1=require('path'),require$$3=require('perf_hooks'),require$$4=require('os'),commonjsGlobal=globalThis;\n";

interface EmscriptenWorker {
  unref?: () => void;
}
interface PThreadPool {
  unusedWorkers: EmscriptenWorker[];
  runningWorkers: EmscriptenWorker[];
}

/**
 * Runs `init` (which must initialise the wasm backend) with `threads` XNNPACK threads
 * (≥ 2). After `init`, it unrefs the pool's workers and removes the temporary files. Restores
 * the patched globals even when `init` throws. Returns `init`'s result.
 */
export async function withWasmThreads<T>(threads: number, init: () => Promise<T>): Promise<T> {
  if (!(Number.isInteger(threads) && threads >= 2 && threads <= MAX_THREADS))
    throw new Error(`wasm threads must be an integer in [2, ${MAX_THREADS}], got ${threads}`);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'r2n2-wasm-'));
  const texts = new WeakMap<Blob, string>();
  let mainScript: string | null = null;
  let n = 0;
  const OrigBlob = globalThis.Blob;
  const origCreate = URL.createObjectURL;
  const origRevoke = URL.revokeObjectURL;
  const origCpus = os.cpus;
  class RecordingBlob extends OrigBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (!parts || !parts.every((p) => typeof p === 'string')) return;
      const text = (parts as string[]).join('');
      texts.set(this, text);
      // the threaded factory's source, handed to each worker as a Blob
      if (text.startsWith('var WasmBackendModuleThreadedSimd')) {
        mainScript = path.join(dir, 'main.cjs');
        fs.writeFileSync(mainScript, PROLOGUE + text);
      }
    }
  }
  globalThis.Blob = RecordingBlob as typeof Blob;
  URL.createObjectURL = (obj: Blob) => {
    const text = texts.get(obj);
    if (text === undefined) return origCreate(obj);
    const file = path.join(dir, `worker-${n++}.cjs`);
    const inWorker = mainScript ? `URL.createObjectURL=()=>${JSON.stringify(mainScript)};URL.revokeObjectURL=()=>{};\n` : '';
    fs.writeFileSync(file, PROLOGUE + inWorker + text);
    return file;
  };
  URL.revokeObjectURL = (url: string) => {
    if (!url.startsWith(dir)) origRevoke(url);
  };
  os.cpus = () => {
    const c = origCpus();
    return Array.from({ length: 2 * threads }, (_, i) => c[i % c.length]);
  };
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  try {
    const out = await init();
    const pool = (tf.backend() as unknown as { wasm?: { PThread?: PThreadPool } }).wasm?.PThread;
    for (const w of [...(pool?.unusedWorkers ?? []), ...(pool?.runningWorkers ?? [])]) w.unref?.();
    return out;
  } catch (err) {
    // leave the flag off so that a retry loads the single-threaded build
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    throw err;
  } finally {
    globalThis.Blob = OrigBlob;
    URL.createObjectURL = origCreate;
    URL.revokeObjectURL = origRevoke;
    os.cpus = origCpus;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
