/**
 * The daemon benchmark's results and their markdown report: one table of
 * measures with their targets and PASS/MISS, then the raw numbers behind
 * them. Like `report.ts`, the benchmark reports; it never fails on a missed
 * target. Pure: tested in `daemon_report_test.ts`.
 *
 * @module
 */

import { median, overheadPercent, percentile } from "./daemon_stats.ts";

/** Who ran the exec loop: nobody watching, or a daemon in one execute mode. */
export type ExecMode = "none" | "passive" | "active";

/** One pair of exec loops (warm-up, then the measured one) under one mode. */
export interface ExecLoop {
  mode: ExecMode;
  /** Run number, from 1. */
  run: number;
  /** Wall time of the first loop of the pair (warm-up), ms. */
  warmMs: number;
  /** Wall time of the second loop (the one reported), ms. */
  ms: number;
  /** Daemon CPU from the start of the warm-up loop until its executions were all scanned, ms. */
  warmCpuMs?: number;
  /** Daemon CPU from the start of the measured loop until its executions were all scanned, ms. */
  cpuMs?: number;
  /** Executions the daemon counted as scanned for the measured loop. */
  scanned?: number;
  /** Executions of the measured loop not yet scanned when the loop ended. */
  backlog?: number;
  /** File events the daemon received during the measured loop. */
  events?: number;
  /** Executables the kernel skips until modified (fanotify ignore marks) at the end. */
  ignored?: number;
}

/** The exec-overhead section. */
export interface ExecResult {
  /** Executions per loop. */
  execs: number;
  /** Pairs of loops per mode. */
  runs: number;
  loops: ExecLoop[];
}

/** Write-to-verdict latencies of one kind of file. */
export interface LatencyResult {
  /** Row label, such as "new EICAR files". */
  label: string;
  /** Files written. */
  files: number;
  /** One latency per file whose verdict was seen, ms. */
  latenciesMs: number[];
  /** Files whose verdict was never seen. */
  missing: number;
  /** Whether the target (p99 < 250 ms) applies to this row. */
  target: boolean;
  /** How the verdict time was observed. */
  method: string;
}

/** The write-storm section. */
export interface StormResult {
  /** Files written (the planted sample included). */
  files: number;
  /** Time bash took to write them, ms. */
  writeMs: number;
  /** From the first write until the daemon was idle again, ms. */
  elapsedMs: number;
  /** Whether the daemon went idle before the time limit. */
  idle: boolean;
  /** On-access scans during the storm. */
  scanned: number;
  /** fanotify events read during the storm. */
  events: number;
  kernelOverflows: number;
  queueFull: number;
  rescans: number;
  /** Files the storm's rescans scanned (from the daemon's "Rescan done" notices). */
  rescannedFiles: number;
  /** Time the storm's rescans took, s. */
  rescanSec: number;
  /** Whether the planted sample got a Threat Detected event. */
  sampleDetected: boolean;
  /** Daemon CPU (user + system) during the storm, s. */
  cpuSec: number;
  /** Daemon VmHWM after the storm, KiB. */
  peakRssKb: number | null;
}

/** Idle CPU and memory of one daemon. */
export interface IdleResult {
  /** Row label. */
  label: string;
  /** Signatures loaded. */
  signatures: number;
  /** Length of the idle window, s. */
  seconds: number;
  /** CPU used in the window, clock ticks. */
  cpuTicks: number;
  /** Clock ticks per second. */
  ticksPerSecond: number;
  /** VmRSS at the end of the window, KiB. */
  rssKb: number | null;
  /** Whether the idle-RSS target (< 120 MiB, signatures excluded) applies. */
  rssTarget: boolean;
}

/** Everything one benchmark run measured. */
export interface DaemonBenchResults {
  /** Lines describing the machine and versions, shown above the table. */
  environment: string[];
  exec?: ExecResult;
  latency: LatencyResult[];
  storm?: StormResult;
  idle: IdleResult[];
  /** Sections that failed, as "section: message". */
  failures: string[];
  /** Method notes shown after the raw numbers. */
  notes: string[];
}

/** Passive-mode exec overhead target, percent. */
export const PASSIVE_TARGET_PERCENT = 5;
/** Active-mode exec overhead target (verdict cached), percent. */
export const ACTIVE_TARGET_PERCENT = 15;
/** Write-to-verdict p99 target, ms. */
export const LATENCY_P99_TARGET_MS = 250;
/** Idle CPU target, percent of one core. */
export const IDLE_CPU_TARGET_PERCENT = 1;
/** Idle RSS target without signatures, MiB. */
export const IDLE_RSS_TARGET_MIB = 120;

/** Median wall times of the measured loops per mode, ms (NaN when not measured). */
export function execMedians(exec: ExecResult): Record<ExecMode, number> {
  const of = (mode: ExecMode) => median(exec.loops.filter((l) => l.mode === mode).map((l) => l.ms));
  return { none: of("none"), passive: of("passive"), active: of("active") };
}

/**
 * The markdown report.
 *
 * @param results what the benchmark measured
 */
