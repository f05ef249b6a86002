/**
 * `amp install`: lays out amp on this host (or under `--root`) and starts it.
 * The work is done by `src/service/install.ts`; this file parses options and
 * prints the report. Exit status: 0 done, 1 failed part-way (what was done
 * is printed), 2 bad input (nothing was changed).
 *
 * @module
 */

import { Command, Option } from "commander";
import {
  formatReport,
  ServiceFailedError,
  ServiceInputError,
  type ServiceReport,
} from "../service/change.ts";
import { install } from "../service/install.ts";
import { INIT_SYSTEMS, type InitSystem } from "../service/layout.ts";
import type { BuiltinPolicyName } from "../policy/builtin.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";

/**
 * Runs a service action and prints its report (or the JSON of it), mapping
 * errors to exit codes: bad input 2, failure part-way 1 (with what was done).
 *
 * @param io output and exit
 * @param json print JSON instead of lines
 * @param action the service call
 */
export async function runServiceAction(
  io: CommandIo,
  json: boolean | undefined,
  action: () => Promise<ServiceReport>,
): Promise<void> {
  let report: ServiceReport;
  try {
    report = await action();
  } catch (error) {
    if (error instanceof ServiceInputError) {
      if (json) io.stdout(JSON.stringify({ ok: false, error: error.message }, null, 2));
      else io.stderr(`amp: ${error.message}`);
      return io.exit(2);
    }
    if (error instanceof ServiceFailedError) {
      if (json) {
        io.stdout(JSON.stringify({ ok: false, error: error.message, ...error.report }, null, 2));
      } else {
        io.stdout(formatReport(error.report).join("\n"));
        io.stderr(`amp: ${error.message}`);
      }
      return io.exit(1);
    }
    throw error;
  }
  if (json) io.stdout(JSON.stringify({ ok: true, ...report }, null, 2));
  else io.stdout(formatReport(report).join("\n"));
  io.exit(0);
}

/** Builds `amp install`. */
export function makeInstallCommand(io: CommandIo = defaultIo): Command {
  return new Command("install")
    .summary("install or upgrade amp: executable, config, policy, init jobs, updater")
    .description(
      "Copy amp to /opt/amp/bin/amp and lay out its files: /etc/amp (amp.json,\n" +
        "policy.json, lists/), /var/lib/amp (databases, quarantine/), /var/log/amp;\n" +
        "write the init integration (upstart jobs, systemd units and timer, or the\n" +
        "sysv script and rc links) and the hourly updater; then start the service.\n" +
        "A second install upgrades in place: config, policy, databases, logs and\n" +
        "quarantine are kept. Each step is logged to /var/log/amp/ampinstaller.log.",
    )
    .option("--root <dir>", "install under this directory instead of / (nothing is started)", "/")
    .addOption(
      new Option("--policy <name>", "write this built-in policy (replacing policy.json)")
        .choices(["audit", "protect"]),
    )
    .option("--cloud <url>", "the cloud URL to write into amp.json")
    .addOption(
      new Option("--init <system>", "the init system (detected by default)")
        .choices([...INIT_SYSTEMS]),
    )
    .option("--binary <path>", "the amp executable to install (default: the running one)")
    .option("--no-start", "do not start the service")
    .option("--dry-run", "show what would change; change nothing")
    .option("--json", "print the changes as one JSON object")
    .addHelpText(
      "after",
      `
Without --policy, the Audit policy is written only when there is no policy.json.
Running from source (deno run main.ts), --binary is required: the running
executable is Deno, not amp.

Exit status: 0 done, 1 failed part-way (what was done is printed), 2 bad input
(nothing was changed).

Examples:
  amp install                                   as root, from the compiled amp
  amp install --policy protect --cloud https://amp.example.org
  amp install --root /tmp/r --init systemd --binary ./amp --dry-run`,
    )
    .action(async (opts: {
      root: string;
      policy?: BuiltinPolicyName;
      cloud?: string;
      init?: InitSystem;
      binary?: string;
      start: boolean;
      dryRun?: boolean;
      json?: boolean;
    }) => {
      await runServiceAction(io, opts.json, () =>
        install({
          root: opts.root,
          policy: opts.policy,
          cloud: opts.cloud,
          init: opts.init,
          binary: opts.binary,
          start: opts.start,
          dryRun: opts.dryRun,
        }));
    });
}
