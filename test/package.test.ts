/**
 * The published package is complete: `npm pack` it, unpack the tarball in a temporary directory
 * (its dependencies linked from this checkout: an offline machine cannot install them from the
 * registry), and register a small phantom with the CLI and the model it ships.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { tmpDir, ROOT } from './helpers.js';

const t = tmpDir('r2n2-pack-');
afterAll(() => t.cleanup());

test('npm pack ships the CLI, the docs and the models; the unpacked package registers a phantom with its own model', () => {
  const pack = spawnSync('npm', ['pack', '--json', '--pack-destination', t.dir], { cwd: ROOT, encoding: 'utf8' });
  expect(pack.status).toBe(0);
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info.files.map((f) => f.path);
  for (const f of [
    'bin/r2n2.js',
    'dist/cli.js',
    'README.md',
    'docs/method.md',
    'docs/cli.md',
    'fixtures/models/phantom/model.json',
    'fixtures/models/phantom/weights.bin',
    'fixtures/models/cine-mr/weights.bin',
  ])
    expect(files).toContain(f);
  // nothing of the tests, sources or scratch
  expect(files.some((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('scratch/'))).toBe(false);
  expect(spawnSync('tar', ['xzf', path.join(t.dir, info.filename), '-C', t.dir]).status).toBe(0);
  const pkg = path.join(t.dir, 'package');
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(pkg, 'bin', 'r2n2.js'), ...args], { cwd: t.dir, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  expect(cli('phantom', '--out', 'data', '--series', '1', '--frames', '4', '--size', '64', '--quiet').status).toBe(0);
  const r = cli(
    'register',
    'series',
    'data/series-01/frames',
    '--model',
    path.join(pkg, 'fixtures', 'models', 'phantom'),
    '--out',
    'res',
    '--no-qc',
    '--quiet',
    '--jobs',
    '1',
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(readdirSync(path.join(t.dir, 'res', 'fields'))).toHaveLength(3);
  expect(existsSync(path.join(t.dir, 'res', 'warped.nii.gz'))).toBe(true);
}, 120_000);
