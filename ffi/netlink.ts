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
  /** int open(const char *pathname, int flags): a network namespace file, for `setns` */
  open: { parameters: ["buffer", "i32"], result: "i32" },
  /** int setns(int fd, int nstype): moves the calling thread only */
  setns: { parameters: ["i32", "i32"], result: "i32" },
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

/** `SOCK_RAW`, the socket type of `NETLINK_NETFILTER` sockets. */
export const SOCK_RAW = 3;

/** The netlink protocol of netfilter (conntrack events, nftables). */
export const NETLINK_NETFILTER = 12;

/** `nlmsghdr.nlmsg_flags` bits. */
export const NLM_F = { REQUEST: 0x1, MULTI: 0x2, ACK: 0x4, EXCL: 0x200, CREATE: 0x400 } as const;

/** `struct nlattr` (4 bytes): `nla_len` u16 @0, `nla_type` u16 @2; payloads 4-byte aligned. */
export const NLATTR = { size: 4, nla_len: 0, nla_type: 2 } as const;

/** `nla_type` flag bits, and the mask of the type proper. */
export const NLA_F = { NESTED: 0x8000, NET_BYTEORDER: 0x4000, TYPE_MASK: 0x3fff } as const;

/**
 * `struct nfgenmsg` (4 bytes, after `nlmsghdr`): `nfgen_family` u8 @0,
 * `version` u8 @1, `res_id` be16 @2.
 */
export const NFGENMSG = { size: 4, nfgen_family: 0, version: 1, res_id: 2 } as const;

/** `NFNETLINK_V0`, the only `nfgenmsg.version`. */
export const NFNETLINK_V0 = 0;

/** Netfilter subsystems: the high byte of `nlmsg_type`. */
export const NFNL_SUBSYS = { CTNETLINK: 1, NFTABLES: 10 } as const;

/** nfnetlink batch delimiters (`nlmsg_type`, `res_id` = the subsystem). */
export const NFNL_MSG = { BATCH_BEGIN: 0x10, BATCH_END: 0x11 } as const;

/** `enum cntl_msg_types`: the low byte of a ctnetlink `nlmsg_type`. */
export const IPCTNL_MSG = { CT_NEW: 0, CT_GET: 1, CT_DELETE: 2 } as const;

/** Legacy ctnetlink multicast group bits for `sockaddr_nl.nl_groups`. */
export const NF_NETLINK_CONNTRACK = { NEW: 0x1, UPDATE: 0x2, DESTROY: 0x4 } as const;

/** `enum ctattr_type`: top-level conntrack attributes. */
export const CTA = {
  TUPLE_ORIG: 1,
  TUPLE_REPLY: 2,
  STATUS: 3,
  PROTOINFO: 4,
  TIMEOUT: 7,
  MARK: 8,
  ID: 12,
  ZONE: 18,
} as const;

/** `enum ctattr_tuple`: attributes nested in a tuple. */
export const CTA_TUPLE = { IP: 1, PROTO: 2, ZONE: 3 } as const;

/** `enum ctattr_ip`: addresses nested in `CTA_TUPLE_IP`. */
export const CTA_IP = { V4_SRC: 1, V4_DST: 2, V6_SRC: 3, V6_DST: 4 } as const;

/** `enum ctattr_l4proto`: attributes nested in `CTA_TUPLE_PROTO`. */
export const CTA_PROTO = {
  NUM: 1,
  SRC_PORT: 2,
  DST_PORT: 3,
  ICMP_ID: 4,
  ICMP_TYPE: 5,
  ICMP_CODE: 6,
  ICMPV6_ID: 7,
  ICMPV6_TYPE: 8,
  ICMPV6_CODE: 9,
} as const;

/** Address families of `nfgenmsg.nfgen_family`. */
export const NFPROTO = { UNSPEC: 0, INET: 1, IPV4: 2, IPV6: 10 } as const;

/** `enum nf_inet_hooks`. */
export const NF_INET = {
  PRE_ROUTING: 0,
  LOCAL_IN: 1,
  FORWARD: 2,
  LOCAL_OUT: 3,
  POST_ROUTING: 4,
} as const;

/** `enum nf_tables_msg_types`: the low byte of an nftables `nlmsg_type`. */
export const NFT_MSG = { NEWTABLE: 0, DELTABLE: 2, NEWCHAIN: 3, NEWRULE: 6 } as const;

