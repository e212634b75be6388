/**
 * Training data without limit (core/synth, `train --synth / --stills`, `r2n2 synth`): random
 * motions with a known field, synthetic images, pairs that the true field registers, the teacher
 * term with items that have no field, and the CLI (mix recorded, resume bit for bit, errors).
 */
import * as tf from '@tensorflow/tfjs-core';
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { initBackend } from '../src/backend/index.js';
import { MOTION_KINDS, drawMotion, motionExtent, motionField } from '../src/core/synth/fields.js';
import { renderPair, synthImage, warpByField } from '../src/core/synth/images.js';
import { resampleAligned } from '../src/core/image/resample.js';
import { type R2N2Config, initWeights, disposeWeights } from '../src/core/r2n2/network.js';
import { sequenceLoss } from '../src/core/r2n2/sequence.js';
import { readField, readImage2D } from '../src/io/image.js';
import { BIRL, HAVE_BIRL, runCliHere, seededUniform, tmpDir } from './helpers.js';

beforeAll(async () => {
  await initBackend('wasm');
});
let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir('r2n2-synth-');
});
afterAll(() => t.cleanup());

const meanAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
};

describe('random motions', () => {
  test.each(MOTION_KINDS.map((k) => [k]))('%s: seeded, within the amplitude, never folding', (kind) => {
    for (let seed = 0; seed < 6; seed++) {
      const m = drawMotion(seedrandom(`m${seed}`), { kinds: [kind], amplitude: 0.2, n: 64 });
      const again = drawMotion(seedrandom(`m${seed}`), { kinds: [kind], amplitude: 0.2, n: 64 });
      expect(m.kinds.every((k) => k === kind)).toBe(true);
      expect(again.fn(0.13, -0.4)).toEqual(m.fn(0.13, -0.4));
      const e = motionExtent(m.fn);
      expect(e.peak).toBeCloseTo(m.amplitude, 9);
      expect(m.amplitude).toBeGreaterThan(0);
      expect(m.amplitude).toBeLessThanOrEqual(0.2 + 1e-9);
      expect(e.minDet).toBeGreaterThanOrEqual(0.25);
    }
  });

  test('the field on a grid is the motion at its normalised positions, alike at two sizes', () => {
    const m = drawMotion(seedrandom('grid'), { kinds: ['smooth', 'cardiac'], amplitude: 0.1, n: 33 });
    const u33 = motionField(m.fn, 33);
    const u17 = motionField(m.fn, 17);
    // pixel (i, j) of 17 is pixel (2i, 2j) of 33 (aligned corners)
    for (const [i, j] of [
      [0, 0],
      [5, 11],
      [16, 16],
    ]) {
      expect(u17[i * 17 + j]).toBeCloseTo(u33[2 * i * 33 + 2 * j], 6);
      expect(u17[289 + i * 17 + j]).toBeCloseTo(u33[1089 + 2 * i * 33 + 2 * j], 6);
      const [x, y] = [-1 + j / 8, -1 + i / 8];
      expect(u17[i * 17 + j]).toBeCloseTo(m.fn(x, y)[0], 6);
    }
    // and resampling the fine field reproduces the coarse one (normalised units need no rescaling)
    const back = resampleAligned(u33, 2, 33, 33, 17, 17);
    back.forEach((v, k) => expect(v).toBeCloseTo(u17[k], 6));
  });
});

describe('generated pairs', () => {
  test('synthetic images: seeded, the number of labels asked for, finite', () => {
    const a = synthImage(64, seedrandom('img'), { labels: [3, 3] });
    const b = synthImage(64, seedrandom('img'), { labels: [3, 3] });
    expect(a).toEqual(b);
    expect(a.every(Number.isFinite)).toBe(true);
    const c = synthImage(64, seedrandom('img2'), { labels: [30, 40] });
    expect(c).not.toEqual(a);
  });

  test('the true field registers the pair: moving through it is the fixed frame, far closer than before', () => {
    for (const seed of ['p1', 'p2', 'p3']) {
      const rng = seedrandom(seed);
      const R = synthImage(128, rng);
      const m = drawMotion(rng, { kinds: MOTION_KINDS, amplitude: 0.12, n: 64 });
      const p = renderPair(R, 128, 64, m.fn, rng, 0);
      const before = meanAbs(p.fixed, p.moving);
      const after = meanAbs(p.fixed, warpByField(p.moving, 64, p.field));
      expect(after).toBeLessThan(0.5 * before);
      // the wrong sign of the field does worse than none
      const wrong = meanAbs(
        p.fixed,
        warpByField(
          p.moving,
          64,
          p.field.map((v) => -v),
        ),
      );
      expect(wrong).toBeGreaterThan(after * 1.5);
    }
  });

  test('without motion the frames differ only by their noise', () => {
    const rng = seedrandom('still');
    const R = synthImage(64, rng);
    const p = renderPair(R, 64, 32, () => [0, 0], rng, 0);
    expect(meanAbs(p.fixed, p.moving)).toBe(0);
    expect(p.field.every((v) => v === 0)).toBe(true);
  });
});

