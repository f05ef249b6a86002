/**
 * The kernel audit netlink interface (`NETLINK_AUDIT`, <linux/audit.h>):
 * constants and struct layouts only, checked against the C header by
 * `audit_test.ts`. The socket calls themselves are the libc symbols of
 * `netlink.ts`.
 *
 * @module
 */

/** The netlink protocol of the audit subsystem. */
export const NETLINK_AUDIT = 9;

/**
 * Audit message types (`nlmsg_type`): requests (GET … LIST_RULES) and the
 * records of one syscall event (SYSCALL, SOCKADDR, PROCTITLE, closed by EOE).
 */
export const AUDIT = {
  GET: 1000,
  SET: 1001,
  ADD_RULE: 1011,
  DEL_RULE: 1012,
  LIST_RULES: 1013,
  SYSCALL: 1300,
  SOCKADDR: 1306,
  EOE: 1320,
  PROCTITLE: 1327,
} as const;

/** Multicast groups of the audit socket: `READLOG` is the read-only copy of every record (CAP_AUDIT_READ). */
export const AUDIT_NLGRP = { READLOG: 1 } as const;

/** `audit_rule_data.flags`: the list a rule goes on (`EXIT`: at syscall exit). */
export const AUDIT_FILTER = { EXIT: 0x04 } as const;

/** `audit_rule_data.action`: record when the rule matches. */
export const AUDIT_ALWAYS = 2;

/** Rule fields (`audit_rule_data.fields`). */
export const AUDIT_FIELD = { ARCH: 11, SADDR_FAM: 113, ARG2: 202, FILTERKEY: 210 } as const;

/** The comparison of a rule field (`fieldflags`). */
export const AUDIT_EQUAL = 0x40000000;

/** Words in the syscall bit mask and the most fields a rule has. */
export const AUDIT_BITMASK_SIZE = 64;
export const AUDIT_MAX_FIELDS = 64;

/** Longest filter key. */
export const AUDIT_MAX_KEY_LEN = 256;

/** `audit_status.mask` bit for `enabled`. */
export const AUDIT_STATUS = { ENABLED: 0x1 } as const;

/** `AUDIT_ARCH_*` values of the 64-bit little-endian architectures amp runs on. */
export const AUDIT_ARCH = { X86_64: 0xc000003e, AARCH64: 0xc00000b7 } as const;

/** `connect(2)`'s syscall number on those architectures. */
export const SYS_CONNECT = { X86_64: 42, AARCH64: 203 } as const;

/**
 * `struct audit_status` (11 × u32): `mask` @0, `enabled` @4, `failure` @8,
 * `pid` @12, `rate_limit` @16, `backlog_limit` @20, `lost` @24, `backlog` @28,
 * `feature_bitmap` @32, `backlog_wait_time` @36, `backlog_wait_time_actual` @40.
 */
export const AUDIT_STATUS_LAYOUT = {
  size: 44,
  mask: 0,
  enabled: 4,
  failure: 8,
  pid: 12,
  rate_limit: 16,
  backlog_limit: 20,
  lost: 24,
  backlog: 28,
  feature_bitmap: 32,
  backlog_wait_time: 36,
  backlog_wait_time_actual: 40,
} as const;

/**
 * `struct audit_rule_data` (1040 bytes before its string buffer): `flags`
 * @0, `action` @4, `field_count` @8, `mask` u32[64] @12, `fields` u32[64]
 * @268, `values` u32[64] @524, `fieldflags` u32[64] @780, `buflen` @1036,
 * `buf` @1040 (string fields, such as the filter key, back to back).
 */
export const AUDIT_RULE_DATA = {
  size: 1040,
  flags: 0,
  action: 4,
  field_count: 8,
  mask: 12,
  fields: 268,
  values: 524,
  fieldflags: 780,
  buflen: 1036,
  buf: 1040,
} as const;
