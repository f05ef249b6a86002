/**
 * An error the person running amp can fix (a bad option, a bad policy file):
 * printed as its message alone, never as a stack trace, with exit code 2.
 *
 * @module
 */

/** A user-facing error; `exitCode` is 2 unless given. */
export class UsageError extends Error {
  /** The process exit code. */
  readonly exitCode: number;

  constructor(message: string, options?: ErrorOptions & { exitCode?: number }) {
    super(message, options);
    this.name = "UsageError";
    this.exitCode = options?.exitCode ?? 2;
  }
}
