/**
 * `amp scan`: custom, flash or full scan, printed for people or as JSON.
 * Exit codes as clamscan: 0 nothing found, 1 detections, 2 errors (or a
 * usage, policy or signature problem, or a scan stopped before its end).
 *
 * @module
 */

import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../policy/load_policy.ts";
import { type Detection, type ScanReport } from "../scan/scan_run.ts";
import { detectionLine, jsonReport, progressLine, summaryLines } from "../scan/scan_output.ts";
import { DEFAULT_DB_DIR, runScanJob, type ScanKind } from "../scan/scan_job.ts";
import { UsageError } from "./usage_error.ts";
import { resolve } from "node:path";
import type { ScanResultMessage } from "../daemon/scan_service.ts";
import type { ScanState } from "../daemon/status_report.ts";
import type { IpcClient } from "../ipc/ipc_client.ts";
import {
  DaemonAccessError,
  DaemonRequestError,
  DaemonUnavailableError,
} from "../ipc/ipc_errors.ts";
import type { ScanSummary } from "../scan/scan_run.ts";
import { connectDaemon } from "./daemon_client.ts";

/** Options `amp scan` parses. */
export interface ScanCommandOptions {
  custom?: string[];
  flash?: boolean;
  full?: boolean;
  json?: boolean;
  dbDir: string;
  policy?: string;
  root: string;
  jobs?: number;
  progress: boolean;
  standalone?: boolean;
  stop?: boolean;
  pause?: boolean;
  resume?: boolean;
}

/** What the command needs from its surroundings (replaced in tests). */
export interface ScanCommandDeps {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Rewrites the status line on stderr (no newline); "" clears it. */
  status: (text: string) => void;
  /** Whether stderr is a terminal (progress line shown). */
  isTerminal: () => boolean;
  exit: (code: number) => void;
  /** The daemon to scan through, or undefined to scan in this process. */
  daemon?: (root: string) => Promise<IpcClient | undefined>;
}

/** Connects to a running daemon; undefined when none runs or it is not ours to use. */
async function reachableDaemon(root: string): Promise<IpcClient | undefined> {
  try {
    return await connectDaemon(root);
  } catch (error) {
    if (error instanceof DaemonUnavailableError || error instanceof DaemonAccessError) {
      return undefined;
    }
    throw error;
  }
}

const defaultDeps: ScanCommandDeps = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
  status: (text) => Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${text}`)),
  isTerminal: () => Deno.stderr.isTerminal(),
  exit: (code) => Deno.exit(code),
  daemon: reachableDaemon,
};

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new InvalidArgumentError("expected a whole number from 1 to 64");
  }
  return n;
}

/** The exit code for a report: 1 with detections, else 2 with errors or when stopped, else 0. */
export function exitCodeOf(report: ScanReport): number {
  if (report.summary.detections > 0) return 1;
  if (report.summary.errors > 0 || report.stopped) return 2;
  return 0;
}

/** Builds `amp scan`. */
export function makeScanCommand(deps: ScanCommandDeps = defaultDeps): Command {
  return new Command("scan")
    .summary("scan files for malware (custom paths, flash or full)")
    .description(
      "Scan files with ClamAV, the simple custom detections (SHA-256 block list) and\n" +
        "the allow list of the policy in force. Files over the policy's size limit,\n" +
        "excluded paths and special files are reported as skipped, never as clean.\n" +
        "Unchanged files are answered from the verdict cache (/var/lib/amp/verdict.cache)\n" +
        "until the signatures, lists or limits change.",
    )
    .addOption(new Option("--custom <path...>", "scan these files and directories"))
    .addOption(
      new Option("--flash", "scan running programs, their mapped files, temp and startup places"),
    )
    .addOption(new Option("--full", "scan every local file system (not /proc, /sys, NFS, CIFS …)"))
    .option("--json", "print one JSON document: summary, detections, skipped, errors")
    .option("--db-dir <dir>", "ClamAV signature directory", DEFAULT_DB_DIR)
    .option("--policy <file>", "policy file (default: <root>/etc/amp/policy.json, else Audit)")
    .option("--root <dir>", "host root for amp's files (policy, lists, databases)", "/")
    .option("--jobs <n>", "files scanned at once (default: cores + 1)", positiveInt)
    .option("--no-progress", "no progress line, even on a terminal")
    .option("--standalone", "scan in this process even when the daemon runs")
    .option("--stop", "stop the scan the daemon is running")
    .option("--pause", "pause the scan the daemon is running")
    .option("--resume", "resume the daemon's paused scan")
    .addHelpText(
      "after",
      `
Examples:
  amp scan --custom /home /tmp          scan two trees
  amp scan --flash                      what runs now, temp and persistence places
  amp scan --full --json > scan.json    everything local, for a script
  amp scan --custom x --db-dir ./sigs   use another signature directory

