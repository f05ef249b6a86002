/**
 * glibc's syslog interface: `openlog`, `syslog` and `closelog`, with the
 * priority, facility and option constants of `<syslog.h>`. Symbols and
 * constants only; the typed wrapper is `src/sys/syslog.ts`.
 *
 * @module
 */

export { LIBC_NAME } from "./libc.ts";

/**
 * The syslog symbols. `syslog` is variadic; amp always calls it as
 * `syslog(priority, "%s", message)`, so it is declared with exactly those
 * three arguments (on x86_64 and aarch64 Linux a variadic pointer argument is
 * passed as a fixed one would be). It is `nonblocking`: glibc's send to
 * `/dev/log` blocks when the syslog daemon stops reading, and the JS thread
 * must not.
 */
export const SYSLOG_SYMBOLS = {
  /** void openlog(const char *ident, int option, int facility) */
  openlog: { parameters: ["buffer", "i32", "i32"], result: "void" },
  /** void syslog(int priority, const char *format, const char *message) */
  syslog: { parameters: ["i32", "buffer", "buffer"], result: "void", nonblocking: true },
  /** void closelog(void) */
  closelog: { parameters: [], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `LOG_*` priorities (severities), most severe first. */
export const LOG_PRIORITY = {
  EMERG: 0,
  ALERT: 1,
  CRIT: 2,
  ERR: 3,
  WARNING: 4,
  NOTICE: 5,
  INFO: 6,
  DEBUG: 7,
} as const;

/** `LOG_*` facilities (already shifted: `LOG_DAEMON` is `3 << 3`). */
export const LOG_FACILITY = {
  KERN: 0 << 3,
  USER: 1 << 3,
  MAIL: 2 << 3,
  DAEMON: 3 << 3,
  AUTH: 4 << 3,
  SYSLOG: 5 << 3,
  AUTHPRIV: 10 << 3,
  LOCAL0: 16 << 3,
  LOCAL1: 17 << 3,
  LOCAL2: 18 << 3,
  LOCAL3: 19 << 3,
  LOCAL4: 20 << 3,
  LOCAL5: 21 << 3,
  LOCAL6: 22 << 3,
  LOCAL7: 23 << 3,
} as const;

/** `openlog` options. */
export const LOG_OPTION = {
  PID: 0x01,
  CONS: 0x02,
  ODELAY: 0x04,
  NDELAY: 0x08,
  NOWAIT: 0x10,
  PERROR: 0x20,
} as const;