describe('teacher term with items that have no field', () => {
  const TINY: R2N2Config = { netSize: 32, channels: [4, 4, 4], paramChannels: 4, residualBlocks: 1, hidden: 8, sigmaMax: 0.25, activation: 'leaky-relu' };
  test('a null field leaves its item out of the term: the term equals that of the taught items alone', () => {
    const w = initWeights(TINY, 3);
    const N = 32 * 32;
    const img = (s: number) => Float32Array.from(seededUniform(N, s, -1, 1));
    const [F1, M1, F2, M2] = [img(1), img(2), img(3), img(4)];
    const u1 = Float32Array.from(seededUniform(2 * N, 5, -0.05, 0.05));
    const loss = (F: Float32Array[], M: Float32Array[], fields?: (Float32Array | null)[]) =>
      tf.tidy(() => sequenceLoss(TINY, w, F, M, { steps: 2, lambda: 0, teacher: fields ? { fields, weight: 2 } : undefined }).dataSync()[0]);
    const termBoth = loss([F1, F2], [M1, M2], [u1, null]) - loss([F1, F2], [M1, M2]);
    const termOne = loss([F1], [M1], [u1]) - loss([F1], [M1]);
    expect(termOne).toBeGreaterThan(0);
    expect(termBoth).toBeCloseTo(termOne, 4);
    // no field at all: no term
    expect(loss([F1, F2], [M1, M2], [null, null])).toBeCloseTo(loss([F1, F2], [M1, M2]), 6);
    disposeWeights(w);
  });
});

