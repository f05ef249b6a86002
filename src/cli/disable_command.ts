/**
 * `amp disable` and `amp enable`: stop amp and keep it from starting at boot
 * or updating hourly, and undo exactly that. Both say what they changed and
 * change nothing when there is nothing to do.
 *
 * @module
 */

import { Command } from "commander";
import { disable, enable } from "../service/toggle.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";
import { runServiceAction } from "./install_command.ts";

interface ToggleOpts {
  root: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Builds `amp disable`. */
export function makeDisableCommand(io: CommandIo = defaultIo): Command {
  return new Command("disable")
    .summary("stop amp and keep it from starting at boot and from updating hourly")
    .description(
      "Stop the service, then: upstart: rename /etc/init/amp.conf and\n" +
        "amp-updater.conf to *.disabled; systemd: systemctl disable --now amp.service\n" +
        "amp-updater.timer (the wants links are removed); sysv: remove the rc links.\n" +
        "The hourly cron job (upstart, sysv) loses its execute bit. amp enable undoes it.",
    )
    .option("--root <dir>", "act on this directory instead of / (nothing is stopped)", "/")
    .option("--dry-run", "show what would change; change nothing")
    .option("--json", "print the changes as one JSON object")
    .addHelpText(
      "after",
      `
Exit status: 0 done (or already disabled), 1 failed part-way, 2 not installed
or bad input.`,
    )
    .action(async (opts: ToggleOpts) => {
      await runServiceAction(
        io,
        opts.json,
        () => disable({ root: opts.root, dryRun: opts.dryRun }),
      );
    });
}

/** Builds `amp enable`. */
export function makeEnableCommand(io: CommandIo = defaultIo): Command {
  return new Command("enable")
    .summary("undo amp disable: start at boot, update hourly, and start now")
    .description(
      "Put back what amp disable changed (upstart job names, systemd wants links,\n" +
        "sysv rc links, the cron job's execute bit), then start the service.",
    )
    .option("--root <dir>", "act on this directory instead of / (nothing is started)", "/")
    .option("--dry-run", "show what would change; change nothing")
    .option("--json", "print the changes as one JSON object")
    .addHelpText(
      "after",
      `
Exit status: 0 done (or already enabled), 1 failed part-way, 2 not installed
or bad input.`,
    )
    .action(async (opts: ToggleOpts) => {
      await runServiceAction(io, opts.json, () => enable({ root: opts.root, dryRun: opts.dryRun }));
    });
}
