/**
 * The scan walk: depth first through byte-named directories with `openat`
 * relative to the parent's descriptor and `getdents64`, so that names that
 * are not UTF-8 (or hold newlines) are reached, paths longer than PATH_MAX are
 * reached, and a renamed parent cannot redirect the walk.
 *
 * Rules: symbolic links are not followed (not even reported: they are not
 * files); FIFOs, sockets and devices are never opened, only reported as
 * skipped; a directory seen before (a bind mount of an ancestor, a second
 * mount of one file system) is not entered again, so loops cannot trap the
 * walk; a directory on a pseudo or network file system is not entered; an
 * entry that cannot be opened is an error item and the walk goes on.
 *
 * Descriptor ownership: a `file` item carries an open descriptor that the
 * consumer owns and must close. Directory descriptors belong to the walk; it
 * closes them as it leaves each directory, and all of them when the generator
 * is closed early (`return()`).
 *
 * @module
 */

import { DT, O, S_IF } from "../../ffi/libc.ts";
import type { SkipReason } from "../engine/verdict.ts";
import { type BytePath, joinBytePath } from "../sys/byte_path.ts";
import {
  AT,
  close,
  type FileStat,
  fileType,
  fstat,
  fstatat,
  getdents64,
  openat,
} from "../sys/libc.ts";
import { SysError } from "../sys/sys_error.ts";
import { type Dirent, parseDirents } from "./dirents.ts";

/** What the walk hands to the scanner. */
export type WalkItem =
  | { kind: "file"; path: BytePath; fd: number; stat: FileStat }
  /**
   * Nothing found yet, but many entries were passed over (unchanged files of
   * a rescan, excluded names …): a consumer may give its event loop a turn.
   */
  | { kind: "tick"; path: BytePath }
  | { kind: "skipped"; path: BytePath; reason: SkipReason; detail?: string }
  | { kind: "error"; path: BytePath; error: string };

type WalkProblem = Exclude<WalkItem, { kind: "file" } | { kind: "tick" }>;

/** Entries passed over without yielding before a tick is yielded. */
const TICK_EVERY = 512;

/**
 * A root reported under one path but opened through another: a deleted
 * program's file is opened through `/proc/PID/exe` and reported (and matched
 * against exclusions) as the path it had.
 */
export interface AliasedRoot {
  path: BytePath;
  open: BytePath;
}

/** Options of {@linkcode walk}. */
export interface WalkOptions {
  /** Says why a path is excluded (its description), or undefined to keep it. */
  exclude?: (path: BytePath) => string | undefined;
  /**
   * Says why a file system must not be entered (`"pseudo"`, `"network"` …), or
   * undefined; asked whenever the walk reaches a new device.
   */
  skipDevice?: (dev: bigint) => string | undefined;
  /** Stay on the file system of each root (the full scan walks each mount by itself). */
  oneFileSystem?: boolean;
  /** Deepest directory nesting entered; deeper ones are errors. Default 512. */
  maxDepth?: number;
  /**
   * Only files changed (ctime or mtime) at or after this time, in ns since
   * the epoch: older ones are passed over without being opened or yielded.
   * The daemon's rescan after a lost event uses it.
   */
  changedSinceNs?: bigint;
}

const FILE_FLAGS = O.RDONLY | O.NOFOLLOW | O.NONBLOCK | O.NOCTTY | O.CLOEXEC;
const DIR_FLAGS = O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.NONBLOCK | O.CLOEXEC;
const DIRENT_BUFFER = 64 * 1024;

interface Frame {
  fd: number;
  path: BytePath;
  dev: bigint;
  entries: Dirent[];
  next: number;
}

/**
 * Walks `roots` and yields every regular file (opened), every skipped entry
 * and every error. A root is followed if it is a symbolic link (it was named
 * on purpose); nothing below a root is.
 *
 * @example
 * ```ts
 * import { walk } from "./walk.ts";
 * import { bytePath } from "../sys/byte_path.ts";
 * import { close } from "../sys/libc.ts";
 * for (const item of walk([bytePath("/etc/hostname")])) {
 *   if (item.kind === "file") close(item.fd);
 * }
 * ```
 */
