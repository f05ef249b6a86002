/**
 * New flows from conntrack (`NETLINK_NETFILTER`, group
 * `NF_NETLINK_CONNTRACK_NEW`), read by a worker thread (see `_native.ts`
 * for why conntrack, and for descriptor ownership). Batches wait in a
 * bounded queue for `next()`; when it is full, or the kernel's socket buffer
 * overflowed (ENOBUFS), an "overflow" record says flows were lost.
 *
 * Attribution: the reader names each new TCP and UDP flow's socket and
 * process the moment the event arrives (sock_diag exact lookup of the
 * tuple, then /proc/PID/fd for `socket:[inode]`, then /proc/PID facts),
 * because both may be gone milliseconds later; see `FlowEvent.attribution`.
 * It costs one /proc scan per batch at worst (newest pids first, stopping at
 * the first match); turn it off with `attributeProcesses: false`. A client
 * that has already closed its socket is named from the audit record of its
 * `connect()` when `connectAudit` is on (see `audit_connect.ts`).
 *
 * Blocking: `destroySocket` closes a flow's socket with `SOCK_DESTROY`, on a
 * second worker in the same namespace (the reader's thread is in `poll`).
 *
 * @module
 */

import {
  type ConnectAuditState,
  type DestroyResult,
  lib,
  makeWake,
  type ReaderMessage,
  type ReaderStart,
  wakeReader,
} from "./_native.ts";
import type { DiagWorkerAnswer, DiagWorkerRequest } from "./_diag_worker.ts";
import type { FlowProtocol, FlowRecord } from "./conntrack_events.ts";
import type { DiagTuple } from "./sock_diag.ts";

export type { ConnectAuditState, DestroyResult } from "./_native.ts";
export type { DiagTuple } from "./sock_diag.ts";

export type {
  FlowAttribution,
  FlowEvent,
  FlowOverflow,
  FlowProtocol,
  FlowRecord,
} from "./conntrack_events.ts";
import { BatchQueue } from "../../monitor/batch_queue.ts";

/** Options of {@linkcode ConntrackFlowSource.open}. */
export interface ConntrackFlowSourceOptions {
  /** Network namespace to watch: an `ip netns` name or a path such as /proc/PID/ns/net. Default: ours. */
  netns?: string;
  /**
   * Install an nftables table (`inet amp_flow`, one `ct state` rule) so that
   * the kernel tracks flows in the namespace, and delete it at close.
   * Needed where nothing else uses conntrack. Default false.
   */
  trackFlows?: boolean;
  /** Receive buffer to ask for, in bytes (`SO_RCVBUFFORCE`, else `SO_RCVBUF`). Default 8 MiB. */
  receiveBufferBytes?: number;
  /** Batches kept for `next()` before they are dropped for an overflow record. Default 4096. */
  maxQueue?: number;
  /** Name each TCP/UDP flow's socket and process (`FlowEvent.attribution`). Default true. */
  attributeProcesses?: boolean;
  /**
   * Also name the process of flows whose socket is gone by the time they are
   * read, from audit records of `connect()` (adds two audit rules, key
   * amp-dfc, removed at close; see `audit_connect.ts`). If audit refuses,
   * the source runs without it and `connectAudit` says why. "auto" uses it
   * only when kernel audit is already on; "on" turns audit on while the
   * source runs. Default "off".
   */
  connectAudit?: "off" | "auto" | "on";
  /** How long a flow without a process waits for its connect record (ms). Default 150. */
  connectWaitMs?: number;
}

/** Counters of a {@linkcode ConntrackFlowSource}. */
export interface FlowSourceStats {
  /** New-flow events parsed. */
  events: number;
  /** Times the kernel reported lost events (ENOBUFS) or the queue was dropped. */
  lost: number;
  /** Messages or attributes skipped as short, malformed or unknown. */
  unknown: number;
  /** Flows whose process came from a connect record. */
  joined: number;
  /** Times audit records were lost (ENOBUFS). */
  auditLost: number;
}

/**
 * New flows seen by conntrack in one network namespace (root: needs
 * `CAP_NET_ADMIN`; `CAP_SYS_ADMIN` for `netns`).
 *
 * @example
 * ```ts ignore
 * import { ConntrackFlowSource } from "./flow_source.ts";
 * const source = await ConntrackFlowSource.open({ trackFlows: true });
 * try {
 *   for (const r of await source.next()) console.log(r);
 * } finally {
 *   await source.close();
 * }
 * ```
 */
export class ConntrackFlowSource {
  readonly #worker: Worker;
  readonly #wake: number;
  readonly #queue: BatchQueue<FlowRecord>;
  readonly #stats: FlowSourceStats = { events: 0, lost: 0, unknown: 0, joined: 0, auditLost: 0 };
  #audit: ConnectAuditState | undefined;
  readonly #finished: Promise<void>;
  readonly #ready: Promise<void>;
  readonly #netns: string | undefined;
  #diag: Worker | undefined;
  #diagId = 0;
  readonly #diagWaiting = new Map<number, (r: DestroyResult) => void>();

