/**
 * Real-time protection: the consumer of a {@linkcode FileEventSource}.
 *
 * - Files closed after writing and files moved in are queued once per file
 *   (device, inode) in a bounded {@linkcode FileQueue} (a later event for a
 *   waiting file replaces the earlier one: its path is the current one) and
 *   scanned by a few workers through the event's descriptor.
 * - Executions are not queued: each is scanned at once. Passive: the
 *   program runs meanwhile and is killed if the file is malicious. Active:
 *   the exec waits for the answer; every permission event is answered
 *   exactly once (here, or by the source's timeout, or at close). A deny
 *   that comes too late (the timeout allowed the exec) falls back to the
 *   passive kill. Under an audit policy executions are recorded only.
 * - During a reload (the engine is swapped) executions are allowed at once
 *   and scanned when the new engine is ready, with the passive kill; files
 *   keep being queued.
 * - Nothing is lost silently: a kernel queue overflow, or an event that
 *   finds amp's queue full, schedules a rescan of the watched file systems
 *   for files changed since shortly before the loss (once the storm has
 *   passed); an overflow of the executions' queue scans the executables of
 *   running processes. Each is counted and logged.
 * - The thread is shared with the kernel's permission events: scans give
 *   the event loop a turn every few milliseconds (see `runScan`).
 * - Exclusions (policy paths, processes, amp's own paths) are applied before
 *   anything is read; amp's own process is excluded by the source itself.
 *
 * Descriptor ownership: every event's descriptor is closed here, once.
 *
 * @module
 */

import { O } from "../../ffi/libc.ts";
import type { OpenFile } from "../engine/pipeline.ts";
import type { FileVerdict } from "../engine/verdict.ts";
import { walk } from "../fs/walk.ts";
import type { Logger } from "../log/logger.ts";
import type { FileEvent, FileEventSource, MonitorEvent } from "../monitor/file_event.ts";
import type { ConvictionOrigin, Convictor } from "../protect/conviction.ts";
import { processFields } from "../protect/conviction.ts";
import { killProcessRunning, runsFile } from "../protect/kill.ts";
import type { ProcessExclusionMatcher } from "../protect/process_exclusions.ts";
import { type ProcessInfo, readProcessInfo } from "../protect/process_info.ts";
import type { ScanContext } from "../scan/scan_context.ts";
import { type FileScanner, runScan } from "../scan/scan_run.ts";
import type { ScanTargets } from "../scan/scan_targets.ts";
import type { AmpEvent } from "../store/event.ts";
import { type BytePath, bytePath, escapePath, isUnder } from "../sys/byte_path.ts";
import { AT, close, type FileStat, fstat, openat, readlink } from "../sys/libc.ts";
import { FileQueue } from "./file_queue.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

/** How far before a loss a rescan looks, for clock granularity and events in flight. */
const RESCAN_SLACK_MS = 2_000;

/** A rescan starts once no event was lost for this long (and amp's queue is half empty). */
const RESCAN_SETTLE_MS = 250;

/** Executions scanned at once before the reader waits (each holds a descriptor). */
const MAX_EXEC_IN_FLIGHT = 256;

/** Options of {@linkcode RealTimeProtection}. */
export interface RealTimeOptions {
  source: FileEventSource;
  /** The scan context in force (it changes on reload): exclusions. */
  context: () => ScanContext;
  /** Scans a file with the context in force (waits while a reload swaps it). */
  scanner: FileScanner;
  processExclusions: () => ProcessExclusionMatcher;
  /** What is known of a process (the proc connector's table, else /proc now). */
  processInfo?: (pid: number) => ProcessInfo;
  /** True when the policy acts (quarantine, kill, deny); false under audit. */
  enforce: () => boolean;
  convictor: Convictor;
  event: (event: Omit<AmpEvent, "time" | "host" | "policy">) => void;
  log: Logger;
  /** Files waiting at most (beyond: rescan). */
  queueLimit: number;
  /** On-access scans at once. */
  concurrency: number;
  /** Path prefixes that are amp's own (never scanned, never convicted). */
  ownPaths: BytePath[];
  /** What a rescan walks. */
  rescanTargets: () => ScanTargets;
}

