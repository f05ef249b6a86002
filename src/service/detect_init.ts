/**
 * Which init system a host runs. On the real host (root `/`) this asks the
 * running system: systemd leaves `/run/systemd/system` while it is PID 1, and
 * upstart's `initctl --version` names upstart. Under another root nothing
 * runs there, so only its files count.
 *
 * @module
 */

import { resolveUnderRoot } from "../policy/load_policy.ts";
import type { HostCommands } from "./host_commands.ts";
import type { InitSystem } from "./layout.ts";

/** What {@linkcode detectInit} found, and why. */
export interface DetectedInit {
  init: InitSystem;
  /** The fact that decided it, for the installer's log. */
  reason: string;
}

/**
 * Detects the init system of `root`.
 *
 * @param root the host root (`/` for this host)
 * @param commands runs `initctl --version` when root is `/`
 * @example
 * ```ts
 * import { detectInit } from "./detect_init.ts";
 * const dir = await Deno.makeTempDir();
 * (await detectInit(dir)).init; // "sysv": an empty root has neither systemd nor upstart
 * await Deno.remove(dir);
 * ```
 */
export async function detectInit(root: string, commands?: HostCommands): Promise<DetectedInit> {
  const systemdDir = resolveUnderRoot(root, "/run/systemd/system");
  if (await isDirectory(systemdDir)) {
    return { init: "systemd", reason: `${systemdDir} exists (systemd is running)` };
  }
  const initctl = resolveUnderRoot(root, "/sbin/initctl");
  if (root === "/" && commands && await exists(initctl)) {
    const out = await commands.run([initctl, "--version"]);
    if (/upstart/i.test(out.stdout + out.stderr)) {
      return { init: "upstart", reason: `${initctl} --version names upstart` };
    }
  }
  const jobs = resolveUnderRoot(root, "/etc/init");
  if (await isDirectory(jobs)) {
    return { init: "upstart", reason: `${jobs} exists and systemd is not running` };
  }
  return { init: "sysv", reason: "neither systemd nor upstart found" };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
