/**
 * Landmark files.
 *
 * Read:
 * - CSV with a header naming `x,y` (lower case): physical coordinates in mm. Extra columns
 *   (a label, an index) are ignored. `x_mm,y_mm` also reads as mm; `x_px,y_px` as pixels.
 * - BIRL / ANHIR CSV: header `,X,Y` (an unnamed index column, then upper-case `X`, `Y`):
 *   X = column, Y = row, in pixels.
 * - elastix point files: a first line `point` (physical) or `index` (pixels), a second line
 *   with the count, then one `x y` per line (BIRL's `.pts` files are `point` files of images
 *   with unit spacing).
 * Write: CSV `x,y` in mm, full double precision.
 *
 * Pixels ↔ mm use the image geometry (spacing, origin, direction); see core/image/geometry.ts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { UserError } from '../errors.js';
import { type Geometry, type Point, indexToPhysical } from '../core/image/geometry.js';
import { listFiles, writeTextAtomic } from './atomic.js';
import { naturalSort } from './series.js';

export type LandmarkUnits = 'mm' | 'px';
export type LandmarkFormat = 'csv' | 'birl' | 'elastix-point' | 'elastix-index';

export interface LandmarkFile {
  file: string;
  format: LandmarkFormat;
  /** Units of `points` as stored in the file. */
  units: LandmarkUnits;
  points: Point[];
}

export const LANDMARK_EXTENSIONS = ['.csv', '.txt', '.pts'];

function num(file: string, line: number, cell: string | undefined, what: string): number {
  const v = Number(String(cell ?? '').trim());
  if (cell === undefined || String(cell).trim() === '' || !Number.isFinite(v)) {
    throw new UserError(`${file}:${line}: ${what} "${cell ?? ''}" is not a finite number; fix the landmark file`);
  }
  return v;
}

function parseElastix(file: string, text: string): LandmarkFile {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const kind = lines[0].toLowerCase();
  const count = Number(lines[1]);
  if (!Number.isInteger(count) || count < 0) throw new UserError(`${file}:2: expected the number of points after "${lines[0]}", got "${lines[1] ?? ''}"`);
  const rows = lines
    .slice(2)
    .map((l, k) => ({ l, line: k + 3 }))
    .filter((r) => r.l !== '');
  if (rows.length !== count) throw new UserError(`${file} announces ${count} points but holds ${rows.length}; fix the count on line 2`);
  const points = rows.map(({ l, line }) => {
    const c = l.split(/[\s,;]+/);
    if (c.length < 2) throw new UserError(`${file}:${line}: expected "x y", got "${l}"`);
    return [num(file, line, c[0], 'x'), num(file, line, c[1], 'y')] as Point;
  });
  return { file, format: kind === 'index' ? 'elastix-index' : 'elastix-point', units: kind === 'index' ? 'px' : 'mm', points };
}

function parseCsv(file: string, text: string): LandmarkFile {
  let rows: string[][];
  try {
    const delimiter = [',', ';', '\t'].find((d) => text.split(/\r?\n/)[0].includes(d)) ?? ',';
    rows = parse(text, { delimiter, bom: true, skip_empty_lines: true, relax_column_count: true, trim: true }) as string[][];
  } catch (err) {
    throw new UserError(`${file} is not valid CSV: ${(err as Error).message}`);
  }
  if (rows.length === 0) throw new UserError(`${file} is empty; expected a header "x,y" and one landmark per line`);
  const header = rows[0];
  const find = (...names: string[]) => header.findIndex((h) => names.includes(h));
  let format: LandmarkFormat;
  let units: LandmarkUnits;
  let ix: number;
  let iy: number;
  if ((ix = find('x', 'x_mm')) >= 0 && (iy = find('y', 'y_mm')) >= 0) {
    format = 'csv';
    units = 'mm';
  } else if ((ix = find('X')) >= 0 && (iy = find('Y')) >= 0) {
    format = 'birl';
    units = 'px';
  } else if ((ix = find('x_px', 'col')) >= 0 && (iy = find('y_px', 'row')) >= 0) {
    format = 'csv';
    units = 'px';
  } else {
    throw new UserError(`${file}: header "${header.join(',')}" names no coordinates; use "x,y" (mm), BIRL ",X,Y" (pixels) or "x_px,y_px"`);
  }
  const points = rows.slice(1).map((r, k) => [num(file, k + 2, r[ix], 'x'), num(file, k + 2, r[iy], 'y')] as Point);
  return { file, format, units, points };
}

/** Reads one landmark file in any supported format (detected from its content). */
export async function readLandmarkFile(file: string): Promise<LandmarkFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message}`);
  }
  const first = text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/, 1)[0]
    .trim()
    .toLowerCase();
  const lf = first === 'point' || first === 'index' ? parseElastix(file, text.replace(/^\uFEFF/, '')) : parseCsv(file, text);
  if (lf.points.length === 0) throw new UserError(`${file} holds no landmarks`);
  return lf;
}

/**
 * The landmarks in physical mm. Pixel landmarks need the geometry of the image they were
 * placed on; without it this is a UserError that says how to give one.
 */
export function landmarksMm(lf: LandmarkFile, geometry: Geometry | null, hint = 'pass --series so they can be converted to mm'): Point[] {
  if (lf.units === 'mm') return lf.points;
  if (!geometry) throw new UserError(`${lf.file} holds pixel coordinates (${lf.format}); ${hint}`);
  return lf.points.map((p) => indexToPhysical(geometry, p));
}

/** CSV `x,y` in mm, full double precision. */
export function formatLandmarkCsv(points: Point[]): string {
  return 'x,y\n' + points.map((p) => `${p[0]},${p[1]}`).join('\n') + '\n';
}

export async function writeLandmarkCsv(file: string, points: Point[]): Promise<void> {
  await writeTextAtomic(file, formatLandmarkCsv(points));
}

/**
 * A landmark directory: one file per frame, named by the frame's stem
 * (`frame_007.csv` ↔ frame `frame_007`). Returns stem → file in natural order.
 */
export async function listLandmarkDir(dir: string): Promise<Map<string, string>> {
  let entries: string[];
  try {
    entries = await listFiles(dir);
  } catch {
    throw new UserError(`landmark directory ${dir} does not exist; pass a directory with one landmark file per frame (${LANDMARK_EXTENSIONS.join(' ')})`);
  }
  const files = naturalSort(
    entries.filter((n) => LANDMARK_EXTENSIONS.includes(path.extname(n).toLowerCase())),
    (n) => n,
  );
  const out = new Map<string, string>();
  for (const name of files) {
    const stem = name.slice(0, name.length - path.extname(name).length);
    const prev = out.get(stem);
    if (prev) throw new UserError(`${prev} and ${path.join(dir, name)} are both landmarks of frame "${stem}"; keep one`);
    out.set(stem, path.join(dir, name));
  }
  if (out.size === 0) throw new UserError(`${dir} holds no landmark files (${LANDMARK_EXTENSIONS.join(' ')})`);
  return out;
}
