/**
 * /dev/ampavflt, the device of the `ampavflt` kernel module: the mirror of
 * `kmod/ampavflt_uapi.h` (constants and struct layouts, checked against the
 * header by `ampavflt_test.ts`) and the libc symbols its client calls.
 * Symbols, constants and layouts only; the typed calls are
 * `src/monitor/avflt/_native.ts`.
 *
 * @module
 */

/** The C library. */
export const AMPAVFLT_LIBRARY = "libc.so.6";

/** The device node. */
export const AMPAVFLT_DEVICE = "/dev/ampavflt";

/** The symbols the avflt source uses. */
export const AMPAVFLT_SYMBOLS = {
  /** int open(const char *pathname, int flags) */
  open: { parameters: ["buffer", "i32"], result: "i32" },
  /** ssize_t read(int fd, void *buf, size_t count) */
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /**
   * int poll(struct pollfd *fds, nfds_t nfds, int timeout): runs on another
   * thread, so errno is not readable after it.
   */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /** int eventfd(unsigned int initval, int flags) */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** int getrlimit(int resource, struct rlimit *rlim) */
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  /** int setrlimit(int resource, const struct rlimit *rlim) */
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `AMPAVFLT_VERSION`: the protocol this mirror describes. */
export const AMPAVFLT_VERSION = 2;

/** `AMPAVFLT_MAX_TIMEOUT_MS`: the longest timeout `AMPAVFLT_CMD_CONFIG` takes. */
export const AMPAVFLT_MAX_TIMEOUT_MS = 60_000;

/** `AMPAVFLT_EV_*`: `ampavflt_event.kind`. */
export const AMPAVFLT_EV = {
  EXEC: 1,
  OPEN_WRITE: 2,
  CLOSE_WRITE: 3,
  OVERFLOW: 4,
} as const;

/** `AMPAVFLT_EVF_*`: `ampavflt_event.flags`. */
export const AMPAVFLT_EVF = {
  /** The exec waits for a verdict (or one of the module's timeouts). */
  PERM: 0x1,
  /** No descriptor (`fd` is -1): the path follows the record. */
  PATH: 0x2,
  /** OVERFLOW: exec notifications were among the lost. */
  EXEC_LOST: 0x4,
  /** An exec the kernel started (a usermode helper such as modprobe): never held. */
  KERNEL: 0x8,
} as const;

/** `AMPAVFLT_MASK_*`: the event mask of `AMPAVFLT_CMD_CONFIG`. */
export const AMPAVFLT_MASK = {
  EXEC: 0x1,
  EXEC_PERM: 0x2,
  OPEN_WRITE: 0x4,
  CLOSE_WRITE: 0x8,
} as const;

/** `AMPAVFLT_CMD_*`: `ampavflt_command.cmd`. */
export const AMPAVFLT_CMD = {
  VERDICT: 1,
  CONFIG: 2,
  CACHE: 3,
  FORGET: 4,
  SKIP_DEV: 5,
} as const;

/** `AMPAVFLT_ALLOW`: verdict argument, and CONFIG `timeout_answer`. */
export const AMPAVFLT_ALLOW = 1;
/** `AMPAVFLT_DENY`: verdict argument (the exec fails with EPERM), and CONFIG `timeout_answer`. */
export const AMPAVFLT_DENY = 2;

/**
 * `struct ampavflt_event` (72 bytes, then `path_len` bytes of path when
 * `AMPAVFLT_EVF_PATH`, padded to `size`): `size` u32 @0, `version` u16 @4,
 * `kind` u16 @6, `flags` u32 @8, `fd` s32 @12, `id` u64 @16, `pid` u32 @24,
 * `tgid` u32 @28, `uid` u32 @32, `path_len` u32 @36, `dev` u64 @40, `ino`
 * u64 @48, `ctime_ns` u64 @56, `lost` u64 @64.
 */
export const AMPAVFLT_EVENT = {
  size: 72,
  size_field: 0,
  version: 4,
  kind: 6,
  flags: 8,
  fd: 12,
  id: 16,
  pid: 24,
  tgid: 28,
  uid: 32,
  path_len: 36,
  dev: 40,
  ino: 48,
  ctime_ns: 56,
  lost: 64,
} as const;

/**
 * `struct ampavflt_command` (32 bytes): `version` u16 @0, `cmd` u16 @2,
 * `arg` u32 @4, `id` u64 @8, `value` u64 @16, `queue_timeout_ms` u32 @24,
 * `timeout_answer` u32 @28.
 */
export const AMPAVFLT_COMMAND = {
  size: 32,
  version: 0,
  cmd: 2,
  arg: 4,
  id: 8,
  value: 16,
  queue_timeout_ms: 24,
  timeout_answer: 28,
} as const;

/** `struct pollfd` (8 bytes): `fd` s32 @0, `events` s16 @4, `revents` s16 @6. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/** `poll` event bits. */
export const POLL = { IN: 0x1, ERR: 0x8, HUP: 0x10, NVAL: 0x20 } as const;

/** `eventfd` flags. */
export const EFD = { NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;

/** `RLIMIT_NOFILE` (the same on x86_64 and aarch64). */
export const RLIMIT_NOFILE = 7;

/** `struct rlimit` (16 bytes on 64-bit Linux): `rlim_cur` u64 @0, `rlim_max` u64 @8. */
export const RLIMIT = { size: 16, rlim_cur: 0, rlim_max: 8 } as const;

/** The `open` flags the client passes (the same on x86_64 and aarch64). */
export const AVFLT_O = { RDWR: 2, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
