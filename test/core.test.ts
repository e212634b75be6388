import { indexToPhysical, physicalToIndex, sameGeometry, identityGeometry, type Geometry } from '../src/core/image/geometry.js';
import { summarize, percentileSorted } from '../src/core/metrics/stats.js';
import { sampleVectorBilinear, mapPoint } from '../src/core/transformation/field.js';
import { frameTre, treReport } from '../src/core/metrics/tre.js';
import { chooseFixedFrame } from '../src/core/image/fixed-frame.js';
import { autoFixedFrame } from '../src/app/fixed-frame.js';
import type { Series } from '../src/io/series.js';
import type { Image2D } from '../src/io/image.js';

const rotated: Geometry = {
  size: [40, 30],
  spacing: [0.7, 1.3],
  origin: [10.5, -3.25],
  direction: [Math.cos(0.3), -Math.sin(0.3), Math.sin(0.3), Math.cos(0.3)],
};

describe('geometry', () => {
  test('index ↔ physical round trip with rotation and anisotropic spacing', () => {
    for (const idx of [
      [0, 0],
      [3.25, 7.5],
      [39, 29],
    ] as [number, number][]) {
      const p = indexToPhysical(rotated, idx);
      const back = physicalToIndex(rotated, p);
      expect(back[0]).toBeCloseTo(idx[0], 10);
      expect(back[1]).toBeCloseTo(idx[1], 10);
    }
    // by hand: index (1, 0) moves one column = spacing 0.7 along the first direction column
    const p = indexToPhysical(rotated, [1, 0]);
    expect(p[0]).toBeCloseTo(10.5 + 0.7 * Math.cos(0.3), 12);
    expect(p[1]).toBeCloseTo(-3.25 + 0.7 * Math.sin(0.3), 12);
  });
  test('sameGeometry tolerates float32 storage, not real differences', () => {
    const f32 = { ...rotated, spacing: [Math.fround(0.7), Math.fround(1.3)] as [number, number] };
    expect(sameGeometry(rotated, f32)).toBe(true);
    expect(sameGeometry(rotated, { ...rotated, size: [40, 31] })).toBe(false);
    expect(sameGeometry(rotated, { ...rotated, origin: [10.6, -3.25] })).toBe(false);
  });
});

describe('statistics', () => {
  test('match numpy (mean, population std, median, linear p90, max)', () => {
    // numpy: x=[1,2,3,4,10]; mean 4, std 3.1622776601683795, median 3, percentile(x,90) 7.6
    const s = summarize([4, 1, 10, 3, 2]);
    expect(s.mean).toBe(4);
    expect(s.std).toBeCloseTo(3.1622776601683795, 12);
    expect(s.median).toBe(3);
    expect(s.p90).toBeCloseTo(7.6, 12);
    expect(s.max).toBe(10);
    expect(percentileSorted([1, 2], 50)).toBe(1.5);
    expect(Number.isNaN(summarize([]).mean)).toBe(true);
  });
});

describe('field sampling', () => {
  test('bilinear interpolation of a linear field is exact, clamped outside', () => {
    const W = 5,
      H = 4;
    const data = new Float32Array(2 * W * H);
    for (let j = 0; j < H; j++)
      for (let i = 0; i < W; i++) {
        data[2 * (j * W + i)] = 2 * i + 1;
        data[2 * (j * W + i) + 1] = -3 * j;
      }
    const v = sampleVectorBilinear(data, W, H, [1.25, 2.5]);
    expect(v[0]).toBeCloseTo(3.5, 6);
    expect(v[1]).toBeCloseTo(-7.5, 6);
    const out = sampleVectorBilinear(data, W, H, [-3, 10]);
    expect(out).toEqual([1, -9]);
  });
  test('mapPoint works in physical space', () => {
    const g: Geometry = { size: [3, 3], spacing: [2, 2], origin: [-2, -2], direction: [1, 0, 0, 1] };
    const data = new Float32Array(18).fill(0);
    for (let k = 0; k < 9; k++) {
      data[2 * k] = 1.5;
      data[2 * k + 1] = -0.5;
    }
    expect(mapPoint({ geometry: g, data }, [0.3, 0.1])).toEqual([1.8, expect.closeTo(-0.4, 6)]);
  });
});

describe('TRE', () => {
  test('by hand: two landmarks, a known translation', () => {
    const g: Geometry = { size: [10, 10], spacing: [2, 0.5], origin: [0, 0], direction: [1, 0, 0, 1] };
    const fixed: [number, number][] = [
      [0, 0],
      [4, 4],
    ];
    const moving: [number, number][] = [
      [3, 4],
      [4, 4],
    ];
    const t = frameTre('m', fixed, moving, g, (p) => [p[0] + 3, p[1] + 4]);
    expect(t.beforeMm).toEqual([5, 0]);
    // pixels: (3 mm, 4 mm) = (1.5 px, 8 px) → √(2.25+64)
    expect(t.beforePx?.[0]).toBeCloseTo(Math.sqrt(66.25), 12);
    expect(t.afterMm).toEqual([0, 5]);
    const r = treReport([t]);
    expect(r.before.mean_mm).toBe(2.5);
    expect(r.before.std_mm).toBe(2.5);
    expect(r.after?.max_mm).toBe(5);
  });
  test('count mismatch throws', () => {
    expect(() =>
      frameTre(
        'm',
        [[0, 0]],
        [
          [0, 0],
          [1, 1],
        ],
        null,
      ),
    ).toThrow(/counts differ/);
  });
});

