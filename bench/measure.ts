/**
 * Runs a command and measures its wall time and peak resident set size.
 *
 * Peak RSS comes from GNU time (`/usr/bin/time -f %M`): the kernel's
 * `ru_maxrss` of the largest process in the waited-for tree, exact even for
 * short-lived children. Without GNU time it falls back to polling `VmHWM` of the
 * process tree in /proc every 50 ms (may miss children that live < 50 ms).
 * Every command runs under coreutils `timeout`, which signals its whole process
 * group, so a hung tool cannot hang the benchmark.
 *
 * @module
 */

/** Where GNU time lives on Debian (package `time`). */
export const GNU_TIME = "/usr/bin/time";

/** Result of one measured command. */
export interface Measurement {
  /** Exit code of the command (124 when the timeout struck). */
  code: number;
  /** Wall time from spawn to exit, in milliseconds. */
  wallMs: number;
  /** Peak RSS in KiB, or null when it could not be measured. */
  peakRssKb: number | null;
  /** How the peak RSS was obtained. */
  rssMethod: "gnu-time" | "proc-poll" | "none";
  /** Captured standard output. */
  stdout: string;
  /** Captured standard error. */
  stderr: string;
  /** True when the command was killed by the timeout. */
  timedOut: boolean;
}

/** Options of {@linkcode measure}. */
export interface MeasureOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Kill the command after this many seconds (default 900). */
  timeoutSec?: number;
}

let gnuTimeAvailable: boolean | undefined;

/** Pids of the running `timeout` wrappers; each leads its own process group. */
const active = new Set<number>();

/**
 * Sends SIGTERM to the process group of every command still being measured
 * (for an interrupted benchmark: `timeout` runs in its own group, which a
 * terminal's Ctrl-C does not reach).
 */
export function killActiveCommands(): void {
  for (const pid of active) {
    try {
      Deno.kill(-pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
}

/** True when GNU time is installed at {@linkcode GNU_TIME}. */
export async function hasGnuTime(): Promise<boolean> {
  if (gnuTimeAvailable !== undefined) return gnuTimeAvailable;
  try {
    const out = await new Deno.Command(GNU_TIME, { args: ["--version"], stdout: "piped" })
      .output();
    gnuTimeAvailable = new TextDecoder().decode(out.stdout).includes("GNU");
  } catch {
    gnuTimeAvailable = false;
  }
  return gnuTimeAvailable;
}

/**
 * Runs `cmd args` and measures it.
 *
 * @param cmd the program
 * @param args its arguments
 * @param options working directory, environment and timeout
 */
export async function measure(
  cmd: string,
  args: string[],
  options: MeasureOptions = {},
): Promise<Measurement> {
  const timeoutSec = options.timeoutSec ?? 900;
  const useGnuTime = await hasGnuTime();
  const rssFile = useGnuTime ? await Deno.makeTempFile({ prefix: "amp-bench-rss-" }) : "";
  const inner = useGnuTime ? [GNU_TIME, "-f", "%M", "-o", rssFile, cmd, ...args] : [cmd, ...args];
  try {
    const started = performance.now();
    const child = new Deno.Command("timeout", {
      args: ["--kill-after=10", String(timeoutSec), ...inner],
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    active.add(child.pid);
    const poller = useGnuTime ? undefined : pollPeakRss(child.pid);
    const out = await child.output().finally(() => active.delete(child.pid));
    const wallMs = performance.now() - started;
    let peakRssKb: number | null = null;
    if (useGnuTime) {
      // GNU time writes "Command exited with non-zero status N" before %M when the
      // command fails: the number is on the last line.
      const lines = (await Deno.readTextFile(rssFile)).trim().split("\n");
      const value = Number(lines.at(-1));
      peakRssKb = Number.isFinite(value) && value > 0 ? value : null;
    } else if (poller) {
      peakRssKb = await poller.stop();
    }
    return {
      code: out.code,
      wallMs,
      peakRssKb,
      rssMethod: peakRssKb === null ? "none" : useGnuTime ? "gnu-time" : "proc-poll",
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      timedOut: out.code === 124 || out.code === 137,
    };
  } finally {
    if (rssFile) await Deno.remove(rssFile).catch(() => {});
  }
}

/**
 * `VmHWM` (peak RSS, KiB) of one process, or null if it is gone.
 *
 * @param pid the process
 */
export async function readVmHwmKb(pid: number): Promise<number | null> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const match = status.match(/^VmHWM:\s+(\d+)\s+kB/m);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Pids of `pid` and all its descendants, through /proc/PID/task/TID/children. */
async function processTree(pid: number): Promise<number[]> {
  const found = [pid];
  for (let i = 0; i < found.length; i++) {
    try {
      for await (const task of Deno.readDir(`/proc/${found[i]}/task`)) {
        const text = await Deno.readTextFile(`/proc/${found[i]}/task/${task.name}/children`);
        for (const child of text.trim().split(/\s+/)) if (child) found.push(Number(child));
      }
    } catch {
      // The process exited between two reads: skip it.
    }
  }
  return found;
}

function pollPeakRss(pid: number): { stop(): Promise<number | null> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const p of await processTree(pid)) peak = Math.max(peak, (await readVmHwmKb(p)) ?? 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak > 0 ? peak : null;
    },
  };
}
