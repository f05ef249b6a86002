/**
 * One scan from start to end: policy, lists, signatures, verdict cache,
 * events, the walk and the pipeline. The CLI and the daemon call
 * {@linkcode runScanJob} and only present what it returns.
 *
 * Standalone (no `context`), start-up order is chosen so that a scan
 * answered from the verdict cache never loads ClamAV: the signature set is
 * fingerprinted (names, sizes, times: no loading), and the engine is loaded
 * (off the JS thread) at the first file the cache cannot answer. In the
 * daemon the context (engine, cache, lists) is shared with real-time
 * protection and the events go to the daemon's sink.
 *
 * @module
 */

import { walk } from "../fs/walk.ts";
import { loadPolicy, resolveUnderRoot } from "../policy/load_policy.ts";
import type { AmpEvent } from "../store/event.ts";
import { EventsDb } from "../store/events_db.ts";
import { VerdictCache } from "../store/verdict_cache.ts";
import { DEFAULT_DB_DIR, ScanContext } from "./scan_context.ts";
import { type FileScanner, runScan, type RunScanOptions, type ScanReport } from "./scan_run.ts";
import { type BytePath, isUnder } from "../sys/byte_path.ts";
import { customTargets, flashTargets, fullTargets, type ScanTargets } from "./scan_targets.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

export { DEFAULT_DB_DIR };

/** Which scan. */
export type ScanKind = "custom" | "flash" | "full";

/** An event as the scan raises it; the sink adds time, host and policy. */
export type ScanEvent = Omit<AmpEvent, "time" | "host" | "policy">;

/** Options of {@linkcode runScanJob}. */
export interface ScanJobOptions
  extends Pick<RunScanOptions, "onDetection" | "onProgress" | "signal" | "pause" | "convict"> {
  kind: ScanKind;
  /** Paths of a custom scan. */
  paths?: string[];
  /** Host root for amp's own files (policy, lists, databases). Default "/". */
  root?: string;
  /** ClamAV signature directory. Default /var/lib/clamav. */
  dbDir?: string;
  /** A policy file to use instead of `<root>/etc/amp/policy.json`. */
  policyFile?: string;
  /** Files in flight at once. Default: {@linkcode defaultConcurrency}. */
  concurrency?: number;
  /** Called with each warning worth showing a person (no signatures, no state dir …). */
  onNotice?: (message: string) => void;
  /**
   * The daemon's scanning, shared with real-time protection: the context in
   * force (it may change during the scan: a reload), what scans a file with
   * it, paths never scanned (amp's own), and where events go.
   */
  shared?: {
    context: () => ScanContext;
    scanner: FileScanner;
    events: (event: ScanEvent) => void;
    ownPaths?: BytePath[];
  };
}

/** What a finished scan job returns. */
export interface ScanJobResult {
  report: ScanReport;
  policy: { name: string; id: number; source: string };
  /** Engines that took part, such as `ClamAV 1.4.6 (520002 signatures)`. */
  engines: string[];
}

/**
 * Files in flight by default: one per core plus one, so that a core is not
 * idle while the JS thread walks, opens and hands the next file over
 * (measured on 2 cores, 1.2 GB: 31.7 s with 2 in flight, 28.3 s with 3).
 */
export function defaultConcurrency(): number {
  return (navigator.hardwareConcurrency || 1) + 1;
}

