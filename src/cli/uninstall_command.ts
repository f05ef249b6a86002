/**
 * `amp uninstall`: stops the service and removes what install made; keeps
 * configuration, policy, databases, quarantine and logs unless `--purge`.
 *
 * @module
 */

import { Command } from "commander";
import { uninstall } from "../service/uninstall.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";
import { runServiceAction } from "./install_command.ts";

/** Builds `amp uninstall`. */
export function makeUninstallCommand(io: CommandIo = defaultIo): Command {
  return new Command("uninstall")
    .summary("stop amp and remove it (config, databases, quarantine and logs stay unless --purge)")
    .description(
      "Stop and disable the service, then remove /opt/amp/bin/amp, the init files of\n" +
        "every init system (upstart jobs, systemd units and links, sysv script and rc\n" +
        "links) and /etc/cron.hourly/amp-updater. Kept unless --purge: /etc/amp\n" +
        "(config, policy, lists), /var/lib/amp (events, caches, and the quarantine,\n" +
        "whose files can still be restored) and /var/log/amp.",
    )
    .option("--root <dir>", "uninstall from this directory instead of / (nothing is stopped)", "/")
    .option("--purge", "also remove /etc/amp, /var/lib/amp (quarantine included), /var/log/amp")
    .option("--dry-run", "show what would be removed; change nothing")
    .option("--json", "print the changes as one JSON object")
    .addHelpText(
      "after",
      `
Exit status: 0 done (or nothing to remove), 1 failed part-way, 2 bad input.

Examples:
  amp uninstall
  amp uninstall --purge --dry-run`,
    )
    .action(async (opts: { root: string; purge?: boolean; dryRun?: boolean; json?: boolean }) => {
      await runServiceAction(
        io,
        opts.json,
        () => uninstall({ root: opts.root, purge: opts.purge, dryRun: opts.dryRun }),
      );
    });
}
