/**
 * Killing a process that executed malware, safely: the process descriptor is
 * opened first, then the process is checked to still run the convicted file
 * (its executable, or for a script an open descriptor, is the same device and
 * inode), and only then is SIGKILL sent through the descriptor. A pid reused
 * by another program is therefore never signalled.
 *
 * @module
 */

import { SysError } from "../sys/sys_error.ts";
import { bytePath } from "../sys/byte_path.ts";
import { AT, fstatat } from "../sys/libc.ts";
import { ProcessHandle } from "../sys/process.ts";

/** What a kill attempt did. */
export type KillResult =
  | { killed: true }
  | { killed: false; reason: "gone" | "not-running-file" | "failed"; detail?: string };

/** A file's identity. */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
}

/** True when `pid` runs `file` as its executable or holds it open (a script). */
export function runsFile(pid: number, file: FileIdentity, proc = "/proc"): boolean {
  const same = (path: string) => {
    try {
      const s = fstatat(AT.FDCWD, bytePath(path), 0);
      return s.dev === file.dev && s.ino === file.ino;
    } catch {
      return false;
    }
  };
  if (same(`${proc}/${pid}/exe`)) return true;
  try {
    for (const entry of Deno.readDirSync(`${proc}/${pid}/fd`)) {
      if (same(`${proc}/${pid}/fd/${entry.name}`)) return true;
    }
  } catch {
    // gone
  }
  return false;
}

/**
 * Kills `pid` if it still runs `file`. During an exec the process may not
 * have switched to the new image yet when the verdict arrives, so the check
 * is retried for up to `settleMs`.
 */
export async function killProcessRunning(
  pid: number,
  file: FileIdentity,
  settleMs = 200,
): Promise<KillResult> {
  let handle: ProcessHandle;
  try {
    handle = ProcessHandle.open(pid);
  } catch (error) {
    const gone = error instanceof SysError && error.code === "ESRCH";
    return { killed: false, reason: gone ? "gone" : "failed", detail: String(error) };
  }
  try {
    const deadline = Date.now() + settleMs;
    while (!runsFile(pid, file)) {
      if (Date.now() >= deadline) return { killed: false, reason: "not-running-file" };
      await new Promise((r) => setTimeout(r, 10));
    }
    handle.kill();
    return { killed: true };
  } catch (error) {
    const gone = error instanceof SysError && error.code === "ESRCH";
    return { killed: false, reason: gone ? "gone" : "failed", detail: String(error) };
  } finally {
    handle.close();
  }
}
