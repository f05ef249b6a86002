/**
 * `amp daemon`: runs the service in the foreground (init systems supervise
 * it). Exit status 0 after a clean stop (SIGTERM), 1 when start-up failed.
 *
 * @module
 */

import { Command } from "commander";
import { Daemon, DaemonStartError } from "../daemon/daemon.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";

/** Builds `amp daemon`. */
export function makeDaemonCommand(io: CommandIo = defaultIo): Command {
  return new Command("daemon")
    .summary("run the protection service in the foreground (for init systems)")
    .description(
      "Run amp's service: real-time protection with fanotify (files closed after\n" +
        "writing, files moved in, executions), conviction by policy (audit or\n" +
        "quarantine; passive kill or active block on execute), scans for `amp scan`,\n" +
        "and the status socket /run/amp/ampd.sock. Logs to /var/log/amp/ampdaemon.log\n" +
        "and syslog. SIGTERM stops it; SIGHUP reloads amp.json's log level, the policy\n" +
        "(a broken one keeps the last good one) and the ClamAV signatures.\n" +
        "Must run as root.",
    )
    .option("--root <dir>", "host root for amp's files (config, policy, databases, socket)", "/")
    .option("--log-stderr", "also log to stderr (default when stderr is a terminal)")
    .addHelpText(
      "after",
      `
Files: /etc/amp/amp.json (local config), /etc/amp/policy.json (policy),
/var/lib/amp/ (events.db, verdict.cache, quarantine/), /var/log/amp/ampdaemon.log.

Examples:
  amp daemon                       what systemd/upstart/sysvinit run
  amp daemon --log-stderr          watch it work in a terminal
  kill -HUP $(pidof amp)           reload policy and signatures`,
    )
    .action(async (opts: { root: string; logStderr?: boolean }) => {
      const daemon = new Daemon({
        root: opts.root,
        logToStderr: opts.logStderr ?? Deno.stderr.isTerminal(),
      });
      try {
        await daemon.run();
      } catch (error) {
        if (error instanceof DaemonStartError) {
          io.stderr(`amp daemon: ${error.message}`);
          return io.exit(1);
        }
        throw error;
      }
      io.exit(0);
    });
}
