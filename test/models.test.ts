/** Bundled models by name (`--model cine-mr`, `--from phantom`), the default model, `r2n2 models`. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ROOT, runCliHere, tmpDir } from './helpers.js';

let t: ReturnType<typeof tmpDir>;
let frames: string;
beforeAll(async () => {
  t = tmpDir('r2n2-models-');
  expect((await runCliHere(['phantom', '--out', path.join(t.dir, 'ph'), '--series', '1', '--frames', '3', '--size', '48', '--seed', '3'])).code).toBe(0);
  frames = path.join(t.dir, 'ph', 'series-01', 'frames');
});
afterAll(() => t.cleanup());

test('r2n2 models lists the bundled models with their cards and marks the default', async () => {
  const r = await runCliHere(['models', '--json']);
  expect(r.code).toBe(0);
  const list = JSON.parse(r.stdout) as { name: string; dir: string; summary: string; default: boolean }[];
  expect(list.map((m) => m.name)).toEqual(expect.arrayContaining(['cine-mr', 'phantom']));
  expect(list.filter((m) => m.default).map((m) => m.name)).toEqual(['cine-mr']);
  for (const m of list) {
    expect(m.dir).toBe(path.join(ROOT, 'fixtures', 'models', m.name));
    expect(m.summary.length).toBeGreaterThan(40);
  }
  const text = await runCliHere(['models']);
  expect(text.stdout).toMatch(/^cine-mr\*/m);
  expect(text.stdout).toMatch(/the default of register series/);
});

test('register series takes a bundled model by name, and the default without --model', async () => {
  const summary = async (dir: string) => JSON.parse(await fs.readFile(path.join(dir, 'summary.json'), 'utf8'));
  const a = path.join(t.dir, 'default');
  expect((await runCliHere(['register', 'series', frames, '--out', a, '--no-qc', '--quiet'])).code).toBe(0);
  expect((await summary(a)).model).toBe(path.join(ROOT, 'fixtures', 'models', 'cine-mr'));
  const b = path.join(t.dir, 'phantom');
  expect((await runCliHere(['register', 'series', frames, '--model', 'phantom', '--out', b, '--no-qc', '--quiet'])).code).toBe(0);
  expect((await summary(b)).model).toBe(path.join(ROOT, 'fixtures', 'models', 'phantom'));
  const bad = await runCliHere(['register', 'series', frames, '--model', 'no-such-model', '--out', path.join(t.dir, 'bad'), '--quiet']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/no-such-model\/model\.json not found/);
  expect(bad.stderr.trim().split('\n')).toHaveLength(1);
});