/** Counters shown by `amp status`. */
export interface RealTimeStats {
  onAccessScanned: number;
  executionsScanned: number;
  detections: number;
  processesKilled: number;
  executionsBlocked: number;
  /** Executions allowed without a verdict while a reload swapped the engine (scanned after). */
  allowedDuringReload: number;
  excluded: number;
  errors: number;
  /** Events refused because amp's queue was full (each covered by a rescan). */
  queueFull: number;
  /** Kernel queue overflows (each covered by a rescan). */
  kernelOverflows: number;
  rescans: number;
  rescanning: boolean;
  queued: number;
  lastDetection?: { time: number; path: string; name: string };
}

interface Queued {
  event: FileEvent;
  stat: FileStat;
  /** When the event was read (ms): a loss of this item is rescanned from here. */
  readAt: number;
}

/** The on-access and on-execute loop. */
export class RealTimeProtection {
  readonly stats: RealTimeStats = {
    onAccessScanned: 0,
    executionsScanned: 0,
    detections: 0,
    processesKilled: 0,
    executionsBlocked: 0,
    allowedDuringReload: 0,
    excluded: 0,
    errors: 0,
    queueFull: 0,
    kernelOverflows: 0,
    rescans: 0,
    rescanning: false,
    queued: 0,
  };
  readonly #o: RealTimeOptions;
  readonly #queue: FileQueue<Queued>;
  readonly #abort = new AbortController();
  #workers = 0;
  #execs = new Set<Promise<void>>();
  #idle?: () => void;
  #gate?: Promise<void>;
  #rescan?: Promise<void>;
  #rescanSince?: number;
  #lastRead = Date.now();
  #lastLoss = 0;
  #stopping = false;
  #failed?: string;

  constructor(options: RealTimeOptions) {
    this.#o = options;
    this.#queue = new FileQueue(options.queueLimit);
  }

  /** Why the loop stopped on its own (the source failed), if it did. */
  get failed(): string | undefined {
    return this.#failed;
  }

