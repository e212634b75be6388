import { promises as fs } from 'node:fs';
import path from 'node:path';
import seedrandom from 'seedrandom';
import { AUGMENT_OFF, augmentPair, convolve3 } from '../src/core/r2n2/augment.js';
import { tmpDir, runCliHere } from './helpers.js';

const n = 16;
const img = (seed: number) => {
  const r = seedrandom(`img-${seed}`);
  return Float32Array.from({ length: n * n }, () => 4 * r() - 2);
};

describe('training augmentations (core/r2n2/augment.ts)', () => {
  test('off: the same arrays back and no random number drawn', () => {
    let draws = 0;
    const rng = () => (draws++, 0.5);
    const F = img(1);
    const M = img(2);
    const [f, m] = augmentPair(F, M, n, rng, AUGMENT_OFF);
    expect(f).toBe(F);
    expect(m).toBe(M);
    expect(draws).toBe(0);
  });
  test('seeded: the same draws give the same pair; photometric changes stay in [−2, 2] except noise', () => {
    const o = { randomConv: 1, bias: 0.5, gamma: 0.5, noise: 0 };
    const a = augmentPair(img(1), img(2), n, seedrandom('x'), o);
    const b = augmentPair(img(1), img(2), n, seedrandom('x'), o);
    expect(Array.from(a[0])).toEqual(Array.from(b[0]));
    expect(Array.from(a[1])).toEqual(Array.from(b[1]));
    expect(Array.from(a[0]).every((v) => v >= -2 && v <= 2)).toBe(true);
    const c = augmentPair(img(1), img(2), n, seedrandom('y'), o);
    expect(Array.from(c[0])).not.toEqual(Array.from(a[0]));
  });
  test('a random convolution keeps the geometry: identical frames stay identical, and it is a convolution', () => {
    const F = img(3);
    const [f, m] = augmentPair(F, F, n, seedrandom('z'), { ...AUGMENT_OFF, randomConv: 1 });
    expect(Array.from(f)).toEqual(Array.from(m));
    expect(Array.from(f)).not.toEqual(Array.from(F));
    // the identity kernel changes nothing
    expect(Array.from(convolve3(F, n, [0, 0, 0, 0, 1, 0, 0, 0, 0]))).toEqual(Array.from(F));
  });
});

describe('r2n2 train --augment-*', () => {
  const t = tmpDir('r2n2-augment-');
  afterAll(() => t.cleanup());
  const TINY = [
    '--net-size',
    '32',
    '--channels',
    '4',
    '4',
    '4',
    '--param-channels',
    '4',
    '--hidden',
    '8',
    '--steps',
    '2',
    '--batch',
    '2',
    '--checkpoint-every',
    '2',
    '--quiet',
  ];
  const AUG = ['--augment-conv', '0.5', '--augment-bias', '0.3', '--augment-gamma', '0.3', '--augment-noise', '0.05'];
  test('changes training, is recorded in model.json, resumes bit for bit; bad values refused', async () => {
    expect((await runCliHere(['phantom', '--out', t.dir, '--series', '1', '--frames', '5', '--size', '64', '--quiet'])).code).toBe(0);
    const series = path.join(t.dir, 'series-01', 'frames');
    const w = (dir: string) => fs.readFile(path.join(t.dir, dir, 'weights.bin'));
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'plain'), '--iterations', '4', ...TINY])).code).toBe(0);
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'aug'), '--iterations', '4', ...TINY, ...AUG])).code).toBe(0);
    expect((await w('aug')).equals(await w('plain'))).toBe(false);
    const m = JSON.parse(await fs.readFile(path.join(t.dir, 'aug', 'model.json'), 'utf8'));
    expect(m.training.augment).toEqual({ randomConv: 0.5, bias: 0.3, gamma: 0.3, noise: 0.05 });
    expect((await runCliHere(['train', series, '--out', path.join(t.dir, 'half'), '--iterations', '2', ...TINY, ...AUG])).code).toBe(0);
    const r = await runCliHere(['train', series, '--out', path.join(t.dir, 'half'), '--iterations', '4', '--resume', ...TINY, ...AUG]);
    expect(r.code).toBe(0);
    expect((await w('half')).equals(await w('aug'))).toBe(true);
    const bad = await runCliHere(['train', series, '--out', path.join(t.dir, 'bad'), '--iterations', '1', ...TINY, '--augment-conv', '2']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--augment-conv is a probability in \[0, 1\]/);
  }, 120_000);
});
