/**
 * `amp daemon`: the long-running service. Start-up is an ordered list of
 * small named steps; each step that holds something registers its teardown,
 * and teardown always runs in reverse order, whatever failed.
 *
 *  1. config     /etc/amp/amp.json (defaults when absent)
 *  2. log        ampdaemon.log (size-rotated) and syslog; the level
 *  3. state      /var/lib/amp: events.db, verdict.cache, quarantine (recovered)
 *  4. policy     policy.json, else the last good one (Policy Update Failure)
 *  5. engines    lists, then ClamAV loaded once (one copy of the signatures)
 *  5b. cloud     the link to amp.json's cloud, if any (src/daemon/cloud_link.ts)
 *  6. ipc        /run/amp/ampd.sock (refuses to start beside a live daemon)
 *  7. monitor    fanotify or the ampavflt module (amp.json monitor.backend;
 *                auto: ampavflt when /dev/ampavflt exists): on-access and
 *                on-execute (a failure is a fault, not fatal: scans
 *                through the daemon still work)
 *  8. started    Connector Started
 *
 * Signals: SIGTERM and SIGINT stop; SIGHUP reloads amp.json's log level, the
 * policy (a broken one keeps the last good one) and the signatures. A reload
 * frees the old engine before loading the new one, so memory never holds two
 * signature sets; real-time scanning waits meanwhile (executions held in
 * active mode are answered by the permission timeout).
 *
 * @module
 */

import { type AmpConfig, loadConfig } from "../config/amp_config.ts";
import { readMounts, skipFsType } from "../fs/mounts.ts";
import { FileSink } from "../log/file_sink.ts";
import { Logger } from "../log/logger.ts";
import { StderrSink } from "../log/stderr_sink.ts";
import { SyslogSink } from "../log/syslog_sink.ts";
import { IpcServer } from "../ipc/ipc_server.ts";
import { IpcClient } from "../ipc/ipc_client.ts";
import { DaemonRunningError } from "../ipc/ipc_errors.ts";
import type { FileScanner } from "../scan/scan_run.ts";
import type { FileEventSource } from "../monitor/file_event.ts";
import { FanotifySource } from "../monitor/fanotify/fanotify_source.ts";
import { avfltAvailable, AvfltSource } from "../monitor/avflt/avflt_source.ts";
import { ConfigError, resolveUnderRoot } from "../policy/load_policy.ts";
import type { Policy } from "../policy/schema.ts";
import { Convictor } from "../protect/conviction.ts";
import {
  compileProcessExclusions,
  type ProcessExclusionMatcher,
  type ProcessTable as ProcessTableView,
  procTable,
} from "../protect/process_exclusions.ts";
import { type ProcessInfo, readProcessInfo } from "../protect/process_info.ts";
import { ProcessTable } from "../monitor/proc_connector/process_table.ts";
import { Quarantine } from "../protect/quarantine.ts";
import { ScanContext } from "../scan/scan_context.ts";
import { defaultConcurrency } from "../scan/scan_job.ts";
import { customTargets, fullTargets } from "../scan/scan_targets.ts";
import type { AmpEvent } from "../store/event.ts";
import { EventsDb } from "../store/events_db.ts";
import { VerdictCache } from "../store/verdict_cache.ts";
import { type BytePath, bytePath, bytesEqual } from "../sys/byte_path.ts";
import { limitMallocArenas } from "../sys/libc.ts";
import { VERSION } from "../version.ts";
import { type AttributedFlow, type FileDisposition, FlowCorrelator } from "../dfc/correlate.ts";
import { ConntrackFlowSource } from "../dfc/flow/flow_source.ts";
import type { IpMatcher } from "../dfc/ip_list.ts";
import { type IpListReport, loadIpLists } from "../dfc/load_ip_lists.ts";
import { O } from "../../ffi/libc.ts";
import { AT, close, fstat, openat, readlink } from "../sys/libc.ts";
import { Buffer } from "node:buffer";
import { z } from "zod";
import { escapePath } from "../sys/byte_path.ts";
import { toWire, toWireError } from "./quarantine_wire.ts";
import { loadPolicyOrLastGood, samePolicy, saveLastGood } from "./policy_keeper.ts";
import { RealTimeProtection } from "./realtime.ts";
import { CloudLink, heartbeatFacts } from "./cloud_link.ts";
import { ScanParamsSchema, ScanService } from "./scan_service.ts";
import type { StatusReport } from "./status_report.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

/** Options of {@linkcode Daemon}. */
export interface DaemonOptions {
  /** Host root for amp's files. Default "/". */
  root?: string;
  /** Also log to stderr (a terminal, or a supervisor that keeps stderr). */
  logToStderr?: boolean;
  /** Called once the daemon is up (tests, `--ready-fd` style hand-off). */
  onReady?: () => void;
}

/** Events written to events.db at most this long after they happen. */
const EVENT_FLUSH_MS = 100;

/** Verdicts learnt by real-time scanning are written to the cache this often. */
const CACHE_FLUSH_MS = 5_000;

