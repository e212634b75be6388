/**
 * The result directory contract, written by `register series` and `baseline bspline`, read by
 * `evaluate`:
 *
 *   summary.json          { format: "r2n2-result", version: 1, method, backend, fixedFrame,
 *                           series, created, frames: [{ name, field, warped, params, seconds,
 *                           parameters }] }  (paths relative to the result directory)
 *   fields/<frame>.nii.gz displacement u in mm on the fixed frame's grid; a fixed-space point
 *                         p maps to the moving frame at p + u(p) (ITK / transformix -def all)
 *   warped/<frame>.nii.gz the moving frame resampled onto the fixed grid
 *   params/<frame>.json   the transformation's own parameters (method specific)
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { R2N2_VERSION } from '../version.js';
import { UserError } from '../errors.js';
import { writeTextAtomic } from './atomic.js';

export interface ResultFrame {
  name: string;
  /** Displacement field file, relative to the result directory. */
  field: string;
  warped?: string;
  params?: string;
  /** Wall time to register this frame, seconds. */
  seconds: number;
  /** Number of transformation parameters (compactness). */
  parameters: number;
  /** 'identity' when the method made this frame worse than none and the identity was written. */
  fallback?: 'identity';
  /** The inverse field (`--write-inverse`) and its |T(T⁻¹(q)) − q| at most, px. */
  inverse?: string;
  inverseResidualMaxPx?: number;
  /** R2N2 `--uncertainty K`: the std image and its mean over pixels, mm. */
  uncertainty?: string;
  uncertaintyMm?: number;
}

export interface ResultSummary {
  format: 'r2n2-result';
  version: 1;
  method: string;
  backend: string;
  fixedFrame: string;
  series?: string;
  created?: string;
  frames: ResultFrame[];
  [extra: string]: unknown;
}

/**
 * The frames a result left as the identity: `fallback`, written as the identity because the
 * registration made them worse; `noStep`, no transformation parameter kept (R2N2's sequence
 * stopped before its first step: the never-worse guard or `--stop-threshold`).
 */
export function identityFrames(frames: readonly Pick<ResultFrame, 'name' | 'fallback' | 'parameters'>[]): { fallback: string[]; noStep: string[] } {
  return {
    fallback: frames.filter((f) => f.fallback === 'identity').map((f) => f.name),
    noStep: frames.filter((f) => f.fallback !== 'identity' && f.parameters === 0).map((f) => f.name),
  };
}

export const SUMMARY_FILE = 'summary.json';

import type { ResultFormat } from './result-formats.js';
export { type ResultFormat, RESULT_FORMATS } from './result-formats.js';

export const resultPaths = (frame: string, format: ResultFormat = 'nii.gz') => ({
  field: `fields/${frame}.${format}`,
  warped: `warped/${frame}.${format}`,
  params: `params/${frame}.json`,
});

export async function writeSummary(dir: string, summary: ResultSummary): Promise<void> {
  // the version that wrote it, after the format fields
  const { format, version, ...rest } = summary;
  await writeTextAtomic(path.join(dir, SUMMARY_FILE), JSON.stringify({ format, version, r2n2Version: R2N2_VERSION, ...rest }, null, 2) + '\n');
}

/** Reads and validates `DIR/summary.json`; errors name the file and what is wrong. */
export async function readSummary(dir: string): Promise<ResultSummary> {
  const file = path.join(dir, SUMMARY_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new UserError(`${file} not found; --result must be a directory written by "r2n2 register series" or "r2n2 baseline bspline"`);
  }
  let s: ResultSummary;
  try {
    s = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${file} is not valid JSON (${(err as Error).message}); the run that wrote it was interrupted: rerun it`);
  }
  const bad = (what: string) => new UserError(`${file}: ${what}; rerun the registration that wrote it`);
  if (!s || typeof s !== 'object') throw bad('not a JSON object');
  if (typeof s.fixedFrame !== 'string' || !s.fixedFrame) throw bad('"fixedFrame" is missing');
  if (!Array.isArray(s.frames)) throw bad('"frames" is missing');
  s.frames.forEach((f, i) => {
    if (!f || typeof f.name !== 'string' || typeof f.field !== 'string') throw bad(`frames[${i}] needs "name" and "field"`);
  });
  return s;
}

/** Absolute path of a file named relative to a result directory. */
export function resultFile(dir: string, rel: string): string {
  return path.isAbsolute(rel) ? rel : path.join(dir, rel);
}
