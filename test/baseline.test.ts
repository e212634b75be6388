import { promises as fs, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { tmpDir, runCli, runCliAsync, runCliHere, BIRL, TFJS_NODE_BUILT, describeWithBirl } from './helpers.js';
import { readImage2D, writeImage2D } from '../src/io/image.js';

let t: ReturnType<typeof tmpDir>;
let frames: string;
let landmarks: string;
// short runs: the global stage is cut to 10/5/5 iterations (its default 50/25/10 is checked by the preset test)
const FAST_BSPLINE = ['--iterations', '40', '30', '20', '--spacing', '8', '--quiet'];
const FAST = [...FAST_BSPLINE, '--init-iterations', '10', '5', '5'];

beforeAll(() => {
  t = tmpDir('r2n2-bspline-');
  const r = runCli(['phantom', '--out', t.dir, '--series', '1', '--frames', '8', '--size', '128', '--seed', '3']);
  expect(r.code).toBe(0);
  frames = path.join(t.dir, 'series-01', 'frames');
  landmarks = path.join(t.dir, 'series-01', 'landmarks');
});
afterAll(() => t.cleanup());

const summaryOf = async (dir: string) => JSON.parse(await fs.readFile(path.join(dir, 'summary.json'), 'utf8'));

describe('r2n2 baseline bspline, series mode', () => {
  let out: string;
  test('registers every frame but the auto fixed frame, writes the result contract, and TRE drops below 40% of identity', async () => {
    out = path.join(t.dir, 'res');
    const r = await runCliHere(['baseline', 'bspline', frames, '--out', out, ...FAST]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/registered\s+7 frame\(s\)/);
    const s = await summaryOf(out);
    expect(s).toMatchObject({ format: 'r2n2-result', version: 1, method: 'bspline', backend: 'wasm', fixedFrameSource: 'auto', complete: true });
    expect(s.frames).toHaveLength(7);
    for (const f of s.frames) {
      for (const rel of [f.field, f.warped, f.params, `qc/${f.name}.png`]) expect(existsSync(path.join(out, rel))).toBe(true);
      expect(f.seconds).toBeGreaterThan(0);
      expect(f.parameters).toBe(6 + 2 * (6 * 6 + 10 * 10 + 18 * 18)); // affine stage + cp = ceil(n/8)+2 at 32, 64, 128 px
    }
    const p = JSON.parse(await fs.readFile(path.join(out, s.frames[0].params), 'utf8'));
    expect(p.levels).toHaveLength(3);
    expect(p.levels[2].x).toHaveLength(324);
    // the automatic full-resolution blur is named in the settings, and the σ used in the params:
    // 128 px: 1, times the noise factor (the phantom is clean: 0.67), with the noise estimate
    expect(s.settings.finestSigma).toBe('auto');
    expect(p.noiseAdaptation.noise).toBeGreaterThan(0);
    expect(p.noiseAdaptation.noise).toBeLessThan(0.025);
    expect(p.noiseAdaptation).toMatchObject({ lambdaFactor: 1, sigmaFactor: 0.67 });
    expect(p.finestSigma).toBeCloseTo(0.67, 6);
    const e = await runCliHere(['evaluate', 'tre', '--result', out, '--landmarks', landmarks, '--json']);
    expect(e.code).toBe(0);
    const tre = JSON.parse(e.stdout);
    expect(tre.after.mean_mm).toBeLessThan(0.4 * tre.before.mean_mm);
  });

  test('a rerun skips finished frames; --force redoes them; other settings are refused', async () => {
    const field = path.join(out, 'fields');
    const name = (await fs.readdir(field))[0];
    const before = statSync(path.join(field, name)).mtimeMs;
    const again = await runCliHere(['baseline', 'bspline', frames, '--out', out, ...FAST]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/registered\s+0 frame\(s\); 7 already done/);
    expect(statSync(path.join(field, name)).mtimeMs).toBe(before);
    const other = await runCliHere(['baseline', 'bspline', frames, '--out', out, ...FAST, '--lambda', '0.5']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/already holds a result computed with other settings; pass --force/);
    const forced = await runCliHere(['baseline', 'bspline', frames, '--out', out, ...FAST, '--force', '--no-qc']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/registered\s+7 frame\(s\)/);
  });

  test('--shard I/N splits the frames; the last shard completes the summary', async () => {
    const sh = path.join(t.dir, 'shards');
    const a = await runCliHere(['baseline', 'bspline', frames, '--out', sh, '--fixed-frame', '0', ...FAST, '--shard', '0/2']);
    expect(a.code).toBe(0);
    let s = await summaryOf(sh);
    expect(s.complete).toBe(false);
    expect(s.frames.map((f: { name: string }) => f.name)).toEqual(['frame_002', 'frame_004', 'frame_006']);
    const b = await runCliHere(['baseline', 'bspline', frames, '--out', sh, '--fixed-frame', '0', ...FAST, '--shard', '1/2']);
    expect(b.code).toBe(0);
    s = await summaryOf(sh);
    expect(s.complete).toBe(true);
    expect(s.frames).toHaveLength(7);
    expect(s.fixedFrame).toBe('frame_000');
  });
});

describe('r2n2 baseline bspline, several series in one command', () => {
  test('each series to OUT/<name>/, one table and series.csv; three concurrent --shard processes split all the work and give exactly the one run; bad input stops before any work', async () => {
    const data = path.join(t.dir, 'many');
    expect(runCli(['phantom', '--out', data, '--series', '3', '--frames', '5', '--size', '48', '--seed', '4']).code).toBe(0);
    const series = ['series-01', 'series-02', 'series-03'].map((s) => path.join(data, s, 'frames'));
    const fast = ['--iterations', '10', '--init-iterations', '5', '--qc', 'false', '--stack', 'false', '--quiet'];
    const one = path.join(t.dir, 'many-one');
    const r = await runCliHere(['baseline', 'bspline', ...series, '--out', one, ...fast]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // the shared parent and the shared last component (frames) name none of them
    for (const n of ['series-01', 'series-02', 'series-03']) {
      expect(r.stdout).toMatch(new RegExp(`^${n}\\s+complete\\s+4\\s+0\\s+0`, 'm'));
      expect((await summaryOf(path.join(one, n))).frames).toHaveLength(4);
    }
    const csv = (await fs.readFile(path.join(one, 'series.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toMatch(/^series,status,registered,skipped,missing,fallbacks,seconds_per_frame,mad_before,mad_after,out,error$/);
    expect(csv.slice(1).map((l) => l.split(',').slice(0, 3).join(','))).toEqual(['series-01,complete,4', 'series-02,complete,4', 'series-03,complete,4']);
    expect(existsSync(path.join(one, 'settings.json'))).toBe(true);
    // a rerun registers nothing
    const again = await runCliHere(['baseline', 'bspline', ...series, '--out', one, ...fast]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^series-02\s+complete\s+0\s+4\s+0/m);

    // three array jobs at once, then a plain run that finds everything done
    const sharded = path.join(t.dir, 'many-sharded');
    const jobs = await Promise.all([0, 1, 2].map((i) => runCliAsync(['baseline', 'bspline', ...series, '--out', sharded, '--shard', `${i}/3`, ...fast])));
    for (const j of jobs) expect(j.code).toBe(0);
    // the 15 frames (12 to register) are split across the shards whatever the series: 4 or 5 each, fixed frames aside
    const counts = jobs.map((j) => [...j.stdout.matchAll(/^series-0\d\s+\w+\s+(\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(12);
    for (const c of counts) expect(c).toBeGreaterThanOrEqual(3);
    const fin = await runCliHere(['baseline', 'bspline', ...series, '--out', sharded, ...fast]);
    expect(fin.code).toBe(0);
    for (const n of ['series-01', 'series-02', 'series-03']) {
      expect(fin.stdout).toMatch(new RegExp(`^${n}\\s+complete\\s+0\\s+4\\s+0`, 'm'));
      const s = await summaryOf(path.join(sharded, n));
      expect(s.complete).toBe(true);
      for (const f of s.frames) expect((await fs.readFile(path.join(sharded, n, f.field))).equals(await fs.readFile(path.join(one, n, f.field)))).toBe(true);
    }

    // a series that does not exist, or the same series twice: one line, nothing written
    for (const [list, msg] of [
      [[series[0], path.join(data, 'nope')], /does not exist/],
      [[series[0], series[0]], /named twice/],
    ] as [string[], RegExp][]) {
      const bad = path.join(t.dir, 'many-bad');
      const e = await runCliHere(['baseline', 'bspline', ...list, '--out', bad, ...fast]);
      expect(e.code).toBe(1);
      expect(e.stderr.trim().split('\n')).toHaveLength(1);
      expect(e.stderr).toMatch(msg);
      expect(existsSync(bad)).toBe(false);
    }
  });
});

describe('r2n2 baseline bspline --jobs, --samples, masks', () => {
  const files = async (dir: string) => (await fs.readdir(dir)).sort();
  test('--jobs 2 (two worker threads) writes the same fields and warped frames as --jobs 1, byte for byte', async () => {
    const j1 = path.join(t.dir, 'jobs1');
    const j2 = path.join(t.dir, 'jobs2');
    expect((await runCliHere(['baseline', 'bspline', frames, '--out', j1, ...FAST, '--jobs', '1', '--no-qc'])).code).toBe(0);
    const r = await runCliHere(['baseline', 'bspline', frames, '--out', j2, ...FAST, '--jobs', '2', '--no-qc']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/registered\s+7 frame\(s\)/);
    for (const sub of ['fields', 'warped']) {
      const names = await files(path.join(j1, sub));
      expect(names).toHaveLength(7);
      expect(await files(path.join(j2, sub))).toEqual(names);
      for (const n of names) expect((await fs.readFile(path.join(j2, sub, n))).equals(await fs.readFile(path.join(j1, sub, n)))).toBe(true);
    }
    const s = await summaryOf(j2);
    expect(s.complete).toBe(true);
    expect(s.frames.map((f: { name: string }) => f.name)).toEqual((await summaryOf(j1)).frames.map((f: { name: string }) => f.name));
    // a rerun with another --jobs resumes the same result (jobs is not a setting)
    const again = await runCliHere(['baseline', 'bspline', frames, '--out', j2, ...FAST, '--jobs', '1', '--no-qc']);
    expect(again.stdout).toMatch(/7 already done/);
  });

  test('--samples registers on random pixels: same seed, same files; the TRE still drops below 40% of identity', async () => {
    const a = path.join(t.dir, 'samples-a');
    const b = path.join(t.dir, 'samples-b');
    for (const out of [a, b])
      expect((await runCliHere(['baseline', 'bspline', frames, '--out', out, ...FAST, '--samples', '2048', '--seed', '7', '--no-qc'])).code).toBe(0);
    for (const n of await files(path.join(a, 'fields')))
      expect((await fs.readFile(path.join(b, 'fields', n))).equals(await fs.readFile(path.join(a, 'fields', n)))).toBe(true);
    const tre = JSON.parse((await runCliHere(['evaluate', 'tre', '--result', a, '--landmarks', landmarks, '--json'])).stdout);
    expect(tre.after.mean_mm).toBeLessThan(0.4 * tre.before.mean_mm);
    expect((await summaryOf(a)).settings).toMatchObject({ samples: 2048, seed: 7 });
  });

  test('--fixed-mask and --moving-mask: recorded in the settings; a mask on another grid, an empty one or a missing one is a one-line error', async () => {
    const f0 = await readImage2D(path.join(frames, 'frame_000.nrrd'));
    const [W, H] = f0.geometry.size;
    const half = Float32Array.from({ length: W * H }, (_, p) => (p % W < W / 2 ? 1 : 0));
    const mask = path.join(t.dir, 'mask-left.nrrd');
    await writeImage2D(mask, { geometry: f0.geometry, data: half });
    const out = path.join(t.dir, 'masked');
    const r = await runCliHere(['baseline', 'bspline', frames, '--out', out, ...FAST, '--fixed-mask', mask, '--moving-mask', mask, '--no-qc']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = await summaryOf(out);
    expect(s.settings).toMatchObject({ fixedMask: path.resolve(mask), movingMask: path.resolve(mask) });
    const plain = path.join(t.dir, 'jobs1');
    const differs = [];
    for (const n of await files(path.join(out, 'fields')))
      differs.push(!(await fs.readFile(path.join(out, 'fields', n))).equals(await fs.readFile(path.join(plain, 'fields', n))));
    expect(differs.every(Boolean)).toBe(true);

    const small = path.join(t.dir, 'mask-small.nrrd');
    await writeImage2D(small, { geometry: { ...f0.geometry, size: [32, 32] }, data: new Float32Array(32 * 32).fill(1) });
    const empty = path.join(t.dir, 'mask-empty.nrrd');
    await writeImage2D(empty, { geometry: f0.geometry, data: new Float32Array(W * H) });
    for (const [args, msg] of [
      [['--fixed-mask', small], /fixed mask .*mask-small\.nrrd .*is not on the grid of the frames .*resample it/],
      [['--moving-mask', empty], /mask-empty\.nrrd is empty/],
      [['--fixed-mask', path.join(t.dir, 'nope.nrrd')], /mask .*nope\.nrrd does not exist/],
    ] as [string[], RegExp][]) {
      const bad = path.join(t.dir, `bad-mask-${Math.random().toString(36).slice(2)}`);
      const e = await runCliHere(['baseline', 'bspline', frames, '--out', bad, ...FAST, ...args]);
      expect(e.code).toBe(1);
      expect(e.stdout).toBe('');
      expect(e.stderr.trim().split('\n')).toHaveLength(1);
      expect(e.stderr).toMatch(msg);
      expect(existsSync(path.join(bad, 'summary.json'))).toBe(false);
    }
  });
});

describe('r2n2 baseline bspline --preset', () => {
  test('a preset sets its options; options given on the command line win; the defaults are the generic preset', async () => {
    // the settings are the point: a 32² finest level keeps the three registrations short
    const pair = [
      '--fixed',
      path.join(frames, 'frame_000.nrrd'),
      '--moving',
      path.join(frames, 'frame_003.nrrd'),
      ...FAST_BSPLINE,
      '--max-size',
      '32',
      '--no-qc',
    ];
    const run = async (name: string, extra: string[]) => {
      const out = path.join(t.dir, `preset-${name}`);
      const r = await runCliHere(['baseline', 'bspline', ...pair, '--out', out, ...extra]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      return (await summaryOf(out)).settings;
    };
    const cardiac = await run('cardiac', ['--preset', 'cardiac']);
    expect(cardiac.loss).toBe('ncc');
    expect(cardiac.iterations).toEqual([40, 30, 20]); // FAST's, given here
    const mine = await run('cardiac-mse', ['--preset', 'cardiac', '--loss', 'mse']);
    expect(mine.loss).toBe('mse');
    const generic = await run('generic', []);
    expect(generic).toMatchObject({ loss: 'mse', initIterations: [50, 25, 10], lambda: [1], init: 'affine' });
    const bad = await runCliHere(['baseline', 'bspline', ...pair, '--out', path.join(t.dir, 'preset-bad'), '--preset', 'brain']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/preset.*brain|brain.*preset|Choices/i);
  });
});

describe('r2n2 baseline bspline, pair mode and bad input', () => {
  test('pair mode writes one registered frame named after the moving file', async () => {
    const out = path.join(t.dir, 'pair');
    const r = await runCliHere([
      'baseline',
      'bspline',
      '--fixed',
      path.join(frames, 'frame_000.nrrd'),
      '--moving',
      path.join(frames, 'frame_003.nrrd'),
      '--out',
      out,
      ...FAST,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.fixedFrameSource).toBe('pair');
    expect(rep.registered.map((f: { name: string }) => f.name)).toEqual(['frame_003']);
    expect(rep.registered[0].madAfter).toBeLessThan(rep.registered[0].madBefore);
    expect((await summaryOf(out)).fixedFrame).toBe('frame_000');
  });

  test.each([
    [['--fixed', 'nope.nrrd', '--moving', 'x.nrrd'], /cannot read .*nope\.nrrd|nope\.nrrd.*(not found|no such)/i],
    [['--fixed', 'FRAME0'], /pair mode needs both --fixed FILE and --moving FILE/],
    [['SERIES', '--shard', '2/2'], /--shard must be I\/N with 0 ≤ I < N/],
    [['SERIES', '--spacing', '8', '8'], /spacing needs 1 value or 3/],
    [['SERIES', '--fixed-frame', 'frame_999'], /frame_999/],
    // where tfjs-node is built (scripts/tfjs-node-offline.sh) the tensorflow backend is available: webgpu never is for the B-spline
    TFJS_NODE_BUILT
      ? [['SERIES', '--backend', 'webgpu'], /does not run on the webgpu backend yet/]
      : [['SERIES', '--backend', 'tensorflow'], /backend "tensorflow" is not available/],
  ])('one-line error, non-zero exit, nothing written: %j', async (args, msg) => {
    const out = path.join(t.dir, `bad-${Math.random().toString(36).slice(2)}`);
    const a = (args as string[]).map((x) => (x === 'SERIES' ? frames : x === 'FRAME0' ? path.join(frames, 'frame_000.nrrd') : x));
    const r = await runCliHere(['baseline', 'bspline', ...a, '--out', out, '--quiet']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg as RegExp);
    expect(existsSync(path.join(out, 'summary.json'))).toBe(false);
  });

  test('a moving image on another grid is refused with the fix', async () => {
    const small = path.join(t.dir, 'small');
    expect((await runCliHere(['phantom', '--out', small, '--series', '1', '--frames', '2', '--size', '48'])).code).toBe(0);
    const r = await runCliHere([
      'baseline',
      'bspline',
      '--fixed',
      path.join(frames, 'frame_000.nrrd'),
      '--moving',
      path.join(small, 'series-01', 'frames', 'frame_001.nrrd'),
      '--out',
      path.join(t.dir, 'mismatch'),
      '--quiet',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not on the grid of the fixed image .*resample it onto the fixed grid first/);
  });
});

describeWithBirl('r2n2 baseline bspline on the BIRL pair (RGB JPEG, 800×600, landmarks in pixels)', () => {
  test('pair mode lowers the TRE of reference vs moving-elastic', async () => {
    const out = path.join(t.dir, 'birl');
    const lm = path.join(t.dir, 'birl-lm');
    await fs.mkdir(lm, { recursive: true });
    for (const n of ['artificial_reference', 'artificial_moving-elastic']) await fs.symlink(path.join(BIRL, `${n}.csv`), path.join(lm, `${n}.csv`));
    // spawned: 800×600 measured 6.5 s spawned against 11–15 s inside jest
    const r = runCli([
      'baseline',
      'bspline',
      '--fixed',
      path.join(BIRL, 'artificial_reference.jpg'),
      '--moving',
      path.join(BIRL, 'artificial_moving-elastic.jpg'),
      '--out',
      out,
      '--iterations',
      '60',
      '40',
      '10',
      '--quiet',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const e = await runCliHere(['evaluate', 'tre', '--result', out, '--landmarks', lm, '--json']);
    expect(e.code).toBe(0);
    const tre = JSON.parse(e.stdout);
    expect(tre.before.mean_px).toBeCloseTo(68.21, 1);
    expect(tre.after.mean_px).toBeLessThan(0.5 * tre.before.mean_px);
  });
});