When the daemon runs (and neither --db-dir nor --policy is given), the scan
runs inside it: its loaded engine and verdict cache are shared, the policy's
action applies (a Protect policy quarantines what the scan finds), and
\`amp status\` shows the progress. Otherwise the scan runs in this process and
only reports.

Exit status: 0 nothing found, 1 detections, 2 errors (usage, policy, signatures,
unreadable files, or a scan stopped with Ctrl-C).`,
    )
    .action(async (opts: ScanCommandOptions, command: Command) => {
      const control = opts.stop
        ? "scan.stop"
        : opts.pause
        ? "scan.pause"
        : opts.resume
        ? "scan.resume"
        : undefined;
      if (control) return await controlScan(control, opts, deps);
      const kinds = [
        opts.custom ? "custom" : "",
        opts.flash ? "flash" : "",
        opts.full ? "full" : "",
      ]
        .filter(Boolean) as ScanKind[];
      if (kinds.length !== 1) {
        throw new UsageError("Choose exactly one of --custom PATH..., --flash or --full");
      }
      const kind = kinds[0];
      const explicit = ["dbDir", "policy"].some((o) => command.getOptionValueSource(o) === "cli");
      const client = opts.standalone || explicit ? undefined : await deps.daemon?.(opts.root);
      if (client) return await scanThroughDaemon(client, kind, opts, deps);
      const showProgress = !opts.json && opts.progress && deps.isTerminal();
      let lastProgress = 0;
      const notices: string[] = [];
      const stop = new AbortController();
      const onSigint = () => {
        if (stop.signal.aborted) deps.exit(130);
        stop.abort();
        deps.stderr("\namp: stopping the scan (Ctrl-C again to quit at once)");
      };
      Deno.addSignalListener("SIGINT", onSigint);
      try {
        const result = await runScanJob({
          kind,
          paths: opts.custom,
          root: opts.root,
          dbDir: opts.dbDir,
          policyFile: opts.policy,
          concurrency: opts.jobs,
          signal: stop.signal,
          onNotice: (message) => {
            notices.push(message);
            deps.stderr(`amp: ${message}`);
          },
          onDetection: (d: Detection) => {
            if (opts.json) return;
            if (showProgress) deps.status("");
            deps.stdout(detectionLine(d));
          },
          onProgress: showProgress
            ? (s) => {
              const now = performance.now();
              if (now - lastProgress < 200) return;
              lastProgress = now;
              deps.status(progressLine(s));
            }
            : undefined,
        });
        if (showProgress) deps.status("");
        const { report } = result;
        if (opts.json) {
          deps.stdout(jsonReport(report, {
            kind,
            policy: result.policy,
            engines: result.engines,
            notices,
          }));
        } else {
          for (const e of report.errors) deps.stderr(`${e.path}: ERROR: ${e.error}`);
          const { name, id, source } = result.policy;
          const lines = summaryLines(report, result.engines, {
            policy: `${name} (#${id}) from ${source}`,
            skippedReasons: true,
          });
          deps.stdout(lines.join("\n"));
        }
        deps.exit(exitCodeOf(report));
      } catch (error) {
        if (error instanceof ConfigError) throw new UsageError(error.message, { cause: error });
        throw error;
      } finally {
        Deno.removeSignalListener("SIGINT", onSigint);
      }
    });
}

async function controlScan(
  method: "scan.stop" | "scan.pause" | "scan.resume",
  opts: ScanCommandOptions,
  deps: ScanCommandDeps,
): Promise<void> {
  let client: IpcClient;
  try {
    client = await connectDaemon(opts.root);
  } catch (error) {
    if (error instanceof DaemonUnavailableError || error instanceof DaemonAccessError) {
      throw new UsageError(`${error.message}: --stop, --pause and --resume need the daemon`);
    }
    throw error;
  }
  try {
    const state = await client.request(method) as ScanState;
    const verb = method === "scan.stop"
      ? "Stopping"
      : method === "scan.pause"
      ? "Paused"
      : "Resumed";
    deps.stdout(`${verb} the ${state.kind} scan (${state.summary.files} files so far)`);
    deps.exit(0);
  } catch (error) {
    if (error instanceof DaemonRequestError) throw new UsageError(error.message);
    throw error;
  } finally {
    client.close();
  }
}

async function scanThroughDaemon(
  client: IpcClient,
  kind: ScanKind,
  opts: ScanCommandOptions,
  deps: ScanCommandDeps,
): Promise<void> {
  const showProgress = !opts.json && opts.progress && deps.isTerminal();
  const stop = () => {
    deps.stderr("\namp: stopping the daemon's scan");
    connectDaemon(opts.root).then((c) => c.request("scan.stop").finally(() => c.close()))
      .catch(() => {});
  };
  Deno.addSignalListener("SIGINT", stop);
  try {
    const result = await client.request("scan", {
      kind,
      paths: opts.custom?.map((p) => resolve(p)),
      concurrency: opts.jobs,
    }, {
      onProgress: (data) => {
        const m = data as { type: string; summary?: ScanSummary; detection?: Detection };
        if (m.type === "detection" && m.detection && !opts.json) {
          if (showProgress) deps.status("");
          deps.stdout(detectionLine(m.detection));
        } else if (m.type === "progress" && m.summary && showProgress) {
          deps.status(progressLine(m.summary));
        }
      },
    }) as ScanResultMessage;
    if (showProgress) deps.status("");
    const report = result.report as unknown as ScanReport;
    if (opts.json) {
      deps.stdout(jsonReport(report, {
        kind,
        policy: result.policy,
        engines: result.engines,
        via: "daemon",
      }));
    } else {
      for (const e of report.errors) deps.stderr(`${e.path}: ERROR: ${e.error}`);
      const { name, id } = result.policy;
      deps.stdout(
        summaryLines(report, result.engines, {
          policy: `${name} (#${id}), scanned by the daemon`,
          skippedReasons: true,
        }).join("\n"),
      );
    }
    deps.exit(exitCodeOf(report));
  } catch (error) {
    if (error instanceof DaemonRequestError) throw new UsageError(error.message);
    throw error;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    client.close();
  }
}
