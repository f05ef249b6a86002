/**
 * Typed wrappers of {@link ../../ffi/process.ts}: a process descriptor is
 * opened first, the process is checked through /proc, and the signal goes
 * through the descriptor, so a pid reused in between is never signalled.
 *
 * @module
 */

import { PROCESS_SYMBOLS, SIGKILL } from "../../ffi/process.ts";
import { LIBC_NAME } from "../../ffi/libc.ts";
import { close, errno, strerror } from "./libc.ts";
import { SysError } from "./sys_error.ts";

let library: Deno.DynamicLibrary<typeof PROCESS_SYMBOLS> | undefined;

function lib() {
  library ??= Deno.dlopen(LIBC_NAME, PROCESS_SYMBOLS);
  return library.symbols;
}

/** An open process descriptor; `close()` is safe twice. */
export class ProcessHandle {
  readonly pid: number;
  #fd: number;

  private constructor(pid: number, fd: number) {
    this.pid = pid;
    this.#fd = fd;
  }

  /** `pidfd_open(pid)`; throws {@linkcode SysError} (ESRCH when it is gone). */
  static open(pid: number): ProcessHandle {
    const fd = lib().pidfd_open(pid, 0);
    if (fd < 0) {
      const e = errno();
      throw new SysError("pidfd_open", e, String(pid), strerror(e));
    }
    return new ProcessHandle(pid, fd);
  }

  /** Sends SIGKILL through the descriptor. */
  kill(): void {
    if (this.#fd < 0) throw new Error("Process handle closed");
    if (lib().pidfd_send_signal(this.#fd, SIGKILL, null, 0) !== 0) {
      const e = errno();
      throw new SysError("pidfd_send_signal", e, String(this.pid), strerror(e));
    }
  }

  close(): void {
    if (this.#fd >= 0) close(this.#fd);
    this.#fd = -1;
  }
}
