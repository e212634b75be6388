/**
 * The only module that calls itk-wasm. itk-wasm throws bare numbers (wasm exception pointers)
 * and prints "Exception while running pipeline" to stdout on failure; every call here runs
 * with console output captured and rethrows a readable Error instead. Calls are serialised,
 * because the capture swaps the global console methods and a kept pipeline module (below)
 * runs one call at a time.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readImageNode, writeImageNode } from '@itk-wasm/image-io';
import { readDicomTagsNode } from '@itk-wasm/dicom';
import { InterfaceTypes, castImage, getFileExtension, type Image } from 'itk-wasm';

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

/*
 * Pipeline modules kept between calls. itk-wasm's Node runner (`runPipelineNode`, under every
 * `readImageNode` / `writeImageNode`) reads, decompresses, compiles and instantiates the
 * format's wasm pipeline on every call, and the browser runner keeps them; measured here on
 * 128² NRRD frames: 49.5 ms per read through `readImageNode`, 6.7 ms with the module kept,
 * the same pixels and geometry. This runs the same pipeline with the same arguments through
 * itk-wasm's own loader and marshalling, once loaded. Those two are internal modules of
 * itk-wasm (not in its exports map), so they are opened by path; if that fails (another
 * itk-wasm layout) every call falls back to the public functions. A module whose call threw is
 * dropped, so the next call starts from a fresh one.
 */
interface PipelineResult {
  returnValue: number;
  stderr: string;
  outputs: { type: string; data: unknown }[];
}
interface EmscriptenPipeline {
  mountDir(dir: string): string;
  unmountDir(dir: string): void;
  HEAPU8?: Uint8Array;
}
interface Kept {
  ioDir: string;
  dicomDir: string;
  extensionToIo: Map<string, string>;
  load(pipelinePath: string): Promise<EmscriptenPipeline>;
  run(m: EmscriptenPipeline, args: string[], outputs: { type: string }[], inputs: { type: string; data: unknown }[]): PipelineResult;
}
let kept: Promise<Kept | null> | undefined;
const modules = new Map<string, Promise<EmscriptenPipeline>>();
/**
 * A module's wasm memory only grows: after reading a 140 MB volume it holds another 140 MB.
 * A module whose memory passed this size is dropped after its call, as the public functions
 * drop every module, so large images cost what they did; 2D frames stay far below it.
 */
const KEEP_MAX_HEAP_BYTES = 64 * 2 ** 20;

/** How many pipeline modules are kept now (for tests). */
export function itkKeptModuleCount(): number {
  return modules.size;
}

/** Whether calls keep their pipeline modules (false: itk-wasm's layout was not recognised, or R2N2_ITK_KEEP=0). */
export async function itkKeepsModules(): Promise<boolean> {
  return (await keptRunner()) !== null;
}

function keptRunner(): Promise<Kept | null> {
  kept ??= (async () => {
    if (process.env.R2N2_ITK_KEEP === '0') return null;
    try {
      const req = createRequire(import.meta.url);
      const itkDist = path.dirname(req.resolve('itk-wasm'));
      const ioDist = path.dirname(req.resolve('@itk-wasm/image-io'));
      const dicomDist = path.dirname(req.resolve('@itk-wasm/dicom'));
      const open = (dir: string, file: string) => import(pathToFileURL(path.join(dir, file)).href);
      const [loader, runner, ext] = await Promise.all([
        open(itkDist, 'pipeline/internal/load-emscripten-module-node.js'),
        open(itkDist, 'pipeline/internal/run-pipeline-emscripten.js'),
        open(ioDist, 'extension-to-image-io.js'),
      ]);
      if (typeof loader.default !== 'function' || typeof runner.default !== 'function' || !(ext.default instanceof Map)) return null;
      return {
        ioDir: path.join(ioDist, 'pipelines'),
        dicomDir: path.join(dicomDist, 'pipelines'),
        extensionToIo: ext.default,
        load: loader.default,
        run: runner.default,
      };
    } catch {
      return null;
    }
  })();
  return kept;
}

/** Runs a pipeline with its kept module, as itk-wasm's `runPipelineNode` would with `file`'s directory mounted. */
async function runKept(
  k: Kept,
  pipelinePath: string,
  file: string,
  args: string[],
  outputs: { type: string }[],
  inputs: { type: string; data: unknown }[],
): Promise<PipelineResult> {
  let loading = modules.get(pipelinePath);
  if (!loading) {
    loading = k.load(pipelinePath);
    modules.set(pipelinePath, loading);
    loading.catch(() => modules.delete(pipelinePath));
  }
  const m = await loading;
  const mounted = m.mountDir(path.dirname(file));
  try {
    return k.run(m, args, outputs, inputs);
  } catch (err) {
    modules.delete(pipelinePath);
    throw err;
  } finally {
    try {
      m.unmountDir(mounted);
    } catch {
      modules.delete(pipelinePath);
    }
    if ((m.HEAPU8?.length ?? 0) > KEEP_MAX_HEAP_BYTES) modules.delete(pipelinePath);
  }
}