/** A running daemon. */
export class Daemon {
  readonly root: string;
  readonly #options: DaemonOptions;
  readonly #teardown: Array<{ name: string; run: () => Promise<void> | void }> = [];
  readonly #startedAt = Date.now();
  readonly #faults = new Map<string, string>();
  #config!: AmpConfig;
  #log!: Logger;
  #events?: EventsDb;
  #cache?: VerdictCache;
  #quarantine?: Quarantine;
  #restored = new Set<string>();
  #policy!: Policy;
  #policySource = "";
  #context!: ScanContext;
  #processExclusions!: ProcessExclusionMatcher;
  #convictor!: Convictor;
  #scans!: ScanService;
  #source?: FileEventSource;
  #dfcMatcher?: IpMatcher;
  #dfcLists: IpListReport[] = [];
  #dfc?: {
    source: ConntrackFlowSource;
    correlator: FlowCorrelator;
    lost: number;
    done?: Promise<void>;
  };
  #processes?: ProcessTable;
  #cloud?: CloudLink;
  #realtime?: RealTimeProtection;
  #realtimeDone?: Promise<{ droppedSince?: number }>;
  #pendingEvents: AmpEvent[] = [];
  #eventTimer?: ReturnType<typeof setTimeout>;
  #eventWrite: Promise<void> = Promise.resolve();
  #reloading?: Promise<void>;
  #reloadAgain?: Promise<void>;
  /** Set while a reload swaps the engine: scans wait for it. */
  #swapping?: Promise<void>;
  /** Scans a file with the context in force, waiting while a reload swaps it. */
  readonly #scanner: FileScanner = {
    scanFile: async (file) => {
      while (this.#swapping) await this.#swapping;
      // The reference order: local cache, offline engines, then the cloud.
      const result = await this.#context.scanFile(file);
      return this.#cloud ? await this.#cloud.check(file, result) : result;
    },
  };
  #stopped = Promise.withResolvers<void>();
  #host = Deno.hostname();

  constructor(options: DaemonOptions = {}) {
    this.root = options.root ?? "/";
    this.#options = options;
  }

  /** Starts, serves until SIGTERM/SIGINT (or {@linkcode Daemon.stop}), tears down. */
  async run(): Promise<void> {
    try {
      await this.#start();
      this.#options.onReady?.();
      await this.#stopped.promise;
    } finally {
      await this.#tearDown();
    }
  }

  /** Asks the daemon to stop. */
  stop(): void {
    this.#stopped.resolve();
  }

  async #start(): Promise<void> {
    const steps: Array<[string, () => Promise<void>]> = [
      ["config", () => this.#stepConfig()],
      ["log", () => this.#stepLog()],
      ["signals", () => this.#stepSignals()],
      ["single instance", () => this.#stepSingleInstance()],
      ["state", () => this.#stepState()],
      ["processes", () => this.#stepProcesses()],
      ["policy", () => this.#stepPolicy()],
      ["engines", () => this.#stepEngines()],
      ["cloud", () => this.#stepCloud()],
      ["ipc", () => this.#stepIpc()],
      ["monitor", () => this.#stepMonitor()],
      ["dfc", () => this.#stepDfc()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.#log?.error(`Start-up step ${name} failed: ${message}`);
        throw new DaemonStartError(name, message, error);
      }
    }
    this.#event({ type: "Connector Started", details: { version: VERSION, pid: Deno.pid } });
    this.#log.notice(`Connector started (amp ${VERSION}, pid ${Deno.pid})`);
    // Only a connector that started says it stopped (not a second daemon refused at start-up).
    this.#onTeardown("connector", () => {
      this.#event({ type: "Connector Stopped", details: { pid: Deno.pid } });
    });
  }

  /** Refuses to start beside a live daemon before touching its files. */
  async #stepSingleInstance(): Promise<void> {
    const path = resolveUnderRoot(this.root, this.#config.socket);
    let client: IpcClient | undefined;
    try {
      client = await IpcClient.connect(path, { timeoutMs: 2_000 });
    } catch {
      return; // nobody answers: the socket is free or stale (the ipc step replaces it)
    }
    await client.close();
    throw new DaemonRunningError(path);
  }

  #onTeardown(name: string, run: () => Promise<void> | void): void {
    this.#teardown.push({ name, run });
  }

  async #tearDown(): Promise<void> {
    for (const { name, run } of this.#teardown.reverse()) {
      try {
        await run();
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (this.#log) this.#log.error(`Teardown of ${name} failed: ${message}`);
        else console.error(`amp daemon: teardown of ${name} failed: ${message}`);
      }
    }
    this.#teardown.length = 0;
  }

  // 1. config
  async #stepConfig(): Promise<void> {
    this.#config = (await loadConfig({ root: this.root })).config;
  }

  // 2. log
  #stepLog(): Promise<void> {
    const c = this.#config;
    const sinks = [];
    sinks.push(
      new FileSink(resolveUnderRoot(this.root, c.log.file), {
        maxBytes: c.log.maxBytes,
        keep: c.log.keep,
      }),
    );
    if (c.log.syslog) sinks.push(new SyslogSink({ ident: "amp" }));
    if (this.#options.logToStderr) sinks.push(new StderrSink());
    this.#log = new Logger(sinks, { level: c.logLevel });
    this.#log.setLevel(c.logLevel);
    this.#onTeardown("log", async () => {
      this.#log.notice("Connector stopped");
      await this.#log.close();
    });
    this.#log.notice(`Starting amp ${VERSION} (pid ${Deno.pid}, root ${this.root})`);
    return Promise.resolve();
  }

  // 3. state
  async #stepState(): Promise<void> {
    limitMallocArenas(1);
    const dir = resolveUnderRoot(this.root, "/var/lib/amp");
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    this.#events = await EventsDb.open(`${dir}/events.db`, { host: this.#host });
    if (this.#events.recovered) {
      this.#fault("events", `events.db was corrupt: moved to ${this.#events.recovered}`);
    }
    this.#onTeardown("events", async () => {
      await this.#flushEvents();
      await this.#events?.close();
    });
    this.#cache = await VerdictCache.open(`${dir}/verdict.cache`);
    this.#onTeardown("cache", () => this.#cache?.close());
    try {
      this.#quarantine = await Quarantine.open(`${dir}/quarantine`);
      const r = this.#quarantine.recovery;
      if (r.rolledBack + r.completed > 0 || r.problems.length > 0) {
        this.#log.warning(
          `Quarantine recovered interrupted operations: ${r.rolledBack} rolled back, ` +
            `${r.completed} completed${r.problems.length ? `; ${r.problems.join("; ")}` : ""}`,
        );
      }
      for (const record of await this.#quarantine.list()) {
        if (record.state === "restored") this.#restored.add(record.sha256);
      }
      this.#onTeardown("quarantine", () => this.#quarantine?.close());
    } catch (error) {
      this.#fault("quarantine", `Quarantine unavailable: ${message(error)}`);
    }
  }

  // 3b. processes: the proc connector's table, so that facts about a process
  // (executable, command line, user, parent) are known even when it exited
  // before its file event was read. Without it they are read from /proc then.
  async #stepProcesses(): Promise<void> {
    try {
      const table = ProcessTable.open();
      this.#onTeardown("processes", () => table.close());
      await Promise.race([table.ready, new Promise((r) => setTimeout(r, 2_000))]);
      this.#processes = table;
      this.#log.notice("Process table on (netlink proc connector)");
    } catch (error) {
      this.#log.warning(
        `Process table unavailable (${message(error)}): process facts are read from /proc ` +
          "when an event is read, so a process that already exited is not described",
      );
    }
  }

  /** The process table as process exclusions see it. */
  #processView(): ProcessTableView {
    return {
      get: (pid) => {
        // A live process: /proc is the truth (the table may not have seen its
        // exec yet). A process that is gone: what the table remembers.
        // A zombie (exited, not yet reaped) still has a status but no exe link.
        const live = procTable.get(pid);
        const p = live?.executable !== undefined ? live : this.#processes?.get(pid) ?? live;
        return p ? { executable: p.executable, uid: p.uid, ppid: p.ppid } : undefined;
      },
    };
  }

  /** Facts about a process: /proc while it lives, else what the table remembers. */
  #processInfo(pid: number): ProcessInfo {
    const live = readProcessInfo(pid);
    if (live.executable !== undefined) return live;
    return this.#processes?.get(pid) ?? live;
  }

  // 4. policy
  async #stepPolicy(): Promise<void> {
    const load = await loadPolicyOrLastGood(this.root);
    this.#policy = load.policy;
    this.#policySource = load.source;
    if (load.failure) {
      this.#policyFailure(load.failure);
    } else {
      await saveLastGood(this.root, load.policy).catch((e) =>
        this.#log.warning(`Cannot keep a copy of the policy: ${message(e)}`)
      );
    }
    this.#processExclusions = compileProcessExclusions(
      this.#policy.processExclusions,
      this.#processView(),
    );
    this.#convictor = new Convictor({
      mode: () => this.#policy.mode.file,
      quarantine: this.#quarantine,
      event: (e) => this.#event(e),
      log: (level, m) => this.#log[level](m),
    });
    this.#log.notice(
      `Policy: ${this.#policy.name} (#${this.#policy.id}, serial ${this.#policy.serial}) from ${load.source}`,
    );
  }

  // 5. engines
  async #stepEngines(): Promise<void> {
    this.#context = await this.#prepareContext(this.#policy);
    this.#onTeardown("engines", async () => {
      await this.#context.memory?.flush().catch(() => {});
      await this.#context.close();
    });
    // Verdicts learnt by real-time scanning reach the cache file every few seconds.
    const flush = setInterval(() => {
      this.#context.memory?.flushPending().catch((e) =>
        this.#log.warning(`Verdict cache not written: ${message(e)}`)
      );
    }, CACHE_FLUSH_MS);
    this.#onTeardown("cache flush", () => clearInterval(flush));
    await this.#loadEngine(this.#context);
    this.#scans = new ScanService({
      context: () => this.#context,
      scanner: this.#scanner,
      ownPaths: () => this.#ownPaths(),
      convictor: this.#convictor,
      event: (e) => this.#event(e),
      root: this.root,
    });
  }

  // 5b. cloud: lookups, heartbeat, policy, event upload, retrospective (see cloud_link.ts).
  // The link never blocks start-up: the network is used by its own loop, and a
  // link that cannot be set up (say, an unreadable CA bundle) is a fault, not fatal.
  async #stepCloud(): Promise<void> {
    let link: CloudLink;
    try {
      link = await this.#openCloudLink();
    } catch (error) {
      this.#fault("cloud", `Cloud link unavailable: ${message(error)}`);
      return;
    }
    this.#cloud = link;
    this.#onTeardown("cloud", async () => {
      this.#cloud = undefined;
      await link.close();
    });
    link.start();
  }

  #openCloudLink(): Promise<CloudLink> {
    return CloudLink.open({
      root: this.root,
      config: this.#config.cloud,
      events: this.#events!,
      log: this.#log,
      event: (e) => this.#event(e),
      policy: () => this.#policy,
      reload: () => this.reload(),
      facts: async () => heartbeatFacts(await this.status()),
      quarantine: () => this.#quarantine,
      restore: async (id, details) => (await this.#restoreRecord(id, {}, details)).path,
    });
  }

  async #prepareContext(policy: Policy): Promise<ScanContext> {
    return await ScanContext.prepare({
      policy,
      root: this.root,
      dbDir: this.#config.clamav.dbDir,
      cache: this.#cache,
      notice: (m) => this.#log.warning(m),
      restored: (sha) => this.#restored.has(sha),
    });
  }

  async #loadEngine(context: ScanContext): Promise<void> {
    const started = performance.now();
    try {
      await context.loadEngine();
      this.#faults.delete("clamav");
    } catch (error) {
      this.#fault("clamav", `ClamAV failed to load: ${message(error)}`);
      return;
    }
    const clamav = context.clamav;
    if (clamav) {
      this.#log.notice(
        `Loaded ClamAV ${clamav.version}: ${clamav.signatures} signatures from ${clamav.dbDir} in ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s`,
      );
    }
    for (const e of context.describeEngines()) this.#log.info(`Engine: ${e}`);
  }

  // 6. ipc
  async #stepIpc(): Promise<void> {
    const path = resolveUnderRoot(this.root, this.#config.socket);
    const server = await IpcServer.listen({
      path,
      logger: this.#log,
      handlers: {
        status: () => this.status(),
        scan: (params, ctx) => this.#scans.run(ScanParamsSchema.parse(params), ctx.progress),
        "scan.stop": () => Promise.resolve(this.#scans.stop()),
        "scan.pause": () => Promise.resolve(this.#scans.pause()),
        "scan.resume": () => Promise.resolve(this.#scans.resume()),
        reload: () => this.reload().then(() => this.status()),
        "quarantine.restore": (params) => this.#restore(params),
        "quarantine.list": (params) => this.#quarantineCall("list", params),
        "quarantine.get": (params) => this.#quarantineCall("get", params),
        "quarantine.delete": (params) => this.#quarantineCall("delete", params),
      },
    });
    this.#onTeardown("ipc", () => server.close());
    this.#log.info(`Listening on ${path}`);
  }

  // 7. monitor
  #stepMonitor(): Promise<void> {
    this.#startMonitor();
    this.#onTeardown("monitor", async () => {
      await this.#stopMonitor();
    });
    return Promise.resolve();
  }

  #startMonitor(): void {
    const c = this.#config.monitor;
    const m = this.#policy.monitor;
    if (c.backend === "off" || (!m.onAccess && !m.onExecute)) {
      this.#log.notice("Real-time protection is off (amp.json monitor.backend or policy monitor)");
      return;
    }
    const paths = this.#watchedPaths();
    let source: FileEventSource;
    try {
      const options = {
        onAccess: m.onAccess,
        exec: m.onExecute ? this.#policy.mode.execute : "off" as const,
        permissionTimeoutMs: m.permissionTimeoutMs,
        timeoutAnswer: m.timeoutAnswer,
        pathPrefixes: c.paths.length > 0 ? c.paths.map(bytePath) : undefined,
      };
      // auto: the ampavflt module when its device exists (else, or when it cannot be opened, fanotify).
      let avflt: AvfltSource | undefined;
      if (c.backend === "avflt" || (c.backend === "auto" && avfltAvailable())) {
        try {
          avflt = AvfltSource.open({
            ...options,
            paths: c.paths,
            onProblem: (m) => this.#log.warning(`avflt: ${m}`),
          });
        } catch (error) {
          if (c.backend === "avflt") throw error;
          this.#log.warning(`ampavflt unavailable (${message(error)}): using fanotify`);
        }
      }
      if (avflt) {
        source = avflt;
      } else {
        const fanotify = FanotifySource.open({
          ...options,
          paths,
          onProblem: (m) => this.#log.warning(`fanotify: ${m}`),
        });
        for (const w of fanotify.warnings) this.#log.warning(`fanotify: ${w}`);
        source = fanotify;
      }
      this.#source = source;
      this.#faults.delete("monitor");
    } catch (error) {
      this.#fault("monitor", `Real-time protection unavailable: ${message(error)}`);
      return;
    }
    const queueLimit = this.#queueLimit();
    const realtime = new RealTimeProtection({
      source,
      context: () => this.#context,
      scanner: this.#scanner,
      enforce: () => this.#policy.mode.file === "quarantine",
      processExclusions: () => this.#processExclusions,
      processInfo: (pid) => this.#processInfo(pid),
      convictor: this.#convictor,
      event: (e) => this.#event(e),
      log: this.#log,
      queueLimit,
      concurrency: defaultConcurrency(),
      ownPaths: this.#ownPaths(),
      rescanTargets: () => c.paths.length > 0 ? customTargets(c.paths) : fullTargets("/"),
    });
    this.#realtime = realtime;
    this.#realtimeDone = realtime.run().then((result) => {
      if (realtime.failed) {
        this.#fault("monitor", `Real-time protection stopped: ${realtime.failed}`);
      }
      return result;
    });
    this.#log.notice(
      `Real-time protection on (${this.#source.backend}): on-access ${
        m.onAccess ? "on" : "off"
      }, ` +
        `on-execute ${m.onExecute ? this.#policy.mode.execute : "off"}; watching ${
          (source.watched ?? paths).join(", ")
        }`,
    );
  }

  /** Stops real-time protection; resolves with when the oldest file it dropped was read. */
  async #stopMonitor(): Promise<number | undefined> {
    await this.#source?.close();
    const result = await this.#realtimeDone;
    this.#source = undefined;
    this.#realtime = undefined;
    this.#realtimeDone = undefined;
    return result?.droppedSince;
  }

  /** amp's own files: never scanned, never convicted. */
  #ownPaths(): BytePath[] {
    return ["/var/lib/amp", "/var/log/amp", "/run/amp", "/opt/amp"]
      .map((p) => resolveUnderRoot(this.root, p))
      .concat([this.#config.clamav.dbDir])
      .map(bytePath);
  }

  /**
   * amp.json's queue limit, capped so that waiting files (one descriptor
   * each) leave room under the open-file limit: running out of descriptors
   * makes the kernel drop events and deny executions.
   */
  #queueLimit(): number {
    const wanted = this.#config.monitor.queueLimit;
    let nofile = Infinity;
    try {
      const limits = Deno.readTextFileSync("/proc/self/limits");
      const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
      if (m && m[1] !== "unlimited") nofile = Number(m[1]);
    } catch {
      // no /proc: keep the configured limit
    }
    const limit = Math.max(64, Math.min(wanted, Math.floor((nofile - 1024) / 2)));
    if (limit < wanted) {
      this.#log.warning(
        `Scan queue limited to ${limit} files (open-file limit ${nofile}; amp.json asks ${wanted})`,
      );
    }
    return limit;
  }

  /** Mount points watched: amp.json's paths, else every local file system. */
  #watchedPaths(): string[] {
    const paths = this.#config.monitor.paths;
    if (paths.length > 0) return paths;
    const seen = new Set<bigint>();
    const out: string[] = [];
    for (const m of readMounts()) {
      if (skipFsType(m.fsType) !== undefined || seen.has(m.dev)) continue;
      seen.add(m.dev);
      out.push(new TextDecoder().decode(m.mountPoint));
    }
    return out;
  }

  // 8. dfc: flows matched against the policy's IP lists. A failure is a
  // fault, not fatal: file protection does not depend on it.
  async #stepDfc(): Promise<void> {
    // Before anything else: a reload may start DFC later, and it must stop with the daemon.
    this.#onTeardown("dfc", () => this.#stopDfc());
    await this.#loadDfcLists();
    if (this.#policy.dfc.lists.length === 0) {
      this.#log.info("DFC off: the policy names no IP lists (dfc.lists)");
      return;
    }
    await this.#startDfc();
  }

  async #loadDfcLists(sources = this.#policy.dfc.lists): Promise<void> {
    const loaded = await loadIpLists(sources, this.root);
    this.#dfcMatcher = loaded.matcher;
    this.#dfcLists = loaded.lists;
    for (const l of loaded.lists) {
      if (l.error) this.#log.warning(`DFC list ${l.name}: cannot read ${l.file}: ${l.error}`);
      else if (l.malformed > 0) {
        this.#log.warning(
          `DFC list ${l.name}: ${l.malformed} malformed line(s), first: line ${
            l.problems[0]?.line
          }: ${l.problems[0]?.text}`,
        );
      }
    }
  }

  async #startDfc(): Promise<void> {
    const c = this.#config.dfc;
    let source: ConntrackFlowSource;
    try {
      source = await ConntrackFlowSource.open({
        netns: c.netns,
        trackFlows: c.trackFlows,
        connectAudit: c.connectAudit,
      });
      this.#faults.delete("dfc");
      const audit = source.connectAudit;
      if (audit && !audit.on) {
        this.#log.warning(
          `DFC: connect audit unavailable (${audit.error}): processes that close their ` +
            "connection at once are reported without a name",
        );
      }
      source.onAuditChange = (state) => {
        if (!state.on) this.#log.warning(`DFC: connect audit stopped: ${state.error}`);
        else this.#log.warning("DFC: amp's connect audit rules were removed; added again");
      };
    } catch (error) {
      this.#fault("dfc", `DFC unavailable: ${message(error)}`);
      return;
    }
    const correlator = new FlowCorrelator({
      matcher: () => this.#dfcMatcher!,
      mode: () => this.#policy.mode.network,
      event: (e) => this.#event(e),
      destroy: (flow) => destroyFlow(source, flow),
      disposition: (flow) => this.#disposition(flow),
    });
    this.#dfc = { source, correlator, lost: 0 };
    const dfc = this.#dfc;
    dfc.done = (async () => {
      for (;;) {
        let batch;
        try {
          batch = await source.next();
        } catch (error) {
          this.#fault("dfc", `DFC flow source failed: ${message(error)}`);
          return;
        }
        if (batch.length === 0) return;
        for (const record of batch) {
          if (record.kind === "overflow") {
            dfc.lost++;
            this.#log.warning("DFC: flow events were lost (socket buffer or queue full)");
            continue;
          }
          correlator.handle(record).catch((e) =>
            this.#log.warning(`DFC: a flow could not be handled: ${message(e)}`)
          );
        }
      }
    })();
    const names = this.#dfcLists.map((l) => `${l.name} (${l.entries})`).join(", ");
    this.#log.notice(
      `DFC on: ${this.#policy.mode.network}, lists ${names}${
        c.netns ? `, namespace ${c.netns}` : ""
      }`,
    );
  }

  async #stopDfc(): Promise<void> {
    await this.#dfc?.source.close();
    await this.#dfc?.done;
    this.#dfc = undefined;
  }

  /** The verdict on the executable of a flow's process (it may be gone). */
  async #disposition(flow: AttributedFlow): Promise<FileDisposition | undefined> {
    const pid = flow.process?.pid;
    if (pid === undefined) return undefined;
    let fd: number;
    let path: Uint8Array;
    try {
      fd = openat(AT.FDCWD, bytePath(`/proc/${pid}/exe`), O.RDONLY | O.CLOEXEC);
      try {
        path = readlink(bytePath(`/proc/${pid}/exe`));
        // Named from its connect record, the process may be gone and its pid
        // reused: only the same executable is the flow's.
        const recorded = flow.process?.executable;
        if (
          flow.attribution === "connect" && recorded instanceof Uint8Array &&
          !bytesEqual(path, recorded)
        ) {
          throw new Error("pid reused");
        }
      } catch (error) {
        close(fd);
        throw error;
      }
    } catch {
      // Gone already (a one-shot client named by its connect record): the
      // file at the recorded path, best effort.
      const exe = flow.process?.executable;
      if (!(exe instanceof Uint8Array)) return undefined;
      try {
        fd = openat(AT.FDCWD, exe, O.RDONLY | O.CLOEXEC);
        path = exe;
      } catch {
        return undefined;
      }
    }
    try {
      const stat = fstat(fd);
      const result = await this.#scanner.scanFile({ fd, path, stat });
      const v = result.verdict;
      return {
        sha256: result.sha256,
        disposition: v.kind === "malicious"
          ? "malicious"
          : v.kind === "clean"
          ? "clean"
          : "unknown",
        detection: v.kind === "malicious" ? v.name : undefined,
      };
    } catch {
      return undefined;
    } finally {
      close(fd);
    }
  }

  // 9. signals
  #stepSignals(): Promise<void> {
    const stop = () => {
      this.#log.notice("Stopping (signal)");
      this.stop();
    };
    const hup = () => {
      this.#log.notice("Reloading (SIGHUP)");
      this.reload().catch((e) => this.#log.error(`Reload failed: ${message(e)}`));
    };
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGHUP", hup);
    this.#onTeardown("signals", () => {
      Deno.removeSignalListener("SIGTERM", stop);
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGHUP", hup);
    });
    return Promise.resolve();
  }

  /**
   * Re-reads amp.json's log level, the policy and the signatures. A broken
   * policy keeps the one in force (Policy Update Failure); one reload at a time.
   */
  reload(): Promise<void> {
    if (this.#reloading) {
      // A change made during a reload is read by one more reload after it.
      this.#reloadAgain ??= this.#reloading.then(() => {
        this.#reloadAgain = undefined;
        return this.reload();
      });
      return this.#reloadAgain;
    }
    this.#reloading = this.#reload().finally(() => (this.#reloading = undefined));
    return this.#reloading;
  }

  async #reload(): Promise<void> {
    try {
      const { config } = await loadConfig({ root: this.root });
      if (config.logLevel !== this.#config.logLevel) this.#log.setLevel(config.logLevel);
      this.#config = { ...this.#config, logLevel: config.logLevel };
    } catch (error) {
      this.#log.error(`amp.json not reloaded: ${message(error)}`);
    }
    const load = await loadPolicyOrLastGood(this.root);
    if (load.failure) {
      this.#policyFailure(load.failure);
      return;
    }
    // IP list files change without the policy changing: read them again.
    await this.#loadDfcLists(load.policy.dfc.lists);
    const old = this.#policy;
    const policyChanged = !samePolicy(old, load.policy);
    const candidate = await this.#prepareContext(load.policy);
    const signaturesChanged = candidate.signatureVersion !== this.#context.signatureVersion;
    if (!policyChanged && !signaturesChanged) {
      await candidate.close();
      this.#log.notice("Reload: policy and signatures unchanged");
      return;
    }
    // Hold real-time scanning while the engine is swapped: free the old
    // engine first, then load the new one (never two copies in memory).
    const swap = (async () => {
      await this.#context.memory?.flushPending().catch(() => {});
      await this.#context.close();
      this.#context = candidate;
      await this.#loadEngine(candidate);
    })();
    const swapped = swap.then(() => {}, () => {});
    this.#swapping = swapped;
    this.#realtime?.hold(swapped);
    try {
      await swap;
    } finally {
      if (this.#swapping === swapped) this.#swapping = undefined;
    }
    // Executables the kernel was told to skip were judged by the old set.
    this.#source?.forgetIgnored?.();
    if (policyChanged) {
      this.#policy = load.policy;
      this.#policySource = load.source;
      this.#processExclusions = compileProcessExclusions(
        load.policy.processExclusions,
        this.#processView(),
      );
      await saveLastGood(this.root, load.policy).catch(() => {});
      this.#event({
        type: "Policy Update",
        details: {
          previous: { name: old.name, id: old.id, serial: old.serial },
          source: load.source,
        },
      });
      this.#log.notice(
        `Policy updated: ${load.policy.name} (#${load.policy.id}, serial ${load.policy.serial})`,
      );
      if (JSON.stringify(old.dfc) !== JSON.stringify(load.policy.dfc)) {
        const wanted = load.policy.dfc.lists.length > 0;
        if (wanted && !this.#dfc) await this.#startDfc();
        if (!wanted && this.#dfc) await this.#stopDfc();
      }
      if (monitorSettingsChanged(old, load.policy)) {
        const since = Date.now();
        const dropped = await this.#stopMonitor();
        this.#startMonitor();
        this.#realtime?.rescanSince(
          Math.min(since, dropped ?? since) - 2_000,
          "real-time protection restarted for the new policy",
        );
      }
    }
    if (signaturesChanged) {
      this.#event({
        type: "Definitions Updated",
        details: { signatures: candidate.clamav?.signatures, version: candidate.signatureVersion },
      });
    }
  }

  #policyFailure(error: ConfigError): void {
    this.#event({
      type: "Policy Update Failure",
      details: { file: error.file, error: error.message, kept: this.#policy?.name },
    });
    this.#log.error(`${error.message}\nKeeping the policy in force.`);
  }

  #quarantineOrFail(): Quarantine {
    if (!this.#quarantine) {
      throw Object.assign(new Error("The quarantine is not available (see amp status faults)"), {
        code: "no-quarantine",
      });
    }
    return this.#quarantine;
  }

  async #restore(params: unknown): Promise<unknown> {
    const p = QuarantineParamsSchema.parse(params);
    const to = p.to === undefined ? undefined : bytePath(p.to);
    const done = await this.#restoreRecord(p.id, { to, force: p.force }).catch((e) => {
      throw toWireError(e);
    });
    return { record: toWire(done.record), path: Buffer.from(done.path).toString("base64") };
  }

  /**
   * Restores a quarantined file (for `amp quarantine restore` and the cloud's
   * restore command): its hash is never convicted again, and Quarantine
   * Restored is raised with `details`.
   */
  async #restoreRecord(
    id: number,
    options: { to?: Uint8Array; force?: boolean },
    details: Record<string, unknown> = {},
  ): Promise<Awaited<ReturnType<Quarantine["restore"]>>> {
    const quarantine = this.#quarantineOrFail();
    const done = await quarantine.restore(id, options);
    this.#restored.add(done.record.sha256);
    this.#event({
      type: "Quarantine Restored",
      path: done.path,
      sha256: done.record.sha256,
      size: done.record.size,
      detection: done.record.detection,
      action: "restored",
      details: { quarantineId: done.record.id, ...details },
    });
    this.#log.notice(
      `Restored quarantined file #${done.record.id} to ${escapePath(done.path)}`,
    );
    return done;
  }

  async #quarantineCall(method: "list" | "get" | "delete", params: unknown): Promise<unknown> {
    const quarantine = this.#quarantineOrFail();
    try {
      if (method === "list") return (await quarantine.list()).map(toWire);
      const { id } = QuarantineParamsSchema.parse(params);
      if (method === "get") {
        const record = await quarantine.get(id);
        return record ? toWire(record) : null;
      }
      const record = await quarantine.get(id);
      await quarantine.delete(id);
      if (record?.state === "restored") this.#restored.delete(record.sha256);
      this.#log.notice(`Deleted quarantined file #${id}`);
      return null;
    } catch (error) {
      throw toWireError(error);
    }
  }

  /** The daemon's state for `amp status`. */
  async status(): Promise<StatusReport> {
    const rt = this.#realtime?.stats;
    const src = this.#source?.stats;
    const m = this.#policy.monitor;
    let cacheBytes = 0;
    try {
      cacheBytes =
        (await Deno.stat(resolveUnderRoot(this.root, "/var/lib/amp/verdict.cache"))).size;
    } catch {
      // no cache file
    }
    const faults = [...this.#faults.values()];
    if (src && src.permissionTimeouts > 0) {
      faults.push(`${src.permissionTimeouts} executions answered by timeout`);
    }
    return {
      version: VERSION,
      pid: Deno.pid,
      startedAt: this.#startedAt,
      status: this.#cloud?.status ?? "Offline",
      cloud: this.#cloud?.report(),
      policy: {
        name: this.#policy.name,
        id: this.#policy.id,
        serial: this.#policy.serial,
        source: this.#policySource,
      },
      mode: { ...this.#policy.mode },
      scan: this.#scans?.current,
      lastScan: this.#scans?.last,
      engines: {
        clamav: this.#context.clamav,
        blockList: this.#context.listSizes.block,
        allowList: this.#context.listSizes.allow,
        descriptions: this.#context.describeEngines(),
      },
      monitor: {
        backend: this.#source?.backend ?? "off",
        onAccess: this.#source !== undefined && m.onAccess,
        onExecute: this.#source && m.onExecute ? this.#policy.mode.execute : "off",
        paths: [...(this.#source?.watched ?? [])],
        events: src?.events ?? 0,
        queued: rt?.queued ?? 0,
        onAccessScanned: rt?.onAccessScanned ?? 0,
        executionsScanned: rt?.executionsScanned ?? 0,
        detections: rt?.detections ?? 0,
        processesKilled: rt?.processesKilled ?? 0,
        executionsBlocked: rt?.executionsBlocked ?? 0,
        kernelOverflows: rt?.kernelOverflows ?? 0,
        queueFull: rt?.queueFull ?? 0,
        rescans: rt?.rescans ?? 0,
        permissionTimeouts: src?.permissionTimeouts ?? 0,
        ignoredExecutables: src?.ignoreMarks ?? 0,
      },
      dfc: {
        on: this.#dfc !== undefined,
        action: this.#policy.mode.network,
        netns: this.#config.dfc.netns,
        lists: this.#dfcLists.map((l) => ({
          name: l.name,
          entries: l.entries,
          malformed: l.malformed,
          error: l.error,
        })),
        lost: this.#dfc?.lost ?? 0,
        connectAudit: this.#dfc?.source.connectAudit,
        joined: this.#dfc?.source.stats.joined ?? 0,
        auditLost: this.#dfc?.source.stats.auditLost ?? 0,
        ...(this.#dfc?.correlator.stats ??
          { flows: 0, matches: 0, events: 0, suppressed: 0, blocked: 0, blockFailures: 0 }),
      },
      quarantine: { files: (await this.#quarantine?.count()) ?? 0 },
      cache: { entries: (await this.#cache?.count()) ?? 0, bytes: cacheBytes },
      events: { total: ((await this.#events?.count()) ?? 0) + this.#pendingEvents.length },
      faults,
    };
  }

  #fault(key: string, text: string): void {
    this.#faults.set(key, text);
    this.#log.error(text);
  }

  #event(e: Omit<AmpEvent, "time" | "host" | "policy">): void {
    const policy = this.#policy ? { name: this.#policy.name, id: this.#policy.id } : undefined;
    this.#pendingEvents.push({ time: Date.now(), host: this.#host, policy, ...e });
    this.#eventTimer ??= setTimeout(() => {
      this.#eventTimer = undefined;
      this.#flushEvents();
    }, EVENT_FLUSH_MS);
  }

  #flushEvents(): Promise<void> {
    if (this.#eventTimer !== undefined) {
      clearTimeout(this.#eventTimer);
      this.#eventTimer = undefined;
    }
    const batch = this.#pendingEvents.splice(0);
    if (batch.length === 0) return this.#eventWrite;
    this.#eventWrite = this.#eventWrite.then(async () => {
      try {
        await this.#events?.recordMany(batch);
      } catch (error) {
        this.#fault("events", `Events not recorded: ${message(error)}`);
      }
    });
    return this.#eventWrite;
  }
}

const QuarantineParamsSchema = z.strictObject({
  id: z.number().int().positive(),
  to: z.string().startsWith("/").optional(),
  force: z.boolean().optional(),
});

/** A start-up step failed; the daemon exits with status 1 after teardown. */
export class DaemonStartError extends Error {
  readonly step: string;
  constructor(step: string, detail: string, cause: unknown) {
    super(`Cannot start: ${step}: ${detail}`, { cause });
    this.name = "DaemonStartError";
    this.step = step;
  }
}

function monitorSettingsChanged(a: Policy, b: Policy): boolean {
  return a.mode.execute !== b.mode.execute ||
    JSON.stringify(a.monitor) !== JSON.stringify(b.monitor);
}

/** Closes a flow's connection through the flow source (sock_diag SOCK_DESTROY). */
async function destroyFlow(
  source: ConntrackFlowSource,
  flow: AttributedFlow,
): Promise<{ ok: boolean; error?: string }> {
  const destroy = (source as unknown as {
    destroySocket?: (flow: AttributedFlow) => Promise<{ ok: boolean; error?: string } | boolean>;
  }).destroySocket;
  if (!destroy) return { ok: false, error: "closing connections is not supported by this build" };
  const result = await destroy.call(source, flow);
  return typeof result === "boolean" ? { ok: result } : result;
}
