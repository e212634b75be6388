/** What every command shares: global options, the logger, progress bars. */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Logger } from 'pino';
import type cliProgressModule from 'cli-progress';
import type { Argv } from 'yargs';
import { UserError, signalExitCode } from '../errors.js';
import { RESULT_FORMATS, type ResultFormat } from '../io/result-formats.js';
import type { BackendInfo } from '../backend/index.js';
import { type BackendChoice, BACKEND_CHOICES, MAX_THREADS, autoThreads } from '../backend/choices.js';
import { POOLABLE_BACKENDS, defaultJobs } from '../app/frame-pool.js';

const require = createRequire(import.meta.url);

export interface GlobalArgs {
  'log-level': string;
  quiet: boolean;
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('log-level', { type: 'string', choices: LOG_LEVELS, default: 'warn', describe: 'structured (JSON) log level on stderr', global: true })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress bars and no logs below warn', global: true })
    .config(
      'config',
      'a JSON file of options, e.g. the settings.json of an earlier result (a re-run with its exact settings); options on the command line win',
    );
}

/** The result options of the registration commands: `--format`, `--write-inverse`, `--stack`. */
export function formatOption<T>(y: Argv<T>) {
  return y
    .option('format', {
      type: 'string',
      choices: RESULT_FORMATS as unknown as string[],
      default: 'nii.gz',
      describe: 'image format of the fields, warped frames, inverses and stacks (ITK reads each; a result keeps the format it was started in)',
    })
    .option('write-inverse', {
      type: 'boolean',
      default: false,
      describe: 'also write inverse/<frame>.nii.gz: the inverse of each field (Newton-solved fixed point; |T(T⁻¹(q)) − q| in summary.json)',
    })
    .option('stack', {
      type: 'boolean',
      default: true,
      describe:
        'when complete, also write warped.nii.gz and fields.nii.gz: every frame in series order, time as the last axis (--no-stack: per-frame files and motion.csv only)',
    });
}

/**
 * `--help` in groups (title → options; those a command lacks are skipped) and without the options
 * of experiments that were measured and kept off (`hidden`: they still work, and `--help
 * --show-hidden` lists them).
 */
export function helpGroups<T>(y: Argv<T>, groups: Record<string, string[]>, hidden: string[] = []): Argv<T> {
  let a = y;
  for (const [title, keys] of Object.entries(groups)) a = a.group(keys, title);
  for (const k of hidden) a = a.hide(k);
  return hidden.length ? a.showHidden('show-hidden', 'with --help: also the options of experiments that were measured and kept off (docs/experiments.md)') : a;
}

/** Options that control one run, not what it computes: left out of settings.json. */
const RUN_CONTROL = new Set(['_', '$0', 'config', 'out', 'force', 'shard', 'resume', 'json', 'quiet', 'q', 'log-level', 'help', 'h', 'version', 'time-limit']);

/**
 * `OUT/settings.json`: every option the run used (defaults included, positionals and run control
 * left out), in the form `--config` reads, so that the same computation can be run again on other
 * inputs or by a colleague: `r2n2 … SERIES --config OUT/settings.json --out OUT2`.
 */
export async function writeSettings(out: string, argv: Record<string, unknown>, positionals: string[]): Promise<void> {
  const { writeTextAtomic } = await import('../io/atomic.js');
  const settings = Object.fromEntries(
    Object.entries(argv).filter(([k, v]) => v !== undefined && !RUN_CONTROL.has(k) && !positionals.includes(k) && !/[A-Z]/.test(k)),
  );
  await writeTextAtomic(path.join(out, 'settings.json'), JSON.stringify(settings, null, 1) + '\n');
}

export interface Context {
  log: Logger;
  quiet: boolean;
  /** A progress bar on stderr, drawn only when stderr is a terminal and not --quiet. */
  progress(label: string, total: number): Progress;
}

export interface Progress {
  tick(by?: number, info?: string): void;
  /** A new total (an estimate made exact as the work is known). */
  setTotal(total: number): void;
  stop(): void;
}

export function makeContext(argv: GlobalArgs): Context {
  const quiet = Boolean(argv.quiet);
  const level = quiet && ['trace', 'debug', 'info'].includes(argv['log-level']) ? 'warn' : argv['log-level'];
  // through process.stderr (synchronous for files, pipes and terminals on Linux and macOS), so that
  // whoever runs the CLI in-process (the tests) sees the logs with the other messages
  // pino and cli-progress (CommonJS) loaded when a command runs, not for --help
  const { pino } = require('pino') as typeof import('pino');
  const cliProgress = require('cli-progress') as typeof cliProgressModule;
  const log = pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, process.stderr);
  const draw = !quiet && Boolean(process.stderr.isTTY);
  return {
    log,
    quiet,
    progress(label: string, total: number): Progress {
      if (!draw) return { tick() {}, setTotal() {}, stop() {} };
      const bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: `${label} [{bar}] {value}/{total} {info} eta {eta_formatted}`, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { info: '' });
      return {
        tick(by = 1, info = '') {
          bar.increment(by, { info });
        },
        setTotal(total: number) {
          bar.setTotal(total);
        },
        stop() {
          bar.stop();
        },
      };
    },
  };
}

/** Fixed-width number for tables; '–' for null/NaN. */
export function fmt(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits);
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}

export interface BackendArgs {
  backend: BackendChoice;
  threads: string;
}

/** `--backend` and `--threads` for every compute command. */
/** `--backend`'s default: the environment's R2N2_BACKEND when it names a backend, else auto. */
function defaultBackend(): BackendChoice {
  const e = process.env.R2N2_BACKEND;
  return e && (BACKEND_CHOICES as string[]).includes(e) ? (e as BackendChoice) : 'auto';
}

