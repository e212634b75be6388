/** A minimal raster line plot (grey values 0..255) for loss curves written as PNG. */
import type { Mosaic } from './qc.js';

/**
 * Plots one or more series (y against index, shared x range) on a W×H canvas with a margin;
 * series k is drawn with grey level `levels[k]` on white. Non-finite values are skipped; the y
 * range is the 1st–99th percentile of all values (outliers clipped), log10 when `log`.
 */
export function linePlot(series: number[][], W = 640, H = 360, opts: { log?: boolean; levels?: number[] } = {}): Mosaic {
  const data = new Float32Array(W * H).fill(255);
  const m = 20;
  const f = (v: number) => (opts.log ? Math.log10(Math.max(v, 1e-12)) : v);
  const all = series
    .flat()
    .filter(Number.isFinite)
    .map(f)
    .sort((a, b) => a - b);
  const n = Math.max(...series.map((s) => s.length), 2);
  for (let x = m; x < W - m; x++) data[(H - m) * W + x] = 0;
  for (let y = m; y < H - m; y++) data[y * W + m] = 0;
  if (all.length === 0) return { data, H, W };
  const lo = all[Math.floor(0.01 * (all.length - 1))];
  const hi = all[Math.ceil(0.99 * (all.length - 1))];
  const span = hi > lo ? hi - lo : 1;
  const px = (i: number) => m + ((W - 2 * m) * i) / (n - 1);
  const py = (v: number) => H - m - ((H - 2 * m) * (Math.min(Math.max(f(v), lo), hi) - lo)) / span;
  series.forEach((s, k) => {
    const g = opts.levels?.[k] ?? (k === 0 ? 0 : 150);
    let prev: [number, number] | null = null;
    s.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const p: [number, number] = [px(i), py(v)];
      if (prev) {
        const steps = Math.max(1, Math.ceil(Math.hypot(p[0] - prev[0], p[1] - prev[1])));
        for (let t = 0; t <= steps; t++) {
          const x = Math.round(prev[0] + ((p[0] - prev[0]) * t) / steps);
          const y = Math.round(prev[1] + ((p[1] - prev[1]) * t) / steps);
          if (x >= 0 && y >= 0 && x < W && y < H) data[y * W + x] = g;
        }
      }
      prev = p;
    });
  });
  return { data, H, W };
}
