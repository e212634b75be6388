// plastimatch (Debian's `plastimatch`, a second classical peer) on one pair: a B-spline with MSE and
// L-BFGS-B, every stage at full resolution, the grid halved per stage (../shared/docs/PEERS.md).
// Its `vf_out` is the displacement in mm at every fixed pixel toward the moving image, the same
// pull-back field r2n2 writes; a 2D image is a 3D volume of one slice to it (3 components, z = 0).
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeImage2D, type Image2D } from '../dist/io/image.js';
import type { MethodResult } from './common.js';

const run = promisify(execFile);

/** A plastimatch recipe: the grid of each stage (mm), iterations per stage, the smoothness weight. */
export interface PlastimatchRecipe {
  gridMm: number[];
  iterations: number;
  lambda: number;
}

/** The recipes of PEERS.md: λ 1 (the middle one), λ 10 (best on smooth motion), no regularisation on a coarser grid. */
export const PLASTIMATCH_RECIPES: Record<string, PlastimatchRecipe> = {
  l1: { gridMm: [40, 20, 10], iterations: 100, lambda: 1 },
  l10: { gridMm: [40, 20, 10], iterations: 100, lambda: 10 },
  free: { gridMm: [60, 30, 15], iterations: 100, lambda: 0 },
};

export async function whichPlastimatch(): Promise<string | null> {
  try {
    const { stdout } = await run('plastimatch', ['--version']);
    return stdout.trim().split('\n')[0];
  } catch {
    return null;
  }
}

/** The command file of a recipe. */
export function plastimatchCommand(dir: string, r: PlastimatchRecipe): string {
  const stages = r.gridMm.map((g, k) =>
    [
      '[STAGE]',
      ...(k === 0
        ? ['xform=bspline', 'impl=plastimatch', 'metric=mse', 'optim=lbfgsb', 'res=1 1 1', `max_its=${r.iterations}`, `regularization_lambda=${r.lambda}`]
        : []),
      `grid_spac=${g} ${g} ${g}`,
    ].join('\n'),
  );
  return (
    ['[GLOBAL]', `fixed=${path.join(dir, 'f.mha')}`, `moving=${path.join(dir, 'm.mha')}`, `vf_out=${path.join(dir, 'vf.mha')}`, ...stages].join('\n') + '\n'
  );
}

/** The 2D displacement (interleaved x, y mm) of a MetaImage vector field of `n` pixels, 3 float components, data in the file. */
export function readVectorField3(buf: Buffer, n: number): Float32Array {
  const key = 'ElementDataFile = LOCAL\n';
  const at = buf.indexOf(key);
  if (at < 0 || !/ElementType = MET_FLOAT/.test(buf.subarray(0, at).toString()) || !/ElementNumberOfChannels = 3/.test(buf.subarray(0, at).toString()))
    throw new Error('plastimatch wrote a vector field this reader does not know (expected 3 float components, data in the .mha)');
  const raw = buf.subarray(at + key.length);
  if (raw.length < 12 * n) throw new Error(`plastimatch's vector field is short: ${raw.length} bytes for ${n} pixels`);
  const v = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + 12 * n));
  const out = new Float32Array(2 * n);
  for (let k = 0; k < n; k++) {
    out[2 * k] = v[3 * k];
    out[2 * k + 1] = v[3 * k + 1];
  }
  return out;
}

/** plastimatch on one pair (a plain 2D copy of each image): the registration's wall time and its field. */
export async function plastimatchRegister(fixed: Image2D, moving: Image2D, r: PlastimatchRecipe): Promise<MethodResult> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'r2n2-real-pm-'));
  try {
    const flat = (img: Image2D): Image2D => ({ geometry: { ...img.geometry, placement: undefined }, data: img.data });
    await writeImage2D(path.join(dir, 'f.mha'), flat(fixed));
    await writeImage2D(path.join(dir, 'm.mha'), flat(moving));
    await fs.writeFile(path.join(dir, 'p.txt'), plastimatchCommand(dir, r));
    const t0 = performance.now();
    await run('plastimatch', ['register', path.join(dir, 'p.txt')], { maxBuffer: 64 * 2 ** 20 });
    const seconds = (performance.now() - t0) / 1000;
    const [W, H] = fixed.geometry.size;
    const data = readVectorField3(await fs.readFile(path.join(dir, 'vf.mha')), W * H);
    // control points: the grid of the last stage over the field of view, 2 components
    const g = r.gridMm[r.gridMm.length - 1];
    const parameters = 2 * Math.ceil(((W - 1) * fixed.geometry.spacing[0]) / g + 3) * Math.ceil(((H - 1) * fixed.geometry.spacing[1]) / g + 3);
    return { field: { geometry: fixed.geometry, data }, seconds, parameters };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
