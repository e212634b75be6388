// What the benchmark suites share: where the repository and ../shared/data are, the options every
// suite reads (flags of `npm run bench`, parsed in run.ts), and small numeric helpers.
// The suites are compiled to dist-bench/ (tsconfig.bench.json) and import the built dist/, so a
// benchmark measures exactly the code the CLI runs.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DisplacementField } from '../dist/core/transformation/field.js';
import { treReport, type FrameTre, type TreStats } from '../dist/core/metrics/tre.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist-bench/). */
export const ROOT = path.resolve(here, '..');
export const SHARED = path.resolve(ROOT, '..', 'shared', 'data');
export const BUNDLED_MODEL = path.join(ROOT, 'fixtures', 'models', 'phantom');

/** The options of `npm run bench -- <suites..> [flags]` (run.ts documents each flag). */
export interface BenchOptions {
  /** r2n2, real: the model directory. */
  model: string;
  /** r2n2-models: model or checkpoint directories. */
  models: string[];
  /** r2n2, real: steps per pass (r2n2-models: each of them); empty = the model's training steps. */
  steps: number[];
  /** r2n2: phantom size when the model does not record one. */
  size: number;
  /** r2n2: the R2N2 variants, "T[:x|y|xy|all][:rN]" each; empty = the default set. */
  variants: string[];
  /** r2n2-models: phantom seeds and frames per seed. */
  seeds: number[];
  picks: number;
  /** gaussian-bound: Gaussian counts. */
  boundSteps: number[];
  /** real: which kinds of case (dice, tre, series), methods, patients, and their sizes. */
  cases: string[];
  /** real: the halves of bench/cases.json to run (`--cases tune|test|all`). */
  halves: ('tune' | 'test')[];
  methods: string[];
  patients: string[];
  /** real: only the TRE cases whose name matches this regular expression. */
  only?: string;
  diceLimit: number;
  frames: number;
  stride: number;
  seriesFrames: number;
  jobs: number | null;
  wasmPairs: number;
  /** real: extra B-spline methods, name → options over the defaults (JSON). */
  bsplineVariants: Record<string, Record<string, unknown>>;
}

/** One registration as a suite scores it: the physical field, its seconds and parameter count. */
export interface MethodResult {
  field: DisplacementField;
  seconds: number;
  parameters: number;
  /** The moving label map warped by the method itself (native elastix: transformix, nearest neighbour). */
  warpedLabels?: ArrayLike<number> | null;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const mean = <K extends string>(xs: Record<K, number>[], k: K): number => xs.reduce((a, r) => a + r[k], 0) / xs.length;
/** Evenly spread frame indices in [0, frames), the fixed frame f replaced by its neighbour. */
export const spreadPicks = (count: number, frames: number, f: number): number[] =>
  Array.from({ length: count }, (_, k) => Math.round(((k + 0.5) * frames) / count)).map((t) => (t === f ? (t + 1) % frames : t));

type Numeric<T> = { [K in keyof T]: number };
const numeric = <T extends object>(s: T): Numeric<T> => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v ?? NaN])) as Numeric<T>;

/** treReport's before and after statistics as numbers (px figures NaN where a frame has no geometry); throws when a frame has no result. */
export function scoreTre(frames: FrameTre[]): { before: Numeric<TreStats>; after: Numeric<TreStats> } {
  const r = treReport(frames);
  if (!r.after) throw new Error('a frame has no registration result to score');
  return { before: numeric(r.before), after: numeric(r.after) };
}
