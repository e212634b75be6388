/**
 * `r2n2 synth` as a function: writes generated training pairs (the pairs `train --synth` and
 * `train --stills` draw) so that a person can look at them:
 *
 *   OUT/pair_KKK/fixed.nrrd, moving.nrrd   the pair as the network sees it (n × n, 1 mm pixels)
 *   OUT/pair_KKK/field.nii.gz              the true field (mm = pixels): moving(q + u(q)) = fixed(q)
 *   OUT/overview.png                       per pair: fixed | moving | moving through the true field | |fixed − moving|
 *   OUT/synth.json                         the settings, and per pair its source, motion kinds and amplitude
 *
 * Every draw comes from one generator seeded by `seed`, so the same settings write the same
 * pairs. The directory is built beside OUT and renamed into place when complete.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { UserError } from '../errors.js';
import { identityGeometry } from '../core/image/geometry.js';
import { fieldFromNormalised } from '../core/transformation/field.js';
import { warpByField } from '../core/synth/images.js';
import { writeField, writeGreyPng, writeImage2D } from '../io/image.js';
import { writeDirAtomic, writeTextAtomic } from '../io/atomic.js';
import { generatedPair, listStills, loadStills, RENDER_FACTOR } from './train-data.js';
import type { SynthSettings } from './train-settings.js';

export interface SynthJob {
  out: string;
  /** Stills to set in motion (files or directories); none: synthetic label images. */
  stills: string[];
  count: number;
  /** Side of the pairs (the network's image size). */
  size: number;
  seed: number;
  synth: SynthSettings;
  force?: boolean;
  onPair?: (k: number) => void;
}

export interface SynthInfo {
  out: string;
  pairs: number;
  size: number;
  /** Mean and largest amplitude of the true fields, pixels. */
  meanAmplitudePx: number;
  maxAmplitudePx: number;
  /** Mean |fixed − moving through the true field| over the pairs against mean |fixed − moving| (normalised intensities). */
  residualAfterTruth: number;
  differenceBefore: number;
}

/** Rows of the overview picture (the first pairs). */
const OVERVIEW_ROWS = 8;

export async function synth(job: SynthJob): Promise<SynthInfo> {
  if (!(Number.isInteger(job.count) && job.count >= 1 && job.count <= 10000))
    throw new UserError(`--count must be an integer from 1 to 10000, got ${job.count}`);
  if (!(Number.isInteger(job.size) && job.size >= 16 && job.size <= 512)) throw new UserError(`--size must be an integer from 16 to 512, got ${job.size}`);
  if (!Number.isInteger(job.seed)) throw new UserError(`--seed must be an integer, got ${job.seed}`);
  const entries = await fs.readdir(job.out).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    if (err.code === 'ENOTDIR') throw new UserError(`--out ${job.out} is a file; give a directory`);
    throw err;
  });
  if (entries.filter((e) => !e.startsWith('.r2n2-tmp-')).length > 0 && !job.force)
    throw new UserError(`--out ${job.out} exists and is not empty; choose another directory or pass --force to replace it`);
  const files = job.stills.length ? await listStills(job.stills) : [];
  const n = job.size;
  const stills = files.length ? await loadStills(files, RENDER_FACTOR * n) : null;
  const rng = seedrandom(`r2n2-synth-${job.seed}`);
  const geometry = identityGeometry(n, n);
  const h = (n - 1) / 2;

  return writeDirAtomic(job.out, async (tmp) => {
    const rows = Math.min(OVERVIEW_ROWS, job.count);
    const tile = n + 2;
    const W = 4 * tile;
    const picture = new Float32Array(W * rows * tile).fill(1);
    const record: { name: string; source: string; kinds: string[]; amplitudePx: number }[] = [];
    let sumAmp = 0;
    let maxAmp = 0;
    let after = 0;
    let before = 0;
    for (let k = 0; k < job.count; k++) {
      const p = generatedPair(stills, n, job.synth, rng);
      const name = `pair_${String(k).padStart(Math.max(3, String(job.count - 1).length), '0')}`;
      const dir = path.join(tmp, name);
      await fs.mkdir(dir, { recursive: true });
      await writeImage2D(path.join(dir, 'fixed.nrrd'), { geometry, data: p.fixed });
      await writeImage2D(path.join(dir, 'moving.nrrd'), { geometry, data: p.moving });
      await writeField(path.join(dir, 'field.nii.gz'), fieldFromNormalised(p.field, geometry));
      const warped = warpByField(p.moving, n, p.field);
      let a = 0;
      let b = 0;
      for (let q = 0; q < n * n; q++) {
        a += Math.abs(warped[q] - p.fixed[q]);
        b += Math.abs(p.moving[q] - p.fixed[q]);
      }
      after += a / (n * n);
      before += b / (n * n);
      const ampPx = p.amplitude * h;
      sumAmp += ampPx;
      maxAmp = Math.max(maxAmp, ampPx);
      record.push({ name, source: p.still === null ? 'synthetic' : path.resolve(files[p.still]), kinds: p.kinds, amplitudePx: ampPx });
      if (k < rows) {
        // tiles on a [0, 1] scale: the frames' normalised intensities (±2), the difference up to 2
        const tiles = [p.fixed, p.moving, warped].map((t) => Float32Array.from(t, (v) => (v + 2) / 4));
        tiles.push(Float32Array.from(p.fixed, (v, q) => Math.min(1, Math.abs(v - p.moving[q]) / 2)));
        tiles.forEach((t, c) => {
          for (let i = 0; i < n; i++) picture.set(t.subarray(i * n, (i + 1) * n), (k * tile + 1 + i) * W + c * tile + 1);
        });
      }
      job.onPair?.(k);
    }
    await writeGreyPng(path.join(tmp, 'overview.png'), { data: picture, W, H: rows * tile }, [0, 1]);
    const info: SynthInfo = {
      out: job.out,
      pairs: job.count,
      size: n,
      meanAmplitudePx: sumAmp / job.count,
      maxAmplitudePx: maxAmp,
      residualAfterTruth: after / job.count,
      differenceBefore: before / job.count,
    };
    const settings = { stills: files.map((f) => path.resolve(f)), count: job.count, size: n, seed: job.seed, ...job.synth };
    await writeTextAtomic(path.join(tmp, 'synth.json'), JSON.stringify({ format: 'r2n2-synth', version: 1, settings, info, pairs: record }, null, 1) + '\n');
    return info;
  });
}
