/**
 * The 3D header of a NIfTI file, read by nifti-reader-js. ITK's NIfTI reader drops trailing
 * axes of length 1 from a vector image, so a one-slice 3D displacement field (as `writeField`
 * writes for a slice placed in 3D) comes back from itk-wasm as 2D, with its 3D placement
 * reduced to the upper-left 2×2 block. The file itself holds the full qform / sform; this reads
 * it so the field regains its 3D geometry.
 *
 * NIfTI is RAS+, ITK (and this project) LPS: the first two rows of the direction and origin
 * change sign. The qform is used when it is set (ITK's choice for files it wrote), else the sform.
 */
import { promises as fs } from 'node:fs';
import zlib from 'node:zlib';
import { isNIFTI1, readHeader, type NIFTI1 } from 'nifti-reader-js';
import type { Header3D } from '../core/image/geometry.js';

export interface NiftiHeader3D extends Header3D {
  /** `dim[1..3]`: the spatial size. */
  size: [number, number, number];
}

/** The spatial 3D header of a NIfTI-1 file, or null when the file is not NIfTI-1 or has no orientation. */
export async function niftiHeader3D(file: string): Promise<NiftiHeader3D | null> {
  // the header is the first 348 bytes: inflate only the start of a .nii.gz
  const fh = await fs.open(file, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(16384);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  if (head[0] === 0x1f && head[1] === 0x8b) head = zlib.gunzipSync(head, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  if (head.length < 348) return null;
  const data = head.buffer.slice(head.byteOffset, head.byteOffset + head.byteLength) as ArrayBuffer;
  if (!isNIFTI1(data)) return null;
  const h = readHeader(data) as NIFTI1;
  const spacing: [number, number, number] = [h.pixDims[1] || 1, h.pixDims[2] || 1, h.pixDims[3] || 1];
  let m: number[][];
  if (h.qform_code > 0) m = h.getQformMat();
  else if (h.sform_code > 0) m = h.affine;
  else return null;
  const direction: number[] = [];
  for (let r = 0; r < 3; r++) {
    const sign = r < 2 ? -1 : 1;
    for (let c = 0; c < 3; c++) direction.push((sign * m[r][c]) / spacing[c]);
  }
  // columns of a qform are unit vectors times the spacing; an sform may carry shear: normalise
  for (let c = 0; c < 3; c++) {
    const n = Math.hypot(direction[c], direction[3 + c], direction[6 + c]) || 1;
    for (let r = 0; r < 3; r++) direction[3 * r + c] /= n;
  }
  return {
    size: [h.dims[1], h.dims[2] || 1, h.dims[3] || 1],
    origin: [-m[0][3], -m[1][3], m[2][3]],
    spacing,
    direction,
  };
}
