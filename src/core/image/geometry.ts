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
  /**
   * Where the plane lies in 3D patient space, for a frame cut from a 3D acquisition (a DICOM
   * slice, a one-slice NIfTI). Absent for a plain 2D image. Every computation runs in the
   * in-plane coordinates above; outputs are written back into 3D through this placement so that
   * they overlay the input in 3D viewers.
   */
  placement?: Placement3D;
}

/**
 * The plane of a 2D grid in 3D: the in-plane physical point `p = (x, y)` (mm) lies at
 * `P = origin + A · p` in 3D (mm), where the columns of the 3×2 matrix `A` (orthonormal) are the
 * in-plane x and y axes in 3D. `normal` completes the frame (the third column of the 3D
 * direction matrix) and `sliceSpacing` is the third spacing (slice thickness), both kept so a
 * written image has the input's 3D header.
 */
export interface Placement3D {
  origin: [number, number, number];
  /** `A` row-major: `[a00, a01, a10, a11, a20, a21]`. */
  axes: [number, number, number, number, number, number];
  normal: [number, number, number];
  sliceSpacing: number;
}

/** The 3D header of a one-slice 3D image: origin (3), spacing (3), direction (3×3, row-major). */
export interface Header3D {
  origin: [number, number, number];
  spacing: [number, number, number];
  direction: number[];
}

const TOL_3D = 1e-6;

/**
 * The 2D geometry of a one-slice 3D image given its 3D header. A slice whose direction is
 * block-diagonal (the plane is z = const, as for an axial slice) keeps its x, y origin and the
 * upper-left 2×2 direction block; an oblique slice (cardiac short axis) gets in-plane
 * coordinates: origin (0, 0) at the first pixel, identity direction, the pixel spacing. In both
 * cases the 3D placement is kept, except for a plain 2D image stored as 3D (z origin 0,
 * identity z axis), which gets none.
 */
export function geometryFrom3D(size: [number, number], h: Header3D): Geometry {
  const d = h.direction;
  const blockDiagonal = [d[2], d[5], d[6], d[7]].every((v) => Math.abs(v) < TOL_3D);
  const spacing: [number, number] = [h.spacing[0], h.spacing[1]];
  const normal: [number, number, number] = [d[2], d[5], d[8]];
  if (blockDiagonal) {
    const g: Geometry = { size, spacing, origin: [h.origin[0], h.origin[1]], direction: [d[0], d[1], d[3], d[4]] };
    if (h.origin[2] === 0 && Math.abs(d[8] - 1) < TOL_3D) return g;
    return { ...g, placement: { origin: [0, 0, h.origin[2]], axes: [1, 0, 0, 1, 0, 0], normal, sliceSpacing: h.spacing[2] } };
  }
  return {
    size,
    spacing,
    origin: [0, 0],
    direction: [1, 0, 0, 1],
    placement: { origin: [...h.origin], axes: [d[0], d[1], d[3], d[4], d[6], d[7]], normal, sliceSpacing: h.spacing[2] },
  };
}

/** The 3D header that places a 2D geometry with a placement back in 3D (inverse of `geometryFrom3D`). */
export function header3D(g: Geometry & { placement: Placement3D }): Header3D {
  const { origin: o, axes: a, normal: n, sliceSpacing } = g.placement;
  const A = (v: [number, number]): [number, number, number] => [a[0] * v[0] + a[1] * v[1], a[2] * v[0] + a[3] * v[1], a[4] * v[0] + a[5] * v[1]];
  const p = A(g.origin);
  const c0 = A([g.direction[0], g.direction[2]]);
  const c1 = A([g.direction[1], g.direction[3]]);
  return {
    origin: [o[0] + p[0], o[1] + p[1], o[2] + p[2]],
    spacing: [g.spacing[0], g.spacing[1], sliceSpacing],
    direction: [c0[0], c1[0], n[0], c0[1], c1[1], n[1], c0[2], c1[2], n[2]],
  };
}

/** An in-plane vector (mm) in 3D: `A · v`. */
export function vectorTo3D(p: Placement3D, v: [number, number]): [number, number, number] {
  const a = p.axes;
  return [a[0] * v[0] + a[1] * v[1], a[2] * v[0] + a[3] * v[1], a[4] * v[0] + a[5] * v[1]];
}

/** A 3D vector (mm) projected onto the plane's in-plane axes: `Aᵀ · v`. */
export function vectorFrom3D(p: Placement3D, v: [number, number, number]): [number, number] {
  const a = p.axes;
  return [a[0] * v[0] + a[2] * v[1] + a[4] * v[2], a[1] * v[0] + a[3] * v[1] + a[5] * v[2]];
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
  // a plain 2D image (no placement) matches a slice by its in-plane grid alone
  if (a.placement && b.placement) {
    const pa = a.placement;
    const pb = b.placement;
    const s3 = Math.max(1, ...pa.origin.map(Math.abs));
    for (let k = 0; k < 3; k++) if (!close(pa.origin[k], pb.origin[k], s3)) return false;
    for (let k = 0; k < 6; k++) if (!close(pa.axes[k], pb.axes[k], 1)) return false;
  }
  return true;
}

/** A one-line description for error messages: `256×256 px, spacing 1.5×1.5 mm, origin (…), direction (…)`, and the 3D placement when there is one. */
export function describeGeometry(g: Geometry): string {
  const f = (x: number) => Number(x.toPrecision(6)).toString();
  const d = g.direction.map(f);
  let s = `${g.size[0]}×${g.size[1]} px, spacing ${f(g.spacing[0])}×${f(g.spacing[1])} mm, origin (${f(g.origin[0])}, ${f(g.origin[1])}), direction (${d[0]} ${d[1]}; ${d[2]} ${d[3]})`;
  if (g.placement) {
    const p = g.placement;
    const a = p.axes.map(f);
    s += `, in 3D at (${p.origin.map(f).join(', ')}) with axes (${a[0]} ${a[2]} ${a[4]}), (${a[1]} ${a[3]} ${a[5]})`;
  }
  return s;
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
