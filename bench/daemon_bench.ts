/**
 * amp's daemon benchmark: real `amp daemon`s (tests/fixtures/daemon.ts: a
 * temporary host root whose only watched file system is a private tmpfs),
 * measured side by side in one run, printed as a markdown table with
 * PASS/MISS per target and the raw numbers:
 *
 * 1. exec overhead: `bash -c 'for i in $(seq N); do ./true; done'` with a copy
 *    of /bin/true on a tmpfs that no daemon watches, on a passive daemon's
 *    tmpfs, and on an active daemon's; each loop twice (warm-up, measured),
 *    the modes interleaved in a rotating order, medians over `--runs`;
 * 2. write-to-verdict latency of new files: EICAR files (the `Threat
 *    Detected` event's time minus the time the write returned) and clean
 *    files (the time `onAccessScanned` was seen to grow, by polling status);
 * 3. a write storm: 20,000 small files from bash with one EICAR planted,
 *    until the daemon is idle again (queue empty, counters still, CPU quiet);
 * 4. idle CPU and RSS, with the two test signatures and, when `deno task
 *    bench` built it, with the 520,002-signature database.
 *
 * Daemon CPU is utime + stime from /proc/PID/stat, memory VmRSS / VmHWM from
 * /proc/PID/status, of the Deno process that runs `amp daemon`. Status is
 * read over the daemon's IPC socket (what `amp status --json` prints)
 * through one kept connection, so polling costs no process start-ups.
 * Root only. Run with `deno task bench-daemon` (see `--help`).
 *
 * @module
 */

import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { connectDaemon } from "../src/cli/daemon_client.ts";
import type { IpcClient } from "../src/ipc/ipc_client.ts";
import type { PolicyInput } from "../src/policy/schema.ts";
import type { StatusReport } from "../src/daemon/status_report.ts";
import {
  events,
  startDaemon,
  type TestDaemon,
  type TestDaemonOptions,
} from "../tests/fixtures/daemon.ts";
import { eicar } from "../tests/fixtures/samples.ts";
import {
  type DaemonBenchResults,
  type ExecLoop,
  type ExecMode,
  formatDaemonReport,
  type IdleResult,
  type LatencyResult,
  type StormResult,
} from "./daemon_report.ts";
import { parseRescans } from "./daemon_log.ts";
import { clockTicksPerSecond, readCpuTicks, readStatusKb } from "./daemon_proc.ts";

/** Where `deno task bench` keeps its database; the report is saved here too. */
const WORK_DIR = "/var/tmp/amp-bench";
/** The 520,002-signature database built by `deno task bench`. */
const BENCH_DB_DIR = `${WORK_DIR}/db`;
const BENCH_DB_FILE = `${BENCH_DB_DIR}/amp-bench.cud`;

/** The daemon flushes new verdicts to the cache this often (src/daemon/daemon.ts). */
const CACHE_FLUSH_MS = 5_000;
/** Idle: counters unchanged and the daemon under this share of one core for STABLE_MS. */
const QUIET_CPU_SHARE = 0.1;
const STABLE_MS = 1_000;
const POLL_MS = 250;

const SECTIONS = ["idle", "latency", "exec", "storm", "signatures"] as const;
type Section = (typeof SECTIONS)[number];

const AUDIT: PolicyInput = { id: 1, name: "Audit Policy for Linux" };

const USAGE = `Usage: deno task bench-daemon [options]

Starts real amp daemons (root only), each on a private tmpfs, and measures:
exec overhead (passive, active), write-to-verdict latency, a write storm, and
idle CPU and RSS. Prints a markdown table with PASS/MISS per target, and saves
it with the raw numbers in ${WORK_DIR}/daemon-last-report.md and
daemon-last-results.json.

  --runs N         exec loop pairs per mode; the table shows medians (default 3)
  --execs N        executions per exec loop (default 2000)
  --files N        new files per latency measure, EICAR and clean (default 300)
  --pause-ms N     pause between two latency files (default 20)
  --storm N        files written in the storm (default 20000)
  --idle-sec N     length of each idle window (default 10)
  --only LIST      sections, comma-separated: ${SECTIONS.join(",")}
                   (default all; "signatures" = idle RSS with ${BENCH_DB_FILE},
                   skipped when it does not exist: deno task bench builds it)
  --v8-flags STR   DENO_V8_FLAGS for the daemons (default "--max-semi-space-size=1",
                   as the amp task and the compiled binary use; "" for V8's defaults)
  -h, --help       this help`;

