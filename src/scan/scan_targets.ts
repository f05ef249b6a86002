/**
 * What the three scan kinds walk.
 *
 * - custom: the paths given, crossing into other local file systems but not
 *   into pseudo or network ones;
 * - full: every local file system (each mount walked on its own, bind mounts
 *   and repeated devices once), pseudo and network ones left out;
 * - flash: the executables and mapped files of running processes (read from
 *   /proc, so a deleted executable is scanned through `/proc/PID/exe`), and
 *   the usual temp and persistence locations.
 *
 * With `--root DIR`, locations are taken under DIR (a host image); processes
 * are always this host's.
 *
 * @module
 */

import type { AliasedRoot, WalkOptions } from "../fs/walk.ts";
import { fsTypeByDev, type Mount, readMounts, skipFsType } from "../fs/mounts.ts";
import { type BytePath, bytePath, latin1 } from "../sys/byte_path.ts";
import { AT, fstatat, readlink } from "../sys/libc.ts";

/** Roots to walk and how. */
export interface ScanTargets {
  roots: Array<BytePath | AliasedRoot>;
  walk: Pick<WalkOptions, "oneFileSystem" | "skipDevice">;
}

/** Temp and persistence locations a flash scan covers (relative to the root). */
export const FLASH_LOCATIONS = [
  "/tmp",
  "/var/tmp",
  "/dev/shm",
  "/etc/crontab",
  "/etc/cron.d",
  "/etc/cron.hourly",
  "/etc/cron.daily",
  "/etc/cron.weekly",
  "/etc/cron.monthly",
  "/var/spool/cron",
  "/etc/init.d",
  "/etc/rc.local",
  "/etc/systemd/system",
  "/etc/profile.d",
  "/etc/ld.so.preload",
  "/etc/xdg/autostart",
  "/root",
];

function deviceFilter(mounts: Mount[]): (dev: bigint) => string | undefined {
  const types = fsTypeByDev(mounts);
  return (dev) => {
    const type = types.get(dev);
    if (type === undefined) return undefined;
    const why = skipFsType(type);
    return why ? `${why} file system (${type})` : undefined;
  };
}

function underRoot(root: string, path: string): BytePath {
  return bytePath(root === "/" ? path : root.replace(/\/+$/, "") + path);
}

function exists(path: BytePath): boolean {
  try {
    fstatat(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
    return true;
  } catch {
    return false;
  }
}

/** Targets of a custom scan of `paths`. */
export function customTargets(paths: string[]): ScanTargets {
  return { roots: paths.map(bytePath), walk: { skipDevice: deviceFilter(readMounts()) } };
}

/** Targets of a full scan: each local file system once, or the whole `root` image. */
export function fullTargets(root = "/"): ScanTargets {
  const mounts = readMounts();
  const skipDevice = deviceFilter(mounts);
  if (root !== "/") return { roots: [bytePath(root)], walk: { skipDevice } };
  const seen = new Set<bigint>();
  const roots: BytePath[] = [];
  const local = mounts.filter((m) => skipFsType(m.fsType) === undefined)
    .sort((a, b) => a.mountPoint.length - b.mountPoint.length);
  for (const m of local) {
    if (seen.has(m.dev)) continue;
    seen.add(m.dev);
    roots.push(m.mountPoint);
  }
  return { roots, walk: { oneFileSystem: true, skipDevice } };
}

/** Targets of a flash scan. */
export function flashTargets(root = "/"): ScanTargets {
  const seen = new Set<string>();
  const roots: Array<BytePath | AliasedRoot> = [];
  const add = (root: BytePath | AliasedRoot) => {
    const key = latin1(root instanceof Uint8Array ? root : root.path);
    if (seen.has(key)) return;
    seen.add(key);
    roots.push(root);
  };
  for (const { exe, mapped } of runningProcesses()) {
    if (exe) add(exe);
    for (const m of mapped) add(m);
  }
  for (const location of FLASH_LOCATIONS) {
    const path = underRoot(root, location);
    if (exists(path)) add(path);
  }
  return { roots, walk: { skipDevice: deviceFilter(readMounts()) } };
}

const DELETED = bytePath(" (deleted)");

function endsWith(bytes: Uint8Array, suffix: Uint8Array): boolean {
  if (bytes.length < suffix.length) return false;
  return suffix.every((b, i) => bytes[bytes.length - suffix.length + i] === b);
}

/**
 * The executable of each running process (its path; for a deleted file, the
 * path the kernel shows, "… (deleted)", opened through `/proc/PID/exe`) and
 * the files it maps, as bytes.
 */
export function runningProcesses(): Array<
  { pid: number; exe?: BytePath | AliasedRoot; mapped: BytePath[] }
> {
  const out: Array<{ pid: number; exe?: BytePath | AliasedRoot; mapped: BytePath[] }> = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || Number(entry.name) === Deno.pid) continue;
    const pid = Number(entry.name);
    let exe: BytePath | AliasedRoot | undefined;
    try {
      const target = readlink(bytePath(`/proc/${pid}/exe`));
      exe = endsWith(target, DELETED)
        ? { path: target, open: bytePath(`/proc/${pid}/exe`) }
        : target;
    } catch {
      continue; // kernel thread, or gone
    }
    let mapped: BytePath[] = [];
    try {
      mapped = parseMapsPaths(Deno.readFileSync(`/proc/${pid}/maps`));
    } catch {
      // gone, or not ours to read
    }
    out.push({ pid, exe, mapped });
  }
  return out;
}

/**
 * The file paths of a `/proc/PID/maps` (bytes), without pseudo entries
 * (`[heap]` …) and deleted files, each once.
 */
export function parseMapsPaths(maps: Uint8Array): BytePath[] {
  const out: BytePath[] = [];
  const seen = new Set<string>();
  let start = 0;
  while (start < maps.length) {
    let end = maps.indexOf(0x0a, start);
    if (end < 0) end = maps.length;
    const line = maps.subarray(start, end);
    start = end + 1;
    const slash = line.indexOf(0x2f);
    if (slash < 0) continue;
    const path = line.subarray(slash);
    if (endsWith(path, DELETED)) continue;
    const key = latin1(path);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(path.slice());
  }
  return out;
}
