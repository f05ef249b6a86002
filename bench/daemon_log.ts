/**
 * What the daemon benchmark reads from the daemon's log: the status report
 * counts rescans but not the files they scanned, which only the daemon's
 * "Rescan done" notice tells.
 *
 * @module
 */

/** One finished rescan. */
export interface RescanDone {
  /** Files the rescan scanned. */
  files: number;
  /** Detections it made. */
  detections: number;
  /** How long it took, s. */
  seconds: number;
}

const RESCAN_DONE =
  /Rescan done: (\d+) files changed since \S+, (\d+) detections, \d+ errors in ([\d.]+) s/g;

/**
 * The "Rescan done" notices in some log text, in order.
 *
 * @param log the daemon's log (stderr) text
 *
 * @example
 * ```ts
 * import { parseRescans } from "./daemon_log.ts";
 * const line = "Rescan done: 20001 files changed since 2026-11-26T12:00:00.000Z, " +
 *   "1 detections, 0 errors in 2.1 s";
 * parseRescans(line); // [{ files: 20001, detections: 1, seconds: 2.1 }]
 * ```
 */
export function parseRescans(log: string): RescanDone[] {
  return [...log.matchAll(RESCAN_DONE)].map((m) => ({
    files: Number(m[1]),
    detections: Number(m[2]),
    seconds: Number(m[3]),
  }));
}