const log = (message: string) => console.error(`[bench-daemon] ${message}`);
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Undo steps for an interruption: daemons to stop, mounts to remove. */
const cleanups = new Set<() => Promise<void>>();

/** A running test daemon with a kept IPC connection and its /proc readings. */
class DaemonProbe {
  readonly daemon: TestDaemon;
  readonly #client: IpcClient;
  readonly #ticksPerSecond: number;
  readonly #cleanup: () => Promise<void>;

  private constructor(
    daemon: TestDaemon,
    client: IpcClient,
    ticksPerSecond: number,
    cleanup: () => Promise<void>,
  ) {
    this.daemon = daemon;
    this.#client = client;
    this.#ticksPerSecond = ticksPerSecond;
    this.#cleanup = cleanup;
  }

  /** Starts a daemon and connects to it. */
  static async start(
    options: TestDaemonOptions,
    ticksPerSecond: number,
  ): Promise<DaemonProbe> {
    const daemon = await startDaemon(options);
    const stop = async () => {
      await daemon.stop();
    };
    cleanups.add(stop);
    try {
      return new DaemonProbe(daemon, await connectDaemon(daemon.root), ticksPerSecond, stop);
    } catch (error) {
      cleanups.delete(stop);
      await daemon.stop();
      throw error;
    }
  }

  get pid(): number {
    return this.daemon.process.pid;
  }

  get watched(): string {
    return this.daemon.watched;
  }

  /** What `amp status --json` shows (without `connected`). */
  async status(): Promise<StatusReport> {
    return await this.#client.request("status") as StatusReport;
  }

  /** CPU seconds (user + system) the daemon used so far. */
  async cpuSeconds(): Promise<number> {
    const ticks = await readCpuTicks(this.pid);
    if (ticks === null) {
      throw new Error(`The daemon (pid ${this.pid}) exited:\n${this.daemon.log()}`);
    }
    return ticks / this.#ticksPerSecond;
  }

  /** Closes the connection and stops the daemon. */
  async stop(): Promise<void> {
    cleanups.delete(this.#cleanup);
    await this.#client.close();
    const { code } = await this.daemon.stop();
    if (code !== 0) log(`daemon ${this.pid} exited with status ${code}`);
  }
}

/** Starts a daemon, runs `fn` with it, and stops it whatever happens. */
async function withDaemon<T>(
  options: TestDaemonOptions,
  ticksPerSecond: number,
  fn: (probe: DaemonProbe) => Promise<T>,
): Promise<T> {
  const probe = await DaemonProbe.start(options, ticksPerSecond);
  try {
    return await fn(probe);
  } finally {
    await probe.stop();
  }
}

/** How the daemon stands: changes while it works on events, scans or cache writes. */
function activityKey(s: StatusReport): string {
  const m = s.monitor;
  return JSON.stringify([
    m.events,
    m.queued,
    m.onAccessScanned,
    m.executionsScanned,
    m.detections,
    m.kernelOverflows,
    m.queueFull,
    m.rescans,
    s.cache.entries,
    s.events.total,
    s.scan?.summary.files,
  ]);
}

/** What {@linkcode waitIdle} saw. */
interface IdleWait {
  /** Whether the daemon went idle before the deadline. */
  reached: boolean;
  /** performance.now() of the last poll that saw the daemon working. */
  lastActive: number;
  /** Daemon CPU seconds at that poll. */
  cpuAtLastActive: number;
  status: StatusReport;
}

/**
 * Polls until the daemon is idle: nothing queued, the status counters
 * unchanged and the daemon's CPU under {@linkcode QUIET_CPU_SHARE} of one core
 * for {@linkcode STABLE_MS} (a rescan walking already-cached files changes no
 * counter, but uses CPU).
 */
async function waitIdle(probe: DaemonProbe, timeoutMs: number): Promise<IdleWait> {
  const deadline = performance.now() + timeoutMs;
  let status = await probe.status();
  let key = activityKey(status);
  let lastActive = performance.now();
  let cpu = await probe.cpuSeconds();
  let cpuAtLastActive = cpu;
  let previous = { at: lastActive, cpu };
  for (;;) {
    await delay(POLL_MS);
    status = await probe.status();
    const now = performance.now();
    cpu = await probe.cpuSeconds();
    const share = (cpu - previous.cpu) / ((now - previous.at) / 1000);
    previous = { at: now, cpu };
    const next = activityKey(status);
    if (next !== key || status.monitor.queued > 0 || share > QUIET_CPU_SHARE) {
      key = next;
      lastActive = now;
      cpuAtLastActive = cpu;
    } else if (now - lastActive >= STABLE_MS) {
      return { reached: true, lastActive, cpuAtLastActive, status };
    }
    if (now > deadline) return { reached: false, lastActive: now, cpuAtLastActive: cpu, status };
  }
}

/** Polls status until `check` holds, or `ms` pass; returns the last status and whether it held. */
async function waitStatus(
  probe: DaemonProbe,
  check: (s: StatusReport) => boolean,
  ms: number,
  pollMs = 50,
): Promise<{ ok: boolean; status: StatusReport }> {
  const deadline = performance.now() + ms;
  for (;;) {
    const status = await probe.status();
    if (check(status)) return { ok: true, status };
    if (performance.now() > deadline) return { ok: false, status };
    await delay(pollMs);
  }
}

async function commandText(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return `${cmd}: unavailable`;
  }
}