export function backendOption<T>(y: Argv<T>) {
  return y
    .option('backend', {
      type: 'string',
      choices: BACKEND_CHOICES,
      default: defaultBackend(),
      describe:
        'compute backend (default: $R2N2_BACKEND, else auto): auto tries tensorflow (tfjs-node-gpu, tfjs-node), then webgpu on a GPU (r2n2 train and register series only), then wasm, then cpu',
    })
    .option('threads', {
      type: 'string',
      default: '1',
      describe: `compute threads (wasm, tensorflow), 1–${MAX_THREADS} or auto (one per core, at most 4); the same results for any count (docs/backends.md: what they gain)`,
    });
}

export interface JobsArgs {
  jobs?: number;
}

/** `--jobs` for the registration commands. */
export function jobsOption<T>(y: Argv<T>) {
  return y.option('jobs', {
    alias: 'j',
    type: 'number',
    describe: `frames registered at once, each in a worker thread with its own ${POOLABLE_BACKENDS.join('/')} backend (same results as --jobs 1) [default: one per core, here ${defaultJobs()}]`,
  });
}

/** The `--jobs` to use on `backend`: workers only split wasm and cpu work (a GPU or libtensorflow backend keeps one). */
export function resolveJobs(args: JobsArgs, backend: BackendInfo, ctx: Context): number {
  const jobs = args.jobs ?? defaultJobs();
  if (!(Number.isInteger(jobs) && jobs >= 1 && jobs <= 256)) throw new UserError(`--jobs must be a whole number from 1 to 256, got ${args.jobs}`);
  if (jobs > 1 && !POOLABLE_BACKENDS.includes(backend.name)) {
    ctx.log.info({ backend: backend.name, jobs }, '--jobs: one job on this backend (it uses the device or its own threads)');
    return 1;
  }
  return jobs;
}

/** `--threads`: 'auto' → one per core (at most 4), else an integer in [1, MAX_THREADS]. */
export function parseThreads(spec: string | number | undefined): number {
  if (spec === undefined || String(spec).trim() === 'auto') return autoThreads();
  const n = Number(String(spec).trim());
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_THREADS)) throw new UserError(`--threads must be auto or an integer from 1 to ${MAX_THREADS}, got "${spec}"`);
  return n;
}

/** Initialises the backend, logs the choice and prints its warning; UserError when unavailable. */
export async function startBackend(args: BackendArgs, ctx: Context, o: { webgpu?: boolean; what?: string } = {}): Promise<BackendInfo> {
  const threads = parseThreads(args.threads);
  let info: BackendInfo;
  try {
    // tfjs loads here, when a command runs (not for --help)
    const { initBackend } = await import('../backend/index.js');
    info = await initBackend(args.backend, { ...o, threads });
  } catch (err) {
    throw new UserError((err as Error).message);
  }
  ctx.log.info(
    { backend: info.name, provider: info.provider, adapter: info.adapter, simd: info.simd, threads: info.threads, skipped: info.skipped },
    'compute backend',
  );
  if (info.warning && !ctx.quiet) process.stderr.write(`warning: ${info.warning}\n`);
  return info;
}

/** Parses `--shard I/N` (0 ≤ I < N). */
export function parseShard(spec: string | undefined): { index: number; count: number } | undefined {
  if (spec === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(String(spec).trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) throw new UserError(`--shard must be I/N with 0 ≤ I < N (e.g. 0/4 for the first of four jobs), got "${spec}"`);
  return { index, count };
}

/** The backend as recorded in summary.json (`backendDetail`). */
export const backendDetail = (b: BackendInfo) => ({ provider: b.provider, adapter: b.adapter ?? null, simd: b.simd ?? null, threads: b.threads ?? null });

/**
 * A long job's graceful stop: the first SIGINT (Ctrl-C) or SIGTERM aborts `signal`, and the job
 * finishes its unit of work (an iteration, a batch of frames), saves what it has and returns; a
 * second signal exits at once with the signal's exit code. `done` (what the job does on the first
 * signal) is printed on stderr. Call `dispose()` when the job has returned.
 */
export function stopOnSignals(done: string): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ctl.signal.aborted) {
      if (process.stderr.isTTY) process.stderr.write('\x1b[?25h\n'); // the progress bar hides the cursor
      process.exit(signalExitCode(sig));
    }
    ctl.abort(sig);
    process.stderr.write(`\n${sig}: ${done} (${sig === 'SIGINT' ? 'Ctrl-C' : sig} again to quit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: ctl.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The one-line error that ends an interrupted run of frames (after its report is printed). */
export function framesInterrupted(report: { interrupted: string | null; registered: unknown[]; missing: string[] }): UserError | null {
  if (!report.interrupted) return null;
  return new UserError(
    `interrupted (${report.interrupted}) after ${report.registered.length} frame(s); their results are kept, and the same command continues with the ${report.missing.length} left`,
    signalExitCode(report.interrupted),
  );
}

/** The result options every registration command reads (`formatOption`, --force, --qc, --stack). */
export interface ResultArgs {
  force: boolean;
  qc: boolean;
  stack: boolean;
  'write-inverse': boolean;
  format: string;
}

/** What every frame's run shares, one series or several (app/run-frames RunOptions without out and hooks). */
export function frameRunOptions<S>(
  argv: ResultArgs,
  o: { signal: AbortSignal; shard?: { index: number; count: number }; backend: string; jobs: { count: number; spec: S; backend: BackendChoice } },
) {
  return {
    signal: o.signal,
    force: argv.force,
    shard: o.shard,
    qc: argv.qc,
    stack: argv.stack,
    writeInverse: argv['write-inverse'],
    format: argv.format as ResultFormat,
    backend: o.backend,
    jobs: o.jobs,
  };
}
