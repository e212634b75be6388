import { chooseFixedFrame, type FixedFrameChoice, type FixedFrameCriterion } from '../core/image/fixed-frame.js';
import type { Series } from '../io/series.js';
import type { Image2D } from '../io/image.js';

/**
 * The automatic fixed frame of a series (core/image/fixed-frame.ts). Frames are read once and kept
 * while the series fits in `cacheBytes` (default 1 GiB), else streamed twice. Pass `keep` to
 * receive the frames read (when they fitted), so that the caller need not read them again.
 */
export async function autoFixedFrame(
  series: Series,
  criterion: FixedFrameCriterion = 'image',
  cacheBytes = 2 ** 30,
  keep?: Map<number, Image2D>,
): Promise<FixedFrameChoice> {
  const [w, h] = series.geometry.size;
  const fits = series.frames.length * w * h * 4 <= cacheBytes;
  const cache = keep ?? new Map<number, Image2D>();
  return chooseFixedFrame(
    series.frames.length,
    async (i) => {
      const hit = cache.get(i);
      if (hit) return hit.data;
      const img = await series.readFrame(i);
      if (fits) cache.set(i, img);
      return img.data;
    },
    criterion,
  );
}
