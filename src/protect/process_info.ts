/**
 * What an event says about a process: pid, parent, user, executable (bytes),
 * command line. Read from /proc at the moment of the event, best effort: a
 * process may be gone by then, and what could not be read is left out.
 *
 * @module
 */

import { bytePath, escapePath } from "../sys/byte_path.ts";
import { readlink } from "../sys/libc.ts";

/** A process as events describe it. */
export interface ProcessInfo {
  pid: number;
  ppid?: number;
  uid?: number;
  /** The executable's path as bytes (may end with " (deleted)"). */
  executable?: Uint8Array;
  /** argv joined by spaces, bytes that are not printable escaped. */
  commandLine?: string;
  parentExecutable?: Uint8Array;
}

/** Parent pid and real uid from the text of /proc/PID/status. */
export function parseProcStatus(text: string): { ppid?: number; uid?: number } {
  const out: { ppid?: number; uid?: number } = {};
  for (const line of text.split("\n")) {
    if (line.startsWith("PPid:")) out.ppid = Number(line.slice(5).trim());
    else if (line.startsWith("Uid:")) out.uid = Number(line.slice(4).trim().split(/\s+/)[0]);
  }
  return out;
}

/**
 * /proc/PID/cmdline (NUL-separated argv) as one line: arguments joined by
 * spaces, each escaped as paths are (`\xff`, `\n`), so the line is safe to log.
 *
 * @example
 * ```ts
 * import { formatCommandLine } from "./process_info.ts";
 * formatCommandLine(new TextEncoder().encode("sleep\u000030\u0000")); // "sleep 30"
 * ```
 */
export function formatCommandLine(raw: Uint8Array): string {
  const args: string[] = [];
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0) {
      args.push(escapePath(raw.subarray(start, i)));
      start = i + 1;
    }
  }
  if (start < raw.length) args.push(escapePath(raw.subarray(start)));
  return args.join(" ");
}

/** Reads what /proc says about `pid` (and its parent's executable). Never throws. */
export function readProcessInfo(pid: number, proc = "/proc"): ProcessInfo {
  const info: ProcessInfo = { pid };
  try {
    Object.assign(info, parseProcStatus(Deno.readTextFileSync(`${proc}/${pid}/status`)));
  } catch {
    // gone, or not ours to read
  }
  info.executable = readExe(pid, proc);
  try {
    info.commandLine = formatCommandLine(Deno.readFileSync(`${proc}/${pid}/cmdline`));
  } catch {
    // gone
  }
  if (info.ppid !== undefined && info.ppid > 0) info.parentExecutable = readExe(info.ppid, proc);
  return info;
}

/** The executable of `pid` as bytes, or undefined. */
export function readExe(pid: number, proc = "/proc"): Uint8Array | undefined {
  try {
    return readlink(bytePath(`${proc}/${pid}/exe`));
  } catch {
    return undefined;
  }
}
