import assert from "node:assert/strict";
import {
  type DaemonBenchResults,
  type ExecLoop,
  execMedians,
  formatDaemonReport,
  type StormResult,
} from "./daemon_report.ts";

const loop = (mode: ExecLoop["mode"], run: number, ms: number): ExecLoop => ({
  mode,
  run,
  warmMs: ms + 50,
  ms,
  ...(mode === "none" ? {} : { cpuMs: 200, warmCpuMs: 300, scanned: 2000, backlog: 0 }),
});

const storm: StormResult = {
  files: 20_000,
  writeMs: 300,
  elapsedMs: 2_500,
  idle: true,
  scanned: 10_000,
  events: 20_000,
  kernelOverflows: 0,
  queueFull: 9_999,
  rescans: 1,
  rescannedFiles: 20_001,
  rescanSec: 2,
  sampleDetected: true,
  cpuSec: 3.5,
  peakRssKb: 150 * 1024,
};

function results(overrides: Partial<DaemonBenchResults> = {}): DaemonBenchResults {
  return {
    environment: ["Machine: test"],
    exec: {
      execs: 2000,
      runs: 3,
      loops: [
        loop("none", 1, 1000),
        loop("none", 2, 1100),
        loop("none", 3, 990),
        loop("passive", 1, 1040),
        loop("passive", 2, 1030),
        loop("passive", 3, 1500),
        loop("active", 1, 1200),
        loop("active", 2, 1250),
        loop("active", 3, 1210),
      ],
    },
    latency: [{
      label: "new EICAR files",
      files: 4,
      latenciesMs: [1, 2, 3, 300],
      missing: 0,
      target: true,
      method: "test",
    }],
    storm,
    idle: [{
      label: "test signatures",
      signatures: 2,
      seconds: 10,
      cpuTicks: 5,
      ticksPerSecond: 100,
      rssKb: 90 * 1024,
      rssTarget: true,
    }],
    failures: [],
    notes: [],
    ...overrides,
  };
}

Deno.test("execMedians() takes the median measured loop of each mode", () => {
  assert.deepEqual(execMedians(results().exec!), { none: 1000, passive: 1040, active: 1210 });
});

Deno.test("formatDaemonReport() marks the overhead targets against the no-daemon median", () => {
  const text = formatDaemonReport(results());
  assert.match(
    text,
    /\| exec loop, passive daemon \| 1\.04 s \(\+4\.00%\) \| ≤ 5% overhead \| PASS \|/,
  );
  assert.match(
    text,
    /\| exec loop, active daemon.* \| 1\.21 s \(\+21\.0%\) \| ≤ 15% overhead \| MISS \|/,
  );
  assert.match(text, /daemon CPU 200 ms = 100 µs\/exec \(warm-up 150 µs\/exec\)/);
});

Deno.test("formatDaemonReport() judges p99 latency, idle CPU and idle RSS", () => {
  const text = formatDaemonReport(results());
  assert.match(text, /p50 2 \/ p99 300 \/ max 300 ms \| p99 < 250 ms \| MISS \|/);
  assert.match(
    text,
    /\| idle CPU, test signatures \(10 s\) \| 0\.50% of one core \| < 1% \| PASS \|/,
  );
  assert.match(text, /\| 90 MiB \| < 120 MB \| PASS \|/);
});

Deno.test("formatDaemonReport() counts a storm loss unrecovered only without a rescan or detection", () => {
  assert.match(
    formatDaemonReport(results()),
    /unrecovered losses \| 0 \(planted sample detected\) \| 0 \| PASS/,
  );
  const noRescan = formatDaemonReport(results({ storm: { ...storm, rescans: 0 } }));
  assert.match(noRescan, /unrecovered losses \| ≥ 1 .* \| 0 \| MISS/);
  const missed = formatDaemonReport(results({ storm: { ...storm, sampleDetected: false } }));
  assert.match(missed, /planted sample NOT detected\) \| 0 \| MISS/);
});

Deno.test("formatDaemonReport() lists failed sections and shows n/a for what is missing", () => {
  const text = formatDaemonReport(
    results({ exec: { execs: 10, runs: 1, loops: [] }, failures: ["write storm: boom"] }),
  );
  assert.match(text, /Not measured:\n- write storm: boom/);
  assert.match(text, /\| exec loop, passive daemon \| — s \(—\) \| ≤ 5% overhead \| n\/a \|/);
});
