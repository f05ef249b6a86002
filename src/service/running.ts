/**
 * Which processes run a given executable, from /proc: used to refuse
 * removing amp under a daemon that did not stop, and to restart a daemon that
 * still runs an executable an upgrade replaced.
 *
 * @module
 */

/**
 * Pids whose executable is `path` (or `path` replaced since: the kernel then
 * shows it as "path (deleted)").
 *
 * @example
 * ```ts
 * import { processesRunning } from "./running.ts";
 * processesRunning("/opt/amp/bin/amp"); // [] when amp does not run
 * ```
 */
export function processesRunning(path: string, options: { deletedOnly?: boolean } = {}): number[] {
  const pids: number[] = [];
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      let exe: string;
      try {
        exe = Deno.readLinkSync(`/proc/${entry.name}/exe`);
      } catch {
        continue; // gone, or a kernel thread
      }
      const deleted = exe === `${path} (deleted)`;
      if (deleted || (!options.deletedOnly && exe === path)) pids.push(Number(entry.name));
    }
  } catch {
    // no /proc
  }
  return pids;
}
