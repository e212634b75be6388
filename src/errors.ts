import { constants as osConstants } from 'node:os';

/**
 * An error the user can fix: printed as one line `error: <message>` and the process exits with
 * `exitCode` (1 unless said otherwise). Every message names the file involved and the fix.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/**
 * The exit code of a run stopped by a signal it handled: 128 + the signal's number (130 for
 * SIGINT, 143 for SIGTERM), as a shell reports a process killed by it; 130 for any other reason.
 */
export function signalExitCode(reason: unknown): number {
  const n = (osConstants.signals as Record<string, number | undefined>)[String(reason)];
  return n ? 128 + n : 130;
}

/** What to do about a filesystem error, by its code (Node's `err.code`). */
const FS_ADVICE: Record<string, string> = {
  ENOSPC: 'the disk is full: free space (or choose another --out) and run the same command again; finished files are kept',
  EDQUOT: 'the disk quota is exhausted: free space and run the same command again',
  EACCES: 'permission denied: choose a path you may write (or read), or fix its permissions',
  EPERM: 'operation not permitted: choose another path, or fix its permissions',
  EROFS: 'the file system is read-only: choose a writable --out',
  EEXIST: 'a file is in the way where a directory is needed: remove it or choose another path',
  ENOTDIR: 'a part of the path is a file, not a directory: choose another path',
  EISDIR: 'a directory is in the way where a file is needed: choose another path',
  ENOENT: 'no such file or directory: check the path',
  EMFILE: 'too many open files: raise the limit (ulimit -n) and run again',
  ENAMETOOLONG: 'the path is too long: choose a shorter one',
  ELOOP: 'too many symbolic links (a loop?): check the path',
};

/**
 * A filesystem error (ENOSPC, EACCES, EEXIST, ENOTDIR, EROFS, …) as a UserError naming the path
 * and what to do; null for anything else.
 */
export function fsUserError(err: unknown): UserError | null {
  const e = err as (NodeJS.ErrnoException & { dest?: string }) | undefined;
  const code = e?.code;
  if (!code || !FS_ADVICE[code]) return null;
  const where = e.path ? `${e.dest ? `${e.path} → ${e.dest}` : e.path}: ` : '';
  return new UserError(`${where}${FS_ADVICE[code]} (${code}${e.syscall ? `, ${e.syscall}` : ''})`);
}
