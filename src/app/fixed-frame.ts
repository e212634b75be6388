import { chooseFixedFrame, type FixedFrameChoice, type FixedFrameCriterion } from '../core/fixed-frame.js';
import type { Series } from '../io/series.js';

/**
 * The automatic fixed frame of a series (core/fixed-frame.ts). Frames are read once and kept
 * while the series fits in `cacheBytes` (default 1 GiB), else streamed twice.
 */
export async function autoFixedFrame(series: Series, criterion: FixedFrameCriterion = 'image', cacheBytes = 2 ** 30): Promise<FixedFrameChoice> {
  const [w, h] = series.geometry.size;
  const keep = series.frames.length * w * h * 4 <= cacheBytes;
  const cache = new Map<number, Float32Array>();
  return chooseFixedFrame(
    series.frames.length,
    async (i) => {
      const hit = cache.get(i);
      if (hit) return hit;
      const d = (await series.readFrame(i)).data;
      if (keep) cache.set(i, d);
      return d;
    },
    criterion,
  );
}
