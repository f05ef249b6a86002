/**
 * The `amp` program: commander with one subcommand per file. Only commands
 * that work are registered.
 *
 * Errors: commander's own (unknown option …) and {@linkcode UsageError}s print
 * one line and exit 2; anything else is a bug and prints its stack.
 *
 * @module
 */

import { Command, CommanderError } from "commander";
import { VERSION } from "../version.ts";
import { makeDaemonCommand } from "./daemon_command.ts";
import { makeCloudCommand } from "./cloud_command.ts";
import { makeDfcCommand } from "./dfc_command.ts";
import { makeDisableCommand, makeEnableCommand } from "./disable_command.ts";
import { makeInstallCommand } from "./install_command.ts";
import { makeKmodCommand } from "./kmod_command.ts";
import { makeSupportCommand } from "./support_command.ts";
import { makeUninstallCommand } from "./uninstall_command.ts";
import { makeUpdateCommand } from "./update_command.ts";
import { makeEventsCommand } from "./events_command.ts";
import { makeQuarantineCommand } from "./quarantine_command.ts";
import { openQuarantineStore } from "./daemon_quarantine_store.ts";
import { makeScanCommand } from "./scan_command.ts";
import { makeStatusCommand } from "./status_command.ts";
import { UsageError } from "./usage_error.ts";
import {
  DaemonAccessError,
  DaemonProtocolError,
  DaemonRequestError,
  DaemonUnavailableError,
} from "../ipc/ipc_errors.ts";

/** Builds the `amp` command with its subcommands. */
export function makeCli(): Command {
  const program = new Command("amp")
    .description(
      "amp — open Linux endpoint protection: a daemon that scans files as they are\n" +
        "written and executed (fanotify or the ampavflt module), convicts them with\n" +
        "ClamAV (libclamav), SHA-256 block and allow lists and an optional cloud,\n" +
        "quarantines or audits by policy, kills executed malware, correlates network\n" +
        "flows with IP lists (DFC), and keeps events in /var/lib/amp/events.db.\n" +
        "amp cloud serve runs a private cloud with a web console.",
    )
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help for a command")
    .showHelpAfterError("(amp --help lists the commands; amp <command> --help explains one)")
    .exitOverride();
  program.addCommand(makeScanCommand().exitOverride());
  program.addCommand(makeDaemonCommand().exitOverride());
  program.addCommand(makeStatusCommand().exitOverride());
  program.addCommand(makeEventsCommand().exitOverride());
  program.addCommand(makeInstallCommand().exitOverride());
  program.addCommand(makeDisableCommand().exitOverride());
  program.addCommand(makeEnableCommand().exitOverride());
  program.addCommand(makeUninstallCommand().exitOverride());
  program.addCommand(makeUpdateCommand().exitOverride());
  program.addCommand(makeSupportCommand().exitOverride());
  program.addCommand(makeDfcCommand().exitOverride());
  program.addCommand(makeCloudCommand().exitOverride());
  program.addCommand(makeKmodCommand().exitOverride());
  program.addCommand(
    makeQuarantineCommand({
      stdout: (text) => console.log(text),
      stderr: (text) => console.error(text),
      open: openQuarantineStore,
    }).exitOverride(),
  );
  return program;
}

/** Runs the CLI on `args` and exits with the right code. */
export async function runCli(args: string[]): Promise<void> {
  const program = makeCli();
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; commander already printed its message.
      Deno.exit(error.exitCode === 0 ? 0 : 2);
    }
    if (error instanceof UsageError) {
      console.error(`amp: ${error.message}`);
      Deno.exit(error.exitCode);
    }
    if (
      error instanceof DaemonUnavailableError || error instanceof DaemonAccessError ||
      error instanceof DaemonProtocolError || error instanceof DaemonRequestError
    ) {
      // The daemon went away, refused the request or speaks another protocol:
      // one line and exit 2, as for any other error that is not a detection.
      console.error(`amp: ${error.message}`);
      Deno.exit(2);
    }
    throw error;
  }
}
