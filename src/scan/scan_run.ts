/**
 * Runs the pipeline over what a walk yields, with a bounded number of files
 * in flight (the nonblocking FFI calls of different files overlap on Deno's
 * thread pool while the JS thread keeps walking), and gathers the report.
 *
 * Descriptor ownership: every `file` item's descriptor is closed here, once,
 * after its verdict, whatever happened.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { OpenFile } from "../engine/pipeline.ts";
import type { EngineName, FileVerdict, SkipReason } from "../engine/verdict.ts";
import type { WalkItem } from "../fs/walk.ts";
import { type BytePath, escapePath } from "../sys/byte_path.ts";
import { close } from "../sys/libc.ts";

/** One detection in a report. */
export interface Detection {
  /** The path, escaped for display (see `escapePath`). */
  path: string;
  /** The raw path bytes (for events and quarantine). */
  rawPath: BytePath;
  name: string;
  engine: EngineName;
  sha256?: string;
  size?: number;
}

/** Figures of a finished (or stopped) scan. */
export interface ScanSummary {
  /** Files examined (clean or malicious, from the cache or scanned). */
  files: number;
  /** Bytes of those files. */
  bytes: number;
  detections: number;
  skipped: number;
  errors: number;
  /** Files whose verdict came from the verdict cache. */
  cached: number;
  elapsedMs: number;
}

/** What a scan found. */
export interface ScanReport {
  summary: ScanSummary;
  detections: Detection[];
  skipped: Array<{ path: string; reason: SkipReason; detail?: string }>;
  errors: Array<{ path: string; error: string }>;
  /** True when the scan was stopped before the walk ended. */
  stopped: boolean;
}

/** What scans one open file (a {@linkcode ScanPipeline}, or the daemon's current one). */
export interface FileScanner {
  scanFile(file: OpenFile): Promise<FileVerdict>;
}

/**
 * The longest the loop runs without giving the event loop a turn: in the
 * daemon the same thread answers the kernel's permission events and the
 * socket, so a walk over cached or unchanged files must not hold it.
 */
const MAX_BUSY_MS = 10;

/** Options of {@linkcode runScan}. */
export interface RunScanOptions {
  /** Files in flight at once. */
  concurrency: number;
  /** Called for each detection as it is found. */
  onDetection?: (detection: Detection) => void;
  /** Called after each item with the running summary. */
  onProgress?: (summary: ScanSummary) => void;
  /** Stops the walk; files in flight finish. */
  signal?: AbortSignal;
  /**
   * Awaited for each malicious file before its descriptor is closed (the
   * daemon quarantines through it).
   */
  convict?: (file: OpenFile, result: FileVerdict) => Promise<void>;
  /** Awaited before each file when given: resolves when a paused scan may go on. */
  pause?: () => Promise<void> | undefined;
}

/** Scans every file the walk yields and returns the report. */
export async function runScan(
  items: Iterable<WalkItem>,
  pipeline: FileScanner,
  options: RunScanOptions,
): Promise<ScanReport> {
  const started = performance.now();
  const report: ScanReport = {
    summary: { files: 0, bytes: 0, detections: 0, skipped: 0, errors: 0, cached: 0, elapsedMs: 0 },
    detections: [],
    skipped: [],
    errors: [],
    stopped: false,
  };
  const s = report.summary;
  const progress = () => {
    s.elapsedMs = performance.now() - started;
    options.onProgress?.(s);
  };
  const record = (path: BytePath, result: FileVerdict) => {
    const v = result.verdict;
    if (result.cached) s.cached++;
    switch (v.kind) {
      case "clean":
        s.files++;
        s.bytes += result.size ?? 0;
        break;
      case "malicious": {
        s.files++;
        s.bytes += result.size ?? 0;
        s.detections++;
        const detection: Detection = {
          path: escapePath(path),
          rawPath: path,
          name: v.name,
          engine: v.engine,
          sha256: result.sha256,
          size: result.size,
        };
        report.detections.push(detection);
        options.onDetection?.(detection);
        break;
      }
      case "skipped":
        s.skipped++;
        report.skipped.push({ path: escapePath(path), reason: v.reason, detail: v.detail });
        break;
      case "error":
        s.errors++;
        report.errors.push({ path: escapePath(path), error: v.error });
        break;
    }
    progress();
  };

  const inFlight = new Set<Promise<void>>();
  const iterator = items[Symbol.iterator]();
  try {
    let turn = performance.now();
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      if (performance.now() - turn > MAX_BUSY_MS) {
        // setImmediate, not setTimeout: nested timeouts are clamped to 4 ms,
        // which cost a whole scan a third of its speed.
        await new Promise((resolve) => setImmediate(resolve));
        turn = performance.now();
      }
      if (options.signal?.aborted) {
        report.stopped = true;
        break;
      }
      const paused = options.pause?.();
      if (paused) {
        await Promise.all(inFlight);
        await paused;
        if (options.signal?.aborted) {
          report.stopped = true;
          break;
        }
      }
      const item = next.value;
      if (item.kind === "tick") continue;
      if (item.kind === "skipped") {
        record(item.path, {
          verdict: { kind: "skipped", reason: item.reason, detail: item.detail },
        });
        continue;
      }
      if (item.kind === "error") {
        record(item.path, { verdict: { kind: "error", error: item.error } });
        continue;
      }
      const job: Promise<void> = pipeline.scanFile(item)
        .then(async (result) => {
          record(item.path, result);
          if (result.verdict.kind === "malicious" && options.convict) {
            await options.convict(item, result).catch(() => {});
          }
        })
        .finally(() => {
          close(item.fd);
          inFlight.delete(job);
        });
      inFlight.add(job);
      if (inFlight.size >= options.concurrency) await Promise.race(inFlight);
    }
  } finally {
    iterator.return?.();
    await Promise.all(inFlight);
  }
  s.elapsedMs = performance.now() - started;
  return report;
}
