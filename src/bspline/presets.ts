/**
 * Named B-spline parameter sets (`--preset`), for cases where one default cannot serve. Each is
 * a set of changes to BSPLINE_DEFAULTS, chosen on the real-data benchmark's cases of its kind
 * (`npm run bench -- real`, docs/experiments.md); options given on the command line win.
 */
import type { BsplineOptions } from './register.js';

export type PresetName = 'generic' | 'lung' | 'cardiac';

export const BSPLINE_PRESETS: Record<PresetName, { describe: string; options: Partial<BsplineOptions> }> = {
  generic: { describe: 'the defaults', options: {} },
  // both measured (2026-12-03) against the defaults on their own cases: NCC, which ignores the
  // slow intensity drift of a series, was better on 2 of the 3 breathing cases (mean TRE 0.114
  // against 0.120 mm) and on the cardiac ones (TRE 0.060 against 0.065 mm; LV Dice 0.9353
  // against 0.9350), at 1.2× the time: today the same set, kept apart to be tuned apart
  lung: { describe: 'breathing motion: NCC, for sliding organs under a slow intensity drift', options: { loss: 'ncc' } },
  cardiac: { describe: 'short-axis cine: NCC, for the contracting, twisting heart', options: { loss: 'ncc' } },
};

export const PRESET_NAMES = Object.keys(BSPLINE_PRESETS) as PresetName[];