export function formatDaemonReport(results: DaemonBenchResults): string {
  const out: string[] = ["### amp daemon benchmark", ""];
  for (const line of results.environment) out.push(`- ${line}`);
  out.push("", "| measure | value | target | result |", "|---|---:|---|---|");
  if (results.exec) out.push(...execRows(results.exec));
  for (const latency of results.latency) out.push(latencyRow(latency));
  if (results.storm) out.push(...stormRows(results.storm));
  for (const idle of results.idle) out.push(...idleRows(idle));
  out.push("");
  if (results.failures.length > 0) {
    out.push("Not measured:", ...results.failures.map((f) => `- ${f}`), "");
  }
  out.push("Raw numbers:");
  if (results.exec) out.push(...execRaw(results.exec));
  for (const latency of results.latency) out.push(latencyRaw(latency));
  if (results.storm) out.push(stormRaw(results.storm));
  for (const idle of results.idle) out.push(idleRaw(idle));
  if (results.notes.length > 0) out.push("", "Notes:", ...results.notes.map((n) => `- ${n}`));
  return out.join("\n");
}

function execRows(exec: ExecResult): string[] {
  const m = execMedians(exec);
  const perExec = (ms: number) => `${(ms / exec.execs).toFixed(3)} ms/exec`;
  const rows: string[] = [];
  const loops = `${fmtInt(exec.execs)} × ./true on a tmpfs, median of ${exec.runs}`;
  rows.push(
    `| exec loop, no daemon (${loops}) | ${fmtSec(m.none)} s (${perExec(m.none)}) | baseline | — |`,
  );
  const row = (mode: "passive" | "active", label: string, target: number) => {
    const overhead = overheadPercent(m.none, m[mode]);
    rows.push(
      `| exec loop, ${label} | ${fmtSec(m[mode])} s (${fmtPercent(overhead, true)}) | ` +
        `≤ ${target}% overhead | ${verdict(overhead, (v) => v <= target)} |`,
    );
  };
  row("passive", "passive daemon", PASSIVE_TARGET_PERCENT);
  row("active", "active daemon, verdict cached (2nd loop)", ACTIVE_TARGET_PERCENT);
  return rows;
}

function latencyRow(l: LatencyResult): string {
  const p50 = percentile(l.latenciesMs, 50);
  const p99 = percentile(l.latenciesMs, 99);
  const max = l.latenciesMs.length > 0 ? Math.max(...l.latenciesMs) : Number.NaN;
  const missing = l.missing > 0 ? `, ${l.missing} never seen` : "";
  const value = `p50 ${fmtMs(p50)} / p99 ${fmtMs(p99)} / max ${fmtMs(max)} ms${missing}`;
  const result = l.target ? verdict(p99, (v) => v < LATENCY_P99_TARGET_MS && l.missing === 0) : "—";
  const target = l.target ? `p99 < ${LATENCY_P99_TARGET_MS} ms` : "— (context)";
  return `| write → verdict, ${l.label} (${fmtInt(l.files)}) | ${value} | ${target} | ${result} |`;
}

function stormRows(s: StormResult): string[] {
  const sec = s.elapsedMs / 1000;
  const losses = s.kernelOverflows + s.queueFull;
  // Every loss schedules a rescan (several losses in a burst share one).
  const unrecovered = !s.sampleDetected || (losses > 0 && s.rescans === 0) ? 1 : 0;
  const rescanned = s.rescans > 0
    ? ` + ${fmtInt(s.rescannedFiles)} by rescans = ${
      fmtInt((s.scanned + s.rescannedFiles) / sec)
    } ` +
      "files/s scanned in all"
    : "";
  const handled = `${fmtInt(s.scanned / sec)} files/s on access (${fmtInt(s.scanned)} scanned ` +
    `on access${rescanned}; idle ${sec.toFixed(1)} s after the first write${
      s.idle ? "" : ", NOT idle at the time limit"
    }; written in ${(s.writeMs / 1000).toFixed(2)} s)`;
  return [
    `| write storm, ${fmtInt(s.files)} small files: handled | ${handled} | — | — |`,
    `| write storm: lost events | ${s.kernelOverflows} kernel overflows, ${s.queueFull} queue full, ` +
    `${s.rescans} rescans | — | — |`,
    `| write storm: unrecovered losses | ${unrecovered === 0 ? "0" : "≥ 1"} (planted sample ${
      s.sampleDetected ? "detected" : "NOT detected"
    }) | 0 | ${unrecovered === 0 ? "PASS" : "MISS"} |`,
    `| write storm: daemon CPU | ${s.cpuSec.toFixed(1)} s (${
      fmtPercent((s.cpuSec / sec) * 100)
    } of one core over the storm) | — | — |`,
    `| write storm: daemon peak RSS (VmHWM) | ${fmtMib(s.peakRssKb)} MiB | — | — |`,
  ];
}

