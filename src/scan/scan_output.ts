/**
 * How a scan speaks to a person: a progress line on a terminal, one line per
 * detection (as clamscan: `path: Name FOUND`), and a summary block. Pure
 * formatting, so it is tested without a terminal.
 *
 * @module
 */

import type { Detection, ScanReport, ScanSummary } from "./scan_run.ts";

const MB = 1024 * 1024;

function mbps(bytes: number, ms: number): number {
  return ms > 0 ? bytes / MB / (ms / 1000) : 0;
}

/**
 * The one-line progress shown on a terminal while a scan runs.
 *
 * @example
 * ```ts
 * import { progressLine } from "./scan_output.ts";
 * progressLine({ files: 10, bytes: 2097152, detections: 1, skipped: 0, errors: 0, cached: 0, elapsedMs: 1000 });
 * // "Scanning: 10 files, 2.0 MB, 2.0 MB/s, 1 detection"
 * ```
 */
export function progressLine(s: ScanSummary): string {
  const det = `${s.detections} detection${s.detections === 1 ? "" : "s"}`;
  return `Scanning: ${s.files} files, ${(s.bytes / MB).toFixed(1)} MB, ` +
    `${mbps(s.bytes, s.elapsedMs).toFixed(1)} MB/s, ${det}`;
}

/** The line printed for a detection. */
export function detectionLine(d: Detection): string {
  return `${d.path}: ${d.name} FOUND (${d.engine})`;
}

/** Optional lines of {@linkcode summaryLines}. */
export interface SummaryOptions {
  /** The policy line, such as `Audit Policy for Linux (#1) from built-in`. */
  policy?: string;
  /** Break the skipped count down by reason. */
  skippedReasons?: boolean;
}

/** The summary block printed at the end of a scan. */
export function summaryLines(
  report: ScanReport,
  engines: string[],
  options: SummaryOptions = {},
): string[] {
  const s = report.summary;
  const reasons = options.skippedReasons
    ? [...skippedByReason(report)].map(([r, n]) => `${r} ${n}`).join(", ")
    : "";
  const lines = [
    "",
    `----------- SCAN SUMMARY${report.stopped ? " (stopped)" : ""} -----------`,
    ...(options.policy ? [`Policy: ${options.policy}`] : []),
    `Engines: ${engines.join(", ")}`,
    `Scanned files: ${s.files}${s.cached ? ` (${s.cached} unchanged since the last scan)` : ""}`,
    `Data scanned: ${(s.bytes / MB).toFixed(2)} MB`,
    `Detections: ${s.detections}`,
    `Skipped: ${s.skipped}`,
    ...(reasons ? [`  (${reasons}; --json lists them)`] : []),
    `Errors: ${s.errors}`,
    `Time: ${(s.elapsedMs / 1000).toFixed(3)} s (${mbps(s.bytes, s.elapsedMs).toFixed(1)} MB/s)`,
  ];
  return lines;
}

/** Skipped entries grouped by reason, for the human summary. */
export function skippedByReason(report: ScanReport): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of report.skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  return counts;
}

/** The `--json` document: summary, detections, skipped and errors. */
export function jsonReport(report: ScanReport, extra: Record<string, unknown>): string {
  return JSON.stringify(
    {
      ...extra,
      stopped: report.stopped,
      summary: report.summary,
      detections: report.detections.map(({ path, name, engine, sha256, size }) => ({
        path,
        name,
        engine,
        sha256,
        size,
      })),
      skipped: report.skipped,
      errors: report.errors,
    },
    null,
    2,
  );
}
