/**
 * What the daemon benchmark reads from /proc about a process: CPU time
 * (`/proc/PID/stat` utime + stime, in clock ticks) and memory (`VmRSS`,
 * `VmHWM` from `/proc/PID/status`). The parsers are pure and tested on text
 * fixtures; the readers return null once the process is gone.
 *
 * @module
 */

/**
 * User plus system CPU time of a process, in clock ticks, from the text of
 * `/proc/PID/stat`. The command name (field 2) may hold spaces and
 * parentheses, so fields are counted after its last `)`.
 *
 * @param text the whole `/proc/PID/stat` line
 *
 * @example
 * ```ts
 * import { parseProcStatCpuTicks } from "./daemon_proc.ts";
 * const line = "42 (deno) S 1 42 42 0 -1 4194560 100 0 0 0 250 40 0 0 20 0 9 0 1 2 3";
 * parseProcStatCpuTicks(line); // 290
 * ```
 */
export function parseProcStatCpuTicks(text: string): number {
  const end = text.lastIndexOf(")");
  if (end < 0) throw new Error(`Invalid /proc/PID/stat: no command name: ${text.slice(0, 80)}`);
  // After ")": state(3) ppid(4) … utime(14) stime(15): indexes 11 and 12 here.
  const fields = text.slice(end + 1).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) {
    throw new Error(
      `Invalid /proc/PID/stat: utime and stime are not numbers: ${text.slice(0, 80)}`,
    );
  }
  return utime + stime;
}

/**
 * One `kB` field of `/proc/PID/status` (such as `VmRSS` or `VmHWM`), in KiB,
 * or null when the field is absent (a kernel thread, a zombie).
 *
 * @param text the whole `/proc/PID/status` text
 * @param field the field name, without the colon
 *
 * @example
 * ```ts
 * import { parseProcStatusKb } from "./daemon_proc.ts";
 * parseProcStatusKb("Name:\tdeno\nVmRSS:\t  81234 kB\n", "VmRSS"); // 81234
 * ```
 */
export function parseProcStatusKb(text: string, field: string): number | null {
  const match = text.match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, "m"));
  return match ? Number(match[1]) : null;
}

/**
 * CPU ticks (utime + stime) used so far by a process, or null if it is gone.
 *
 * @param pid the process
 */
export async function readCpuTicks(pid: number): Promise<number | null> {
  try {
    return parseProcStatCpuTicks(await Deno.readTextFile(`/proc/${pid}/stat`));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * One `kB` field of a process's `/proc/PID/status`, or null if it is gone.
 *
 * @param pid the process
 * @param field `VmRSS`, `VmHWM`, …
 */
export async function readStatusKb(pid: number, field: string): Promise<number | null> {
  try {
    return parseProcStatusKb(await Deno.readTextFile(`/proc/${pid}/status`), field);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/** Clock ticks per second (`getconf CLK_TCK`), for {@linkcode readCpuTicks}. */
export async function clockTicksPerSecond(): Promise<number> {
  const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
  const value = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !Number.isInteger(value) || value <= 0) {
    throw new Error(`Cannot read the clock tick rate: getconf CLK_TCK gave ${value}`);
  }
  return value;
}