  /**
   * Reads events until the source is closed, then waits for the work in
   * hand. Resolves with the earliest read time of queued files it dropped
   * (a caller that restarts protection rescans from there), if any.
   */
  async run(): Promise<{ droppedSince?: number }> {
    const source = this.#o.source;
    for (;;) {
      let batch: MonitorEvent[];
      try {
        batch = await source.next();
      } catch (error) {
        this.stats.errors++;
        this.#failed = `Event source failed: ${message(error)}`;
        this.#o.log.error(this.#failed);
        break;
      }
      if (batch.length === 0) break;
      const readAt = Date.now();
      for (const event of batch) this.#dispatch(event, readAt);
      this.#lastRead = readAt;
      this.stats.queued = this.#queue.size;
      // Back-pressure on executions, except while they are allowed and parked for a reload.
      while (this.#execs.size >= MAX_EXEC_IN_FLIGHT && !this.#gate) {
        await Promise.race(this.#execs);
      }
    }
    this.#stopping = true;
    this.#abort.abort();
    let droppedSince: number | undefined;
    this.#queue.drain((q) => {
      droppedSince = Math.min(droppedSince ?? q.readAt, q.readAt);
      close(q.event.fd);
    });
    await Promise.all(this.#execs);
    if (this.#workers > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    await this.#rescan;
    if (this.#rescanSince !== undefined) {
      droppedSince = Math.min(droppedSince ?? this.#rescanSince, this.#rescanSince);
    }
    return { droppedSince };
  }

  /**
   * Holds scanning until `until` settles (a reload swapping the engine):
   * files keep being queued, executions are allowed and scanned after.
   */
  hold(until: Promise<unknown>): void {
    const gate = until.then(() => {}, () => {});
    this.#gate = gate;
    gate.then(() => {
      if (this.#gate === gate) this.#gate = undefined;
      this.#pump();
    });
  }

  /** Schedules a rescan of files changed since `sinceMs` (after a loss, or on request). */
  rescanSince(sinceMs: number, why: string): void {
    this.#lastLoss = Date.now();
    this.#o.log.warning(
      `Events may have been missed (${why}): rescanning files changed since ${
        new Date(sinceMs).toISOString()
      }`,
    );
    this.#rescanSince = Math.min(this.#rescanSince ?? sinceMs, sinceMs);
    this.#rescan ??= this.#runRescans().finally(() => (this.#rescan = undefined));
  }

  #dispatch(event: MonitorEvent, readAt: number): void {
    if (event.kind === "overflow") {
      this.stats.kernelOverflows++;
      this.rescanSince(this.#lastRead - RESCAN_SLACK_MS, "the kernel's event queue overflowed");
      if (event.execs) this.#scanRunningPrograms();
      return;
    }
    if (this.#stopping) {
      event.respond?.(true);
      close(event.fd);
      return;
    }
    if (this.#excluded(event)) {
      this.stats.excluded++;
      event.respond?.(true);
      close(event.fd);
      return;
    }
    if (event.kind === "exec" || event.kind === "exec-perm") {
      this.#startExecution(event);
      return;
    }
    let stat: FileStat;
    try {
      stat = fstat(event.fd);
    } catch (error) {
      this.stats.errors++;
      this.#o.log.info(`Cannot stat ${escapePath(event.path)}: ${message(error)}`);
      close(event.fd);
      return;
    }
    const pushed = this.#queue.push(
      `${stat.dev}:${stat.ino}`,
      { event, stat, readAt },
      (older) => close(older.event.fd),
    );
    if (pushed === "full") {
      close(event.fd);
      this.stats.queueFull++;
      this.#lastLoss = Date.now();
      // Rescan from before this event; one log line per burst.
      if (this.#rescanSince === undefined) {
        this.rescanSince(
          Math.min(readAt, this.#lastRead) - RESCAN_SLACK_MS,
          "amp's scan queue is full",
        );
      }
    }
    this.#pump();
  }

  #startExecution(event: FileEvent): void {
    const job: Promise<void> = this.#execute(event).finally(() => this.#execs.delete(job));
    this.#execs.add(job);
  }

  #excluded(event: FileEvent): boolean {
    const path = event.path;
    if (this.#o.ownPaths.some((own) => isUnder(path, own))) return true;
    if (this.#o.context().exclusions.match(path)) return true;
    const exec = event.kind === "exec" || event.kind === "exec-perm";
    // An execution is judged by the program executed (the process may not
    // have switched to it yet); "children" rules look at who started it.
    return this.#o.processExclusions().match(event.pid, exec ? path : undefined) !== undefined;
  }

  #pump(): void {
    while (!this.#gate && this.#workers < this.#o.concurrency && this.#queue.size > 0) {
      const next = this.#queue.shift()!;
      this.#workers++;
      this.#onAccess(next).finally(() => {
        this.#workers--;
        close(next.event.fd);
        if (this.#workers === 0) this.#idle?.();
        this.#pump();
      });
    }
    this.stats.queued = this.#queue.size;
  }

