/**
 * What install, uninstall, disable and enable share: the root, whether they
 * act on the running host (and so may run its service manager), the init
 * system, the report and the host commands.
 *
 * @module
 */

import { posix } from "node:path";
import { loadConfig } from "../config/amp_config.ts";
import type { CommandRun, ServiceReport } from "./change.ts";
import { ServiceInputError } from "./change.ts";
import { detectInit } from "./detect_init.ts";
import { failureIsHarmless, type HostCommands, SystemHostCommands } from "./host_commands.ts";
import type { InitSystem } from "./layout.ts";
import type { Logger } from "../log/logger.ts";

/** Options every service command takes. */
export interface ServiceOptions {
  /** Host root; `/` by default. */
  root?: string;
  /** Show what would change; change nothing. */
  dryRun?: boolean;
  /** How host commands run; {@linkcode SystemHostCommands} by default. */
  commands?: HostCommands;
  /**
   * Whether to run the host's service manager (start, stop, daemon-reload).
   * By default only when root is `/`: a tree under another root belongs to no
   * running system. Tests set it with a recording {@linkcode HostCommands}.
   */
  runHostCommands?: boolean;
}

/** The resolved common options. */
export interface ServiceContext {
  root: string;
  dryRun: boolean;
  commands: HostCommands;
  onHost: boolean;
}

/**
 * Resolves the root and checks it: it must be an existing directory, and
 * changing the real host needs root.
 */
export async function resolveContext(
  options: ServiceOptions,
  action: ServiceReport["action"],
): Promise<ServiceContext> {
  const root = posix.resolve(options.root ?? "/");
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(root);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "does not exist" : String(error);
    throw new ServiceInputError(`Root ${root} ${why}`, { cause: error });
  }
  if (!stat.isDirectory) throw new ServiceInputError(`Root ${root} is not a directory`);
  const dryRun = options.dryRun ?? false;
  if (root === "/" && !dryRun && Deno.uid() !== 0) {
    throw new ServiceInputError(
      `amp ${action} must run as root: it changes /opt/amp, /etc and the init system`,
    );
  }
  return {
    root,
    dryRun,
    commands: options.commands ?? new SystemHostCommands(),
    onHost: options.runHostCommands ?? root === "/",
  };
}

/**
 * The init system install chose, from amp.json's `service.init`; else
 * detected. For disable, enable and uninstall.
 */
export async function installedInit(
  ctx: ServiceContext,
): Promise<{ init: InitSystem; reason: string }> {
  try {
    const { config, source } = await loadConfig({ root: ctx.root });
    if (config.service.init) {
      return { init: config.service.init, reason: `service.init in ${source}` };
    }
  } catch {
    // A broken amp.json does not stop amp from finding its own init files.
  }
  const found = await detectInit(ctx.root, ctx.onHost ? ctx.commands : undefined);
  return { init: found.init, reason: `detected: ${found.reason}` };
}

/**
 * Runs host commands in order, recording each in the report and the log.
 * Returns the failures that matter (stopping a job that is not running does
 * not).
 */
export async function runAll(
  ctx: ServiceContext,
  argvs: readonly string[][],
  report: ServiceReport,
  log: Logger,
): Promise<CommandRun[]> {
  const failed: CommandRun[] = [];
  for (const argv of argvs) {
    if (ctx.dryRun) {
      report.notes.push(`would run: ${argv.join(" ")}`);
      continue;
    }
    const result = await ctx.commands.run(argv);
    const run: CommandRun = {
      argv: [...argv],
      code: result.code,
      output: result.stderr.trim() || result.stdout.trim(),
    };
    report.commands.push(run);
    const line = `ran ${argv.join(" ")}: exit ${run.code}${run.output ? `: ${run.output}` : ""}`;
    if (run.code === 0) log.info(line);
    else if (failureIsHarmless(argv, result)) log.info(line);
    else {
      log.warning(line);
      failed.push(run);
    }
  }
  return failed;
}

/** `argv: exit N: output` for messages. */
export function describeRun(run: CommandRun): string {
  return `${run.argv.join(" ")} exited ${run.code}${run.output ? `: ${run.output}` : ""}`;
}
