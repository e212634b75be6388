import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { UserError } from '../errors.js';

/** This machine, as 8 hex digits (temporaries name their writer's machine and pid). */
const HOST = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);

/**
 * A temporary sibling of `finalPath` that keeps its full extension (itk-wasm picks the format
 * from it, e.g. `.nii.gz`): `<dir>/.r2n2-tmp-<pid>-<host>-<random>-<basename>`.
 */
export function tempSibling(finalPath: string): string {
  const dir = path.dirname(finalPath);
  return path.join(dir, `.r2n2-tmp-${process.pid}-${HOST}-${randomBytes(4).toString('hex')}-${path.basename(finalPath)}`);
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
  await writeAtomic(finalPath, async (tmp) => {
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
  });
}

/** Whether a process with this pid runs on this machine (signal 0: EPERM means it does). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes stale temporaries left in `dir` by a killed run. A temporary written on this machine
 * by a process that no longer runs goes at once; with `minAgeMs`, others only when not modified
 * for that long (shards on other machines writing into the same directory keep their in-flight
 * files).
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
        // a temporary of a process that no longer runs goes at once, whatever its age
        const m = /^\.r2n2-tmp-(\d+)-([0-9a-f]{8})-/.exec(n);
        const dead = !!m && m[2] === HOST && Number(m[1]) !== process.pid && !processAlive(Number(m[1]));
        if (minAgeMs > 0 && !dead) {
          const st = await fs.stat(file).catch(() => null);
          if (!st || now - st.mtimeMs < minAgeMs) return;
        }
        await fs.rm(file, { recursive: true, force: true });
      }),
  );
}

/**
 * Names of the visible regular files in `dir`, following symbolic links. A broken link is an
 * error naming it (a series with a frame missing must not be registered as if it were whole).
 */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isFile()) out.push(e.name);
    else if (e.isSymbolicLink()) {
      const link = path.join(dir, e.name);
      const st = await fs.stat(link).catch(() => null);
      if (!st) {
        const target = await fs.readlink(link).catch(() => '?');
        throw new UserError(`${link} is a broken symbolic link (to ${target}, which does not exist); restore its target or remove the link`);
      }
      if (st.isFile()) out.push(e.name);
    }
  }
  return out;
}

/**
 * Takes `<dir>/<name>` as a lock (created exclusively, holding pid and machine) so that two runs
 * do not write into one output directory at once; returns its release. A lock left by a process
 * of this machine that no longer runs is taken over; a live one is a UserError naming the pid.
 */
export async function acquireLock(dir: string, name = '.r2n2-lock', what = 'output directory'): Promise<() => Promise<void>> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  const me = JSON.stringify({ pid: process.pid, host: HOST, hostname: os.hostname(), started: new Date().toISOString() });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, me, { flag: 'wx' });
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = await fs.readFile(file, 'utf8').then(
        (t) => JSON.parse(t) as { pid: number; host: string; hostname?: string; started?: string },
        () => null,
      );
      if (held && held.host === HOST && held.pid !== process.pid && processAlive(held.pid)) {
        throw new UserError(
          `another r2n2 run (pid ${held.pid}, started ${held.started ?? '?'}) is writing into the ${what} ${dir}; wait for it to finish, or choose another --out`,
        );
      }
      if (held && held.host !== HOST) {
        throw new UserError(
          `an r2n2 run on ${held.hostname ?? 'another machine'} (pid ${held.pid}) holds ${file}; if no run is active there, remove that file`,
        );
      }
      // a dead run's lock (or an unreadable one): take it over
      await fs.rm(file, { force: true });
    }
  }
  throw new UserError(`cannot take the lock ${file}; remove it if no r2n2 run is writing into ${dir}`);
}

/**
 * Removes `dir` and its subdirectories when they hold no file (after a run that failed before
 * writing anything: no empty output directory is left behind); keeps everything otherwise.
 */
export async function removeIfEmpty(dir: string): Promise<void> {
  const st = await fs.stat(dir).catch(() => null);
  if (!st?.isDirectory()) return;
  for (const n of await fs.readdir(dir)) await removeIfEmpty(path.join(dir, n));
  await fs.rmdir(dir).catch(() => undefined);
}

/**
 * Runs `fn` holding the lock `<dir>/<name>` (`acquireLock`; the directory is created), and
 * releases it however `fn` ends. When `fn` fails and the directory did not exist before, it is
 * removed if it holds no file: a run that fails before writing anything leaves nothing behind.
 */
export async function withOutputLock<T>(dir: string, fn: () => Promise<T>, name = '.r2n2-lock', what = 'output directory'): Promise<T> {
  const created = !(await fs.stat(dir).then(
    () => true,
    () => false,
  ));
  const release = await acquireLock(dir, name, what);
  let failed = false;
  try {
    return await fn();
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await release();
    if (failed && created) await removeIfEmpty(dir);
  }
}

/**
 * Builds a whole output directory atomically: `fill(tmp)` writes into a temporary sibling of
 * `out`, which then replaces `out` (removed first); if `fill` fails the sibling is removed and
 * `out` is untouched. Stale siblings of dead processes are cleared first.
 */
export async function writeDirAtomic<T>(out: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  const parent = path.dirname(path.resolve(out));
  await fs.mkdir(parent, { recursive: true });
  await removeStaleTemps(parent);
  const tmp = path.join(parent, `.r2n2-tmp-${process.pid}-${path.basename(out)}`);
  await fs.rm(tmp, { recursive: true, force: true });
  try {
    const r = await fill(tmp);
    await fs.rm(out, { recursive: true, force: true });
    await fs.rename(tmp, out);
    return r;
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
