/**
 * Netlink sockets through glibc, for the proc connector (`NETLINK_CONNECTOR`,
 * `CN_IDX_PROC`): the symbols the process-event source calls, the constants
 * and the layouts of `sockaddr_nl`, `nlmsghdr`, `cn_msg` and `proc_event`.
 * Symbols, constants and layouts only; the typed calls are
 * `src/monitor/proc_connector/_native.ts`. Values and layouts are those of
 * x86_64 and aarch64 (checked against the C headers by `netlink_test.ts`).
 *
 * @module
 */

/** The C library. */
export const NETLINK_LIBRARY = "libc.so.6";

/** The symbols the proc connector source uses. */
export const NETLINK_SYMBOLS = {
  /** int socket(int domain, int type, int protocol) */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen) */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /**
   * ssize_t sendto(int sockfd, const void *buf, size_t len, int flags,
   *   const struct sockaddr *dest_addr, socklen_t addrlen)
   */
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  /** ssize_t recv(int sockfd, void *buf, size_t len, int flags) */
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  /**
   * int setsockopt(int sockfd, int level, int optname, const void *optval,
   *   socklen_t optlen)
   */
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /**
   * int poll(struct pollfd *fds, nfds_t nfds, int timeout): runs on another
   * thread, so errno is not readable after it.
   */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /**
   * int poll(struct pollfd *fds, nfds_t nfds, int timeout), blocking: only for
   * the proc connector's reader worker, whose thread does nothing else.
   */
  poll_blocking: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  /** int eventfd(unsigned int initval, int flags) */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `AF_NETLINK`, the address family of netlink sockets. */
export const AF_NETLINK = 16;
/** The netlink protocol of the kernel connector. */
export const NETLINK_CONNECTOR = 11;

/** `socket` type and flags. */
export const SOCK = { DGRAM: 2, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;

/** `setsockopt` level and option names used here. */
export const SOL_SOCKET = 1;
/** `SO_RCVBUF` (capped by `net.core.rmem_max`) and `SO_RCVBUFFORCE` (root, not capped). */
export const SO = { RCVBUF: 8, RCVBUFFORCE: 33 } as const;

/** `recv` flags. */
export const MSG_DONTWAIT = 0x40;

/** The connector id of process events (`cb_id.idx`, also the multicast group). */
export const CN_IDX_PROC = 1;
/** The connector id of process events (`cb_id.val`). */
export const CN_VAL_PROC = 1;

/** `enum proc_cn_mcast_op`: the payload of a message to the proc connector. */
export const PROC_CN_MCAST = { LISTEN: 1, IGNORE: 2 } as const;

/** `enum what` of `struct proc_event`. */
export const PROC_EVENT = {
  NONE: 0x0,
  FORK: 0x1,
  EXEC: 0x2,
  UID: 0x4,
  GID: 0x40,
  SID: 0x80,
  PTRACE: 0x100,
  COMM: 0x200,
  COREDUMP: 0x40000000,
  EXIT: 0x80000000,
} as const;

/** Netlink control message types (`nlmsghdr.nlmsg_type`). */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

/** Netlink messages and their payloads start on 4-byte boundaries. */
export const NLMSG_ALIGNTO = 4;

/**
 * `struct sockaddr_nl` (12 bytes): `nl_family` u16 @0, `nl_pad` u16 @2,
 * `nl_pid` u32 @4, `nl_groups` u32 @8.
 */
export const SOCKADDR_NL = { size: 12, nl_family: 0, nl_pad: 2, nl_pid: 4, nl_groups: 8 } as const;

/**
 * `struct nlmsghdr` (16 bytes): `nlmsg_len` u32 @0, `nlmsg_type` u16 @4,
 * `nlmsg_flags` u16 @6, `nlmsg_seq` u32 @8, `nlmsg_pid` u32 @12.
 */
export const NLMSGHDR = {
  size: 16,
  nlmsg_len: 0,
  nlmsg_type: 4,
  nlmsg_flags: 6,
  nlmsg_seq: 8,
  nlmsg_pid: 12,
} as const;

/** `struct nlmsgerr` (the payload of `NLMSG_ERROR`): `error` s32 @0, then the request's header. */
export const NLMSGERR = { size: 20, error: 0, msg: 4 } as const;

/**
 * `struct cn_msg` (20 bytes before `data`): `id.idx` u32 @0, `id.val` u32
 * @4, `seq` u32 @8, `ack` u32 @12, `len` u16 @16, `flags` u16 @18.
 */
export const CN_MSG = { size: 20, idx: 0, val: 4, seq: 8, ack: 12, len: 16, flags: 18 } as const;

/**
 * `struct proc_event` header (16 bytes before `event_data`): `what` u32 @0,
 * `cpu` u32 @4, `timestamp_ns` u64 @8; the union `event_data` @16.
 */
export const PROC_EVENT_HEADER = { size: 16, what: 0, cpu: 4, timestamp_ns: 8 } as const;

/** `struct fork_proc_event`, offsets within `event_data`. */
export const FORK_PROC_EVENT = {
  size: 16,
  parent_pid: 0,
  parent_tgid: 4,
  child_pid: 8,
  child_tgid: 12,
} as const;

/** `struct exec_proc_event`, offsets within `event_data`. */
export const EXEC_PROC_EVENT = { size: 8, process_pid: 0, process_tgid: 4 } as const;

/**
 * `struct id_proc_event` (uid and gid changes), offsets within `event_data`:
 * `r.ruid`/`r.rgid` @8, `e.euid`/`e.egid` @12.
 */
export const ID_PROC_EVENT = {
  size: 16,
  process_pid: 0,
  process_tgid: 4,
  ruid: 8,
  euid: 12,
} as const;

/** `struct sid_proc_event`, offsets within `event_data`. */
export const SID_PROC_EVENT = { size: 8, process_pid: 0, process_tgid: 4 } as const;

/** `struct ptrace_proc_event`, offsets within `event_data`. */
export const PTRACE_PROC_EVENT = {
  size: 16,
  process_pid: 0,
  process_tgid: 4,
  tracer_pid: 8,
  tracer_tgid: 12,
} as const;

/** `struct comm_proc_event`, offsets within `event_data`: `comm` char[16] @8. */
export const COMM_PROC_EVENT = { size: 24, process_pid: 0, process_tgid: 4, comm: 8 } as const;

/** `struct coredump_proc_event`, offsets within `event_data`. */
export const COREDUMP_PROC_EVENT = {
  size: 16,
  process_pid: 0,
  process_tgid: 4,
  parent_pid: 8,
  parent_tgid: 12,
} as const;

/** `struct exit_proc_event`, offsets within `event_data`. */
export const EXIT_PROC_EVENT = {
  size: 24,
  process_pid: 0,
  process_tgid: 4,
  exit_code: 8,
  exit_signal: 12,
  parent_pid: 16,
  parent_tgid: 20,
} as const;

/** The `ack` member of `event_data` (the answer to a LISTEN or IGNORE): `err` u32 @0. */
export const ACK_PROC_EVENT = { size: 4, err: 0 } as const;

/** `struct pollfd` (8 bytes): `fd` s32 @0, `events` s16 @4, `revents` s16 @6. */
export const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/** `poll` event bits. */
export const POLL = { IN: 0x1, ERR: 0x8, HUP: 0x10, NVAL: 0x20 } as const;

/** `eventfd` flags. */
export const EFD = { NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
