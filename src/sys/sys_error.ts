/**
 * Errors from system calls, with the errno a caller can act on.
 *
 * @module
 */

/** Names of the errno values amp reacts to (Linux numbering). */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  27: "EFBIG",
  28: "ENOSPC",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  40: "ELOOP",
  75: "EOVERFLOW",
  95: "EOPNOTSUPP",
  116: "ESTALE",
};

/** A failed system call: `syscall`, `errno` and its name (`code`). */
export class SysError extends Error {
  /** The errno value. */
  readonly errno: number;
  /** The errno name, such as `EACCES`. */
  readonly code: string;
  /** The call that failed, such as `openat`. */
  readonly syscall: string;
  /** The errno name with the C library's text, such as `EACCES (Permission denied)`. */
  readonly reason: string;

  /**
   * @param syscall the call that failed
   * @param errno its errno
   * @param detail what it was called on (a path, shown escaped)
   * @param description the C library's text for the errno
   */
  constructor(syscall: string, errno: number, detail?: string, description?: string) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    const text = description ? `${code} (${description})` : code;
    super(detail ? `${syscall} ${detail}: ${text}` : `${syscall}: ${text}`);
    this.name = "SysError";
    this.errno = errno;
    this.code = code;
    this.syscall = syscall;
    this.reason = text;
  }
}

/**
 * The message of anything thrown: an Error's message, else its text.
 *
 * @example
 * ```ts
 * import { errorMessage } from "./sys_error.ts";
 * errorMessage(new Error("disk full")); // "disk full"
 * errorMessage("plain"); // "plain"
 * ```
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
