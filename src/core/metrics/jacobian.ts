/**
 * Jacobian determinant of T(p) = p + u(p) for a physical displacement field (mm), by finite
 * differences in physical units: J = I + (∂u/∂index)·S⁻¹·Dᵀ (central differences inside,
 * one-sided at the border; S = diag(spacing), D the direction matrix, orthonormal).
 * det J ≤ 0 is folding; SDlogJ = std of log(clip(det J, 1e-9, 1e9)) (Learn2Reg).
 */
import type { DisplacementField } from '../transformation/field.js';
import { summarize } from './stats.js';

export function jacobianDeterminant(f: DisplacementField): Float32Array {
  const [W, H] = f.geometry.size;
  const [sx, sy] = f.geometry.spacing;
  const [d00, d01, d10, d11] = f.geometry.direction;
  const u = f.data;
  const out = new Float32Array(W * H);
  const at = (i: number, j: number, c: number) => u[2 * (i * W + j) + c];
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      const jl = Math.max(j - 1, 0),
        jr = Math.min(j + 1, W - 1);
      const iu = Math.max(i - 1, 0),
        id = Math.min(i + 1, H - 1);
      const dj = jr - jl || 1;
      const di = id - iu || 1;
      // ∂u_c/∂(col) and ∂u_c/∂(row), per index step
      const ux_c = (at(i, jr, 0) - at(i, jl, 0)) / dj;
      const uy_c = (at(i, jr, 1) - at(i, jl, 1)) / dj;
      const ux_r = (at(id, j, 0) - at(iu, j, 0)) / di;
      const uy_r = (at(id, j, 1) - at(iu, j, 1)) / di;
      // G = [∂u/∂idx] · S⁻¹ · Dᵀ ; idx = S⁻¹Dᵀ(p − o) so ∂idx/∂p = S⁻¹Dᵀ
      const a00 = ux_c / sx,
        a01 = ux_r / sy,
        a10 = uy_c / sx,
        a11 = uy_r / sy;
      const g00 = a00 * d00 + a01 * d01;
      const g01 = a00 * d10 + a01 * d11;
      const g10 = a10 * d00 + a11 * d01;
      const g11 = a10 * d10 + a11 * d11;
      out[i * W + j] = (1 + g00) * (1 + g11) - g01 * g10;
    }
  }
  return out;
}

export interface JacobianStats {
  n: number;
  /** Fraction of pixels with det J ≤ 0. */
  folding: number;
  foldingPixels: number;
  sdLogJ: number;
  min: number;
  max: number;
  mean: number;
}

export function jacobianStats(det: ArrayLike<number>): JacobianStats {
  let fold = 0;
  const logs = new Array<number>(det.length);
  let min = Infinity,
    max = -Infinity,
    sum = 0;
  for (let k = 0; k < det.length; k++) {
    const d = det[k];
    if (d <= 0) fold++;
    logs[k] = Math.log(Math.min(1e9, Math.max(1e-9, d)));
    min = Math.min(min, d);
    max = Math.max(max, d);
    sum += d;
  }
  return { n: det.length, folding: fold / det.length, foldingPixels: fold, sdLogJ: summarize(logs).std, min, max, mean: sum / det.length };
}
