/**
 * `--jobs N`: a pool of worker threads (app/frame-worker.ts), each with its own compute backend
 * and registrar, so that N frames of a series are registered at once on N cores. Each worker
 * runs exactly the code `--jobs 1` runs in the main thread, on the same backend kind, so the
 * results are the same bit for bit (tested). Memory: each worker holds its own tfjs backend and
 * a copy of the fixed frame (≈ 60–90 MB per worker for the B-spline at 256², docs/cli.md).
 */
import os from 'node:os';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.js';
import type { BackendChoice } from '../backend/index.js';
import type { Image2D } from '../io/image.js';
import type { FrameRegistration, RegistrarSpec } from './registrar.js';
import type { WorkerReply, WorkerStart, WorkerTask } from './frame-worker.js';

/** The default `--jobs`: one per core the process may use. */
export const defaultJobs = (): number => Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);

/** Backends whose work can be split over worker threads (one single-threaded backend each). */
export const POOLABLE_BACKENDS = ['wasm', 'cpu'];

/** The compiled worker script (dist/app/frame-worker.js), also when this module runs from src/ under ts-jest. */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const js = here.replace(/\.ts$/, '.js').replace(/([\\/])src([\\/]app[\\/])frame-pool\.js$/, '$1dist$2frame-pool.js');
  const script = js.replace(/frame-pool\.js$/, 'frame-worker.js');
  if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build`);
  return script;
}

interface Pending {
  resolve: (r: FrameRegistration[]) => void;
  reject: (e: Error) => void;
  tick: (info: string, units?: number) => void;
}

class PoolWorker {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  private pending = new Map<number, Pending>();
  private fixedSent = -1;
  private dead: Error | null = null;

  constructor(start: WorkerStart) {
    // the worker's stdout (itk-wasm prints there on failure) must never reach ours
    this.worker = new Worker(workerScript(), { workerData: start, stdout: true, stderr: false });
    this.worker.stdout.resume();
    this.ready = new Promise((resolve, reject) => {
      this.worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') return resolve();
        if (m.type === 'error' && m.id === -1) return reject(revive(m));
        const p = this.pending.get(m.id);
        if (!p) return;
        if (m.type === 'tick') p.tick(m.info, m.units);
        else {
          this.pending.delete(m.id);
          if (m.type === 'done') p.resolve(m.results);
          else p.reject(revive(m));
        }
      });
      const die = (err: Error) => {
        this.dead = err;
        reject(err);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      this.worker.on('error', (err) => die(new Error(`a --jobs worker failed: ${err.message}`)));
      this.worker.on('exit', (code) => die(new Error(`a --jobs worker stopped (exit code ${code})`)));
    });
    this.ready.catch(() => undefined);
  }

  run(id: number, fixedId: number, fixed: Image2D, moving: Image2D[], names: string[], tick: Pending['tick']): Promise<FrameRegistration[]> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, tick });
      const task: WorkerTask = { id, fixedId, moving, names, ...(this.fixedSent !== fixedId ? { fixed } : {}) };
      this.fixedSent = fixedId;
      this.worker.postMessage(task);
    });
  }
}

function revive(m: { name: string; message: string; exitCode?: number }): Error {
  if (m.name === 'UserError') return new UserError(m.message, m.exitCode ?? 1);
  const e = new Error(m.message);
  e.name = m.name;
  return e;
}

/** N workers; `lane(k)` is worker k, used by one of run-frames' N concurrent lanes. */
export class FramePool {
  private workers: PoolWorker[];
  private nextId = 0;

  constructor(count: number, spec: RegistrarSpec, backend: BackendChoice) {
    if (!(Number.isInteger(count) && count >= 1)) throw new Error(`jobs must be a whole number ≥ 1, got ${count}`);
    this.workers = Array.from({ length: count }, () => new PoolWorker({ spec, backend }));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Resolves when every worker has its backend and registrar; rejects with the first failure. */
  async ready(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ready));
  }

  register(lane: number, fixedId: number, fixed: Image2D, moving: Image2D[], names: string[], tick: Pending['tick']): Promise<FrameRegistration[]> {
    return this.workers[lane].run(this.nextId++, fixedId, fixed, moving, names, tick);
  }

  /** Stops the workers beyond the first `n` (fewer frames than workers). */
  async shrink(n: number): Promise<void> {
    const extra = this.workers.splice(Math.max(1, n));
    await Promise.all(extra.map((w) => w.worker.terminate()));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
