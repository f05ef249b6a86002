/**
 * Pure parts of the DFC benchmark (bench/dfc_bench.ts): pacing, matching
 * connections to their events, and the markdown report.
 *
 * @module
 */

import { percentile } from "./daemon_stats.ts";

/** Target of issue 5: p99 detection latency, ms. */
export const LATENCY_P99_TARGET_MS = 200;
/** Target of issue 5: flows missed out of the fast client's connections. */
export const MISSED_TARGET = 0;

/** One connection of the latency measure: who made it, to where, when (ms since the epoch). */
export interface ClientConnection {
  pid: number;
  address: string;
  connectMs: number;
}

/** What the latency measure needs of a `DFC Threat Detected` event. */
export interface DfcEventLike {
  time: number;
  remoteAddress?: string;
  pid?: number;
}

/** Latencies matched to connections, and the connections left without an event. */
export interface LatencyMatch {
  latenciesMs: number[];
  unmatched: number;
  /** Events that named the connecting process's pid. */
  withPid: number;
}

/**
 * Pairs each connection with its event: by pid when the event names one,
 * otherwise the oldest unused event for the same remote address.
 *
 * @param conns the connections, in the order they were made
 * @param events the daemon's DFC events, oldest first
 *
 * @example
 * ```ts
 * import { matchLatencies } from "./dfc_report.ts";
 * matchLatencies([{ pid: 7, address: "a", connectMs: 100 }], [{ time: 130, remoteAddress: "a" }]);
 * // { latenciesMs: [30], unmatched: 0, withPid: 0 }
 * ```
 */
export function matchLatencies(
  conns: readonly ClientConnection[],
  events: readonly DfcEventLike[],
): LatencyMatch {
  const used = new Set<number>();
  const latenciesMs: number[] = [];
  let unmatched = 0;
  let withPid = 0;
  for (const c of conns) {
    let index = events.findIndex((e, i) => !used.has(i) && e.pid === c.pid);
    if (index >= 0) {
      withPid++;
    } else {
      index = events.findIndex((e, i) =>
        !used.has(i) && e.pid === undefined && e.remoteAddress === c.address
      );
    }
    if (index < 0) {
      unmatched++;
      continue;
    }
    used.add(index);
    latenciesMs.push(events[index].time - c.connectMs);
  }
  return { latenciesMs, unmatched, withPid };
}

/**
 * How many connections a paced client should have started after `elapsedMs`
 * at `rate` per second, at most `total`.
 *
 * @example
 * ```ts
 * import { dueConnections } from "./dfc_report.ts";
 * dueConnections(250, 2000, 10_000); // 500
 * ```
 */
export function dueConnections(elapsedMs: number, rate: number, total: number): number {
  if (!(rate > 0)) return total;
  return Math.min(total, Math.max(0, Math.floor((elapsedMs * rate) / 1000)));
}