describe('fixed frame', () => {
  test('picks the frame closest to the mean (image and intensity criteria)', async () => {
    const frames = [
      new Float32Array([0, 0, 0, 0]),
      new Float32Array([1, 1, 1, 1]),
      new Float32Array([2, 2, 2, 2.5]),
      new Float32Array([0.97, 1.06, 1.0, 1.14]),
    ];
    // mean image = [0.9925, 1.015, 1, 1.16]: frame 3 differs by ≤0.045, frame 1 by 0.16 in the last pixel
    // mean intensities 0, 1, 2.125, 1.0425 → overall 1.041875: frame 3 (|Δ| 0.000625) beats frame 1 (0.041875)
    const a = await chooseFixedFrame(4, async (i) => frames[i], 'image');
    expect(a.index).toBe(3);
    const b = await chooseFixedFrame(4, async (i) => frames[i], 'intensity');
    expect(b.index).toBe(3);
  });
  test('a series is read once: the frames read to choose are handed to the caller when they fit', async () => {
    const frames = [
      new Float32Array([0, 0, 0, 0]),
      new Float32Array([1, 1, 1, 1]),
      new Float32Array([2, 2, 2, 2.5]),
      new Float32Array([0.97, 1.06, 1.0, 1.14]),
    ];
    const geometry = identityGeometry(2, 2);
    let reads = 0;
    const series: Series = {
      source: 'test',
      kind: 'directory',
      geometry,
      frames: frames.map((_, i) => ({ name: `f${i}`, file: `f${i}.nrrd` })),
      readFrame: async (i) => {
        reads++;
        return { geometry, data: frames[i] };
      },
    };
    const keep = new Map<number, Image2D>();
    expect((await autoFixedFrame(series, 'image', undefined, keep)).index).toBe(3);
    expect(reads).toBe(4); // each frame once, though the criterion passes over the series twice
    expect([...keep.keys()].sort()).toEqual([0, 1, 2, 3]);
    expect(keep.get(2)?.data).toBe(frames[2]);
    const none = new Map<number, Image2D>();
    reads = 0;
    expect((await autoFixedFrame(series, 'image', 32, none)).index).toBe(3); // 64 bytes do not fit in 32
    expect(reads).toBe(8);
    expect(none.size).toBe(0);
  });
});

describe('normalised fields in physical units', () => {
  test('fieldFromNormalised: one pixel along x and two along y, through spacing and a rotated direction', async () => {
    const { fieldFromNormalised } = await import('../src/core/transformation/field.js');
    const [W, H] = rotated.size;
    const u = new Float32Array(2 * W * H);
    u.fill(2 / (W - 1), 0, W * H); // +1 column
    u.fill((2 * 2) / (H - 1), W * H); // +2 rows
    const f = fieldFromNormalised(u, rotated);
    const [c, s] = [Math.cos(0.3), Math.sin(0.3)];
    // physical = D · (1·0.7, 2·1.3), D = [[c, −s], [s, c]]
    const k = 2 * (5 * W + 7);
    expect(f.data[k]).toBeCloseTo(c * 0.7 - s * 2.6, 5);
    expect(f.data[k + 1]).toBeCloseTo(s * 0.7 + c * 2.6, 5);
    // and mapPoint moves a landmark by exactly one column and two rows of the grid
    const p = indexToPhysical(rotated, [10, 12]);
    const q = physicalToIndex(rotated, mapPoint(f, p));
    expect(q[0]).toBeCloseTo(11, 4);
    expect(q[1]).toBeCloseTo(14, 4);
  });
  test('QC mosaic tiles 6 images 3 across with borders', async () => {
    const { registrationQc } = await import('../src/core/qc/qc.js');
    const img = Float32Array.from({ length: 20 * 10 }, (_, i) => i % 7);
    const m = registrationQc(img, img, img, 10, 20);
    expect([m.W, m.H]).toEqual([3 * 20 + 4 * 2, 2 * 10 + 3 * 2]);
    // identical images: both difference tiles are black
    const at = (x: number, y: number) => m.data[y * m.W + x];
    expect(at(2 + 5, 2 + 10 + 2 + 3)).toBe(0);
    expect(at(2 + 20 + 2 + 5, 2 + 10 + 2 + 3)).toBe(0);
  });
});
