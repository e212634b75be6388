/**
 * Geometry of a 2D image in physical space (ITK conventions).
 *
 * A pixel at continuous index `(i, j)` (i = column = x index, j = row = y index) lies at the
 * physical point `p = origin + D · diag(spacing) · [i, j]ᵀ`, where `D` is the row-major 2×2
 * direction matrix. Physical units are millimetres.
 */
export interface Geometry {
  /** `[width, height]` in pixels (columns, rows). */
  size: [number, number];
  /** Pixel spacing `[sx, sy]` in mm. */
  spacing: [number, number];
  /** Physical position of the centre of pixel (0, 0), mm. */
  origin: [number, number];
  /** Row-major direction cosines `[d00, d01, d10, d11]`. */
  direction: [number, number, number, number];
}

/** A 2D point `[x, y]`; physical (mm) or continuous index (pixels) as the name says. */
export type Point = [number, number];

export function identityGeometry(width: number, height: number): Geometry {
  return { size: [width, height], spacing: [1, 1], origin: [0, 0], direction: [1, 0, 0, 1] };
}

/** Continuous index `[col, row]` → physical point (mm). */
export function indexToPhysical(g: Geometry, idx: Point): Point {
  const a = idx[0] * g.spacing[0];
  const b = idx[1] * g.spacing[1];
  const d = g.direction;
  return [g.origin[0] + d[0] * a + d[1] * b, g.origin[1] + d[2] * a + d[3] * b];
}

/** Physical point (mm) → continuous index `[col, row]`. */
export function physicalToIndex(g: Geometry, p: Point): Point {
  const d = g.direction;
  const det = d[0] * d[3] - d[1] * d[2];
  const vx = p[0] - g.origin[0];
  const vy = p[1] - g.origin[1];
  const a = (d[3] * vx - d[1] * vy) / det;
  const b = (-d[2] * vx + d[0] * vy) / det;
  return [a / g.spacing[0], b / g.spacing[1]];
}

/**
 * Whether two geometries describe the same grid: equal size, and spacing, origin and
 * direction equal within a relative tolerance (NIfTI stores them as float32).
 */
export function sameGeometry(a: Geometry, b: Geometry, relTol = 1e-5): boolean {
  if (a.size[0] !== b.size[0] || a.size[1] !== b.size[1]) return false;
  const scale = Math.max(1, ...a.spacing.map(Math.abs), ...a.origin.map(Math.abs));
  const close = (x: number, y: number, s: number) => Math.abs(x - y) <= relTol * s;
  for (let k = 0; k < 2; k++) {
    if (!close(a.spacing[k], b.spacing[k], Math.max(a.spacing[k], 1e-12))) return false;
    if (!close(a.origin[k], b.origin[k], scale)) return false;
  }
  for (let k = 0; k < 4; k++) if (!close(a.direction[k], b.direction[k], 1)) return false;
  return true;
}

/** A one-line description for error messages: `256×256 px, spacing 1.5×1.5 mm, origin (…)`. */
export function describeGeometry(g: Geometry): string {
  const f = (x: number) => Number(x.toPrecision(6)).toString();
  return `${g.size[0]}×${g.size[1]} px, spacing ${f(g.spacing[0])}×${f(g.spacing[1])} mm, origin (${f(g.origin[0])}, ${f(g.origin[1])})`;
}

/** Validates a geometry: positive sizes and spacings, finite numbers, invertible direction. */
export function geometryProblem(g: Geometry): string | null {
  if (!(g.size[0] >= 1 && g.size[1] >= 1)) return `image size ${g.size.join('×')} is empty`;
  if (!g.spacing.every((s) => Number.isFinite(s) && s > 0)) return `spacing ${g.spacing.join(',')} is not positive`;
  if (!g.origin.every(Number.isFinite)) return `origin ${g.origin.join(',')} is not finite`;
  const d = g.direction;
  if (!d.every(Number.isFinite) || Math.abs(d[0] * d[3] - d[1] * d[2]) < 1e-9) return 'direction matrix is singular';
  return null;
}
