/**
 * File operations of the quarantine, on byte paths and descriptors: split a
 * path into its directory and name, look a name up without following links,
 * rename without ever replacing, and stream a file into or out of its
 * encrypted copy while hashing it. Every call goes through `src/sys/libc.ts`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { O, RENAME, S_IF } from "../../ffi/libc.ts";
import { type BytePath, bytePath, escapePath, joinBytePath } from "../sys/byte_path.ts";
import {
  AT,
  close,
  type FileStat,
  fileType,
  fstat,
  fstatat,
  linkat,
  openat,
  pread,
  pwriteAll,
  renameat2,
  unlinkat,
} from "../sys/libc.ts";
import { SysError } from "../sys/sys_error.ts";
import {
  decodeQuarantineHeader,
  QUARANTINE_HEADER_SIZE,
  quarantineCipher,
} from "./quarantine_format.ts";

/** Bytes read and written at a time. */
export const CHUNK_SIZE = 1 << 20;

const EPERM = 1;
const ENOENT = 2;
const ENOTDIR = 20;
const EINVAL = 22;
const SLASH = 0x2f;

/** A path split into its directory and its last name. */
export interface SplitPath {
  dir: BytePath;
  name: BytePath;
}

/**
 * Splits an absolute path at its last `/`.
 *
 * @throws {TypeError} when the path is not absolute or ends in `/`
 *
 * @example
 * ```ts
 * import { bytePath } from "../sys/byte_path.ts";
 * import { splitPath } from "./quarantine_files.ts";
 *
 * const { dir, name } = splitPath(bytePath("/tmp/a")); // "/tmp" and "a"
 * ```
 */
export function splitPath(path: BytePath): SplitPath {
  const slash = path.lastIndexOf(SLASH);
  if (path[0] !== SLASH || slash === path.length - 1) {
    throw new TypeError(`Not the absolute path of a file: ${escapePath(path)}`);
  }
  return {
    dir: slash === 0 ? path.slice(0, 1) : path.slice(0, slash),
    name: path.slice(slash + 1),
  };
}

/** `path` made absolute against the current directory. */
export function absolutePath(path: BytePath): BytePath {
  return path[0] === SLASH ? path : joinBytePath(bytePath(Deno.cwd()), path);
}

