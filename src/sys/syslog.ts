/**
 * Typed wrappers over glibc's `openlog`, `syslog` and `closelog`
 * (`ffi/syslog.ts`).
 *
 * Two things about glibc shape this module:
 * - `openlog` keeps the `ident` pointer it is given (it does not copy the
 *   string), so every ident buffer passed to it is kept here for the life of
 *   the process.
 * - `syslog` sends a datagram to `/dev/log` with a blocking `send`: when the
 *   syslog daemon stops reading, the call blocks. So it runs on Deno's
 *   blocking thread pool (the symbol is declared `nonblocking`) and returns
 *   a promise; the JS thread, which answers fanotify permission events, never
 *   waits on syslog. Callers that care about order wait for one call before
 *   the next (as `src/log/syslog_sink.ts` does).
 *
 * @module
 */

import {
  LIBC_NAME,
  LOG_FACILITY,
  LOG_OPTION,
  LOG_PRIORITY,
  SYSLOG_SYMBOLS,
} from "../../ffi/syslog.ts";

type Syslog = Deno.DynamicLibrary<typeof SYSLOG_SYMBOLS>["symbols"];

let lib: Syslog | undefined;
const encoder = new TextEncoder();
/** `"%s"`, NUL-terminated: the message is never used as a format. */
const FORMAT = encoder.encode("%s\0");
/** Every ident given to openlog, kept alive because glibc keeps the pointer. */
const idents = new Map<string, Uint8Array<ArrayBuffer>>();

function syslogLib(): Syslog {
  if (!lib) lib = Deno.dlopen(LIBC_NAME, SYSLOG_SYMBOLS).symbols;
  return lib;
}

function cString(text: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`${text}\0`);
}

/** Options of {@linkcode openlog}. */
export interface OpenlogOptions {
  /** `LOG_OPTION` bits; `PID | NDELAY` by default. */
  option?: number;
  /** A `LOG_FACILITY` value; `DAEMON` by default. */
  facility?: number;
}

/**
 * `openlog(3)`: sets the ident and facility of later {@linkcode syslog} calls
 * and, with `LOG_NDELAY` (the default), connects to `/dev/log` at once.
 *
 * @example
 * ```ts
 * import { closelog, LOG_PRIORITY, openlog, syslog } from "./syslog.ts";
 * openlog("amp");
 * await syslog(LOG_PRIORITY.NOTICE, "connector started");
 * closelog();
 * ```
 *
 * @param ident the program name shown before `[pid]`, such as `amp`
 * @param options option bits and facility
 */
export function openlog(ident: string, options: OpenlogOptions = {}): void {
  if (ident.includes("\0")) throw new TypeError("Syslog ident contains a NUL character");
  let buffer = idents.get(ident);
  if (!buffer) {
    buffer = cString(ident);
    idents.set(ident, buffer);
  }
  syslogLib().openlog(
    buffer,
    options.option ?? (LOG_OPTION.PID | LOG_OPTION.NDELAY),
    options.facility ?? LOG_FACILITY.DAEMON,
  );
}

/**
 * `syslog(3)` of one message, as `syslog(priority, "%s", message)`, run off
 * the JS thread. A NUL character in the message is sent as `\x00` (C would
 * cut the message there). Without {@linkcode openlog}, glibc uses the program
 * name and facility `user`.
 *
 * @param priority a `LOG_PRIORITY` value, optionally or-ed with a facility
 * @param message the text
 * @returns a promise settled once glibc has sent (or given up on) the message
 */
export async function syslog(priority: number, message: string): Promise<void> {
  const text = cString(message.replaceAll("\0", "\\x00"));
  // `text` and FORMAT stay referenced until the call returns.
  await syslogLib().syslog(priority, FORMAT, text);
}

/** `closelog(3)`: closes the connection to `/dev/log`. Safe to call twice. */
export function closelog(): void {
  syslogLib().closelog();
}

export { LOG_FACILITY, LOG_OPTION, LOG_PRIORITY };
