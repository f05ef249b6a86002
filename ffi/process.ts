/**
 * glibc (2.36 and later): process descriptors, so that a kill reaches the
 * process that was checked and never a later one that reused its pid.
 * Symbols only; typed wrappers live in `src/sys/process.ts`.
 *
 * @module
 */

/** The symbols. */
export const PROCESS_SYMBOLS = {
  /** int pidfd_open(pid_t pid, unsigned int flags) */
  pidfd_open: { parameters: ["i32", "u32"], result: "i32" },
  /** int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags) */
  pidfd_send_signal: { parameters: ["i32", "i32", "pointer", "u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** SIGKILL on Linux (every architecture amp runs on). */
export const SIGKILL = 9;
