/**
 * Dice overlap of label maps after registration: the moving frame's labels are warped onto the
 * fixed grid with nearest-neighbour sampling through T(p) = p + u(p) (u physical, mm), then
 * compared label by label with the fixed frame's labels. Label 0 is background.
 */
import { type DisplacementField, mappedIndex } from './field.js';

/** Nearest-neighbour warp of a label map defined on the same grid as the field; outside → 0. */
export function warpLabelsNearest(labels: ArrayLike<number>, f: DisplacementField): Int32Array {
  const [W, H] = f.geometry.size;
  const out = new Int32Array(W * H);
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const k = i * W + j;
      const [x, y] = mappedIndex(f, i, j);
      const jj = Math.round(x);
      const ii = Math.round(y);
      out[k] = jj >= 0 && ii >= 0 && jj < W && ii < H ? Math.round(labels[ii * W + jj]) : 0;
    }
  }
  return out;
}

/** Dice per label present in either map (label 0 excluded): 2|A∩B| / (|A| + |B|). */
export function dicePerLabel(a: ArrayLike<number>, b: ArrayLike<number>): Map<number, number> {
  const inter = new Map<number, number>();
  const na = new Map<number, number>();
  const nb = new Map<number, number>();
  for (let k = 0; k < a.length; k++) {
    const la = Math.round(a[k]);
    const lb = Math.round(b[k]);
    if (la) na.set(la, (na.get(la) ?? 0) + 1);
    if (lb) nb.set(lb, (nb.get(lb) ?? 0) + 1);
    if (la && la === lb) inter.set(la, (inter.get(la) ?? 0) + 1);
  }
  const out = new Map<number, number>();
  for (const l of [...new Set([...na.keys(), ...nb.keys()])].sort((x, y) => x - y)) out.set(l, (2 * (inter.get(l) ?? 0)) / ((na.get(l) ?? 0) + (nb.get(l) ?? 0)));
  return out;
}
