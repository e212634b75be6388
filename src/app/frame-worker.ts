/**
 * A `--jobs` worker thread: its own compute backend (single-threaded: the jobs use the cores)
 * and its own registrar, built from the spec it is started with. Messages in:
 * `{ id, fixedId, fixed?, moving[] }` (the fixed frame is sent once per `fixedId`); out:
 * `{ type: 'tick', id, info, units? }`, then `{ type: 'done', id, results }` or
 * `{ type: 'error', id, name, message, exitCode? }`. `{ type: 'ready' }` once started, or
 * `{ type: 'error', id: -1, … }` when the backend or the registrar cannot be made.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, type BackendChoice } from '../backend/index.js';
import type { Image2D } from '../io/image.js';
import { createRegistrar } from './registrars.js';
import type { FrameRegistration, Registrar, RegistrarSpec } from './registrar.js';

export interface WorkerStart {
  spec: RegistrarSpec;
  backend: BackendChoice;
}
export interface WorkerTask {
  id: number;
  fixedId: number;
  fixed?: Image2D;
  moving: Image2D[];
  /** The moving frames' names. */
  names: string[];
}
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'tick'; id: number; info: string; units?: number }
  | { type: 'done'; id: number; results: FrameRegistration[] }
  | { type: 'error'; id: number; name: string; message: string; exitCode?: number };

const port = parentPort;
if (!port) throw new Error('frame-worker.js runs as a worker thread of r2n2 --jobs');
const post = (m: WorkerReply) => port.postMessage(m);
const fail = (id: number, err: unknown) => {
  const e = err as Error & { exitCode?: number };
  post({ type: 'error', id, name: e?.name ?? 'Error', message: e?.message ?? String(err), exitCode: e?.exitCode });
};

const start = workerData as WorkerStart;
let registrar: Registrar;
let fixed: { id: number; img: Image2D } | null = null;
let queue: Promise<void> = Promise.resolve();

try {
  await initBackend(start.backend, { threads: 1, webgpu: start.spec.kind === 'r2n2' });
  registrar = await createRegistrar(start.spec);
  port.on('message', (task: WorkerTask) => {
    // one task at a time, in arrival order
    queue = queue.then(() => run(task));
  });
  post({ type: 'ready' });
} catch (err) {
  fail(-1, err);
}

async function run(task: WorkerTask): Promise<void> {
  try {
    if (task.fixed) fixed = { id: task.fixedId, img: task.fixed };
    if (!fixed || fixed.id !== task.fixedId) throw new Error(`worker: fixed frame ${task.fixedId} was never sent`);
    const tick = (info: string, units?: number) => post({ type: 'tick', id: task.id, info, units });
    const results =
      registrar.registerBatch && task.moving.length > 1
        ? await registrar.registerBatch(fixed.img, task.moving, tick, task.names)
        : [await registrar.register(fixed.img, task.moving[0], (info) => tick(info), task.names[0])];
    post({ type: 'done', id: task.id, results });
  } catch (err) {
    fail(task.id, err);
  }
}
