/**
 * The only module that calls itk-wasm. itk-wasm throws bare numbers (wasm exception pointers)
 * and prints "Exception while running pipeline" to stdout on failure; every call here runs
 * with console output captured and rethrows a readable Error instead. Calls are serialised,
 * because the capture swaps the global console methods.
 */
import { promises as fs } from 'node:fs';
import { readImageNode, writeImageNode } from '@itk-wasm/image-io';
import { readDicomTagsNode } from '@itk-wasm/dicom';
import type { Image } from 'itk-wasm';

let queue: Promise<unknown> = Promise.resolve();

async function quietly<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown; captured: string[] }> {
  const run = async () => {
    const captured: string[] = [];
    const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info };
    const grab = (...args: unknown[]) => {
      captured.push(args.map(String).join(' '));
    };
    console.log = grab;
    console.error = grab;
    console.warn = grab;
    console.info = grab;
    try {
      return { value: await fn(), captured };
    } catch (error) {
      return { error, captured };
    } finally {
      Object.assign(console, saved);
    }
  };
  const p = queue.then(run, run);
  queue = p.catch(() => undefined);
  return p;
}

/** A short reason for an itk-wasm failure: its own message when it gave one. */
function reason(error: unknown, captured: string[], fallback: string): string {
  if (error instanceof Error && error.message) {
    if (/Could not find IO/i.test(error.message)) return 'unsupported image format (by its extension or content)';
    if (/Could not read/i.test(error.message)) return 'not a readable image of its format (corrupt or truncated?)';
    return error.message;
  }
  const useful = captured
    .join('\n')
    .split('\n')
    .map((l) => l.replace(/^(stdout|stderr|exception):\s*/, '').trim())
    .filter((l) => l && !/Exception while running pipeline|Build module in Debug mode/.test(l));
  return useful.length ? useful.join('; ') : fallback;
}

/**
 * Checks that `file` is a non-empty regular file and returns its real path: itk-wasm mounts
 * the file's directory in its virtual file system, so a symbolic link pointing elsewhere
 * would not resolve there.
 */
async function checkReadable(file: string): Promise<string> {
  let st;
  try {
    st = await fs.stat(file);
  } catch {
    throw new Error('no such file');
  }
  if (st.isDirectory()) throw new Error('is a directory, not an image file');
  if (st.size === 0) throw new Error('file is empty');
  return fs.realpath(file);
}

/** Reads any image format itk-wasm knows. Throws Error('<reason>') without the file name. */
export async function itkRead(file: string): Promise<Image> {
  const real = await checkReadable(file);
  const r = await quietly(() => readImageNode(real));
  if (r.error !== undefined || !r.value) throw new Error(reason(r.error, r.captured, 'corrupt or unsupported image'));
  return r.value;
}

/** Reads only the header (size, spacing, origin, direction, pixel type) of an image file. */
export async function itkReadInfo(file: string): Promise<Image> {
  const real = await checkReadable(file);
  const r = await quietly(() => readImageNode(real, { informationOnly: true }));
  if (r.error !== undefined || !r.value) throw new Error(reason(r.error, r.captured, 'corrupt or unsupported image'));
  return r.value;
}

/**
 * Writes an itk-wasm image; the format comes from the extension of `file`. Compression is on
 * for .nrrd/.mha/.nii.gz (the GDCM writer crashes with it, so DICOM and others get none).
 */
export async function itkWrite(image: Image, file: string, useCompression = /\.(nrrd|mha|nii\.gz)$/i.test(file)): Promise<void> {
  const r = await quietly(() => writeImageNode(image, file, { useCompression }));
  if (r.error !== undefined) throw new Error(reason(r.error, r.captured, 'itk-wasm could not write this pixel type to this format'));
}

/** DICOM tags of one file as a Map `'gggg|eeee' → value`. */
export async function itkDicomTags(file: string, tags: string[]): Promise<Map<string, string>> {
  const real = await checkReadable(file);
  const r = await quietly(() => readDicomTagsNode(real, { tagsToRead: { tags } }));
  if (r.error !== undefined || !r.value) throw new Error(reason(r.error, r.captured, 'not a readable DICOM file'));
  return new Map(r.value.tags as [string, string][]);
}
