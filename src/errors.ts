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