/** Opens a directory for the `*at` calls. */
export function openDirectory(dir: BytePath): number {
  return openat(AT.FDCWD, dir, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
}

/** Opens a directory, or returns undefined when it (or a parent) is missing. */
export function openDirectoryIfPresent(dir: BytePath): number | undefined {
  try {
    return openDirectory(dir);
  } catch (error) {
    if (isErrno(error, ENOENT) || isErrno(error, ENOTDIR)) return undefined;
    throw error;
  }
}

/** Whether `error` is a {@linkcode SysError} with this errno. */
export function isErrno(error: unknown, errno: number): boolean {
  return error instanceof SysError && error.errno === errno;
}

/** What a name in `dirfd` is (not following a symbolic link), or undefined when nothing is there. */
export function statAt(dirfd: number, name: BytePath): FileStat | undefined {
  try {
    return fstatat(dirfd, name, AT.SYMLINK_NOFOLLOW);
  } catch (error) {
    if (isErrno(error, ENOENT)) return undefined;
    throw error;
  }
}

/** Whether two stats are of the same inode. */
export function sameFile(
  a: { dev: bigint; ino: bigint },
  b: { dev: bigint; ino: bigint },
): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * Removes a name if it is there.
 *
 * @returns whether it was there
 */
export function unlinkIfPresent(dirfd: number, name: BytePath): boolean {
  try {
    unlinkat(dirfd, name);
    return true;
  } catch (error) {
    if (isErrno(error, ENOENT)) return false;
    throw error;
  }
}

/**
 * Renames without ever replacing: SysError EEXIST when the new name is
 * taken. Where `renameat2(RENAME_NOREPLACE)` is not supported (EINVAL), a
 * hard link then an unlink does the same; between the two calls the file has
 * both names, which the quarantine's recovery recognises (same inode).
 */
export function renameNoReplace(
  oldDirfd: number,
  oldName: BytePath,
  newDirfd: number,
  newName: BytePath,
): void {
  try {
    renameat2(oldDirfd, oldName, newDirfd, newName, RENAME.NOREPLACE);
  } catch (error) {
    if (!isErrno(error, EINVAL)) throw error;
    linkat(oldDirfd, oldName, newDirfd, newName);
    unlinkat(oldDirfd, oldName);
  }
}

/** What streaming a file produced. */
export interface StreamResult {
  /** Lower-case hex SHA-256 of the original (plain) bytes. */
  sha256: string;
  /** Bytes of original content streamed. */
  size: number;
}

/** Options of {@linkcode encodeCopy} and {@linkcode decodeCopy}. */
export interface StreamOptions {
  /** Called once, after the first chunk has been written (a crash-test hook). */
  afterFirstChunk?: () => void;
}

/**
 * Reads `source` from its start through `pread` (never by path), writes the
 * header and the encrypted bytes to `target`, and hashes the plain bytes.
 */
export async function encodeCopy(
  source: number,
  target: number,
  header: Uint8Array<ArrayBuffer>,
  key: Uint8Array,
  iv: Uint8Array,
  options: StreamOptions = {},
): Promise<StreamResult> {
  pwriteAll(target, header, 0);
  const cipher = quarantineCipher(key, iv);
  const hash = createHash("sha256");
  const buf = new Uint8Array(CHUNK_SIZE);
  let offset = 0;
  for (let chunks = 1;; chunks++) {
    const n = pread(source, buf, offset);
    if (n === 0) break;
    const plain = buf.subarray(0, n);
    hash.update(plain);
    pwriteAll(target, cipher.apply(plain), QUARANTINE_HEADER_SIZE + offset);
    offset += n;
    if (chunks === 1) options.afterFirstChunk?.();
    if (chunks % 8 === 0) await breathe();
  }
  return { sha256: hash.digest("hex"), size: offset };
}

/**
 * Reads an encrypted copy, checks that its header belongs to record `id`,
 * decrypts it into `target` (or only hashes it, when `target` is undefined)
 * and hashes the plain bytes.
 *
 * @throws {Error} when the header is not one of record `id`
 */
export async function decodeCopy(
  copy: number,
  target: number | undefined,
  expected: { id: number; key: Uint8Array; iv: Uint8Array },
  options: StreamOptions = {},
): Promise<StreamResult> {
  const headerBytes = new Uint8Array(QUARANTINE_HEADER_SIZE);
  const got = pread(copy, headerBytes, 0);
  const header = decodeQuarantineHeader(headerBytes.subarray(0, got));
  if (header.id !== expected.id) {
    throw new Error(`The copy belongs to record ${header.id}, not ${expected.id}`);
  }
  const cipher = quarantineCipher(expected.key, expected.iv);
  const hash = createHash("sha256");
  const buf = new Uint8Array(CHUNK_SIZE);
  let offset = 0;
  for (let chunks = 1;; chunks++) {
    const n = pread(copy, buf, QUARANTINE_HEADER_SIZE + offset);
    if (n === 0) break;
    const plain = cipher.apply(buf.subarray(0, n));
    hash.update(plain);
    if (target !== undefined) pwriteAll(target, plain, offset);
    offset += n;
    if (chunks === 1) options.afterFirstChunk?.();
    if (chunks % 8 === 0) await breathe();
  }
  if (offset !== header.size) {
    throw new Error(`The copy holds ${offset} bytes, its header says ${header.size}`);
  }
  return { sha256: hash.digest("hex"), size: offset };
}

/**
 * SHA-256 of the regular file `name` in `dirfd` (not following links), or
 * undefined when it is missing or not a regular file. Read with O_NOATIME
 * where allowed (owner or root), so that checking a restored file leaves its
 * restored access time alone.
 */
export async function hashAt(dirfd: number, name: BytePath): Promise<string | undefined> {
  const flags = O.RDONLY | O.NOFOLLOW | O.NONBLOCK | O.NOCTTY | O.CLOEXEC;
  let fd: number;
  try {
    try {
      fd = openat(dirfd, name, flags | O.NOATIME);
    } catch (error) {
      if (!isErrno(error, EPERM)) throw error;
      fd = openat(dirfd, name, flags);
    }
  } catch (error) {
    if (isErrno(error, ENOENT)) return undefined;
    throw error;
  }
  try {
    if (fileType(fstat(fd).mode) !== S_IF.REG) return undefined;
    const hash = createHash("sha256");
    const buf = new Uint8Array(CHUNK_SIZE);
    for (let offset = 0, chunks = 1;; chunks++) {
      const n = pread(fd, buf, offset);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      offset += n;
      if (chunks % 8 === 0) await breathe();
    }
    return hash.digest("hex");
  } finally {
    close(fd);
  }
}

/** Lets timers and I/O run between chunks of a long copy. */
function breathe(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