  async #onAccess({ event }: Queued): Promise<void> {
    // The file as it is now: it may have changed since the event.
    let stat: FileStat;
    try {
      stat = fstat(event.fd);
    } catch (error) {
      this.stats.errors++;
      this.#o.log.info(`Cannot stat ${escapePath(event.path)}: ${message(error)}`);
      return;
    }
    if (stat.nlink === 0) return; // deleted before its turn: nothing left to act on
    const file: OpenFile = { fd: event.fd, path: currentPath(event.fd, event.path), stat };
    const result = await this.#o.scanner.scanFile(file);
    this.stats.onAccessScanned++;
    await this.#settle(file, result, "on-access", event.pid);
  }

  async #execute(event: FileEvent): Promise<void> {
    try {
      if (this.#gate) {
        // No engine while a reload swaps it: let the program start, judge it after.
        if (event.respond?.(true)) this.stats.allowedDuringReload++;
        await this.#gate;
      }
      const stat = fstat(event.fd);
      const file: OpenFile = { fd: event.fd, path: event.path, stat };
      const result = await this.#o.scanner.scanFile(file);
      this.stats.executionsScanned++;
      const v = result.verdict;
      if (v.kind !== "malicious") {
        // Clean: the kernel stops reporting its executions until it changes.
        if (v.kind === "clean") event.ignoreUntilModified?.();
        event.respond?.(true);
        if (v.kind === "error") this.#scanError(file, v.error);
        return;
      }
      const process = this.#executingProcess(event.pid, file);
      const base = {
        path: file.path,
        sha256: result.sha256,
        size: stat.size,
        detection: v.name,
        engine: v.engine,
        ...processFields(process),
      };
      const shown = escapePath(file.path);
      if (!this.#o.enforce()) {
        event.respond?.(true);
        this.#o.event({ ...base, type: "Executed Malware", action: "audit" });
        this.#o.log.notice(`Malware executed (audit): ${shown}: ${v.name} (pid ${event.pid})`);
      } else if (event.respond?.(false)) {
        this.stats.executionsBlocked++;
        this.#o.event({ ...base, type: "Executed Malware", action: "blocked" });
        this.#o.log.notice(`Execution blocked: ${shown}: ${v.name} (pid ${event.pid})`);
      } else {
        // Passive, or the permission was answered already (timeout, reload): kill.
        this.#o.event({ ...base, type: "Executed Malware", action: "kill" });
        const killed = await killProcessRunning(event.pid, stat);
        if (killed.killed) {
          this.stats.processesKilled++;
          this.#o.event({ ...base, type: "Process Killed", action: "killed" });
          this.#o.log.notice(`Process killed: pid ${event.pid} ran ${shown}: ${v.name}`);
        } else {
          this.#o.log.warning(
            `Could not kill pid ${event.pid} (${shown}): ${killed.reason}${
              killed.detail ? ` ${killed.detail}` : ""
            }`,
          );
        }
      }
      await this.#settle(file, result, "on-execute", event.pid, process);
    } catch (error) {
      this.stats.errors++;
      this.#o.log.warning(`On-execute scan of ${escapePath(event.path)} failed: ${message(error)}`);
    } finally {
      event.respond?.(true); // a no-op when already answered
      close(event.fd);
    }
  }

  /**
   * The process that executes `file`: before its exec completes (active
   * mode) /proc still shows the image it had, so the executable is the
   * file and the command line is known only once it runs.
   */
  #executingProcess(pid: number, file: OpenFile): ProcessInfo {
    const info = this.#processInfo(pid);
    const running = runsFile(pid, file.stat);
    return {
      ...info,
      executable: file.path,
      commandLine: running ? info.commandLine : undefined,
    };
  }

  #processInfo(pid: number): ProcessInfo {
    return this.#o.processInfo?.(pid) ?? readProcessInfo(pid);
  }

  /** After the executions' queue overflowed: scan what every process runs now. */
  #scanRunningPrograms(): void {
    this.#o.log.warning("Executions may have been missed: scanning the programs running now");
    let pids: number[];
    try {
      pids = [...Deno.readDirSync("/proc")].map((e) => Number(e.name)).filter((n) => n > 0);
    } catch {
      return;
    }
    const seen = new Set<string>();
    for (const pid of pids) {
      if (pid === Deno.pid) continue;
      let fd: number;
      try {
        fd = openat(AT.FDCWD, bytePath(`/proc/${pid}/exe`), O.RDONLY | O.CLOEXEC);
      } catch {
        continue; // kernel thread, gone, or not readable
      }
      try {
        const st = fstat(fd);
        const key = `${st.dev}:${st.ino}`;
        const path = readlink(bytePath(`/proc/${pid}/exe`));
        if (seen.has(key) && !this.#o.enforce()) {
          close(fd);
          continue;
        }
        seen.add(key);
        const event: FileEvent = { kind: "exec", fd, pid, path };
        if (this.#excluded(event)) {
          close(fd);
          continue;
        }
        this.#startExecution(event);
      } catch {
        close(fd);
      }
    }
  }

  async #settle(
    file: OpenFile,
    result: FileVerdict,
    origin: ConvictionOrigin,
    pid?: number,
    process?: ProcessInfo,
  ): Promise<void> {
    const v = result.verdict;
    if (v.kind === "error") return this.#scanError(file, v.error);
    if (v.kind !== "malicious") return;
    this.stats.detections++;
    this.stats.lastDetection = { time: Date.now(), path: escapePath(file.path), name: v.name };
    await this.#o.convictor.convict({
      file,
      detection: v.name,
      engine: v.engine,
      sha256: result.sha256,
      origin,
      process: process ?? (pid !== undefined ? this.#processInfo(pid) : undefined),
    });
  }

  #scanError(file: OpenFile, error: string): void {
    this.stats.errors++;
    this.#o.log.info(`Scan error (not a conviction): ${escapePath(file.path)}: ${error}`);
  }

  async #runRescans(): Promise<void> {
    while (this.#rescanSince !== undefined && !this.#stopping) {
      // Let a storm pass first: one rescan after it covers every loss in it,
      // where starting at once would need another for the losses that follow.
      while (
        !this.#stopping &&
        (Date.now() - this.#lastLoss < RESCAN_SETTLE_MS ||
          this.#queue.size > this.#queue.limit / 2)
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      if (this.#stopping) return;
      const since = this.#rescanSince;
      this.#rescanSince = undefined;
      this.stats.rescans++;
      this.stats.rescanning = true;
      try {
        if (this.#gate) await this.#gate;
        const targets = this.#o.rescanTargets();
        const exclude = (path: Uint8Array) => {
          if (this.#o.ownPaths.some((own) => isUnder(path, own))) return "amp's own files";
          return this.#o.context().exclusions.match(path) ? "excluded" : undefined;
        };
        const report = await runScan(
          walk(targets.roots, {
            ...targets.walk,
            exclude,
            changedSinceNs: BigInt(since) * 1_000_000n,
          }),
          this.#o.scanner,
          {
            concurrency: this.#o.concurrency,
            signal: this.#abort.signal,
            convict: async (file, result) => {
              if (result.verdict.kind === "malicious") await this.#settle(file, result, "rescan");
            },
          },
        );
        const s = report.summary;
        if (report.stopped) {
          // Stopped by shutdown: what it did not reach is still owed.
          this.#rescanSince = Math.min(this.#rescanSince ?? since, since);
        }
        this.#o.log.notice(
          `Rescan ${report.stopped ? "stopped" : "done"}: ${s.files} files changed since ${
            new Date(since).toISOString()
          }, ${s.detections} detections, ${s.errors} errors in ${
            (s.elapsedMs / 1000).toFixed(1)
          } s`,
        );
      } catch (error) {
        this.stats.errors++;
        this.#o.log.error(`Rescan failed: ${message(error)}`);
      } finally {
        this.stats.rescanning = false;
      }
    }
  }
}

/** The file's path now (it may have been renamed since the event), else the event's. */
function currentPath(fd: number, fallback: BytePath): BytePath {
  try {
    const now = readlink(bytePath(`/proc/self/fd/${fd}`));
    return now.length > 0 ? now : fallback;
  } catch {
    return fallback;
  }
}