/** `enum nft_table_attributes`. */
export const NFTA_TABLE = { NAME: 1 } as const;

/** `enum nft_chain_attributes`. */
export const NFTA_CHAIN = { TABLE: 1, NAME: 3, HOOK: 4, TYPE: 7 } as const;

/** `enum nft_hook_attributes` (be32 values). */
export const NFTA_HOOK = { HOOKNUM: 1, PRIORITY: 2 } as const;

/** `enum nft_rule_attributes`. */
export const NFTA_RULE = { TABLE: 1, CHAIN: 2, EXPRESSIONS: 4 } as const;

/** `NFTA_LIST_ELEM`: one element of a nested list (a rule's expressions). */
export const NFTA_LIST_ELEM = 1;

/** `enum nft_expr_attributes`. */
export const NFTA_EXPR = { NAME: 1, DATA: 2 } as const;

/** `enum nft_ct_attributes` (be32 values). */
export const NFTA_CT = { DREG: 1, KEY: 2 } as const;

/** `enum nft_ct_keys`: the key loaded by the `ct` expression. */
export const NFT_CT_STATE = 0;

/** `enum nft_registers`: the first 16-byte data register. */
export const NFT_REG_1 = 1;

/** `open` flags. */
export const O = { RDONLY: 0, CLOEXEC: 0o2000000 } as const;

/** `setns` namespace type of a network namespace. */
export const CLONE_NEWNET = 0x40000000;

/** The netlink protocol of socket diagnostics (`NETLINK_SOCK_DIAG`, alias `NETLINK_INET_DIAG`). */
export const NETLINK_SOCK_DIAG = 4;

/** `sock_diag` request types (`nlmsg_type`): a lookup or dump, and a forced close. */
export const SOCK_DIAG = { BY_FAMILY: 20, DESTROY: 21 } as const;

/** Address families of `inet_diag_req_v2.sdiag_family`. */
export const AF = { INET: 2, INET6: 10 } as const;

/** IP protocols of `inet_diag_req_v2.sdiag_protocol`. */
export const IPPROTO = { TCP: 6, UDP: 17 } as const;

/** `INET_DIAG_NOCOOKIE`: both words of `idiag_cookie` when the caller has no cookie. */
export const INET_DIAG_NOCOOKIE = 0xffffffff;

/**
 * `struct inet_diag_sockid` (48 bytes): `idiag_sport` be16 @0, `idiag_dport`
 * be16 @2, `idiag_src` be32[4] @4, `idiag_dst` be32[4] @20, `idiag_if` u32
 * @36, `idiag_cookie` u32[2] @40. IPv4 addresses fill the first word.
 */
export const INET_DIAG_SOCKID = {
  size: 48,
  idiag_sport: 0,
  idiag_dport: 2,
  idiag_src: 4,
  idiag_dst: 20,
  idiag_if: 36,
  idiag_cookie: 40,
} as const;

/**
 * `struct inet_diag_req_v2` (56 bytes): `sdiag_family` u8 @0,
 * `sdiag_protocol` u8 @1, `idiag_ext` u8 @2, `pad` u8 @3, `idiag_states`
 * u32 @4, `id` (`inet_diag_sockid`) @8.
 */
export const INET_DIAG_REQ_V2 = {
  size: 56,
  sdiag_family: 0,
  sdiag_protocol: 1,
  idiag_ext: 2,
  pad: 3,
  idiag_states: 4,
  id: 8,
} as const;

/**
 * `struct inet_diag_msg` (72 bytes): `idiag_family` u8 @0, `idiag_state` u8
 * @1, `idiag_timer` u8 @2, `idiag_retrans` u8 @3, `id` @4, `idiag_expires`
 * u32 @52, `idiag_rqueue` u32 @56, `idiag_wqueue` u32 @60, `idiag_uid` u32
 * @64, `idiag_inode` u32 @68.
 */
export const INET_DIAG_MSG = {
  size: 72,
  idiag_family: 0,
  idiag_state: 1,
  idiag_timer: 2,
  idiag_retrans: 3,
  id: 4,
  idiag_expires: 52,
  idiag_rqueue: 56,
  idiag_wqueue: 60,
  idiag_uid: 64,
  idiag_inode: 68,
} as const;

/** `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`): a dump request. */
export const NLM_F_DUMP = 0x300;
