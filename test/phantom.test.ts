import { promises as fs } from 'node:fs';
import path from 'node:path';
import { makePhantomSeries } from '../src/core/phantom/phantom.js';
import { generatePhantoms } from '../src/app/phantom.js';
import { evaluateTre } from '../src/app/evaluate-tre.js';
import { openSeries } from '../src/io/series.js';
import { readLandmarkFile } from '../src/io/landmarks.js';
import { physicalToIndex } from '../src/core/image/geometry.js';
import { tmpDir, runCli } from './helpers.js';

let t: ReturnType<typeof tmpDir>;
beforeAll(() => {
  t = tmpDir();
});
afterAll(() => t.cleanup());

describe('phantom (core)', () => {
  const s = makePhantomSeries({ size: 96, frames: 24, seed: 3, noise: 0 });

  test('landmarks are the reference landmarks moved by the forward map, exactly', () => {
    for (const tt of [0, 7, 23]) {
      const lm = s.landmarks(tt);
      s.referenceLandmarks.forEach((r, i) => {
        const d = s.displacement(tt, r);
        expect(lm[i]).toEqual([r[0] + d[0], r[1] + d[1]]);
      });
    }
  });

  test('the motion is real: breathing moves the diaphragm by centimetres', () => {
    const b = s.motion.breathing;
    const lo = b.indexOf(Math.min(...b));
    const hi = b.indexOf(Math.max(...b));
    const dome = s.landmarkNames.indexOf('right-diaphragm-dome');
    const shift = s.landmarks(hi)[dome][1] - s.landmarks(lo)[dome][1];
    expect(shift).toBeGreaterThan(8); // caudal (+y), mm
    expect(Math.abs(s.landmarks(hi)[dome][0] - s.landmarks(lo)[dome][0])).toBeLessThan(shift);
  });

  test('rendered frames follow the same map: inverse residual < 1e-4 mm over the grid', () => {
    let worst = 0;
    const [w] = s.geometry.size;
    for (let j = 0; j < w; j += 5)
      for (let i = 0; i < w; i += 5) {
        const q: [number, number] = [s.geometry.origin[0] + i * s.geometry.spacing[0], s.geometry.origin[1] + j * s.geometry.spacing[1]];
        worst = Math.max(worst, s.inverse(11, q).residual);
      }
    expect(worst).toBeLessThan(1e-4);
  });

  test('each vessel landmark sits on its bright blob in the rendered frame (< 0.35 px)', () => {
    // at the default 1.5 mm spacing, where a vessel (σ 2.5–4 mm) spans a few pixels
    const s = makePhantomSeries({ size: 256, frames: 24, seed: 3, noise: 0 });
    const tt = s.motion.breathing.indexOf(Math.max(...s.motion.breathing));
    const img = s.renderFrame(tt);
    const [w, h] = s.geometry.size;
    const lm = s.landmarks(tt);
    s.landmarkNames.forEach((name, k) => {
      if (!name.includes('lung-vessel')) return;
      const [ci, cj] = physicalToIndex(s.geometry, lm[k]);
      // intensity-weighted centroid above the local background, in a 9×9 window
      const i0 = Math.round(ci),
        j0 = Math.round(cj);
      let bg = Infinity;
      for (let j = j0 - 4; j <= j0 + 4; j++) for (let i = i0 - 4; i <= i0 + 4; i++) bg = Math.min(bg, img[j * w + i]);
      let sw = 0,
        si = 0,
        sj = 0;
      for (let j = j0 - 4; j <= j0 + 4; j++)
        for (let i = i0 - 4; i <= i0 + 4; i++) {
          if (i < 0 || j < 0 || i >= w || j >= h) continue;
          const v = img[j * w + i] - bg;
          sw += v;
          si += v * i;
          sj += v * j;
        }
      expect(Math.hypot(si / sw - ci, sj / sw - cj)).toBeLessThan(0.35);
    });
  });

  test('deterministic for a seed, different for another', () => {
    const a = makePhantomSeries({ size: 32, frames: 4, seed: 5 });
    const b = makePhantomSeries({ size: 32, frames: 4, seed: 5 });
    const c = makePhantomSeries({ size: 32, frames: 4, seed: 6 });
    expect(Array.from(a.renderFrame(2))).toEqual(Array.from(b.renderFrame(2)));
    expect(a.referenceLandmarks).not.toEqual(c.referenceLandmarks);
  });
});

describe('phantom (files and CLI)', () => {
  test('writes frames, landmarks and truth; the truth fields give ~0 TRE; reruns resume', async () => {
    const out = path.join(t.dir, 'ph');
    const r = runCli(['phantom', '--out', out, '--series', '1', '--frames', '6', '--size', '64', '--truth']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/series-01\s+6\s+64\s+6\.000/);
    const dir = path.join(out, 'series-01');
    const s = await openSeries(path.join(dir, 'frames'));
    expect(s.frames.map((f) => f.name)).toEqual(['frame_000', 'frame_001', 'frame_002', 'frame_003', 'frame_004', 'frame_005']);
    expect(s.geometry.spacing).toEqual([6, 6]);
    const lm = await readLandmarkFile(path.join(dir, 'landmarks', 'frame_003.csv'));
    expect(lm.points).toHaveLength(12);
    expect(lm.units).toBe('mm');
    const ev = await evaluateTre({ landmarks: path.join(dir, 'landmarks'), result: path.join(dir, 'truth'), series: path.join(dir, 'frames') });
    expect(ev.report.before.mean_mm).toBeGreaterThan(0.5);
    expect(ev.report.after!.max_mm).toBeLessThan(0.05 * ev.report.before.max_mm);
    // rerun: kept, not regenerated
    const stat = await fs.stat(path.join(dir, 'phantom.json'));
    const again = await generatePhantoms({ out, series: 1, frames: 6, size: 64, seed: 1 });
    expect(again[0].skipped).toBe(true);
    expect((await fs.stat(path.join(dir, 'phantom.json'))).mtimeMs).toBe(stat.mtimeMs);
    expect((await fs.readdir(out)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
  test('bad options are one-line errors with exit code 1', () => {
    const r = runCli(['phantom', '--out', path.join(t.dir, 'x'), '--frames', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: --frames must be at least 2/);
  });
});