  private constructor(start: ReaderStart, maxQueue: number) {
    this.#wake = start.wake;
    this.#netns = start.netns;
    this.#queue = new BatchQueue<FlowRecord>(maxQueue, () => ({ kind: "overflow" }));
    this.#worker = new Worker(new URL("./_flow_reader.ts", import.meta.url), { type: "module" });
    let finish = () => {};
    this.#finished = new Promise<void>((resolve) => (finish = resolve));
    let ready = () => {};
    let failed = (_: Error) => {};
    this.#ready = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    this.#worker.onmessage = (e: MessageEvent<ReaderMessage>) => {
      const m = e.data;
      if (m.type === "ready") {
        this.#audit = m.audit;
        ready();
      } else if (m.type === "audit") {
        const readded = (this.#audit?.readded ?? 0) + (m.audit.readded ?? 0);
        this.#audit = m.audit.on ? { on: true, readded } : m.audit;
        this.onAuditChange?.(this.#audit);
      } else if (m.type === "records") {
        this.#stats.events += m.events;
        this.#stats.lost += m.lost;
        this.#stats.unknown += m.unknown;
        this.#stats.joined += m.joined;
        this.#stats.auditLost += m.auditLost;
        if (m.records.length > 0 && this.#queue.push(m.records)) this.#stats.lost++;
      } else if (m.type === "error") {
        const error = new Error(`Conntrack flow reader failed: ${m.message}`);
        this.#queue.fail(error);
        failed(error);
      } else {
        this.#queue.end();
        failed(new Error("Conntrack flow reader ended before it was ready"));
        finish();
      }
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      const error = new Error(`Conntrack flow reader died: ${e.message}`);
      this.#queue.fail(error);
      failed(error);
      if (!this.#queue.ended) {
        this.#queue.end();
        lib().close(this.#wake);
      }
      finish();
    };
    this.#worker.postMessage(start);
  }

  /**
   * Starts the reader and waits until its socket is subscribed; rejects
   * (for example "setns … EPERM", "bind … EPERM") if it could not be.
   *
   * @param options namespace, flow tracking, buffer sizes
   */
  static async open(options: ConntrackFlowSourceOptions = {}): Promise<ConntrackFlowSource> {
    const start: ReaderStart = {
      wake: makeWake(),
      receiveBufferBytes: options.receiveBufferBytes ?? 8 * 1024 * 1024,
      trackFlows: options.trackFlows ?? false,
      attribute: options.attributeProcesses ?? true,
      connectAudit: options.connectAudit ?? "off",
    };
    if (options.connectWaitMs !== undefined) start.connectWaitMs = options.connectWaitMs;
    if (options.netns !== undefined) start.netns = options.netns;
    const source = new ConntrackFlowSource(start, options.maxQueue ?? 4096);
    try {
      await source.#ready;
    } catch (error) {
      await source.close();
      throw error;
    }
    source.#queue.clearError();
    return source;
  }

  /** Called when the reader finds audit turned off, or amp's rules removed (and re-added). */
  onAuditChange?: (state: ConnectAuditState) => void;

  /** Whether connect records are read (undefined when not asked for), and why not. */
  get connectAudit(): ConnectAuditState | undefined {
    return this.#audit ? { ...this.#audit } : undefined;
  }

  /** Counters since open. */
  get stats(): Readonly<FlowSourceStats> {
    return { ...this.#stats };
  }

  /** The next batch of records; [] once closed or the reader ended; throws once if it failed. */
  next(): Promise<FlowRecord[]> {
    return this.#queue.next();
  }

  /**
   * Closes the local socket of a flow of the source's namespace with
   * `SOCK_DESTROY` (a TCP connection is reset: its owner's calls fail with
   * ECONNABORTED, the peer sees ECONNRESET). Either side of `tuple` may be
   * the local one. Resolves `{ ok: false, error }` with the errno text when
   * the socket is gone or the kernel refuses (EOPNOTSUPP: built without
   * CONFIG_INET_DIAG_DESTROY).
   *
   * @param tuple a TCP or UDP flow, such as a `FlowEvent` of this source
   */
  destroySocket(
    tuple: Omit<DiagTuple, "protocol"> & { protocol: FlowProtocol },
  ): Promise<DestroyResult> {
    if (this.#queue.closed) {
      return Promise.resolve({ ok: false, error: "The flow source is closed" });
    }
    const { family, protocol, src, srcPort, dst, dstPort } = tuple;
    if (protocol !== "tcp" && protocol !== "udp") {
      return Promise.resolve({ ok: false, error: `Not a TCP or UDP flow: ${protocol}` });
    }
    if (!this.#diag) {
      const w = new Worker(new URL("./_diag_worker.ts", import.meta.url), { type: "module" });
      w.onmessage = (e: MessageEvent<DiagWorkerAnswer>) => {
        const done = this.#diagWaiting.get(e.data.id);
        this.#diagWaiting.delete(e.data.id);
        done?.(e.data.result);
      };
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#failDiag(`The sock_diag worker died: ${e.message}`);
      };
      const start: DiagWorkerRequest = { type: "start" };
      if (this.#netns !== undefined) start.netns = this.#netns;
      w.postMessage(start);
      this.#diag = w;
    }
    const id = ++this.#diagId;
    const request: DiagWorkerRequest = {
      type: "destroy",
      id,
      tuple: { family, protocol, src, srcPort, dst, dstPort },
    };
    return new Promise<DestroyResult>((resolve) => {
      this.#diagWaiting.set(id, resolve);
      this.#diag!.postMessage(request);
    });
  }

  #failDiag(error: string): void {
    for (const done of this.#diagWaiting.values()) done({ ok: false, error });
    this.#diagWaiting.clear();
    this.#diag?.terminate();
    this.#diag = undefined;
  }

  /** Stops the reader (it closes the socket and removes its table) and waits for it; safe to call twice. */
  async close(): Promise<void> {
    if (!this.#queue.closed) {
      const ended = this.#queue.ended;
      this.#queue.close();
      this.#diag?.postMessage({ type: "close" } satisfies DiagWorkerRequest);
      this.#diag = undefined;
      for (const done of this.#diagWaiting.values()) {
        done({ ok: false, error: "The flow source is closed" });
      }
      this.#diagWaiting.clear();
      if (!ended) wakeReader(this.#wake);
    }
    await this.#finished;
    this.#worker.terminate();
  }
}
