import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * A temporary sibling of `finalPath` that keeps its full extension (itk-wasm picks the format
 * from it, e.g. `.nii.gz`): `<dir>/.r2n2-tmp-<pid>-<random>-<basename>`.
 */
export function tempSibling(finalPath: string): string {
  const dir = path.dirname(finalPath);
  return path.join(dir, `.r2n2-tmp-${process.pid}-${randomBytes(4).toString('hex')}-${path.basename(finalPath)}`);
}

/**
 * Writes a file atomically: `write(tmp)` fills a temporary sibling, which is then renamed onto
 * `finalPath`. On failure the temporary file is removed and `finalPath` is untouched, so a
 * crash never leaves a truncated output that a resumed run would take for finished.
 */
export async function writeAtomic(finalPath: string, write: (tmpPath: string) => Promise<void>): Promise<void> {
  await fs.mkdir(path.dirname(finalPath), { recursive: true });
  const tmp = tempSibling(finalPath);
  try {
    await write(tmp);
    await fs.rename(tmp, finalPath);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Atomic text file write (JSON, CSV, …). */
export async function writeTextAtomic(finalPath: string, text: string): Promise<void> {
  await writeAtomic(finalPath, (tmp) => fs.writeFile(tmp, text));
}

/**
 * Removes stale temporaries left in `dir` by a killed run (any pid). With `minAgeMs`, only
 * those not modified for that long, so parallel shards writing into the same directory keep
 * their in-flight files.
 */
export async function removeStaleTemps(dir: string, minAgeMs = 0): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  await Promise.all(
    names
      .filter((n) => n.startsWith('.r2n2-tmp-'))
      .map(async (n) => {
        const file = path.join(dir, n);
        if (minAgeMs > 0) {
          const st = await fs.stat(file).catch(() => null);
          if (!st || now - st.mtimeMs < minAgeMs) return;
        }
        await fs.rm(file, { recursive: true, force: true });
      }),
  );
}

/** Names of the visible regular files in `dir`, following symbolic links. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isFile()) out.push(e.name);
    else if (e.isSymbolicLink()) {
      const st = await fs.stat(path.join(dir, e.name)).catch(() => null);
      if (st?.isFile()) out.push(e.name);
    }
  }
  return out;
}
