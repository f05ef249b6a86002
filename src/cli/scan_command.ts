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
}

const defaultDeps: ScanCommandDeps = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
  status: (text) => Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${text}`)),
  isTerminal: () => Deno.stderr.isTerminal(),
  exit: (code) => Deno.exit(code),
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
    .addHelpText(
      "after",
      `
Examples:
  amp scan --custom /home /tmp          scan two trees
  amp scan --flash                      what runs now, temp and persistence places
  amp scan --full --json > scan.json    everything local, for a script
  amp scan --custom x --db-dir ./sigs   use another signature directory

Exit status: 0 nothing found, 1 detections, 2 errors (usage, policy, signatures,
unreadable files, or a scan stopped with Ctrl-C).`,
    )
    .action(async (opts: ScanCommandOptions) => {
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
