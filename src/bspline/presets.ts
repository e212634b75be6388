/**
 * Named B-spline parameter sets (`--preset`), for cases where one default cannot serve. Each is
 * a set of changes to BSPLINE_DEFAULTS, chosen on the real-data benchmark's cases of its kind
 * (`npm run bench -- real`, docs/experiments.md); options given on the command line win.
 */
import type { BsplineOptions } from './register.js';

export type PresetName = 'generic' | 'lung' | 'cardiac';

export const BSPLINE_PRESETS: Record<PresetName, { describe: string; options: Partial<BsplineOptions> }> = {
  generic: { describe: 'the defaults', options: {} },
  lung: { describe: 'breathing motion (sliding organs, large displacements at the diaphragm)', options: {} },
  cardiac: { describe: 'short-axis cine (the heart contracts and twists inside still surroundings)', options: {} },
};

export const PRESET_NAMES = Object.keys(BSPLINE_PRESETS) as PresetName[];
