import path from 'node:path';
import { promises as fs } from 'node:fs';
import { tmpDir, runCliHere } from './helpers.js';
import { readSummary, writeSummary, writeField, readField } from '../src/io/index.js';

describe('r2n2 evaluate compare', () => {
  const t = tmpDir('r2n2-cmp-');
  afterAll(() => t.cleanup());
  test('the true fields beat the identity; rows per method, columns per series, ratios to the first', async () => {
    expect((await runCliHere(['phantom', '--out', t.dir, '--series', '2', '--frames', '4', '--size', '64', '--truth'])).code).toBe(0);
    const results: string[] = [];
    for (const s of ['series-01', 'series-02']) {
      const truth = path.join(t.dir, s, 'truth');
      const sum = await readSummary(truth);
      // an "identity" method: zero fields on the same grid, 10 parameters, 2 s per frame
      const id = path.join(t.dir, s, 'identity');
      const frames = [];
      for (const f of sum.frames) {
        const g = (await readField(path.join(truth, f.field))).geometry;
        await writeField(path.join(id, f.field), { geometry: g, data: new Float32Array(2 * g.size[0] * g.size[1]) });
        frames.push({ ...f, seconds: 2, parameters: 10 });
      }
      await writeSummary(id, { ...sum, method: 'zero', series: path.join(t.dir, s, 'frames'), frames });
      await fs.writeFile(path.join(truth, 'summary.json'), JSON.stringify({ ...sum, frames: sum.frames.map((f) => ({ ...f, seconds: 1, parameters: 5 })) }));
      results.push(id, truth);
    }
    const r = await runCliHere(['evaluate', 'compare', ...results, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.labels).toEqual(['series-01', 'series-02'].map((s) => `${path.basename(t.dir)}/${s}`));
    expect(c.rows.map((x: { method: string }) => x.method)).toEqual(['zero', 'ground-truth']);
    const [zero, truth] = c.rows;
    expect(zero.perSeries[0]).toBeCloseTo(c.identity[0], 6);
    expect(truth.meanMm).toBeLessThan(0.01);
    expect(truth.ratio.tre).toBeLessThan(0.01);
    expect(truth.ratio.seconds).toBeCloseTo(0.5, 6);
    expect(truth.ratio.parameters).toBeCloseTo(0.5, 6);
    expect(zero.folding).toBe(0);
    const text = await runCliHere(['evaluate', 'compare', ...results]);
    expect(text.stdout).toMatch(/mean TRE \(mm\) per series/);
    expect(text.stdout).toMatch(/ground-truth/);
  });
});
