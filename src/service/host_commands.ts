/**
 * The host's service manager, behind one small interface: install, disable,
 * enable and uninstall only ever run commands through a
 * {@linkcode HostCommands}, and only when they act on the real host (root
 * `/`). Tests pass a recording implementation; the commands each init system
 * needs are listed by pure functions here, so that the lists are tested too.
 *
 * @module
 */

import type { InitSystem } from "./layout.ts";

/** What a command did. */
export interface CommandResult {
  /** Exit code; 127 when the program was not found. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs host commands. */
export interface HostCommands {
  /** Runs `argv` and waits for it; never throws for a failing or missing program. */
  run(argv: readonly string[]): Promise<CommandResult>;
}

/** Runs commands with `Deno.Command` (stdin closed, output captured). */
export class SystemHostCommands implements HostCommands {
  /** Runs `argv`; a program that cannot be started gives code 127 and the reason. */
  async run(argv: readonly string[]): Promise<CommandResult> {
    const [program, ...args] = argv;
    try {
      const out = await new Deno.Command(program, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decoder = new TextDecoder();
      return {
        code: out.code,
        stdout: decoder.decode(out.stdout),
        stderr: decoder.decode(out.stderr),
      };
    } catch (error) {
      return {
        code: 127,
        stdout: "",
        stderr: error instanceof Error ? error.message : String(error),
      };
    }
  }
}

/**
 * Commands that start the service after install or enable. `restart` (after
 * an upgrade of the executable) restarts a daemon already running the old one.
 *
 * @example
 * ```ts
 * import { startCommands } from "./host_commands.ts";
 * startCommands("sysv", { restart: false }); // [["/etc/init.d/amp", "start"]]
 * ```
 */
export function startCommands(init: InitSystem, options: { restart: boolean }): string[][] {
  switch (init) {
    case "systemd":
      return [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "amp.service", "amp-updater.timer"],
        ...(options.restart ? [["systemctl", "restart", "amp.service"]] : []),
      ];
    case "upstart":
      // initctl restart fails on a stopped job, so an upgrade is stop (which
      // may fail: not running) then start.
      // reload-configuration: upstart may not have seen the new job file yet.
      return [
        ["initctl", "reload-configuration"],
        ...(options.restart ? [["initctl", "stop", "amp"]] : []),
        ["initctl", "start", "amp"],
      ];
    case "sysv":
      return [["/etc/init.d/amp", options.restart ? "restart" : "start"]];
  }
}

/** Commands that stop the service (and, on systemd, disable its units) for disable and uninstall. */
export function stopCommands(init: InitSystem): string[][] {
  switch (init) {
    case "systemd":
      return [["systemctl", "disable", "--now", "amp.service", "amp-updater.timer"]];
    case "upstart":
      return [["initctl", "stop", "amp"]];
    case "sysv":
      return [["/etc/init.d/amp", "stop"]];
  }
}

/**
 * Whether a failure is expected and harmless: upstart's initctl fails to stop
 * a job that is not running (or no longer known, after disable renamed it)
 * and to start one that already runs.
 */
export function failureIsHarmless(argv: readonly string[], result: CommandResult): boolean {
  if (argv[0] !== "initctl") return false;
  if (argv[1] === "stop") return true;
  return argv[1] === "start" && /already running/i.test(result.stderr + result.stdout);
}