test('train --from takes a bundled model by name', async () => {
  const out = path.join(t.dir, 'ft');
  const r = await runCliHere(['train', frames, '--from', 'phantom', '--out', out, '--iterations', '1', '--steps', '1', '--quiet']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(JSON.parse(await fs.readFile(path.join(out, 'model.json'), 'utf8')).training.from).toBe(path.join(ROOT, 'fixtures', 'models', 'phantom'));
});

test('register series --preset accurate: the measured settings, command-line options win', async () => {
  const out = path.join(t.dir, 'acc');
  const r = await runCliHere(['register', 'series', frames, '--preset', 'accurate', '--refine', '3', '--out', out, '--no-qc', '--quiet']);
  expect(r.code).toBe(0);
  const st = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8')).settings;
  expect([st.steps, st.refine, st.refineSize, st.refineFine]).toEqual([25, 3, 128, 10]);
  const fast = path.join(t.dir, 'fast');
  expect((await runCliHere(['register', 'series', frames, '--preset', 'fast', '--out', fast, '--no-qc', '--quiet'])).code).toBe(0);
  const sf = JSON.parse(await fs.readFile(path.join(fast, 'summary.json'), 'utf8')).settings;
  expect(sf.steps).toBe(7); // cine-mr's training steps
  expect(sf.refine ?? 0).toBe(0); // no refinement (not recorded when off)
  const bad = await runCliHere(['register', 'series', frames, '--preset', 'quick', '--out', path.join(t.dir, 'q'), '--quiet']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/preset.*Choices: "fast", "accurate"/s);
});

test('the r2n2 version is recorded in summary.json, each params file and model.json', async () => {
  const { version } = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8'));
  const out = path.join(t.dir, 'default');
  const s = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
  expect(s.r2n2Version).toBe(version);
  const p = JSON.parse(await fs.readFile(path.join(out, 'params', `${s.frames[0].name}.json`), 'utf8'));
  expect(p.r2n2Version).toBe(version);
  expect(JSON.parse(await fs.readFile(path.join(t.dir, 'ft', 'model.json'), 'utf8')).r2n2Version).toBe(version);
});

test('settings.json records the options of a run; --config re-runs them exactly, the command line wins, a typo is refused', async () => {
  const a = path.join(t.dir, 'cfg-a');
  expect((await runCliHere(['register', 'series', frames, '--preset', 'accurate', '--refine', '2', '--out', a, '--no-qc', '--quiet'])).code).toBe(0);
  const settings = JSON.parse(await fs.readFile(path.join(a, 'settings.json'), 'utf8'));
  expect(settings).toMatchObject({ refine: 2, steps: 25, 'refine-size': 128, model: 'cine-mr' });
  expect(settings.out).toBeUndefined();
  expect(settings.series).toBeUndefined();
  const b = path.join(t.dir, 'cfg-b');
  expect((await runCliHere(['register', 'series', frames, '--config', path.join(a, 'settings.json'), '--out', b, '--quiet'])).code).toBe(0);
  const key = async (d: string) => JSON.parse(await fs.readFile(path.join(d, 'summary.json'), 'utf8')).settingsKey;
  expect(await key(b)).toBe(await key(a));
  const c = path.join(t.dir, 'cfg-c');
  expect((await runCliHere(['register', 'series', frames, '--config', path.join(a, 'settings.json'), '--refine', '1', '--out', c, '--quiet'])).code).toBe(0);
  expect(JSON.parse(await fs.readFile(path.join(c, 'summary.json'), 'utf8')).settings.refine).toBe(1);
  const bad = path.join(t.dir, 'bad.json');
  await fs.writeFile(bad, '{"refien": 3}');
  const r = await runCliHere(['register', 'series', frames, '--config', bad, '--out', path.join(t.dir, 'cfg-d'), '--quiet']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/Unknown argument: refien/);
});

test('--format mha: every field, warped frame, inverse and stack in that format, read back by evaluate and apply; another format does not resume it', async () => {
  const out = path.join(t.dir, 'fmt');
  const r = await runCliHere(['register', 'series', frames, '--format', 'mha', '--write-inverse', '--out', out, '--no-qc', '--quiet']);
  expect(r.code).toBe(0);
  const s = JSON.parse(await fs.readFile(path.join(out, 'summary.json'), 'utf8'));
  for (const f of s.frames) {
    expect(f.field).toMatch(/^fields\/.*\.mha$/);
    expect(f.warped).toMatch(/^warped\/.*\.mha$/);
    expect(f.inverse).toMatch(/^inverse\/.*\.mha$/);
  }
  const files = await fs.readdir(out);
  expect(files).toEqual(expect.arrayContaining(['warped.mha', 'fields.mha']));
  expect(files.filter((f) => f.endsWith('.nii.gz'))).toEqual([]);
  expect((await runCliHere(['evaluate', 'jacobian', '--result', out, '--quiet'])).code).toBe(0);
  const ap = await runCliHere(['apply', '--result', out, '--images', frames, '--out', path.join(t.dir, 'fmt-apply'), '--write-inverse', '--quiet', '--json']);
  expect(ap.code).toBe(0);
  const again = await runCliHere(['register', 'series', frames, '--write-inverse', '--out', out, '--quiet']);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/computed with other settings/);
});

test('register series with several series: each to OUT/<name>/ with the same model, one table; --adapt wants one series', async () => {
  const data = path.join(t.dir, 'many');
  expect((await runCliHere(['phantom', '--out', data, '--series', '2', '--frames', '3', '--size', '48', '--seed', '5'])).code).toBe(0);
  const series = ['series-01', 'series-02'].map((s) => path.join(data, s, 'frames'));
  const out = path.join(t.dir, 'many-out');
  const r = await runCliHere(['register', 'series', ...series, '--model', 'phantom', '--out', out, '--no-qc', '--no-stack', '--quiet']);
  expect(r.code).toBe(0);
  for (const n of ['series-01', 'series-02']) {
    expect(r.stdout).toMatch(new RegExp(`^${n}\\s+complete\\s+2\\s+0\\s+0`, 'm'));
    const s = JSON.parse(await fs.readFile(path.join(out, n, 'summary.json'), 'utf8'));
    expect(s.model).toBe(path.join(ROOT, 'fixtures', 'models', 'phantom'));
    expect(s.frames).toHaveLength(2);
  }
  expect((await fs.readFile(path.join(out, 'series.csv'), 'utf8')).split('\n')[1]).toMatch(/^series-01,complete,2,/);
  const adapt = await runCliHere(['register', 'series', ...series, '--model', 'phantom', '--adapt', '2', '--out', path.join(t.dir, 'many-adapt'), '--quiet']);
  expect(adapt.code).toBe(1);
  expect(adapt.stderr).toMatch(/--adapt fits the model to one series/);
});
