/**
 * What every benchmarked tool shares: the context it runs in and the result
 * row(s) it reports. Each tool lives in its own `*_tool.ts` file and is chosen
 * by name in `scan_bench.ts`.
 *
 * @module
 */

import type { Corpus } from "./corpus.ts";
import type { SignatureDb } from "./signatures.ts";

/** Everything a tool needs to run one measurement. */
export interface ToolContext {
  /** The corpus to scan. */
  corpus: Corpus;
  /** The signature database (clamscan/clamd/amp). */
  db: SignatureDb;
  /** CPU cores: clamd's MaxThreads, sha256sum's parallelism. */
  cores: number;
  /** A fresh scratch folder for this run of this tool. */
  scratchDir: string;
  /** The amp repository (where main.ts lives). */
  repoDir: string;
  /** Per-command timeout in seconds. */
  timeoutSec: number;
  /** Progress messages. */
  log: (message: string) => void;
}

/** One measured row of the table. */
export interface ToolRun {
  /** Row label, e.g. "clamscan -r". */
  label: string;
  /** Wall time in milliseconds (NaN when the tool could not run). */
  wallMs: number;
  /** Peak RSS in KiB, or null. */
  peakRssKb: number | null;
  /** Files the tool says it scanned, when it says. */
  filesReported?: number;
  /** Paths the tool reported as detections; null when detection does not apply. */
  detections: string[] | null;
  /** Exit code of the measured command. */
  exitCode?: number;
  /** Set when the run failed and its numbers are meaningless. */
  error?: string;
  /** Remarks shown under the table. */
  notes: string[];
}

/** A benchmarked tool. */
export interface BenchTool {
  /** Name used by `--only`. */
  name: string;
  /** Runs one measurement; some tools report several rows (amp: scan and rescan). */
  run(context: ToolContext): Promise<ToolRun[]>;
}

/** One "path: Name FOUND" line of clamscan or clamdscan output. */
export interface FoundLine {
  /** The reported path (the container for archive members). */
  path: string;
  /** The signature name. */
  name: string;
}

/**
 * Parses the "path: Name FOUND" lines of clamscan/clamdscan output.
 *
 * @param text the tool's standard output
 */
export function parseFoundLines(text: string): FoundLine[] {
  const found: FoundLine[] = [];
  for (const line of text.split("\n")) {
    const match = line.match(/^(.*): (\S+) FOUND$/);
    if (match) found.push({ path: match[1], name: match[2] });
  }
  return found;
}

/** The last `max` characters of `text`, trimmed, for error messages. */
export function tail(text: string, max = 600): string {
  const trimmed = text.trim();
  return trimmed.length > max ? "…" + trimmed.slice(-max) : trimmed;
}