/** Everything one run measured. */
export interface DfcBenchResults {
  environment: string[];
  latency?: LatencyMatch & { connections: number; addresses: number };
  missed?: {
    connections: number;
    failed: number;
    flowsBefore: number;
    flowsAfter: number;
    lostBefore: number;
    lostAfter: number;
    clientMs: number;
  };
  cpu?: {
    connections: number;
    failed: number;
    rate: number;
    wallMs: number;
    cpuSeconds: number;
    flows: number;
    idleCpuSeconds: number;
    idleWallMs: number;
    /** The client's own span of connections. */
    clientMs: number;
  };
  /** Rows of bench/ip_list_bench.ts's table (without its header), and its preamble. */
  ipList?: { rows: string[]; preamble: string[] };
  failures: string[];
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? "" : ok ? "PASS" : "MISS";
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function fmtMs(ms: number): string {
  return Number.isFinite(ms) ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : "—";
}

/** Missed flows: connections made minus flows the daemon counted. */
export function missedFlows(m: NonNullable<DfcBenchResults["missed"]>): number {
  return Math.max(0, m.connections - m.failed - (m.flowsAfter - m.flowsBefore));
}

/**
 * The report: environment, the table (measure | value | target | result), raw numbers.
 *
 * @example
 * ```ts
 * import { formatDfcReport } from "./dfc_report.ts";
 * formatDfcReport({ environment: ["host"], failures: [] }).startsWith("## amp DFC"); // true
 * ```
 */
export function formatDfcReport(r: DfcBenchResults): string {
  const out: string[] = ["## amp DFC benchmark", "", ...r.environment.map((e) => `- ${e}`), ""];
  out.push("| measure | value | target | result |", "|---|---|---|---|");
  const raw: string[] = [];
  if (r.latency) {
    const l = r.latency.latenciesMs;
    const p99 = percentile(l, 99);
    const ok = l.length > 0 && r.latency.unmatched === 0 && p99 < LATENCY_P99_TARGET_MS;
    out.push(
      `| detection latency p50 (connect() → event), ${fmtInt(l.length)} of ${
        fmtInt(r.latency.connections)
      } connections | ${fmtMs(percentile(l, 50))} | | |`,
      `| detection latency p99 | ${fmtMs(p99)} | < ${LATENCY_P99_TARGET_MS} ms | ${verdict(ok)} |`,
      `| detection latency max | ${fmtMs(l.length ? Math.max(...l) : NaN)} | | |`,
    );
    raw.push(
      `latency: ${r.latency.connections} connections (each its own bash) to ${r.latency.addresses} ` +
        `listed addresses; ${l.length} events matched (${r.latency.withPid} by pid), ` +
        `${r.latency.unmatched} without an event; min ${
          fmtMs(l.length ? Math.min(...l) : NaN)
        }, p90 ${fmtMs(percentile(l, 90))}`,
    );
  }
  if (r.missed) {
    const m = r.missed;
    const missed = missedFlows(m);
    const lost = m.lostAfter - m.lostBefore;
    out.push(
      `| flows missed of ${fmtInt(m.connections)} short connections (one fast client) | ${
        fmtInt(missed)
      } (lost ${fmtInt(lost)}) | ${MISSED_TARGET} | ${
        verdict(missed <= MISSED_TARGET && m.failed === 0)
      } |`,
    );
    raw.push(
      `missed: ${m.connections} connections in ${fmtMs(m.clientMs)} (${
        fmtInt(m.connections / (m.clientMs / 1000))
      }/s), ${m.failed} failed; status.dfc.flows ${m.flowsBefore} → ${m.flowsAfter} (+${
        m.flowsAfter - m.flowsBefore
      }), lost ${m.lostBefore} → ${m.lostAfter}`,
    );
  }
  if (r.cpu) {
    const c = r.cpu;
    const share = (100 * c.cpuSeconds) / (c.wallMs / 1000);
    const idle = (100 * c.idleCpuSeconds) / (c.idleWallMs / 1000);
    const achieved = c.connections / (c.clientMs / 1000);
    out.push(
      `| daemon CPU at ${fmtInt(c.rate)} new connections/s (achieved ${fmtInt(achieved)}/s) | ${
        share.toFixed(1)
      }% of one core | (report) | |`,
      `| daemon CPU idle, same daemon | ${idle.toFixed(1)}% of one core | | |`,
    );
    raw.push(
      `cpu: ${c.connections} connections (${c.failed} failed) over ${fmtMs(c.wallMs)}, ` +
        `daemon ${c.cpuSeconds.toFixed(2)} CPU s, ${c.flows} flows counted; idle ${
          c.idleCpuSeconds.toFixed(2)
        } CPU s over ${fmtMs(c.idleWallMs)}`,
    );
  }
  if (r.ipList) {
    for (const row of r.ipList.rows) {
      out.push(row.replace(/^\| /, "| 1M-entry list: "));
    }
    raw.push(...r.ipList.preamble.map((p) => `ip list: ${p}`));
  }
  out.push("", "Raw numbers:", "", ...raw.map((l) => `- ${l}`));
  if (r.failures.length > 0) {
    out.push("", "Failures:", "", ...r.failures.map((f) => `- ${f}`));
  }
  return out.join("\n") + "\n";
}
