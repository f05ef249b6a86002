/**
 * A private clamd for the benchmark: its own configuration, socket, temporary
 * folder and log in a scratch folder, the benchmark database, MaxThreads equal
 * to the cores, the shared size limits. Started in the foreground as a child of
 * the benchmark, ready when its socket answers PING, stopped with SIGTERM.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { CLAMD_LIMIT_LINES } from "./limits.ts";
import { readVmHwmKb } from "./measure.ts";

/** Where Debian installs clamd. */
export const CLAMD = "/usr/sbin/clamd";

/** The clamd processes still running. */
const running = new Set<Deno.ChildProcess>();

/**
 * Sends SIGTERM to every clamd this module started and does not wait (for an
 * interrupted benchmark that is about to exit; clamd removes its socket itself).
 */
export function signalAllClamd(): void {
  for (const child of running) {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  }
}

/** Options of {@linkcode startClamd}. */
export interface ClamdOptions {
  /** Scratch folder for the configuration, socket, log and temporary files. */
  dir: string;
  /** DatabaseDirectory. */
  dbDir: string;
  /** MaxThreads. */
  threads: number;
  /** How long to wait for PONG, in seconds (default 180). */
  readyTimeoutSec?: number;
}

/** A running clamd. */
export interface Clamd {
  /** Its pid. */
  pid: number;
  /** Its configuration file (for `clamdscan -c`). */
  configFile: string;
  /** Its socket. */
  socket: string;
  /** Milliseconds from spawn to the first PONG: the database load. */
  loadMs: number;
  /** Current VmHWM (peak RSS) in KiB. */
  peakRssKb(): Promise<number | null>;
  /** Stops it (SIGTERM, then SIGKILL after 30 s). Safe to call twice. */
  stop(): Promise<void>;
}

/** The clamd.conf text for `options`. */
export function clamdConfig(options: ClamdOptions): string {
  return [
    "# Written by amp's benchmark (bench/clamd.ts)",
    `LocalSocket ${join(options.dir, "clamd.sock")}`,
    "LocalSocketMode 600",
    "FixStaleSocket yes",
    `DatabaseDirectory ${options.dbDir}`,
    `TemporaryDirectory ${join(options.dir, "tmp")}`,
    `LogFile ${join(options.dir, "clamd.log")}`,
    "LogTime yes",
    `PidFile ${join(options.dir, "clamd.pid")}`,
    `MaxThreads ${options.threads}`,
    "Foreground yes",
    // No database re-check during the benchmark.
    "SelfCheck 3600",
    ...CLAMD_LIMIT_LINES,
    "",
  ].join("\n");
}

/**
 * Writes the configuration, starts clamd and waits until it answers PING.
 *
 * @param options folders, threads, timeout
 */
export async function startClamd(options: ClamdOptions): Promise<Clamd> {
  await Deno.mkdir(join(options.dir, "tmp"), { recursive: true });
  const configFile = join(options.dir, "clamd.conf");
  const socket = join(options.dir, "clamd.sock");
  const logFile = join(options.dir, "clamd.log");
  await Deno.writeTextFile(configFile, clamdConfig(options));

  const started = performance.now();
  const child = new Deno.Command(CLAMD, {
    args: [`--config-file=${configFile}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => (exited = s));

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, 30_000);
      await status;
      clearTimeout(timer);
    }
    running.delete(child);
  };

  running.add(child);
  const deadline = started + (options.readyTimeoutSec ?? 180) * 1000;
  try {
    while (true) {
      if (exited) {
        throw new Error(
          `clamd exited ${exited.code} before answering PING: ${await readTail(logFile)}`,
        );
      }
      if (await ping(socket)) break;
      if (performance.now() > deadline) {
        throw new Error(`clamd did not answer PING in time: ${await readTail(logFile)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const loadMs = performance.now() - started;
  return {
    pid: child.pid,
    configFile,
    socket,
    loadMs,
    peakRssKb: () => readVmHwmKb(child.pid),
    stop,
  };
}

/**
 * True when the clamd socket at `path` answers `zPING` with `PONG`.
 *
 * @param path the unix socket
 */
export async function ping(path: string): Promise<boolean> {
  let conn: Deno.UnixConn | undefined;
  try {
    conn = await Deno.connect({ transport: "unix", path });
    await conn.write(Buffer.from("zPING\0"));
    const buf = new Uint8Array(64);
    let reply = "";
    while (!reply.includes("\0")) {
      const n = await conn.read(buf);
      if (n === null) break;
      reply += new TextDecoder().decode(buf.subarray(0, n));
    }
    return reply.startsWith("PONG");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // Closed by the peer.
    }
  }
}

async function readTail(path: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.trim().split("\n").slice(-8).join("\n");
  } catch {
    return "(no clamd log)";
  }
}