describe('r2n2 synth and train on generated pairs', () => {
  const TINY_ARGS = ['--net-size', '32', '--channels', '4', '4', '4', '--param-channels', '4', '--hidden', '8', '--steps', '2', '--quiet'];

  test('r2n2 synth writes the pairs, their true fields and the overview; the same seed the same pairs', async () => {
    const out = path.join(t.dir, 'syn');
    // without noise the difference left after the true field is the interpolation's
    const r = await runCliHere(['synth', '--out', out, '--count', '3', '--size', '48', '--seed', '4', '--synth-noise', '0', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.residualAfterTruth).toBeLessThan(0.5 * info.differenceBefore);
    for (const k of ['000', '001', '002'])
      for (const f of ['fixed.nrrd', 'moving.nrrd', 'field.nii.gz']) expect(existsSync(path.join(out, `pair_${k}`, f))).toBe(true);
    expect(existsSync(path.join(out, 'overview.png'))).toBe(true);
    const rec = JSON.parse(await fs.readFile(path.join(out, 'synth.json'), 'utf8'));
    expect(rec.pairs).toHaveLength(3);
    expect(rec.pairs[0].source).toBe('synthetic');
    const field = await readField(path.join(out, 'pair_001', 'field.nii.gz'));
    expect(field.geometry.size).toEqual([48, 48]);
    // the field in pixels: its largest length is the recorded amplitude (within the check grid's reach)
    let peak = 0;
    for (let p = 0; p < 48 * 48; p++) peak = Math.max(peak, Math.hypot(field.data[2 * p], field.data[2 * p + 1]));
    expect(peak).toBeGreaterThan(0.8 * rec.pairs[1].amplitudePx);
    expect(peak).toBeLessThan(1.2 * rec.pairs[1].amplitudePx);
    const again = path.join(t.dir, 'syn-again');
    expect((await runCliHere(['synth', '--out', again, '--count', '3', '--size', '48', '--seed', '4', '--synth-noise', '0', '--quiet'])).code).toBe(0);
    const a = await readImage2D(path.join(out, 'pair_002', 'fixed.nrrd'));
    const b = await readImage2D(path.join(again, 'pair_002', 'fixed.nrrd'));
    expect(b.data).toEqual(a.data);
  });

  test('r2n2 synth: bad input is a one-line error and leaves nothing behind', async () => {
    const out = path.join(t.dir, 'bad');
    for (const [args, msg] of [
      [['--synth-motion', 'twirl'], /--synth-motion takes some of affine/],
      [['--synth-amplitude', '0.9'], /--synth-amplitude .* in \(0, 0.25\]/],
      [['--synth-labels', '5'], /--synth-labels takes two numbers/],
      [['--count', '0'], /--count must be an integer/],
      [[path.join(t.dir, 'nowhere')], /--stills .*nowhere: no such file/],
    ] as [string[], RegExp][]) {
      const r = await runCliHere(['synth', ...args, '--out', out, '--quiet']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(existsSync(out)).toBe(false);
    }
    const full = path.join(t.dir, 'syn');
    const r = await runCliHere(['synth', '--out', full, '--count', '1', '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exists and is not empty/);
  });

  test('train on synthetic pairs alone and mixed with a series: recorded, resumes bit for bit, errors', async () => {
    const data = path.join(t.dir, 'ph');
    expect((await runCliHere(['phantom', '--out', data, '--series', '1', '--frames', '4', '--size', '48', '--seed', '2'])).code).toBe(0);
    const s1 = path.join(data, 'series-01', 'frames');
    const alone = path.join(t.dir, 'm-alone');
    const r0 = await runCliHere(['train', '--synth', '1', '--out', alone, '--iterations', '2', '--batch', '2', ...TINY_ARGS]);
    expect(r0.stderr).toBe('');
    expect(r0.code).toBe(0);
    const js = JSON.parse(await fs.readFile(path.join(alone, 'model.json'), 'utf8'));
    expect(js.training.mix).toEqual({ series: 1, synth: 1, stills: 0 });
    expect(js.training.synth.kinds).toEqual(MOTION_KINDS);
    expect(js.data.statistics).toBeUndefined();
    // a series, synthetic pairs and flips, 6 iterations; the same stopped at 3 and resumed
    const args = (weight: string, iterations: string) => [
      ...['--synth', weight, '--synth-motion', 'bumps', 'sliding', '--iterations', iterations],
      ...['--checkpoint-every', '3', '--batch', '2', '--seed', '3', ...TINY_ARGS],
    ];
    const full = path.join(t.dir, 'm-full');
    expect((await runCliHere(['train', s1, '--out', full, ...args('2', '6')])).code).toBe(0);
    const part = path.join(t.dir, 'm-part');
    expect((await runCliHere(['train', s1, '--out', part, ...args('2', '3')])).code).toBe(0);
    const r = await runCliHere(['train', s1, '--out', part, '--resume', ...args('2', '6')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed at 3/);
    expect((await fs.readFile(path.join(part, 'weights.bin'))).equals(await fs.readFile(path.join(full, 'weights.bin')))).toBe(true);
    // another mix does not resume it
    const other = await runCliHere(['train', s1, '--out', part, '--resume', ...args('3', '9')]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/written with other settings/);
    for (const [a, msg] of [
      [['--out', path.join(t.dir, 'e1')], /name at least one training series, or train on generated pairs/],
      [['--synth', '1', '--loss-size', '64', '--out', path.join(t.dir, 'e2')], /--loss-size cannot be used with --synth/],
      [[s1, '--synth', '1', '--series-weight', '0', '--out', path.join(t.dir, 'e3')], /--series-weight 0 leaves the named training series unused/],
      [['--synth', '-1', '--out', path.join(t.dir, 'e4')], /weight of the synth source must be a number ≥ 0/],
    ] as [string[], RegExp][]) {
      const e = await runCliHere(['train', ...a, '--iterations', '1', ...TINY_ARGS]);
      expect(e.code).toBe(1);
      expect(e.stderr).toMatch(msg);
    }
  });

  (HAVE_BIRL ? test : test.skip)('train --stills sets real images in motion (skipped without ../shared)', async () => {
    const out = path.join(t.dir, 'm-stills');
    const r = await runCliHere(['train', '--stills', path.join(BIRL, 'artificial_reference.jpg'), '--out', out, '--iterations', '2', ...TINY_ARGS]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const js = JSON.parse(await fs.readFile(path.join(out, 'model.json'), 'utf8'));
    expect(js.training.mix).toEqual({ series: 1, synth: 0, stills: 1 });
    expect(js.data.stills).toEqual([path.resolve(BIRL, 'artificial_reference.jpg')]);
    const bad = await runCliHere([
      'train',
      '--stills',
      path.join(BIRL, 'artificial_reference.csv'),
      '--out',
      path.join(t.dir, 'e5'),
      '--iterations',
      '1',
      ...TINY_ARGS,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/is not an image file/);
  });
});
