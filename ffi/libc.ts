/**
 * glibc (x86_64 and aarch64 Linux): the symbols amp calls directly, with the
 * layouts of `struct stat` and `struct linux_dirent64`. Symbols and layouts
 * only; typed wrappers live in `src/sys/`.
 *
 * @module
 */

/** The C library. */
export const LIBC_NAME = "libc.so.6";

/** The symbols amp uses. */
export const LIBC_SYMBOLS = {
  /** int *__errno_location(void) */
  __errno_location: { parameters: [], result: "pointer" },
  /** char *strerror(int errnum) */
  strerror: { parameters: ["i32"], result: "pointer" },
  /** int openat(int dirfd, const char *pathname, int flags, mode_t mode) */
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /** int fstat(int fd, struct stat *statbuf) */
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  /** int fstatat(int dirfd, const char *pathname, struct stat *statbuf, int flags) */
  fstatat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /** ssize_t getdents64(int fd, void *dirp, size_t count) */
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** ssize_t pread(int fd, void *buf, size_t count, off_t offset) */
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  /** off_t lseek(int fd, off_t offset, int whence) */
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  /** ssize_t readlink(const char *pathname, char *buf, size_t bufsiz) */
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  /** void free(void *ptr) */
  free: { parameters: ["pointer"], result: "void" },
  /** int mallopt(int param, int value) */
  mallopt: { parameters: ["i32", "i32"], result: "i32" },
  /** ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) */
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  /** int fsync(int fd) */
  fsync: { parameters: ["i32"], result: "i32" },
  /** int fchown(int fd, uid_t owner, gid_t group) */
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  /** int fchmod(int fd, mode_t mode) */
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  /** int futimens(int fd, const struct timespec times[2]) */
  futimens: { parameters: ["i32", "buffer"], result: "i32" },
  /**
   * int renameat2(int olddirfd, const char *oldpath, int newdirfd,
   * const char *newpath, unsigned int flags)
   */
  renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
  /** int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags) */
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  /** int unlinkat(int dirfd, const char *pathname, int flags) */
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** int flock(int fd, int operation) */
  flock: { parameters: ["i32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `AT_*` constants. */
export const AT = {
  FDCWD: -100,
  SYMLINK_NOFOLLOW: 0x100,
  EMPTY_PATH: 0x1000,
} as const;

/** `O_*` open flags (x86_64 / generic). */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  TRUNC: 0o1000,
  NOCTTY: 0o400,
  NONBLOCK: 0o4000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000,
  NOATIME: 0o1000000,
} as const;

/** `S_IF*` file type bits of `st_mode`. */
export const S_IF = {
  MT: 0o170000,
  SOCK: 0o140000,
  LNK: 0o120000,
  REG: 0o100000,
  BLK: 0o060000,
  DIR: 0o040000,
  CHR: 0o020000,
  FIFO: 0o010000,
} as const;

/** `d_type` values of a directory entry. */
export const DT = {
  UNKNOWN: 0,
  FIFO: 1,
  CHR: 2,
  DIR: 4,
  BLK: 6,
  REG: 8,
  LNK: 10,
  SOCK: 12,
} as const;

/** `mallopt` parameter `M_ARENA_MAX`. */
export const M_ARENA_MAX = -8;

/** `SEEK_SET`. */
export const SEEK_SET = 0;

/** `renameat2` flags. */
export const RENAME = {
  /** Fail with EEXIST instead of replacing the new path. */
  NOREPLACE: 1,
} as const;

/** `flock` operations. */
export const LOCK = {
  SH: 1,
  EX: 2,
  NB: 4,
  UN: 8,
} as const;

/**
 * `struct timespec` on 64-bit Linux (16 bytes): `tv_sec` i64 @0, `tv_nsec`
 * i64 @8. `futimens` takes two of them: access time, then modification time.
 */
export const TIMESPEC = {
  size: 16,
  tv_sec: 0,
  tv_nsec: 8,
} as const;

/**
 * Offset of `st_atim` (a `struct timespec`) in `struct stat`: 72 on both
 * x86_64 and aarch64.
 */
export const STAT_ST_ATIM = 72;

/**
 * `struct stat` on x86_64 (144 bytes). Offsets of the fields amp reads; the
 * `timespec` fields are `{ tv_sec: i64, tv_nsec: i64 }`.
 */
export const STAT_X86_64 = {
  size: 144,
  st_dev: 0,
  st_ino: 8,
  st_nlink: 16,
  st_mode: 24,
  st_uid: 28,
  st_gid: 32,
  st_size: 48,
  st_mtim: 88,
  st_ctim: 104,
} as const;

/**
 * `struct stat` on aarch64 (generic layout, 128 bytes).
 */
export const STAT_AARCH64 = {
  size: 128,
  st_dev: 0,
  st_ino: 8,
  st_mode: 16,
  st_nlink: 20,
  st_uid: 24,
  st_gid: 28,
  st_size: 48,
  st_mtim: 88,
  st_ctim: 104,
} as const;

/**
 * `struct linux_dirent64`: `d_ino` u64 @0, `d_off` i64 @8, `d_reclen` u16
 * @16, `d_type` u8 @18, `d_name` NUL-terminated @19.
 */
export const DIRENT64 = {
  d_ino: 0,
  d_off: 8,
  d_reclen: 16,
  d_type: 18,
  d_name: 19,
} as const;
