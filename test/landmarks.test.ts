import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readLandmarkFile, landmarksMm, listLandmarkDir, writeLandmarkCsv } from '../src/io/landmarks.js';
import type { Geometry } from '../src/core/image/geometry.js';
import { tmpDir, BIRL, describeWithBirl } from './helpers.js';

let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir();
});
afterAll(() => t.cleanup());

const write = async (name: string, text: string) => {
  const f = path.join(t.dir, name);
  await fs.writeFile(f, text);
  return f;
};

describeWithBirl('BIRL landmarks (../shared/data)', () => {
  test('CSV ",X,Y": 12 landmarks in pixels, X = column', async () => {
    const lf = await readLandmarkFile(path.join(BIRL, 'artificial_reference.csv'));
    expect(lf.format).toBe('birl');
    expect(lf.units).toBe('px');
    expect(lf.points).toHaveLength(12);
    expect(lf.points[0]).toEqual([144, 122]);
  });
  test('the .pts (elastix point) file holds the same 12 points', async () => {
    const csv = await readLandmarkFile(path.join(BIRL, 'artificial_moving-elastic.csv'));
    const pts = await readLandmarkFile(path.join(BIRL, 'artificial_moving-elastic.pts'));
    expect(pts.format).toBe('elastix-point');
    expect(pts.points).toEqual(csv.points);
  });
  test('pixels → mm need a geometry, and use it', async () => {
    const lf = await readLandmarkFile(path.join(BIRL, 'artificial_reference.csv'));
    expect(() => landmarksMm(lf, null)).toThrow(/artificial_reference\.csv holds pixel coordinates.*--series/);
    const g: Geometry = { size: [800, 600], spacing: [0.5, 0.25], origin: [10, 20], direction: [1, 0, 0, 1] };
    expect(landmarksMm(lf, g)[0]).toEqual([10 + 144 * 0.5, 20 + 122 * 0.25]);
  });
});

describe('landmark formats', () => {
  test('CSV x,y in mm, extra columns ignored, round trip through the writer', async () => {
    const f = await write('a.csv', 'label,x,y\nA,1.5,-2.25\nB,3e1,4\n');
    const lf = await readLandmarkFile(f);
    expect(lf).toMatchObject({
      format: 'csv',
      units: 'mm',
      points: [
        [1.5, -2.25],
        [30, 4],
      ],
    });
    const out = path.join(t.dir, 'out.csv');
    await writeLandmarkCsv(out, [[0.1 + 0.2, -1 / 3]]);
    expect((await readLandmarkFile(out)).points).toEqual([[0.1 + 0.2, -1 / 3]]);
  });
  test('elastix index file is pixels', async () => {
    const f = await write('i.txt', 'index\n2\n1 2\n3 4\n');
    expect(await readLandmarkFile(f)).toMatchObject({
      format: 'elastix-index',
      units: 'px',
      points: [
        [1, 2],
        [3, 4],
      ],
    });
  });
  test('errors name the file and line', async () => {
    await expect(readLandmarkFile(await write('n.csv', 'x,y\n1,2\n3,NaN\n'))).rejects.toThrow(/n\.csv:3: y "NaN" is not a finite number/);
    await expect(readLandmarkFile(await write('h.csv', 'a,b\n1,2\n'))).rejects.toThrow(/h\.csv: header "a,b" names no coordinates/);
    await expect(readLandmarkFile(await write('c.txt', 'point\n3\n1 2\n3 4\n'))).rejects.toThrow(/c\.txt announces 3 points but holds 2/);
    await expect(readLandmarkFile(await write('e.csv', 'x,y\n'))).rejects.toThrow(/e\.csv holds no landmarks/);
    await expect(readLandmarkFile(path.join(t.dir, 'missing.csv'))).rejects.toThrow(/cannot read .*missing\.csv: no such file/);
  });
  test('a landmark directory maps frame stems to files, one per frame', async () => {
    const d = path.join(t.dir, 'lm');
    await fs.mkdir(d);
    for (const n of ['f10.csv', 'f2.csv', 'f1.txt', 'notes.md']) await fs.writeFile(path.join(d, n), 'x,y\n0,0\n');
    expect([...(await listLandmarkDir(d)).keys()]).toEqual(['f1', 'f2', 'f10']);
    await fs.writeFile(path.join(d, 'f2.pts'), 'point\n1\n0 0\n');
    await expect(listLandmarkDir(d)).rejects.toThrow(/f2\.(csv|pts) and .*f2\.(csv|pts) are both landmarks of frame "f2"/);
  });
});
