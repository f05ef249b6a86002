/**
 * Typed wrappers over the libc calls of `ffi/libc.ts`: byte paths in, numbers
 * and {@linkcode FileStat}s out, {@linkcode SysError} on failure. These are
 * ordinary (blocking) calls on the JS thread, so errno is read right after
 * each one. The library is opened on first use.
 *
 * @module
 */

import {
  AT,
  LIBC_NAME,
  LIBC_SYMBOLS,
  M_ARENA_MAX,
  S_IF,
  SEEK_SET,
  STAT_AARCH64,
  STAT_ST_ATIM,
  STAT_X86_64,
  TIMESPEC,
} from "../../ffi/libc.ts";
import { type BytePath, cPath, escapePath } from "./byte_path.ts";
import { SysError } from "./sys_error.ts";

/** What amp reads from `struct stat`. */
export interface FileStat {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let libc: Libc | undefined;
const STAT = Deno.build.arch === "aarch64" ? STAT_AARCH64 : STAT_X86_64;
const statBuf = new Uint8Array(STAT.size);
const statView = new DataView(statBuf.buffer);

function lib(): Libc {
  if (!libc) libc = Deno.dlopen(LIBC_NAME, LIBC_SYMBOLS).symbols;
  return libc;
}

/** The calling thread's errno. Read it straight after a failing call. */
export function errno(): number {
  const p = lib().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** The C library's description of an errno. */
export function strerror(code: number): string {
  const p = lib().strerror(code);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${code}`;
}

function fail(syscall: string, path?: BytePath): never {
  const e = errno();
  throw new SysError(syscall, e, path ? escapePath(path) : undefined, strerror(e));
}

/**
 * Opens `path` relative to the directory `dirfd` (or {@linkcode AT}.FDCWD) and
 * returns the new descriptor, which the caller owns and must close.
 */
export function openat(dirfd: number, path: BytePath, flags: number, mode = 0): number {
  const fd = lib().openat(dirfd, cPath(path), flags, mode);
  if (fd < 0) fail("openat", path);
  return fd;
}

/** Closes a descriptor; errors are ignored (the descriptor is gone either way). */
export function close(fd: number): void {
  lib().close(fd);
}

function decodeStat(): FileStat {
  const v = statView;
  return {
    dev: v.getBigUint64(STAT.st_dev, true),
    ino: v.getBigUint64(STAT.st_ino, true),
    mode: v.getUint32(STAT.st_mode, true),
    nlink: Deno.build.arch === "aarch64"
      ? v.getUint32(STAT.st_nlink, true)
      : Number(v.getBigUint64(STAT.st_nlink, true)),
    uid: v.getUint32(STAT.st_uid, true),
    gid: v.getUint32(STAT.st_gid, true),
    size: Number(v.getBigInt64(STAT.st_size, true)),
    mtimeNs: v.getBigInt64(STAT.st_mtim, true) * 1_000_000_000n +
      v.getBigInt64(STAT.st_mtim + 8, true),
    ctimeNs: v.getBigInt64(STAT.st_ctim, true) * 1_000_000_000n +
      v.getBigInt64(STAT.st_ctim + 8, true),
  };
}

/** `fstat(2)` of an open descriptor. */
export function fstat(fd: number): FileStat {
  if (lib().fstat(fd, statBuf) !== 0) fail("fstat");
  return decodeStat();
}

/** `fstatat(2)`; `flags` may hold `AT.SYMLINK_NOFOLLOW`. */
export function fstatat(dirfd: number, path: BytePath, flags = 0): FileStat {
  if (lib().fstatat(dirfd, cPath(path), statBuf, flags) !== 0) fail("fstatat", path);
  return decodeStat();
}

/** `getdents64(2)`: fills `buf` with directory records, returns bytes used (0 at the end). */
export function getdents64(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  const n = Number(lib().getdents64(fd, buf, BigInt(buf.length)));
  if (n < 0) fail("getdents64");
  return n;
}

/** `pread(2)` into `buf` at `offset`; returns bytes read. */
export function pread(fd: number, buf: Uint8Array<ArrayBuffer>, offset: number): number {
  const n = Number(lib().pread(fd, buf, BigInt(buf.length), BigInt(offset)));
  if (n < 0) fail("pread");
  return n;
}

/** Moves a descriptor's offset back to the start. */
export function rewind(fd: number): void {
  if (lib().lseek(fd, 0n, SEEK_SET) < 0n) fail("lseek");
}

/** `readlink(2)`: the target of a symbolic link, as bytes. */
export function readlink(path: BytePath): BytePath {
  const buf = new Uint8Array(4096);
  const n = Number(lib().readlink(cPath(path), buf, BigInt(buf.length)));
  if (n < 0) fail("readlink", path);
  return buf.slice(0, n);
}

/** Frees memory that a C library allocated with malloc. */
export function free(pointer: Deno.PointerValue): void {
  if (pointer) lib().free(pointer);
}

/**
 * Caps the number of glibc malloc arenas (`mallopt(M_ARENA_MAX, n)`). Native
 * code run from Deno's blocking thread pool (libclamav) otherwise gets an
 * arena per thread, each keeping freed memory: measured on a 1.2 GB scan,
 * one arena lowered peak RSS from ~285 MB to 240 MB at the same speed.
 * Call before the first such call; it affects the whole process.
 */
export function limitMallocArenas(n: number): void {
  lib().mallopt(M_ARENA_MAX, n);
}

/** A {@linkcode FileStat} with the access time, which {@linkcode fstat} leaves out. */
export interface FileStatWithAtime extends FileStat {
  atimeNs: bigint;
}

/** `fstat(2)` of an open descriptor, with the access time. */
export function fstatWithAtime(fd: number): FileStatWithAtime {
  const stat = fstat(fd);
  const atimeNs = statView.getBigInt64(STAT_ST_ATIM, true) * 1_000_000_000n +
    statView.getBigInt64(STAT_ST_ATIM + 8, true);
  return { ...stat, atimeNs };
}

/**
 * `pwrite(2)` of `buf` at `offset`; returns bytes written, which may be fewer
 * than asked (see {@linkcode pwriteAll}).
 */
export function pwrite(fd: number, buf: Uint8Array<ArrayBuffer>, offset: number): number {
  const n = Number(lib().pwrite(fd, buf, BigInt(buf.length), BigInt(offset)));
  if (n < 0) fail("pwrite");
  return n;
}

/** Writes all of `buf` at `offset`, repeating `pwrite(2)` after short writes. */
export function pwriteAll(fd: number, buf: Uint8Array<ArrayBuffer>, offset: number): void {
  for (let done = 0; done < buf.length;) {
    const rest = done === 0 ? buf : buf.subarray(done);
    done += pwrite(fd, rest, offset + done);
  }
}

/** `fsync(2)`: the file's data and metadata (or a directory's entries) reach the disk. */
export function fsync(fd: number): void {
  if (lib().fsync(fd) !== 0) fail("fsync");
}

/** `fchown(2)`: sets owner and group. It clears set-user-ID and set-group-ID bits. */
export function fchown(fd: number, uid: number, gid: number): void {
  if (lib().fchown(fd, uid, gid) !== 0) fail("fchown");
}

/** `fchmod(2)`: sets the permission bits (`0o7777` included). */
export function fchmod(fd: number, mode: number): void {
  if (lib().fchmod(fd, mode) !== 0) fail("fchmod");
}

/** The bytes of `struct timespec times[2]` for {@linkcode futimens}. */
export function encodeTimespecs(atimeNs: bigint, mtimeNs: bigint): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(2 * TIMESPEC.size);
  const view = new DataView(buf.buffer);
  for (const [i, ns] of [atimeNs, mtimeNs].entries()) {
    // Floor division, so that times before 1970 get 0 <= tv_nsec < 1e9.
    let sec = ns / 1_000_000_000n;
    if (ns < 0n && sec * 1_000_000_000n !== ns) sec -= 1n;
    view.setBigInt64(i * TIMESPEC.size + TIMESPEC.tv_sec, sec, true);
    view.setBigInt64(i * TIMESPEC.size + TIMESPEC.tv_nsec, ns - sec * 1_000_000_000n, true);
  }
  return buf;
}

/** `futimens(2)`: sets access and modification times, in nanoseconds since the epoch. */
export function futimens(fd: number, atimeNs: bigint, mtimeNs: bigint): void {
  if (lib().futimens(fd, encodeTimespecs(atimeNs, mtimeNs)) !== 0) fail("futimens");
}

/**
 * `renameat2(2)`; `flags` may hold `RENAME.NOREPLACE` (EEXIST instead of
 * replacing; EINVAL on file systems that cannot do it).
 */
export function renameat2(
  oldDirfd: number,
  oldPath: BytePath,
  newDirfd: number,
  newPath: BytePath,
  flags = 0,
): void {
  if (lib().renameat2(oldDirfd, cPath(oldPath), newDirfd, cPath(newPath), flags) !== 0) {
    fail("renameat2", oldPath);
  }
}

/** `linkat(2)`: a second name for a file; EEXIST when the new name is taken. */
export function linkat(
  oldDirfd: number,
  oldPath: BytePath,
  newDirfd: number,
  newPath: BytePath,
  flags = 0,
): void {
  if (lib().linkat(oldDirfd, cPath(oldPath), newDirfd, cPath(newPath), flags) !== 0) {
    fail("linkat", newPath);
  }
}

/** `unlinkat(2)`: removes a name (flags 0) or an empty directory (`AT_REMOVEDIR`). */
export function unlinkat(dirfd: number, path: BytePath, flags = 0): void {
  if (lib().unlinkat(dirfd, cPath(path), flags) !== 0) fail("unlinkat", path);
}

/**
 * `flock(2)` with one of `LOCK.SH`, `LOCK.EX`, `LOCK.UN`, optionally
 * `| LOCK.NB` (then EAGAIN when another open file holds the lock). The lock
 * belongs to the open file description, not the process.
 */
export function flock(fd: number, operation: number): void {
  if (lib().flock(fd, operation) !== 0) fail("flock");
}

/** The file type bits of a mode, as one of `S_IF`'s values. */
export function fileType(mode: number): number {
  return mode & S_IF.MT;
}

export { AT };
