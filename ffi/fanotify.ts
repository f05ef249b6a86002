/**
 * fanotify (Linux ≥ 5.9 for `FAN_REPORT_DFID_NAME` with `FAN_MOVED_TO`) through
 * glibc: the symbols the fanotify event source calls, the `FAN_*` constants
 * and the layouts of the structs it reads and writes. Symbols, constants and
 * layouts only; the typed calls are `src/monitor/fanotify/_native.ts`.
 * Values and layouts are those of x86_64 and aarch64 (checked against the C
 * headers by `fanotify_test.ts`).
 *
 * @module
 */

/** The C library. */
export const FANOTIFY_LIBRARY = "libc.so.6";

/** The symbols the fanotify source uses. */
export const FANOTIFY_SYMBOLS = {
  /** int fanotify_init(unsigned int flags, unsigned int event_f_flags) */
  fanotify_init: { parameters: ["u32", "u32"], result: "i32" },
  /**
   * int fanotify_mark(int fanotify_fd, unsigned int flags, uint64_t mask,
   *   int dirfd, const char *pathname)
   */
  fanotify_mark: { parameters: ["i32", "u32", "u64", "i32", "buffer"], result: "i32" },
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
  /** int open_by_handle_at(int mount_fd, struct file_handle *handle, int flags) */
  open_by_handle_at: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /** int openat(int dirfd, const char *pathname, int flags, mode_t mode) */
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  /** int eventfd(unsigned int initval, int flags) */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** int fstatfs(int fd, struct statfs *buf) */
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Event bits of `fanotify_mark` masks and of `fanotify_event_metadata.mask`. */
export const FAN = {
  ACCESS: 0x1,
  MODIFY: 0x2,
  CLOSE_WRITE: 0x8,
  CLOSE_NOWRITE: 0x10,
  OPEN: 0x20,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  OPEN_EXEC: 0x1000,
  Q_OVERFLOW: 0x4000,
  FS_ERROR: 0x8000,
  OPEN_PERM: 0x10000,
  ACCESS_PERM: 0x20000,
  OPEN_EXEC_PERM: 0x40000,
  EVENT_ON_CHILD: 0x08000000,
  RENAME: 0x10000000,
  ONDIR: 0x40000000,
} as const;

/** Flags of `fanotify_init`'s first argument. */
export const FAN_INIT = {
  CLOEXEC: 0x1,
  NONBLOCK: 0x2,
  /** Notification only (no permission events). Not a bit: the class field is 0. */
  CLASS_NOTIF: 0x0,
  /** May receive permission events, after notification-class groups. */
  CLASS_CONTENT: 0x4,
  CLASS_PRE_CONTENT: 0x8,
  UNLIMITED_QUEUE: 0x10,
  UNLIMITED_MARKS: 0x20,
  REPORT_PIDFD: 0x80,
  REPORT_TID: 0x100,
  REPORT_FID: 0x200,
  REPORT_DIR_FID: 0x400,
  REPORT_NAME: 0x800,
  /** `FAN_REPORT_DIR_FID | FAN_REPORT_NAME`. */
  REPORT_DFID_NAME: 0xc00,
} as const;

/** Flags of `fanotify_mark`. */
export const FAN_MARK = {
  ADD: 0x1,
  REMOVE: 0x2,
  DONT_FOLLOW: 0x4,
  ONLYDIR: 0x8,
  MOUNT: 0x10,
  IGNORED_MASK: 0x20,
  FLUSH: 0x80,
  FILESYSTEM: 0x100,
  /**
   * Linux ≥ 5.19, inode marks only: the mark does not pin its inode, so the
   * kernel may evict the inode (and the mark with it) under memory pressure.
   * Older kernels refuse the flag with `EINVAL`.
   */
  EVICTABLE: 0x200,
} as const;

/** `fanotify_response.response` values. */
export const FAN_ALLOW = 0x1;
/** `fanotify_response.response`: refuse the operation (the caller gets EPERM). */
export const FAN_DENY = 0x2;
/** `fanotify_event_metadata.fd` when the event carries no descriptor. */
export const FAN_NOFD = -1;
/** The `vers` this layout of `fanotify_event_metadata` describes. */
export const FANOTIFY_METADATA_VERSION = 3;

/** `fanotify_event_info_header.info_type` values. */
export const FAN_EVENT_INFO_TYPE = {
  FID: 1,
  DFID_NAME: 2,
  DFID: 3,
  PIDFD: 4,
  ERROR: 5,
  OLD_DFID_NAME: 10,
  NEW_DFID_NAME: 12,
} as const;

/**
 * `struct fanotify_event_metadata` (24 bytes): `event_len` u32 @0, `vers` u8
 * @4, `reserved` u8 @5, `metadata_len` u16 @6, `mask` u64 @8, `fd` s32 @16,
 * `pid` s32 @20.
 */
export const FANOTIFY_EVENT_METADATA = {
  size: 24,
  event_len: 0,
  vers: 4,
  metadata_len: 6,
  mask: 8,
  fd: 16,
  pid: 20,
} as const;

/** `struct fanotify_response` (8 bytes): `fd` s32 @0, `response` u32 @4. */
export const FANOTIFY_RESPONSE = { size: 8, fd: 0, response: 4 } as const;

/** `struct fanotify_event_info_header` (4 bytes): `info_type` u8 @0, `pad` u8 @1, `len` u16 @2. */
export const FANOTIFY_EVENT_INFO_HEADER = { size: 4, info_type: 0, pad: 1, len: 2 } as const;

/**
 * `struct fanotify_event_info_fid` (12 bytes before the handle): the header,
 * `fsid` (`__kernel_fsid_t`, two s32) @4, then a `struct file_handle` @12.
 * For `DFID_NAME` a NUL-terminated name follows the handle; the record is
 * padded to 4 bytes.
 */
export const FANOTIFY_EVENT_INFO_FID = { size: 12, fsid: 4, handle: 12 } as const;

/**
 * `struct file_handle` (8 bytes before `f_handle`): `handle_bytes` u32 @0,
 * `handle_type` s32 @4, `f_handle` bytes @8.
 */
export const FILE_HANDLE = { size: 8, handle_bytes: 0, handle_type: 4, f_handle: 8 } as const;

/** `struct pollfd` (8 bytes): `fd` s32 @0, `events` s16 @4, `revents` s16 @6. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/** `poll` event bits. */
export const POLL = { IN: 0x1, ERR: 0x8, HUP: 0x10, NVAL: 0x20 } as const;

/** `struct statfs` (120 bytes on x86_64 and aarch64): `f_fsid` @56. */
export const STATFS = { size: 120, f_fsid: 56 } as const;

/** `eventfd` flags. */
export const EFD = { NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;

/**
 * The `O_*` flags the fanotify source passes (`fanotify_init`'s
 * `event_f_flags`, `open_by_handle_at`, `openat`). `O_DIRECTORY` and
 * `O_NOFOLLOW` differ between x86_64 and aarch64. There is no `O_LARGEFILE`:
 * on 64-bit kernels `fanotify_init` adds it itself, and glibc defines it as 0.
 */
export const FAN_O = Deno.build.arch === "aarch64"
  ? {
    RDONLY: 0,
    NONBLOCK: 0o4000,
    CLOEXEC: 0o2000000,
    PATH: 0o10000000,
    DIRECTORY: 0o40000,
    NOFOLLOW: 0o100000,
  } as const
  : {
    RDONLY: 0,
    NONBLOCK: 0o4000,
    CLOEXEC: 0o2000000,
    PATH: 0o10000000,
    DIRECTORY: 0o200000,
    NOFOLLOW: 0o400000,
  } as const;
