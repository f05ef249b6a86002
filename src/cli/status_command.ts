/**
 * `amp status`: asks the daemon for its state and prints it as the
 * reference connector's `ampcli status` does (`Trying to connect...`,
 * `Connected.`, then one `Name: value` line each), or as JSON. Exit status 0
 * when the daemon answered, 2 when there is none or it cannot be reached.
 *
 * @module
 */

import { Command } from "commander";
import type { StatusReport } from "../daemon/status_report.ts";
import { formatStatus } from "../daemon/status_report.ts";
import { DaemonAccessError, DaemonUnavailableError } from "../ipc/ipc_errors.ts";
import { connectDaemon } from "./daemon_client.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";

/** Builds `amp status`. */
export function makeStatusCommand(io: CommandIo = defaultIo): Command {
  return new Command("status")
    .summary("show the daemon's state: policy, engines, protection, scans, faults")
    .description(
      "Connect to the amp daemon (/run/amp/ampd.sock, root only) and show its state:\n" +
        "cloud status, policy and mode, the scan in progress and the last one, engines\n" +
        "and signature counts, the real-time monitor and what it did, quarantine,\n" +
        "verdict cache and faults.",
    )
    .option("--json", "print the state as one JSON object")
    .option("--root <dir>", "host root (the socket is <root>/run/amp/ampd.sock)", "/")
    .addHelpText(
      "after",
      `
Exit status: 0 the daemon answered, 2 no daemon runs (or it cannot be reached).

Examples:
  amp status
  amp status --json | jq .monitor`,
    )
    .action(async (opts: { json?: boolean; root: string }) => {
      if (!opts.json) io.stdout("Trying to connect...");
      let report: StatusReport;
      try {
        const client = await connectDaemon(opts.root);
        try {
          report = await client.request("status") as StatusReport;
        } finally {
          client.close();
        }
      } catch (error) {
        if (error instanceof DaemonUnavailableError || error instanceof DaemonAccessError) {
          const notRunning = error instanceof DaemonUnavailableError &&
            /not running|refused/i.test(error.message);
          const hint = notRunning
            ? " Start it with `amp daemon` (or your init system: systemctl start amp)."
            : "";
          if (opts.json) {
            io.stdout(JSON.stringify({ connected: false, error: error.message }));
          } else {
            io.stderr(`amp: ${error.message}.${hint}`);
          }
          return io.exit(2);
        }
        throw error;
      }
      if (opts.json) {
        io.stdout(JSON.stringify({ connected: true, ...report }, null, 2));
      } else {
        io.stdout("Connected.");
        io.stdout(formatStatus(report).join("\n"));
      }
      io.exit(0);
    });
}
