import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Third-party test data, present in CI beside the repository, absent from a user's clone. */
/** Whether @tensorflow/tfjs-node's native binding is built here (absent after a plain `npm ci` offline). */
export const TFJS_NODE_BUILT = existsSync(path.join(ROOT, 'node_modules', '@tensorflow', 'tfjs-node', 'lib'));
export const BIRL = path.resolve(ROOT, '..', 'shared', 'data', 'birl_artificial');
export const HAVE_BIRL = existsSync(path.join(BIRL, 'artificial_reference.csv'));

/** `describe`, or `describe.skip` with a message when ../shared/data is absent. */
export function describeWithBirl(name: string, fn: () => void): void {
  if (!HAVE_BIRL) {
    console.warn(`skipping "${name}": ${BIRL} is absent (it ships with CI, not with a clone)`);
    describe.skip(name, fn);
  } else describe(name, fn);
}

/** Real cardiac cine MR (Sunnybrook, CC0) beside the repository in CI; absent from a clone. */
export const SUNNYBROOK = path.resolve(ROOT, '..', 'shared', 'data', 'sunnybrook');
export const HAVE_SUNNYBROOK = existsSync(path.join(SUNNYBROOK, 'index.json'));

/** `describe`, or `describe.skip` with a message when ../shared/data/sunnybrook is absent. */
export function describeWithSunnybrook(name: string, fn: () => void): void {
  if (!HAVE_SUNNYBROOK) {
    console.warn(`skipping "${name}": ${SUNNYBROOK} is absent (it ships with CI, not with a clone)`);
    describe.skip(name, fn);
  } else describe(name, fn);
}

/**
 * `test`, or `test.skip` with a message when no WebGPU adapter is found here (`--backend webgpu`
 * needs one; most CI machines and this project's have none), so the check shows as skipped.
 */
export async function testWithWebGpu(): Promise<typeof test> {
  const { webgpuUnavailable } = await import('../src/backend/index.js');
  const why = await webgpuUnavailable();
  if (why === null) return test;
  console.warn(`skipping the webgpu checks: ${why}`);
  return test.skip;
}

export function tmpDir(prefix = 'r2n2-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`npm test` builds first) the way a user does. */
export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'r2n2.js'), ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
    timeout: 300_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `runCli` without waiting: several CLI processes at once (array jobs, concurrent shards). */
export function runCliAsync(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'r2n2.js'), ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * Runs the CLI's `main` in this process: the same parsing, commands and messages as `runCli`
 * without starting Node and loading every module again (≈ 1 s a call on 2 cores), for the many
 * tests where the exit code and the messages matter, not the process. stdout and stderr
 * (messages, warnings and pino's logs) are captured while it runs; the calls must not overlap.
 * Spawn (`runCli`) where the process is the point: signals, concurrent runs, exit codes of a
 * crash, output printed by native code.
 */
export async function runCliHere(args: string[]): Promise<CliResult> {
  const { main } = await import('../src/cli.js');
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  const capture = (add: (s: string) => void) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = capture((s) => (stdout += s));
  process.stderr.write = capture((s) => (stderr += s));
  // yargs prints --help and --version with console.log (jest's console would decorate it)
  const { log, error } = console;
  console.log = (...a: unknown[]) => void (stdout += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (stderr += a.join(' ') + '\n');
  let code: number;
  try {
    code = await main(args);
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    console.log = log;
    console.error = error;
  }
  return { code, stdout, stderr };
}

/**
 * Runs the built CLI and sends it `signal` as soon as its stderr matches `when` (e.g. a log line
 * of `--log-level info`), the way a user presses Ctrl-C; resolves when it has exited.
 */
export function runCliSignalled(args: string[], when: RegExp, signal: NodeJS.Signals): Promise<CliResult & { signalled: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'r2n2.js'), ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!signalled && when.test(stderr)) {
        signalled = true;
        child.kill(signal);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, signalled });
    });
  });
}

/** A deterministic LCG in [0, 1): test data that is the same on every run. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (1664525 * s + 1013904223) >>> 0) / 2 ** 32;
}

/** `n` seeded uniform values in [lo, hi). */
export function seededUniform(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  const r = lcg(seed);
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * r());
}
