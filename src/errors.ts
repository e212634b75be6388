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
