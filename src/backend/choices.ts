import os from 'node:os';

/** The backend names and limits the command line offers (no tfjs here: `--help` loads nothing heavy). */
export type BackendChoice = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const BACKEND_CHOICES: BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/**
 * At most as many wasm threads as the build's pre-started worker pool (PTHREAD_POOL_SIZE = 8):
 * a thread beyond it would start a worker after the temporary files are gone.
 */
export const MAX_THREADS = 8;
/** `--threads auto`: one per available core, at most 4. */
export function autoThreads(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}
