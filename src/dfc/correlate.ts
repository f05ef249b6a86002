/**
 * Device Flow Correlation: each new flow is matched against the policy's IP
 * lists; a flow to (or from) a listed address raises one "DFC Threat
 * Detected" event naming the flow, the lists, the process behind it and that
 * process's file disposition. Events are rate-limited per process and remote
 * address (a program that retries a listed address every second raises one
 * event per window, with the count of the ones held back). The action is the
 * policy's `mode.network`: audit records only; block also closes the
 * connection (sock_diag SOCK_DESTROY) and says whether that worked.
 *
 * The correlator is pure logic over small interfaces, so it is tested
 * without root; the daemon gives it the real flow source and scanner.
 *
 * @module
 */

import type { AmpEvent } from "../store/event.ts";
import type { IpMatcher } from "./ip_list.ts";
import type { FlowEvent } from "./flow/conntrack_events.ts";

/** The process facts a flow may carry (attributed by the flow source). */
export interface FlowProcess {
  pid: number;
  executable?: Uint8Array | string;
  commandLine?: string;
  uid?: number;
  ppid?: number;
  parentExecutable?: Uint8Array;
}

/** A flow with what attribution found. */
export type AttributedFlow = FlowEvent & {
  process?: FlowProcess;
  socket?: { inode: number; uid: number };
  attribution?: string;
};

/** What is known of the process's executable file. */
export interface FileDisposition {
  sha256?: string;
  /** clean, malicious (with the name), unknown … */
  disposition: string;
  detection?: string;
}

/** Options of {@linkcode FlowCorrelator}. */
export interface FlowCorrelatorOptions {
  matcher: () => IpMatcher;
  mode: () => "audit" | "block";
  event: (event: Omit<AmpEvent, "time" | "host" | "policy">) => void;
  /** Closes the flow's connection (block mode). */
  destroy?: (flow: AttributedFlow) => Promise<{ ok: boolean; error?: string }>;
  /** The disposition of the process's executable, when it can be found. */
  disposition?: (flow: AttributedFlow) => Promise<FileDisposition | undefined>;
  /** One event per process and remote address in this window (ms). Default 60 s. */
  rateLimitMs?: number;
  now?: () => number;
}

/** Counters shown by `amp status`. */
export interface FlowCorrelatorStats {
  flows: number;
  matches: number;
  events: number;
  suppressed: number;
  blocked: number;
  blockFailures: number;
}

/** Most rate-limit keys remembered (older ones are forgotten first). */
const MAX_KEYS = 65_536;

/** Matches flows against the lists and raises the events. */
export class FlowCorrelator {
  readonly stats: FlowCorrelatorStats = {
    flows: 0,
    matches: 0,
    events: 0,
    suppressed: 0,
    blocked: 0,
    blockFailures: 0,
  };
  readonly #o: FlowCorrelatorOptions;
  readonly #recent = new Map<string, { until: number; held: number }>();

  constructor(options: FlowCorrelatorOptions) {
    this.#o = options;
  }

  /** Handles one new flow; resolves once its event (if any) is raised. */
  async handle(flow: AttributedFlow): Promise<void> {
    this.stats.flows++;
    const matcher = this.#o.matcher();
    // Outbound flows have the remote side as destination; for a flow that
    // came in, the listed address is the source.
    let remote = "dst" as "dst" | "src";
    let lists = matcher.lookup(flow.dst);
    if (lists.length === 0) {
      lists = matcher.lookup(flow.src);
      remote = "src";
    }
    if (lists.length === 0) return;
    this.stats.matches++;
    const remoteAddress = remote === "dst" ? flow.dst : flow.src;
    const now = (this.#o.now ?? Date.now)();
    const who = flow.process?.pid ?? `uid${flow.socket?.uid ?? "?"}`;
    const key = `${who}|${remoteAddress}`;
    const seen = this.#recent.get(key);
    if (seen && seen.until > now) {
      seen.held++;
      this.stats.suppressed++;
      return;
    }
    this.#remember(key, now);
    const held = seen?.held ?? 0;
    const mode = this.#o.mode();
    let action: string = "audit";
    let blockError: string | undefined;
    if (mode === "block" && this.#o.destroy) {
      const result = await this.#o.destroy(flow);
      if (result.ok) {
        action = "blocked";
        this.stats.blocked++;
      } else {
        action = "block-failed";
        blockError = result.error;
        this.stats.blockFailures++;
      }
    }
    const disposition = await this.#o.disposition?.(flow).catch(() => undefined);
    const p = flow.process;
    this.stats.events++;
    this.#o.event({
      type: "DFC Threat Detected",
      action,
      protocol: String(flow.protocol),
      localAddress: remote === "dst" ? flow.src : flow.dst,
      localPort: remote === "dst" ? flow.srcPort : flow.dstPort,
      remoteAddress,
      remotePort: remote === "dst" ? flow.dstPort : flow.srcPort,
      pid: p?.pid,
      ppid: p?.ppid,
      uid: p?.uid ?? flow.socket?.uid,
      executable: typeof p?.executable === "string"
        ? new TextEncoder().encode(p.executable)
        : p?.executable,
      commandLine: p?.commandLine,
      parentExecutable: p?.parentExecutable,
      sha256: disposition?.sha256,
      detection: disposition?.detection,
      details: {
        lists: [...lists],
        direction: remote === "dst" ? "outbound" : "inbound",
        attribution: flow.attribution ?? (p ? "process" : "none"),
        disposition: disposition?.disposition ?? "unknown",
        ...(held > 0 ? { heldBack: held } : {}),
        ...(blockError ? { blockError } : {}),
      },
    });
  }

  #remember(key: string, now: number): void {
    this.#recent.delete(key);
    this.#recent.set(key, { until: now + (this.#o.rateLimitMs ?? 60_000), held: 0 });
    if (this.#recent.size > MAX_KEYS) {
      this.#recent.delete(this.#recent.keys().next().value!);
    }
  }
}