async function runOrThrow(cmd: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

// ---------------------------------------------------------------- idle

/**
 * Idle CPU and RSS: one file is scanned first (so the scan path has run),
 * the daemon is left to settle, then nothing is asked of it for `seconds`.
 */
async function measureIdle(
  probe: DaemonProbe,
  label: string,
  seconds: number,
  rssTarget: boolean,
): Promise<IdleResult> {
  const before = (await probe.status()).monitor.onAccessScanned;
  await Deno.writeTextFile(`${probe.watched}/idle-probe.txt`, "a clean file before idling\n");
  await waitStatus(probe, (s) => s.monitor.onAccessScanned > before, 30_000);
  // Past the next verdict-cache flush, so start-up and the probe's work are done.
  await delay(CACHE_FLUSH_MS + 500);
  await waitIdle(probe, 30_000);
  const ticksPerSecond = await clockTicksPerSecond();
  const cpu0 = await readCpuTicks(probe.pid);
  const started = performance.now();
  await delay(seconds * 1000);
  const cpu1 = await readCpuTicks(probe.pid);
  const elapsed = (performance.now() - started) / 1000;
  const rssKb = await readStatusKb(probe.pid, "VmRSS");
  if (cpu0 === null || cpu1 === null) throw new Error("The daemon exited while idle");
  const status = await probe.status();
  return {
    label,
    signatures: status.engines.clamav?.signatures ?? 0,
    seconds: elapsed,
    cpuTicks: cpu1 - cpu0,
    ticksPerSecond,
    rssKb,
    rssTarget,
  };
}

// ---------------------------------------------------------------- latency

/**
 * New EICAR files, one at a time: each file's content is unique (a trailer
 * after the EICAR string), so every one is a real ClamAV scan rather than a
 * repeat answered by the pipeline's SHA-256 memory.
 */
async function eicarLatency(
  probe: DaemonProbe,
  files: number,
  pauseMs: number,
): Promise<LatencyResult> {
  const dir = `${probe.watched}/latency-eicar`;
  await Deno.mkdir(dir);
  const detections = (await probe.status()).monitor.detections;
  const written = new Map<string, number>();
  for (let i = 0; i < files; i++) {
    const path = `${dir}/sample-${i}.com`;
    await Deno.writeTextFile(path, `${eicar()}\nlatency sample ${i}\n`);
    written.set(path, Date.now());
    await delay(pauseMs);
  }
  await waitStatus(probe, (s) => s.monitor.detections >= detections + files, 30_000, 100);
  await delay(500); // the daemon writes events every 100 ms
  const latenciesMs: number[] = [];
  for (const e of await events(probe.daemon)) {
    if (e.type !== "Threat Detected") continue;
    const at = written.get(String(e.path));
    if (at === undefined) continue;
    latenciesMs.push(Number(e.time) - at);
    written.delete(String(e.path));
  }
  return {
    label: "new EICAR files",
    files,
    latenciesMs,
    missing: written.size,
    target: true,
    method: "Threat Detected event time (the daemon's Date.now() when it convicted) minus " +
      `Date.now() after the write returned (0 or -1 ms happen: the daemon sees the close ` +
      `before the write's promise settles here); one file every ~${pauseMs} ms, each unique`,
  };
}

/**
 * New clean files, one at a time: no event records a clean verdict, so the
 * status is polled back to back (1 ms apart) until `onAccessScanned` grows;
 * the latency is an upper bound by one status round trip.
 */
async function cleanLatency(
  probe: DaemonProbe,
  files: number,
  pauseMs: number,
): Promise<LatencyResult> {
  const dir = `${probe.watched}/latency-clean`;
  await Deno.mkdir(dir);
  const latenciesMs: number[] = [];
  let missing = 0;
  for (let i = 0; i < files; i++) {
    const before = (await probe.status()).monitor.onAccessScanned;
    await Deno.writeTextFile(`${dir}/clean-${i}.txt`, `a clean file, number ${i}\n`);
    const at = Date.now();
    const seen = await waitStatus(probe, (s) => s.monitor.onAccessScanned > before, 5_000, 1);
    if (seen.ok) latenciesMs.push(Date.now() - at);
    else missing++;
    await delay(pauseMs);
  }
  return {
    label: "new clean files",
    files,
    latenciesMs,
    missing,
    target: false,
    method: "status polled 1 ms apart until onAccessScanned grew, minus Date.now() after the " +
      "write returned (upper bound: includes one status round trip)",
  };
}

// ---------------------------------------------------------------- exec

async function execLoop(dir: string, execs: number): Promise<number> {
  const started = performance.now();
  const out = await new Deno.Command("bash", {
    args: ["-c", `for i in $(seq ${execs}); do ./true; done`],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const ms = performance.now() - started;
  if (!out.success) {
    throw new Error(`The exec loop failed in ${dir}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return ms;
}

/** One exec loop on a daemon's tmpfs, with the daemon's CPU until every execution was scanned. */
async function execLoopOnDaemon(probe: DaemonProbe, execs: number) {
  const before = await probe.status();
  const cpu0 = await probe.cpuSeconds();
  const ms = await execLoop(probe.watched, execs);
  const atEnd = await probe.status();
  const scannedAtEnd = atEnd.monitor.executionsScanned - before.monitor.executionsScanned;
  // Events the daemon received: a clean, unchanged executable is skipped by the kernel.
  const events = atEnd.monitor.events - before.monitor.events;
  // Passive executions may still be queued: wait for them, or for the counter to stop.
  let last = atEnd.monitor.executionsScanned;
  let lastChange = performance.now();
  const { status } = await waitStatus(probe, (s) => {
    if (s.monitor.executionsScanned !== last) {
      last = s.monitor.executionsScanned;
      lastChange = performance.now();
    }
    return s.monitor.executionsScanned - before.monitor.executionsScanned >= events ||
      performance.now() - lastChange > STABLE_MS;
  }, 60_000);
  const cpuMs = (await probe.cpuSeconds() - cpu0) * 1000;
  return {
    ms,
    cpuMs,
    scanned: status.monitor.executionsScanned - before.monitor.executionsScanned,
    backlog: Math.max(0, Math.min(execs, events) - scannedAtEnd),
    events,
    ignored: status.monitor.ignoredExecutables,
  };
}

/** Rotates the modes so each comes first, second and third in turn. */
function modeOrder(run: number): ExecMode[] {
  const modes: ExecMode[] = ["none", "passive", "active"];
  const shift = (run - 1) % modes.length;
  return [...modes.slice(shift), ...modes.slice(0, shift)];
}

async function installTrue(dir: string): Promise<void> {
  await Deno.copyFile("/bin/true", `${dir}/true`);
  await Deno.chmod(`${dir}/true`, 0o755);
}

async function measureExec(
  execs: number,
  runs: number,
  ticksPerSecond: number,
): Promise<{ loops: ExecLoop[]; firstActiveColdMs?: number }> {
  const plain = await Deno.makeTempDir({ prefix: "amp-bench-exec-" });
  await runOrThrow("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0755", "amp-bench", plain]);
  const unmount = async () => {
    await runOrThrow("umount", ["-l", plain]).catch(() => {});
    await Deno.remove(plain, { recursive: true }).catch(() => {});
  };
  cleanups.add(unmount);
  const daemons: Partial<Record<ExecMode, DaemonProbe>> = {};
  try {
    await installTrue(plain);
    for (const mode of ["passive", "active"] as const) {
      log(`exec: starting a ${mode} daemon`);
      const probe = await DaemonProbe.start({
        policy: { ...AUDIT, mode: { execute: mode } },
      }, ticksPerSecond);
      daemons[mode] = probe;
      await installTrue(probe.watched);
      await waitIdle(probe, 30_000);
    }
    const loops: ExecLoop[] = [];
    const warmed = new Set<ExecMode>();
    for (let run = 1; run <= runs; run++) {
      for (const mode of modeOrder(run)) {
        const probe = daemons[mode];
        if (!probe) {
          const warmMs = await execLoop(plain, execs);
          const ms = await execLoop(plain, execs);
          loops.push({ mode, run, warmMs, ms });
          log(`exec run ${run}/${runs}, no daemon: ${fmt(warmMs)} / ${fmt(ms)} ms`);
          continue;
        }
        const warm = await execLoopOnDaemon(probe, execs);
        if (!warmed.has(mode)) {
          // The first loop's verdict reaches the cache at the next flush.
          warmed.add(mode);
          await delay(CACHE_FLUSH_MS + 500);
        }
        const measured = await execLoopOnDaemon(probe, execs);
        loops.push({
          mode,
          run,
          warmMs: warm.ms,
          ms: measured.ms,
          warmCpuMs: warm.cpuMs,
          cpuMs: measured.cpuMs,
          scanned: measured.scanned,
          backlog: measured.backlog,
          events: measured.events,
          ignored: measured.ignored,
        });
        log(
          `exec run ${run}/${runs}, ${mode}: ${fmt(warm.ms)} / ${fmt(measured.ms)} ms, ` +
            `daemon CPU ${fmt(measured.cpuMs)} ms, ${measured.scanned} scanned, ` +
            `backlog at end ${measured.backlog}`,
        );
      }
    }
    return { loops };
  } finally {
    for (const probe of Object.values(daemons)) await probe?.stop();
    await unmount();
    cleanups.delete(unmount);
  }
}

// ---------------------------------------------------------------- storm

async function measureStorm(probe: DaemonProbe, files: number): Promise<StormResult> {
  await waitIdle(probe, 30_000);
  const dir = `${probe.watched}/storm`;
  await Deno.mkdir(dir);
  const planted = Math.ceil(files / 2);
  const sample = `${dir}/f${planted}.com`;
  const before = await probe.status();
  const rescansBefore = parseRescans(probe.daemon.log()).length;
  const cpu0 = await probe.cpuSeconds();
  const started = performance.now();
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `cd ${dir}; for i in $(seq 1 ${files}); do ` +
      `if [ $i = ${planted} ]; then printf '%s' "$0" > f$i.com; else echo "file $i" > f$i; fi; done`,
      eicar(),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const writeMs = performance.now() - started;
  if (!out.success) throw new Error(`The storm failed: ${new TextDecoder().decode(out.stderr)}`);
  log(`storm: ${files} files written in ${fmt(writeMs)} ms; waiting for the daemon to be idle`);
  const idle = await waitIdle(probe, 180_000);
  const peakRssKb = await readStatusKb(probe.pid, "VmHWM");
  await delay(300); // events are written every 100 ms
  const detected = (await events(probe.daemon)).some((e) =>
    e.type === "Threat Detected" && e.path === sample
  );
  const m = idle.status.monitor;
  const m0 = before.monitor;
  const rescans = parseRescans(probe.daemon.log()).slice(rescansBefore);
  return {
    files,
    writeMs,
    elapsedMs: idle.lastActive - started,
    idle: idle.reached,
    scanned: m.onAccessScanned - m0.onAccessScanned,
    events: m.events - m0.events,
    kernelOverflows: m.kernelOverflows - m0.kernelOverflows,
    queueFull: m.queueFull - m0.queueFull,
    rescans: m.rescans - m0.rescans,
    rescannedFiles: rescans.reduce((n, r) => n + r.files, 0),
    rescanSec: rescans.reduce((n, r) => n + r.seconds, 0),
    sampleDetected: detected,
    cpuSec: idle.cpuAtLastActive - cpu0,
    peakRssKb,
  };
}

// ---------------------------------------------------------------- main

function fmt(ms: number): string {
  return Math.round(ms).toLocaleString("en-US");
}

class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function positiveInt(text: string, option: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    throw new UsageError(`Invalid ${option}: ${text} (a whole number ≥ ${min})`);
  }
  return value;
}

function parseOptions() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        runs: { type: "string", default: "3" },
        execs: { type: "string", default: "2000" },
        files: { type: "string", default: "300" },
        "pause-ms": { type: "string", default: "20" },
        storm: { type: "string", default: "20000" },
        "idle-sec": { type: "string", default: "10" },
        only: { type: "string", default: SECTIONS.join(",") },
        "v8-flags": { type: "string", default: "--max-semi-space-size=1" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const { values } = parseOptions();
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const runs = positiveInt(values.runs, "--runs");
  const execs = positiveInt(values.execs, "--execs");
  const files = positiveInt(values.files, "--files");
  const pauseMs = positiveInt(values["pause-ms"], "--pause-ms", 0);
  const stormFiles = positiveInt(values.storm, "--storm", 2);
  const idleSec = positiveInt(values["idle-sec"], "--idle-sec");
  const only = values.only.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0 || only.length === 0) {
    throw new UsageError(`Unknown section in --only: ${unknown.join(", ") || "(none)"}`);
  }
  const wanted = (s: Section) => only.includes(s);
  if (Deno.uid() !== 0) {
    console.error("bench-daemon: needs root (fanotify and tmpfs mounts)");
    return 2;
  }
  const v8Flags = values["v8-flags"];
  if (v8Flags) Deno.env.set("DENO_V8_FLAGS", v8Flags);
  else Deno.env.delete("DENO_V8_FLAGS");

  const ticksPerSecond = await clockTicksPerSecond();
  const results: DaemonBenchResults = {
    environment: [],
    latency: [],
    idle: [],
    failures: [],
    notes: [],
  };
  let engine = "libclamav: not seen (no daemon started)";
  const section = async (name: string, fn: () => Promise<void>) => {
    const started = performance.now();
    try {
      await fn();
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      log(`${name} failed: ${text}`);
      results.failures.push(`${name}: ${text.split("\n")[0]}`);
    }
    log(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  };
  const noteEngine = async (probe: DaemonProbe) => {
    const clamav = (await probe.status()).engines.clamav;
    engine = clamav
      ? `libclamav ${clamav.version} (from amp status engines; test set: ${clamav.signatures} signatures)`
      : "libclamav: not loaded";
  };

  if (wanted("idle") || wanted("latency")) {
    await section(
      "idle and latency (audit daemon)",
      () =>
        withDaemon({ policy: AUDIT }, ticksPerSecond, async (probe) => {
          await noteEngine(probe);
          if (wanted("idle")) {
            log(`idle: ${idleSec} s with the test signatures`);
            results.idle.push(await measureIdle(probe, "test signatures", idleSec, true));
          }
          if (wanted("latency")) {
            log(`latency: ${files} new EICAR files, ${pauseMs} ms apart`);
            results.latency.push(await eicarLatency(probe, files, pauseMs));
            log(`latency: ${files} new clean files, ${pauseMs} ms apart`);
            results.latency.push(await cleanLatency(probe, files, pauseMs));
          }
        }),
    );
  }
  if (wanted("exec")) {
    await section("exec overhead", async () => {
      const { loops } = await measureExec(execs, runs, ticksPerSecond);
      results.exec = { execs, runs, loops };
    });
  }
  if (wanted("storm")) {
    await section(
      "write storm",
      () =>
        withDaemon({ policy: AUDIT }, ticksPerSecond, async (probe) => {
          await noteEngine(probe);
          results.storm = await measureStorm(probe, stormFiles);
        }),
    );
  }
  if (wanted("signatures")) {
    if (await fileExists(BENCH_DB_FILE)) {
      await section("idle with 520k signatures", () =>
        withDaemon(
          { policy: AUDIT, config: { clamav: { dbDir: BENCH_DB_DIR } } },
          ticksPerSecond,
          async (probe) => {
            log(`idle: ${idleSec} s with ${BENCH_DB_FILE}`);
            const signatures = (await probe.status()).engines.clamav?.signatures ?? 0;
            results.idle.push(
              await measureIdle(
                probe,
                `with ${Math.round(signatures / 1000)}k signatures (${BENCH_DB_FILE})`,
                idleSec,
                false,
              ),
            );
          },
        ));
    } else {
      results.notes.push(
        `Idle RSS with 520k signatures not measured: ${BENCH_DB_FILE} does not exist ` +
          "(deno task bench builds it).",
      );
    }
  }

  const kernel = await commandText("uname", ["-r"]);
  const cores = cpus().length || navigator.hardwareConcurrency;
  const model = cpus()[0]?.model ?? "unknown CPU";
  results.environment.push(
    `Machine: Linux ${kernel}, ${cores} cores (${model}), ${
      Math.round((await memTotalKb()) / 1024)
    } MiB RAM.`,
    `Engine: ${engine}.`,
    `Daemon: deno ${Deno.version.deno} run main.ts daemon (tests/fixtures/daemon.ts), ` +
      `DENO_V8_FLAGS=${v8Flags || "(unset)"}; CPU and RSS of that Deno process from /proc ` +
      `(CLK_TCK ${ticksPerSecond}).`,
  );
  results.notes.push(
    `Exec loops: bash -c 'for i in $(seq ${execs}); do ./true; done' in the directory holding ` +
      `a copy of /bin/true, run twice back to back per mode (warm-up, then the measured loop); ` +
      `no daemon = a tmpfs of its own that no daemon watches; modes interleaved in a rotating ` +
      `order over ${runs} runs, medians shown. Daemon CPU per exec counts from the start of a ` +
      `loop until the daemon had scanned all of its executions.`,
    `Idle: counters unchanged, nothing queued and the daemon under ${
      QUIET_CPU_SHARE * 100
    }% of one core for ${
      STABLE_MS / 1000
    } s (status polled every ${POLL_MS} ms over the IPC socket). ` +
      `The storm's time ends at the last poll that saw activity; its CPU is counted to that poll.`,
    "Idle CPU and RSS: one clean file scanned first, then a verdict-cache flush waited out, " +
      "then no request at all during the window; RSS is VmRSS at its end. With the test set " +
      "(2 signatures) the RSS is the daemon without signatures.",
    "Storm: unrecovered losses are 0 when the planted sample was detected and every loss " +
      "(kernel overflow, queue full) was followed by a rescan.",
    "MiB = 2^20 bytes.",
  );

  const report = formatDaemonReport(results);
  console.log(report);
  await Deno.mkdir(WORK_DIR, { recursive: true });
  await Deno.writeTextFile(`${WORK_DIR}/daemon-last-report.md`, report + "\n");
  await Deno.writeTextFile(
    `${WORK_DIR}/daemon-last-results.json`,
    JSON.stringify(results, null, 2) + "\n",
  );
  log(`report saved to ${WORK_DIR}/daemon-last-report.md and daemon-last-results.json`);
  return results.failures.length > 0 ? 1 : 0;
}

async function memTotalKb(): Promise<number> {
  try {
    const text = await Deno.readTextFile("/proc/meminfo");
    return Number(text.match(/^MemTotal:\s+(\d+)/m)?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

async function cleanUp(): Promise<void> {
  for (const undo of [...cleanups].reverse()) await undo().catch(() => {});
  cleanups.clear();
}

if (import.meta.main) {
  const interrupted = async () => {
    console.error("[bench-daemon] interrupted: stopping the daemons");
    await cleanUp();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  try {
    Deno.exit(await main());
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n\n${USAGE}`);
      Deno.exit(2);
    }
    console.error("[bench-daemon] failed:", error);
    await cleanUp();
    Deno.exit(1);
  }
}
