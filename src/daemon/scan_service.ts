/**
 * Scans run by the daemon for `amp scan` (shared engine and cache): one at a
 * time, progress streamed to the client, with stop, pause and resume. A
 * second scan while one runs is refused with a clear message. The scan keeps
 * going if the client goes away (as a scan started from the console would);
 * `amp scan --stop` ends it.
 *
 * @module
 */

import { z } from "zod";
import type { Convictor } from "../protect/conviction.ts";
import type { ScanContext } from "../scan/scan_context.ts";
import { runScanJob, type ScanEvent, type ScanJobResult } from "../scan/scan_job.ts";
import type { FileScanner, ScanReport, ScanSummary } from "../scan/scan_run.ts";
import type { BytePath } from "../sys/byte_path.ts";
import type { ScanState } from "./status_report.ts";

/** Parameters of the `scan` request. */
export const ScanParamsSchema = z.strictObject({
  kind: z.enum(["custom", "flash", "full"]),
  paths: z.array(z.string().startsWith("/", "Scan paths must be absolute")).optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
});

/** What a client asks to scan. */
export type ScanParams = z.infer<typeof ScanParamsSchema>;

/** A refused request, with a code the client shows. */
export class ScanServiceError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ScanServiceError";
    this.code = code;
  }
}

/** What a client sees of a finished scan (JSON-safe: no raw path bytes). */
export interface ScanResultMessage {
  report: Omit<ScanReport, "detections"> & {
    detections: Array<Omit<ScanReport["detections"][number], "rawPath">>;
  };
  policy: ScanJobResult["policy"];
  engines: string[];
}

interface RunningScan {
  state: ScanState;
  abort: AbortController;
  resume?: () => void;
  paused?: Promise<void>;
}

/** Options of {@linkcode ScanService}. */
export interface ScanServiceOptions {
  /** The context in force (it may change during a scan: a reload). */
  context: () => ScanContext;
  /** Scans a file with the context in force. */
  scanner: FileScanner;
  /** amp's own paths, never scanned. */
  ownPaths: () => BytePath[];
  convictor: Convictor;
  event: (event: ScanEvent) => void;
  /** Host root, for flash and full scans. */
  root: string;
}

/** Runs the daemon's scans. */
export class ScanService {
  readonly #o: ScanServiceOptions;
  #current?: RunningScan;
  #last?: ScanState;

  constructor(options: ScanServiceOptions) {
    this.#o = options;
  }

  /** The running scan, if any. */
  get current(): ScanState | undefined {
    return this.#current?.state;
  }

  /** The last finished scan. */
  get last(): ScanState | undefined {
    return this.#last;
  }

  /** Runs a scan, streaming `progress` messages; resolves with the report. */
  async run(
    params: ScanParams,
    progress: (data: unknown) => void,
  ): Promise<ScanResultMessage> {
    if (this.#current) {
      throw new ScanServiceError(
        "scan-running",
        `A ${this.#current.state.kind} scan is already running (amp scan --stop ends it)`,
      );
    }
    const abort = new AbortController();
    const state: ScanState = {
      kind: params.kind,
      paths: params.paths,
      started: Date.now(),
      summary: emptySummary(),
    };
    const current: RunningScan = { state, abort };
    this.#current = current;
    let lastSent = 0;
    try {
      const result = await runScanJob({
        kind: params.kind,
        paths: params.paths,
        root: this.#o.root,
        concurrency: params.concurrency,
        signal: abort.signal,
        shared: {
          context: this.#o.context,
          scanner: this.#o.scanner,
          events: this.#o.event,
          ownPaths: this.#o.ownPaths(),
        },
        pause: () => current.paused,
        onProgress: (s) => {
          state.summary = { ...s };
          const now = performance.now();
          if (now - lastSent < 250) return;
          lastSent = now;
          progress({ type: "progress", summary: s, paused: state.paused ?? false });
        },
        onDetection: (d) => {
          const { rawPath: _raw, ...shown } = d;
          progress({ type: "detection", detection: shown });
        },
        convict: async (file, result) => {
          const v = result.verdict;
          if (v.kind !== "malicious") return;
          await this.#o.convictor.convict({
            file,
            detection: v.name,
            engine: v.engine,
            sha256: result.sha256,
            origin: "scan",
          });
        },
      });
      state.summary = result.report.summary;
      state.stopped = result.report.stopped;
      const { detections, ...rest } = result.report;
      return {
        report: { ...rest, detections: detections.map(({ rawPath: _r, ...d }) => d) },
        policy: result.policy,
        engines: result.engines,
      };
    } catch (error) {
      state.failed = error instanceof Error ? error.message : String(error);
      throw error;
    } finally {
      state.finished = Date.now();
      state.paused = undefined;
      current.resume?.();
      this.#last = state;
      this.#current = undefined;
    }
  }

  /** Stops the running scan (files in flight finish). */
  stop(): ScanState {
    const c = this.#running();
    c.abort.abort();
    c.resume?.();
    return c.state;
  }

  /** Pauses the running scan after the files in flight. */
  pause(): ScanState {
    const c = this.#running();
    if (!c.paused) {
      c.paused = new Promise<void>((resolve) => (c.resume = resolve));
      c.state.paused = true;
    }
    return c.state;
  }

  /** Resumes a paused scan. */
  resume(): ScanState {
    const c = this.#running();
    c.resume?.();
    c.paused = undefined;
    c.resume = undefined;
    c.state.paused = false;
    return c.state;
  }

  #running(): RunningScan {
    if (!this.#current) throw new ScanServiceError("no-scan", "No scan is running");
    return this.#current;
  }
}

function emptySummary(): ScanSummary {
  return { files: 0, bytes: 0, detections: 0, skipped: 0, errors: 0, cached: 0, elapsedMs: 0 };
}