export function* walk(
  roots: Array<BytePath | AliasedRoot>,
  options: WalkOptions = {},
): Generator<WalkItem> {
  const visited = new Set<string>();
  // One listing buffer for the whole walk: parseDirents copies names out.
  const buf = new Uint8Array(DIRENT_BUFFER);
  const maxDepth = options.maxDepth ?? 512;
  const since = options.changedSinceNs;
  let quiet = 0;
  const stack: Frame[] = [];
  try {
    for (const entry of roots) {
      const root = entry instanceof Uint8Array ? entry : entry.path;
      const open = entry instanceof Uint8Array ? entry : entry.open;
      const excluded = options.exclude?.(root);
      if (excluded) {
        yield { kind: "skipped", path: root, reason: "excluded", detail: excluded };
        continue;
      }
      let stat: FileStat;
      try {
        stat = fstatat(AT.FDCWD, open, 0);
      } catch (error) {
        yield errorItem(root, error);
        continue;
      }
      const type = fileType(stat.mode);
      if (type === S_IF.REG) {
        yield* openFile(AT.FDCWD, open, root, O.RDONLY | O.NONBLOCK | O.NOCTTY | O.CLOEXEC);
        continue;
      }
      if (type !== S_IF.DIR) {
        yield { kind: "skipped", path: root, reason: "not-regular", detail: typeName(type) };
        continue;
      }
      const skip = options.skipDevice?.(stat.dev);
      if (skip) {
        yield { kind: "skipped", path: root, reason: "other-filesystem", detail: skip };
        continue;
      }
      const frame = enterDir(
        AT.FDCWD,
        open,
        root,
        O.RDONLY | O.DIRECTORY | O.CLOEXEC,
        visited,
        buf,
      );
      if (frame === null) continue;
      if ("kind" in frame) {
        yield frame;
        continue;
      }
      stack.push(frame);
      const rootDev = frame.dev;
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        if (top.next >= top.entries.length) {
          close(top.fd);
          stack.pop();
          continue;
        }
        const entry = top.entries[top.next++];
        if (++quiet >= TICK_EVERY) {
          quiet = 0;
          yield { kind: "tick", path: top.path };
        }
        const path = joinBytePath(top.path, entry.name);
        const why = options.exclude?.(path);
        if (why) {
          yield { kind: "skipped", path, reason: "excluded", detail: why };
          continue;
        }
        let type = entry.type;
        if (type === DT.UNKNOWN) {
          try {
            type = dtFromMode(fstatat(top.fd, entry.name, AT.SYMLINK_NOFOLLOW).mode);
          } catch (error) {
            yield errorItem(path, error);
            continue;
          }
        }
        if (type === DT.REG) {
          if (since !== undefined && unchangedSince(top.fd, entry.name, since)) continue;
          yield* openFile(top.fd, entry.name, path, FILE_FLAGS);
        } else if (type === DT.DIR) {
          if (stack.length >= maxDepth) {
            yield { kind: "error", path, error: `Directory nesting deeper than ${maxDepth}` };
            continue;
          }
          const child = enterDir(top.fd, entry.name, path, DIR_FLAGS, visited, buf);
          if (child === null) continue;
          if ("kind" in child) {
            yield child;
            continue;
          }
          if (child.dev !== top.dev) {
            const skipDev = options.oneFileSystem && child.dev !== rootDev
              ? "another file system"
              : options.skipDevice?.(child.dev);
            if (skipDev) {
              close(child.fd);
              yield { kind: "skipped", path, reason: "other-filesystem", detail: skipDev };
              continue;
            }
          }
          stack.push(child);
        } else if (type !== DT.LNK) {
          yield { kind: "skipped", path, reason: "not-regular", detail: dtName(type) };
        }
      }
    }
  } finally {
    for (const frame of stack) close(frame.fd);
  }
}

/** True when the entry's ctime and mtime are both before `since` (errors: false, so it is opened). */
function unchangedSince(dirfd: number, name: BytePath, since: bigint): boolean {
  try {
    const stat = fstatat(dirfd, name, AT.SYMLINK_NOFOLLOW);
    return stat.ctimeNs < since && stat.mtimeNs < since;
  } catch {
    return false;
  }
}

function* openFile(
  dirfd: number,
  name: BytePath,
  path: BytePath,
  flags: number,
): Generator<WalkItem> {
  let fd: number;
  try {
    fd = openat(dirfd, name, flags);
  } catch (error) {
    // ELOOP: replaced by a symbolic link since the listing; not followed.
    if (error instanceof SysError && error.code === "ELOOP") return;
    yield errorItem(path, error);
    return;
  }
  let stat: FileStat;
  try {
    stat = fstat(fd);
  } catch (error) {
    close(fd);
    yield errorItem(path, error);
    return;
  }
  if (fileType(stat.mode) !== S_IF.REG) {
    close(fd);
    yield { kind: "skipped", path, reason: "not-regular", detail: typeName(fileType(stat.mode)) };
    return;
  }
  yield { kind: "file", path, fd, stat };
}

function enterDir(
  dirfd: number,
  name: BytePath,
  path: BytePath,
  flags: number,
  visited: Set<string>,
  buf: Uint8Array<ArrayBuffer>,
): Frame | WalkProblem | null {
  let fd: number;
  try {
    fd = openat(dirfd, name, flags);
  } catch (error) {
    if (error instanceof SysError && error.code === "ELOOP") {
      return null; // replaced by a symbolic link since the listing: not followed
    }
    return errorItem(path, error);
  }
  try {
    const stat = fstat(fd);
    const key = `${stat.dev}:${stat.ino}`;
    if (visited.has(key)) {
      close(fd);
      return { kind: "skipped", path, reason: "loop", detail: "directory already scanned" };
    }
    visited.add(key);
    const entries: Dirent[] = [];
    for (let n = getdents64(fd, buf); n > 0; n = getdents64(fd, buf)) {
      for (const e of parseDirents(buf, n)) entries.push(e);
    }
    return { fd, path, dev: stat.dev, entries, next: 0 };
  } catch (error) {
    close(fd);
    return errorItem(path, error);
  }
}

function errorItem(path: BytePath, error: unknown): WalkProblem {
  // The item carries the path already: say only what failed and why.
  const message = error instanceof SysError
    ? `${error.syscall}: ${error.reason}`
    : error instanceof Error
    ? error.message
    : String(error);
  return { kind: "error", path, error: message };
}

function dtFromMode(mode: number): number {
  switch (fileType(mode)) {
    case S_IF.REG:
      return DT.REG;
    case S_IF.DIR:
      return DT.DIR;
    case S_IF.LNK:
      return DT.LNK;
    case S_IF.FIFO:
      return DT.FIFO;
    case S_IF.SOCK:
      return DT.SOCK;
    case S_IF.CHR:
      return DT.CHR;
    case S_IF.BLK:
      return DT.BLK;
  }
  return DT.UNKNOWN;
}

function dtName(type: number): string {
  switch (type) {
    case DT.FIFO:
      return "FIFO";
    case DT.SOCK:
      return "socket";
    case DT.CHR:
      return "character device";
    case DT.BLK:
      return "block device";
  }
  return `type ${type}`;
}

function typeName(type: number): string {
  return dtName(dtFromMode(type));
}