/** Runs one scan. Throws `ConfigError` for a bad policy and `ClamavError` for bad signatures. */
export async function runScanJob(options: ScanJobOptions): Promise<ScanJobResult> {
  if (options.shared) {
    const { context, scanner, events, ownPaths } = options.shared;
    const policy = context().policy;
    return await scanWith(context, scanner, options, events, {
      name: policy.name,
      id: policy.id,
      source: "daemon",
    }, ownPaths);
  }
  const root = options.root ?? "/";
  const notice = options.onNotice ?? (() => {});
  const { policy, source } = await loadPolicy({ root, file: options.policyFile });
  const state = await openState(resolveUnderRoot(root, "/var/lib/amp"), notice);
  const host = Deno.hostname();
  const events: AmpEvent[] = [];
  const policyRef = { name: policy.name, id: policy.id };
  const sink = (e: ScanEvent) => events.push({ time: Date.now(), host, policy: policyRef, ...e });
  let context: ScanContext | undefined;
  try {
    context = await ScanContext.prepare({
      policy,
      root,
      dbDir: options.dbDir ?? DEFAULT_DB_DIR,
      cache: state.cache,
      notice,
    });
    const prepared = context;
    const result = await scanWith(() => prepared, prepared, options, sink, {
      ...policyRef,
      source,
    });
    await context.memory?.flush();
    return result;
  } catch (error) {
    if (!context) {
      sink({ type: "Scan Failed", details: { kind: options.kind, error: message(error) } });
    }
    throw error;
  } finally {
    await context?.close();
    await state.events?.recordMany(events).catch((error) =>
      notice(`Events not recorded: ${message(error)}`)
    );
    await state.events?.close();
    await state.cache?.close();
  }
}

async function scanWith(
  context: () => ScanContext,
  scanner: FileScanner,
  options: ScanJobOptions,
  event: (e: ScanEvent) => void,
  policy: { name: string; id: number; source: string },
  ownPaths: BytePath[] = [],
): Promise<ScanJobResult> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  const first = context();
  options.signal?.addEventListener("abort", stop, { once: true });
  first.failed.addEventListener("abort", stop, { once: true });
  try {
    const exclude = (path: Uint8Array) => {
      if (ownPaths.some((own) => isUnder(path, own))) return "amp's own files";
      const hit = context().exclusions.match(path);
      return hit ? describeExclusion(hit) : undefined;
    };
    const targets = scanTargets(options, options.root ?? "/");
    event({ type: "Scan Started", details: { kind: options.kind, paths: options.paths } });
    const report = await runScan(
      walk(targets.roots, { ...targets.walk, exclude }),
      scanner,
      {
        concurrency: options.concurrency ?? defaultConcurrency(),
        onDetection: (d) => {
          event({
            type: "Threat Detected",
            path: d.rawPath,
            sha256: d.sha256,
            size: d.size,
            detection: d.name,
            engine: d.engine,
            action: "detected",
            details: { scan: options.kind },
          });
          options.onDetection?.(d);
        },
        onProgress: options.onProgress,
        signal: abort.signal,
        pause: options.pause,
      },
    );
    if (first.loadError) throw first.loadError;
    event({
      type: report.summary.detections > 0
        ? "Scan Completed With Detections"
        : "Scan Completed No Detections",
      details: { kind: options.kind, ...report.summary, stopped: report.stopped },
    });
    return { report, policy, engines: context().describeEngines() };
  } catch (error) {
    event({ type: "Scan Failed", details: { kind: options.kind, error: message(error) } });
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", stop);
    first.failed.removeEventListener("abort", stop);
  }
}

interface State {
  events?: EventsDb;
  cache?: VerdictCache;
}

async function openState(dir: string, notice: (m: string) => void): Promise<State> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    notice(
      `Cannot use ${dir} (${message(error)}): ` +
        "events and the verdict cache are not kept (run as root, or pass --root)",
    );
    return {};
  }
  const state: State = {};
  try {
    state.events = await EventsDb.open(`${dir}/events.db`);
    if (state.events.recovered) {
      notice(`events.db was corrupt: moved aside to ${state.events.recovered} and recreated`);
    }
  } catch (error) {
    notice(`Events not recorded: ${message(error)}`);
  }
  try {
    state.cache = await VerdictCache.open(`${dir}/verdict.cache`);
  } catch (error) {
    notice(`Verdict cache unavailable: ${message(error)}`);
  }
  return state;
}

function describeExclusion(e: { type: string } & Record<string, unknown>): string {
  const value = e.path ?? e.pattern ?? e.extension;
  return `${e.type} exclusion ${String(value)}`;
}

function scanTargets(options: ScanJobOptions, root: string): ScanTargets {
  switch (options.kind) {
    case "custom":
      return customTargets(options.paths ?? []);
    case "full":
      return fullTargets(root);
    case "flash":
      return flashTargets(root);
  }
}