/** `bioRad` → `bio-rad`: the pipeline file names of @itk-wasm/image-io. */
const kebab = (io: string) => io.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/**
 * The image-io pipeline for `file`, as `readImageNode` / `writeImageNode` choose it: by
 * extension, or (reading a file without a known one, as DICOM files often are) GDCM when the
 * file is DICOM; undefined (the public functions then try every format) otherwise.
 */
async function imageIoPipeline(k: Kept, file: string, direction: 'read' | 'write'): Promise<string | undefined> {
  let io = k.extensionToIo.get(getFileExtension(file));
  if (!io && direction === 'read' && (await hasDicomMagic(file))) io = 'gdcm';
  return io ? path.join(k.ioDir, `${kebab(io)}-${direction}-image`) : undefined;
}

/** 'DICM' at byte 128: a DICOM Part 10 file. */
export async function hasDicomMagic(file: string): Promise<boolean> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 128);
    return bytesRead === 4 && buf.toString('latin1') === 'DICM';
  } finally {
    await fh.close();
  }
}

async function readWithKept(file: string, informationOnly: boolean): Promise<Image> {
  const k = await keptRunner();
  const pipeline = k && (await imageIoPipeline(k, file, 'read'));
  if (!k || !pipeline) return readImageNode(file, informationOnly ? { informationOnly } : {});
  const args = [file, '0', '1', '--memory-io', ...(informationOnly ? ['--information-only'] : [])];
  const r = await runKept(k, pipeline, file, args, [{ type: InterfaceTypes.JsonCompatible }, { type: InterfaceTypes.Image }], []);
  if (r.returnValue !== 0 && r.stderr !== '') throw new Error(r.stderr);
  if (!r.outputs[0]?.data || !r.outputs[1]?.data) throw Error('Could not read: ' + file);
  return castImage(r.outputs[1].data as Image, {}); // as readImageNode returns it
}

async function writeWithKept(image: Image, file: string, useCompression: boolean): Promise<void> {
  const k = await keptRunner();
  const pipeline = k && (await imageIoPipeline(k, file, 'write'));
  if (!k || !pipeline) return writeImageNode(image, file, { useCompression });
  const args = ['0', '0', file, '--memory-io', ...(useCompression ? ['--use-compression'] : [])];
  const r = await runKept(k, pipeline, file, args, [{ type: InterfaceTypes.JsonCompatible }], [{ type: InterfaceTypes.Image, data: image }]);
  if (r.returnValue !== 0 && r.stderr !== '') throw new Error(r.stderr);
  if (!r.outputs[0]?.data) throw Error('Could not write: ' + file);
}

async function dicomTagsWithKept(file: string, tags: string[]): Promise<[string, string][]> {
  const k = await keptRunner();
  if (!k) return (await readDicomTagsNode(file, { tagsToRead: { tags } })).tags as [string, string][];
  const r = await runKept(
    k,
    path.join(k.dicomDir, 'read-dicom-tags'),
    file,
    [file, '0', '--memory-io', '--tags-to-read', '0'],
    [{ type: InterfaceTypes.JsonCompatible }],
    [{ type: InterfaceTypes.JsonCompatible, data: { tags } }],
  );
  if (r.returnValue !== 0) throw new Error(r.stderr);
  return r.outputs[0].data as [string, string][];
}

/** Reads any image format itk-wasm knows. Throws Error('<reason>') without the file name. */
export async function itkRead(file: string): Promise<Image> {
  const real = await checkReadable(file);
  const r = await quietly(() => readWithKept(real, false));
  if (r.error !== undefined || !r.value) throw new Error(reason(r.error, r.captured, 'corrupt or unsupported image'));
  return r.value;
}

/** Reads only the header (size, spacing, origin, direction, pixel type) of an image file. */
export async function itkReadInfo(file: string): Promise<Image> {
  const real = await checkReadable(file);
  const r = await quietly(() => readWithKept(real, true));
  if (r.error !== undefined || !r.value) throw new Error(reason(r.error, r.captured, 'corrupt or unsupported image'));
  return r.value;
}

/**
 * Writes an itk-wasm image; the format comes from the extension of `file`. Compression is on
 * for .nrrd/.mha/.nii.gz (the GDCM writer crashes with it, so DICOM and others get none).
 */
export async function itkWrite(image: Image, file: string, useCompression = /\.(nrrd|mha|nii\.gz)$/i.test(file)): Promise<void> {
  const r = await quietly(() => writeWithKept(image, path.resolve(file), useCompression));
  if (r.error !== undefined) throw new Error(reason(r.error, r.captured, 'itk-wasm could not write this pixel type to this format'));
}

/** DICOM tags of one file as a Map `'gggg|eeee' → value`. */
export async function itkDicomTags(file: string, tags: string[]): Promise<Map<string, string>> {
  const real = await checkReadable(file);
  const r = await quietly(() => dicomTagsWithKept(real, tags));
  if (r.error !== undefined || !r.value) throw new Error(reason(r.error, r.captured, 'not a readable DICOM file'));
  return new Map(r.value);
}
