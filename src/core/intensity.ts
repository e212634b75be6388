/** Intensity normalisation before registration (docs/method.md): z-score, then clamp. */

/**
 * `(x − mean)/std` clamped to `[−clamp, clamp]` (default 2, the reference code's), over all
 * pixels; a constant image becomes all zeros. Returns a new array.
 */
export function normaliseIntensity(data: ArrayLike<number>, clamp = 2): Float32Array {
  const n = data.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += data[i];
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (data[i] - mean) ** 2;
  const std = Math.sqrt(v / n);
  const out = new Float32Array(n);
  if (!(std > 0)) return out;
  for (let i = 0; i < n; i++) out[i] = Math.min(clamp, Math.max(-clamp, (data[i] - mean) / std));
  return out;
}
