import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tmpDir, runCli } from './helpers.js';

let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir();
});
afterAll(() => t.cleanup());

describe('the r2n2 command line', () => {
  // every command's --help: test/cli-doc.test.ts
  test('--help works', () => {
    const r = runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/r2n2/);
    expect(r.stdout).toMatch(/--log-level/);
  });

  test('unknown commands and options are errors', () => {
    const r = runCli(['frobnicate']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: /m);
    const o = runCli(['phantom', '--out', 'x', '--bogus']);
    expect(o.code).toBe(1);
    expect(o.stderr).toMatch(/Unknown argument: bogus/);
  });

  test('an itk-wasm failure is one line on stderr; stdout stays clean', async () => {
    const s = path.join(t.dir, 'frames');
    await fs.mkdir(s);
    await fs.writeFile(path.join(s, 'a.nrrd'), 'NRRD0004\ntype: float\ndimension: 2\nsizes: 4 4\nencoding: raw\n\n');
    await fs.writeFile(path.join(s, 'b.nrrd'), 'not an image');
    const lm = path.join(t.dir, 'lm');
    await fs.mkdir(lm);
    await fs.writeFile(path.join(lm, 'a.csv'), 'x,y\n0,0\n');
    await fs.writeFile(path.join(lm, 'b.csv'), 'x,y\n1,1\n');
    const r = runCli(['evaluate', 'tre', '--landmarks', lm, '--series', s]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: cannot read .*a\.nrrd: /);
  });

  test('R2N2_ITK_KEEP=0 (itk-wasm loading its pipelines on every call) reads and writes the same files', async () => {
    const outs: Record<string, Buffer>[] = [];
    for (const keep of ['1', '0']) {
      const out = path.join(t.dir, `keep${keep}`);
      const env = { R2N2_ITK_KEEP: keep };
      expect(runCli(['phantom', '--out', out, '--series', '1', '--frames', '3', '--size', '32', '--quiet'], { env }).code).toBe(0);
      const b = runCli(
        ['baseline', 'bspline', path.join(out, 'series-01', 'frames'), '--out', path.join(out, 'bs'), '--iterations', '5', '--jobs', '1', '--no-qc', '--quiet'],
        { env },
      );
      expect(b.stderr).toBe('');
      expect(b.code).toBe(0);
      const files: Record<string, Buffer> = {};
      for (const sub of ['series-01/frames', 'bs/fields', 'bs/warped']) {
        for (const f of await fs.readdir(path.join(out, sub))) files[`${sub}/${f}`] = await fs.readFile(path.join(out, sub, f));
      }
      outs.push(files);
    }
    expect(Object.keys(outs[0]).length).toBe(3 + 2 + 2);
    expect(Object.keys(outs[1]).sort()).toEqual(Object.keys(outs[0]).sort());
    for (const k of Object.keys(outs[0])) expect(outs[1][k].equals(outs[0][k])).toBe(true);
  });

  test('--log-level info writes JSON logs to stderr only', async () => {
    const out = path.join(t.dir, 'ph');
    const r = runCli(['phantom', '--out', out, '--series', '1', '--frames', '2', '--size', '32', '--log-level', 'info', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).series[0].frames).toBe(2);
    const log = JSON.parse(r.stderr.trim().split('\n').pop() as string);
    expect(log.msg).toBe('phantom written');
    expect(log.level).toBe(30);
  });
});