function idleRows(i: IdleResult): string[] {
  const cpu = idleCpuPercent(i);
  const rows = [
    `| idle CPU, ${i.label} (${i.seconds.toFixed(0)} s) | ${fmtPercent(cpu)} of one core | ` +
    `< ${IDLE_CPU_TARGET_PERCENT}% | ${verdict(cpu, (v) => v < IDLE_CPU_TARGET_PERCENT)} |`,
  ];
  const rssMib = i.rssKb === null ? undefined : i.rssKb / 1024;
  rows.push(
    i.rssTarget
      ? `| idle RSS, ${i.label} (≈ RSS excluding signatures) | ${fmtMib(i.rssKb)} MiB | ` +
        `< ${IDLE_RSS_TARGET_MIB} MB | ${verdict(rssMib, (v) => v < IDLE_RSS_TARGET_MIB)} |`
      : `| idle RSS, ${i.label} | ${fmtMib(i.rssKb)} MiB | — (context) | — |`,
  );
  return rows;
}

/** Idle CPU in percent of one core. */
function idleCpuPercent(i: IdleResult): number {
  return (i.cpuTicks / i.ticksPerSecond / i.seconds) * 100;
}

function execRaw(exec: ExecResult): string[] {
  const lines: string[] = [];
  for (const l of exec.loops) {
    const parts = [
      `- exec run ${l.run}, ${l.mode === "none" ? "no daemon" : l.mode}: warm-up ${
        fmtInt(l.warmMs)
      } ms, measured ${fmtInt(l.ms)} ms`,
    ];
    if (l.cpuMs !== undefined) {
      parts.push(
        `daemon CPU ${fmtInt(l.cpuMs)} ms = ${fmtUs(l.cpuMs, exec.execs)} µs/exec` +
          (l.warmCpuMs !== undefined ? ` (warm-up ${fmtUs(l.warmCpuMs, exec.execs)} µs/exec)` : ""),
      );
    }
    if (l.scanned !== undefined) parts.push(`${fmtInt(l.scanned)} executions scanned`);
    if (l.events !== undefined) parts.push(`${fmtInt(l.events)} events reached the daemon`);
    if (l.backlog !== undefined) parts.push(`${fmtInt(l.backlog)} not yet scanned at loop end`);
    if (l.ignored !== undefined) {
      parts.push(`${fmtInt(l.ignored)} executables skipped by the kernel (clean, unchanged)`);
    }
    lines.push(parts.join("; "));
  }
  return lines;
}

function latencyRaw(l: LatencyResult): string {
  const v = l.latenciesMs;
  const mean = v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN;
  return `- write → verdict, ${l.label}: ${v.length}/${l.files} seen; min ${
    fmtMs(v.length > 0 ? Math.min(...v) : Number.NaN)
  }, p50 ${fmtMs(percentile(v, 50))}, p90 ${fmtMs(percentile(v, 90))}, p99 ${
    fmtMs(percentile(v, 99))
  }, max ${fmtMs(v.length > 0 ? Math.max(...v) : Number.NaN)}, mean ${fmtMs(mean)} ms; ${l.method}`;
}

function stormRaw(s: StormResult): string {
  return `- write storm: ${fmtInt(s.files)} files written in ${fmtInt(s.writeMs)} ms; idle ${
    s.idle ? "after" : "not reached in"
  } ${fmtInt(s.elapsedMs)} ms; ${fmtInt(s.events)} fanotify events, ${
    fmtInt(s.scanned)
  } on-access scans, ${s.kernelOverflows} kernel overflows, ${s.queueFull} queue full, ${s.rescans} rescans ` +
    `(${fmtInt(s.rescannedFiles)} files in ${s.rescanSec.toFixed(1)} s); ` +
    `daemon CPU ${s.cpuSec.toFixed(2)} s, VmHWM ${s.peakRssKb ?? "?"} kB`;
}

function idleRaw(i: IdleResult): string {
  return `- idle, ${i.label}: ${i.cpuTicks} CPU ticks in ${
    i.seconds.toFixed(2)
  } s at ${i.ticksPerSecond} ` +
    `ticks/s; VmRSS ${i.rssKb ?? "?"} kB; ${fmtInt(i.signatures)} signatures`;
}

function verdict(value: number | undefined, ok: (v: number) => boolean): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return ok(value) ? "PASS" : "MISS";
}

function fmtSec(ms: number): string {
  return Number.isFinite(ms) ? (ms / 1000).toFixed(2) : "—";
}

function fmtMs(ms: number): string {
  return Number.isFinite(ms) ? String(Math.round(ms)) : "—";
}

function fmtUs(ms: number, count: number): string {
  return ((ms * 1000) / count).toFixed(0);
}

function fmtPercent(value: number, signed = false): string {
  if (!Number.isFinite(value)) return "—";
  const digits = Math.abs(value) < 10 ? 2 : 1;
  return `${signed && value >= 0 ? "+" : ""}${value.toFixed(digits)}%`;
}

function fmtMib(kb: number | null): string {
  return kb === null ? "?" : (kb / 1024).toFixed(0);
}

function fmtInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "—";
}
