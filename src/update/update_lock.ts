/**
 * One `amp update` at a time: an exclusive, non-blocking `flock(2)` on
 * `/var/lib/amp/update.lock`. The lock belongs to the open file, so it goes away
 * with the process however it ends (no stale lock after a crash or a kill);
 * the file is never removed, which would let a second process lock a new
 * file while the first still holds the old one. The holder writes its pid
 * into the file so that a refused run can name it.
 *
 * @module
 */

import { dirname } from "node:path";
import { LOCK, O } from "../../ffi/libc.ts";
import { bytePath } from "../sys/byte_path.ts";
import { AT, close, flock, openat, pwriteAll } from "../sys/libc.ts";
import { SysError } from "../sys/sys_error.ts";

/** Where the lock lives, relative to `--root`. */
/**
 * Where the lock lives: under /var/lib/amp, not /run/amp, which systemd
 * removes with amp.service (RuntimeDirectory) while an update may hold it.
 */
export const UPDATE_LOCK_PATH = "/var/lib/amp/update.lock";

/** A held lock; {@linkcode UpdateLock.release} is safe to call twice. */
export interface UpdateLock {
  readonly path: string;
  release(): void;
}

/** The outcome of {@linkcode tryUpdateLock}. */
export type UpdateLockResult =
  | { kind: "acquired"; lock: UpdateLock }
  | { kind: "busy"; path: string; pid?: number };

/**
 * Takes the lock at `path` (creating it and its directory), or reports who
 * holds it. Throws {@linkcode SysError} for other failures (no permission).
 *
 * @example
 * ```ts
 * import { tryUpdateLock } from "./update_lock.ts";
 * const dir = await Deno.makeTempDir();
 * const got = await tryUpdateLock(`${dir}/update.lock`);
 * if (got.kind === "acquired") got.lock.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function tryUpdateLock(path: string): Promise<UpdateLockResult> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const fd = openat(AT.FDCWD, bytePath(path), O.RDWR | O.CREAT | O.CLOEXEC | O.NOFOLLOW, 0o644);
  try {
    flock(fd, LOCK.EX | LOCK.NB);
  } catch (error) {
    close(fd);
    if (error instanceof SysError && error.code === "EAGAIN") {
      return { kind: "busy", path, pid: await readHolder(path) };
    }
    throw error;
  }
  // Fixed width, so a shorter pid never leaves digits of a longer one behind.
  pwriteAll(fd, new TextEncoder().encode(`${String(Deno.pid).padEnd(19)}\n`), 0);
  let held = true;
  return {
    kind: "acquired",
    lock: {
      path,
      release() {
        if (!held) return;
        held = false;
        close(fd);
      },
    },
  };
}

async function readHolder(path: string): Promise<number | undefined> {
  try {
    const match = /^\s*(\d+)/.exec(await Deno.readTextFile(path));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}
