/**
 * The only code that calls netfilter netlink sockets through FFI, for the
 * conntrack new-flow source.
 *
 * Why conntrack: a NEW event is sent when the kernel confirms a flow's first
 * packet, so a connection that opens and closes within a millisecond is
 * still seen, once, with its original tuple; sock_diag polling would miss
 * it. Conntrack only tracks flows in a network namespace once something
 * there uses it (an nftables `ct` expression, iptables `-m conntrack`, NAT):
 * with `trackFlows` the source installs a one-rule nftables table of its own
 * (`amp_flow`, a `ct state` load in an output hook, no verdict) and deletes
 * it at close.
 *
 * Everything runs in a dedicated worker (`_flow_reader.ts`): `setns` moves
 * only the calling thread, so the worker enters the namespace, then opens
 * the socket there (a socket stays in the namespace it was made in). It
 * blocks in an ordinary `poll` on [socket, wake eventfd], `recv`s (errno read
 * at once: same thread), parses and posts the records.
 *
 * Descriptor ownership: the worker owns the socket; the wake eventfd is made
 * on the JS thread and handed to the worker, which closes it when it ends.
 * Should the worker die first, the main side closes it.
 *
 * @module
 */

import {
  AF_NETLINK,
  CLONE_NEWNET,
  EFD,
  MSG_DONTWAIT,
  NETLINK_LIBRARY,
  NETLINK_NETFILTER,
  NETLINK_SOCK_DIAG,
  NETLINK_SYMBOLS,
  NF_INET,
  NF_NETLINK_CONNTRACK,
  NFGENMSG,
  NFNETLINK_V0,
  NFNL_MSG,
  NFNL_SUBSYS,
  NFPROTO,
  NFT_CT_STATE,
  NFT_MSG,
  NFT_REG_1,
  NFTA_CHAIN,
  NFTA_CT,
  NFTA_EXPR,
  NFTA_HOOK,
  NFTA_LIST_ELEM,
  NFTA_RULE,
  NFTA_TABLE,
  NLA_F,
  NLATTR,
  NLM_F,
  NLMSG,
  NLMSGERR,
  NLMSGHDR,
  O,
  POLL,
  POLLFD,
  SO,
  SOCK,
  SOCK_RAW,
  SOCKADDR_NL,
  SOL_SOCKET,
} from "../../../ffi/netlink.ts";
import { AUDIT, AUDIT_NLGRP, NETLINK_AUDIT } from "../../../ffi/audit.ts";
import { LOCK, O as LIBC_O } from "../../../ffi/libc.ts";
import { bytePath, bytesEqual } from "../../sys/byte_path.ts";
import { AT, errno, flock, openat, strerror } from "../../sys/libc.ts";
import { SysError } from "../../sys/sys_error.ts";
import { readExe, readProcessInfo } from "../../protect/process_info.ts";
import {
  type AuditMessage,
  auditRequest,
  ConnectJoiner,
  type ConnectRecord,
  ConnectRecordCollector,
  connectRuleSet,
  enableRequest,
  parseAuditMessages,
} from "./audit_connect.ts";
import { type FlowEvent, type FlowRecord, parseConntrackEvents } from "./conntrack_events.ts";
import {
  type DiagAnswer,
  diagRequest,
  type DiagSocket,
  type DiagTuple,
  matchesTuple,
  parseDiagAnswer,
} from "./sock_diag.ts";

type Symbols = Deno.DynamicLibrary<typeof NETLINK_SYMBOLS>["symbols"];

const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;
const ENOENT = 2;
const EOPNOTSUPP = 95;
const EEXIST = 17;
const EINVAL = 22;

/** The nftables table `trackFlows` installs. */
export const TRACK_TABLE = "amp_flow";

let symbols: Symbols | undefined;

/** The netlink symbols, opened on first use. */
export function lib(): Symbols {
  if (!symbols) symbols = Deno.dlopen(NETLINK_LIBRARY, NETLINK_SYMBOLS).symbols;
  return symbols;
}

function fail(syscall: string, detail?: string): never {
  const e = errno();
  throw new SysError(syscall, e, detail, strerror(e));
}

/** What the reader worker posts. */
export type ReaderMessage =
  | { type: "ready"; audit?: ConnectAuditState }
  | { type: "audit"; audit: ConnectAuditState }
  | {
    type: "records";
    records: FlowRecord[];
    events: number;
    lost: number;
    unknown: number;
    /** Flows given their process by a connect record, and audit records lost (ENOBUFS). */
    joined: number;
    auditLost: number;
  }
  | { type: "error"; message: string }
  | { type: "done" };

/** What the reader worker is started with. */
export interface ReaderStart {
  wake: number;
  netns?: string;
  receiveBufferBytes: number;
  trackFlows: boolean;
  /** Attribute each TCP and UDP flow to its socket and process (see `attributeFlow`). */
  attribute: boolean;
  /**
   * Also read the audit records of connect() (see `audit_connect.ts`); needs
   * `attribute`. "auto": only when kernel audit is already on; "on": turn it
   * on if it is off.
   */
  connectAudit: "off" | "auto" | "on";
  /** How long a flow without a process waits for its connect record (ms). */
  connectWaitMs?: number;
}

/** Whether the connect records are read, and why not. */
export interface ConnectAuditState {
  on: boolean;
  /** Times amp's rules were found missing (`auditctl -D`, an auditd restart) and added again. */
  readded?: number;
  /** Why it is off. */
  error?: string;
}

/** Makes the wake eventfd on the JS thread (its errors throw at once). */
export function makeWake(): number {
  const fd = lib().eventfd(0, EFD.CLOEXEC | EFD.NONBLOCK);
  if (fd < 0) fail("eventfd");
  return fd;
}

/** Wakes the reader so that it ends. */
export function wakeReader(wake: number): void {
  lib().write(wake, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), 8n);
}

function sockaddr(groups: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(SOCKADDR_NL.size);
  const v = new DataView(buf.buffer);
  v.setUint16(SOCKADDR_NL.nl_family, AF_NETLINK, true);
  v.setUint32(SOCKADDR_NL.nl_groups, groups, true);
  return buf;
}

/** Moves the calling thread into the named network namespace (`ip netns` name or a path). */
export function enterNetns(netns: string): void {
  const path = netns.includes("/") ? netns : `/var/run/netns/${netns}`;
  const fd = lib().open(new TextEncoder().encode(`${path}\0`), O.RDONLY | O.CLOEXEC);
  if (fd < 0) fail("open", path);
  try {
    if (lib().setns(fd, CLONE_NEWNET) !== 0) fail("setns", path);
  } finally {
    lib().close(fd);
  }
}

function openEventSocket(receiveBufferBytes: number): number {
  const c = lib();
  const sock = c.socket(AF_NETLINK, SOCK_RAW | SOCK.NONBLOCK | SOCK.CLOEXEC, NETLINK_NETFILTER);
  if (sock < 0) fail("socket", "AF_NETLINK/NETLINK_NETFILTER");
  try {
    const v = new Uint8Array(4);
    new DataView(v.buffer).setInt32(0, receiveBufferBytes, true);
    if (c.setsockopt(sock, SOL_SOCKET, SO.RCVBUFFORCE, v, 4) !== 0) {
      c.setsockopt(sock, SOL_SOCKET, SO.RCVBUF, v, 4);
    }
    const addr = sockaddr(NF_NETLINK_CONNTRACK.NEW);
    if (c.bind(sock, addr, addr.length) !== 0) fail("bind", "netlink NF_NETLINK_CONNTRACK_NEW");
    return sock;
  } catch (error) {
    c.close(sock);
    throw error;
  }
}

/** Builds netlink messages and attributes (host byte order headers, as the kernel wants). */
class MessageBuilder {
  #parts: number[] = [];

  #u16(at: number, x: number): void {
    this.#parts[at] = x & 0xff;
    this.#parts[at + 1] = (x >> 8) & 0xff;
  }

  #pad(): void {
    while (this.#parts.length % 4 !== 0) this.#parts.push(0);
  }

  /** Starts a message; returns where it starts, for `end`. */
  begin(type: number, flags: number, seq: number, family: number, resId = 0): number {
    const start = this.#parts.length;
    const h = new Uint8Array(NLMSGHDR.size + NFGENMSG.size);
    const v = new DataView(h.buffer);
    v.setUint16(NLMSGHDR.nlmsg_type, type, true);
    v.setUint16(NLMSGHDR.nlmsg_flags, flags, true);
    v.setUint32(NLMSGHDR.nlmsg_seq, seq, true);
    v.setUint8(NLMSGHDR.size + NFGENMSG.nfgen_family, family);
    v.setUint8(NLMSGHDR.size + NFGENMSG.version, NFNETLINK_V0);
    v.setUint16(NLMSGHDR.size + NFGENMSG.res_id, resId, false);
    this.#parts.push(...h);
    return start;
  }

  end(start: number): void {
    const len = this.#parts.length - start;
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, len, true);
    for (let i = 0; i < 4; i++) this.#parts[start + i] = b[i];
    this.#pad();
  }

  attr(type: number, value: Uint8Array): void {
    const start = this.#parts.length;
    this.#parts.push(0, 0, 0, 0, ...value);
    this.#u16(start + NLATTR.nla_len, NLATTR.size + value.length);
    this.#u16(start + NLATTR.nla_type, type);
    this.#pad();
  }

  str(type: number, s: string): void {
    this.attr(type, new TextEncoder().encode(`${s}\0`));
  }

  be32(type: number, x: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, x, false);
    this.attr(type, b);
  }

  nest(type: number, body: () => void): void {
    const start = this.#parts.length;
    this.#parts.push(0, 0, 0, 0);
    body();
    this.#u16(start + NLATTR.nla_len, this.#parts.length - start);
    this.#u16(start + NLATTR.nla_type, type | NLA_F.NESTED);
  }

  bytes(): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.#parts);
  }
}

const nft = (msg: number) => (NFNL_SUBSYS.NFTABLES << 8) | msg;

/**
 * One nftables transaction (`table inet amp_flow { chain out { type filter
 * hook output priority 0; ct state } }`, or its deletion); returns the
 * message and how many acks to expect.
 */
export function nftablesBatch(add: boolean): { message: Uint8Array<ArrayBuffer>; acks: number } {
  const b = new MessageBuilder();
  const req = NLM_F.REQUEST | NLM_F.ACK;
  let seq = 1;
  let s = b.begin(NFNL_MSG.BATCH_BEGIN, NLM_F.REQUEST, seq++, NFPROTO.UNSPEC, NFNL_SUBSYS.NFTABLES);
  b.end(s);
  if (add) {
    s = b.begin(nft(NFT_MSG.NEWTABLE), req | NLM_F.CREATE, seq++, NFPROTO.INET);
    b.str(NFTA_TABLE.NAME, TRACK_TABLE);
    b.end(s);
    s = b.begin(nft(NFT_MSG.NEWCHAIN), req | NLM_F.CREATE, seq++, NFPROTO.INET);
    b.str(NFTA_CHAIN.TABLE, TRACK_TABLE);
    b.str(NFTA_CHAIN.NAME, "out");
    b.nest(NFTA_CHAIN.HOOK, () => {
      b.be32(NFTA_HOOK.HOOKNUM, NF_INET.LOCAL_OUT);
      b.be32(NFTA_HOOK.PRIORITY, 0);
    });
    b.str(NFTA_CHAIN.TYPE, "filter");
    b.end(s);
    s = b.begin(nft(NFT_MSG.NEWRULE), req | NLM_F.CREATE, seq++, NFPROTO.INET);
    b.str(NFTA_RULE.TABLE, TRACK_TABLE);
    b.str(NFTA_RULE.CHAIN, "out");
    b.nest(NFTA_RULE.EXPRESSIONS, () => {
      b.nest(NFTA_LIST_ELEM, () => {
        b.str(NFTA_EXPR.NAME, "ct");
        b.nest(NFTA_EXPR.DATA, () => {
          b.be32(NFTA_CT.DREG, NFT_REG_1);
          b.be32(NFTA_CT.KEY, NFT_CT_STATE);
        });
      });
    });
    b.end(s);
  } else {
    s = b.begin(nft(NFT_MSG.DELTABLE), req, seq++, NFPROTO.INET);
    b.str(NFTA_TABLE.NAME, TRACK_TABLE);
    b.end(s);
  }
  s = b.begin(NFNL_MSG.BATCH_END, NLM_F.REQUEST, seq++, NFPROTO.UNSPEC, NFNL_SUBSYS.NFTABLES);
  b.end(s);
  return { message: b.bytes(), acks: add ? 3 : 1 };
}

/** Sends one nftables transaction on a fresh socket of the calling thread's namespace and waits for its acks. */
function runNftables(add: boolean): void {
  const c = lib();
  const sock = c.socket(AF_NETLINK, SOCK_RAW | SOCK.CLOEXEC, NETLINK_NETFILTER);
  if (sock < 0) fail("socket", "AF_NETLINK/NETLINK_NETFILTER (nftables)");
  try {
    const { message, acks } = nftablesBatch(add);
    const to = sockaddr(0);
    const n = Number(c.sendto(sock, message, BigInt(message.length), 0, to, to.length));
    if (n !== message.length) fail("sendto", "nftables batch");
    const buf = new Uint8Array(16 * 1024);
    const v = new DataView(buf.buffer);
    let acked = 0;
    while (acked < acks) {
      const r = Number(c.recv(sock, buf, BigInt(buf.length), 0));
      if (r < 0) {
        if (errno() === EINTR) continue;
        fail("recv", "nftables batch");
      }
      for (let off = 0; off + NLMSGHDR.size <= r;) {
        const len = v.getUint32(off + NLMSGHDR.nlmsg_len, true);
        if (len < NLMSGHDR.size) break;
        if (v.getUint16(off + NLMSGHDR.nlmsg_type, true) === NLMSG.ERROR) {
          const code = -v.getInt32(off + NLMSGHDR.size + NLMSGERR.error, true);
          if (code !== 0) {
            throw new SysError(
              "nftables",
              code,
              `${add ? "add" : "delete"} table inet ${TRACK_TABLE}`,
              strerror(code),
            );
          }
          acked++;
        }
        off += (len + 3) & ~3;
      }
    }
  } finally {
    c.close(sock);
  }
}

/**
 * Reads every datagram waiting on a nonblocking netlink socket into
 * `datagram`; returns how many times the kernel said records were lost
 * (ENOBUFS: the socket buffer overflowed), calling `lost` each time.
 */
function drain(
  sock: number,
  buf: Uint8Array<ArrayBuffer>,
  what: string,
  datagram: (bytes: Uint8Array) => void,
  lost?: () => void,
): number {
  const c = lib();
  let losses = 0;
  for (;;) {
    const n = Number(c.recv(sock, buf, BigInt(buf.length), MSG_DONTWAIT));
    if (n > 0) {
      datagram(buf.subarray(0, n));
      continue;
    }
    if (n === 0) return losses;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return losses;
    if (e !== ENOBUFS) throw new SysError("recv", e, what, strerror(e));
    losses++;
    lost?.();
  }
}

/**
 * The reader worker's whole life (blocks its thread): enters the namespace,
 * installs the tracking table if asked, opens the socket, says "ready", then
 * reads until `wake` is readable; undoes all of it and says "done".
 */
export function readLoop(start: ReaderStart, post: (message: ReaderMessage) => void): void {
  const c = lib();
  let sock = -1;
  let diag = -1;
  let tracking = false;
  let audit: AuditConnect | undefined;
  try {
    let auditState: ConnectAuditState | undefined;
    if (start.attribute && start.connectAudit !== "off") {
      // Before setns: the kernel sends audit records to the initial namespace's sockets only.
      try {
        audit = openAuditConnect(start.connectAudit);
        auditState = { on: true, readded: 0 };
      } catch (error) {
        auditState = { on: false, error: error instanceof Error ? error.message : String(error) };
      }
    }
    if (start.netns !== undefined) enterNetns(start.netns);
    if (start.trackFlows) {
      // A table left by an amp that did not stop cleanly is replaced, not added to.
      try {
        runNftables(false);
      } catch {
        // none there (ENOENT)
      }
      runNftables(true);
      tracking = true;
    }
    sock = openEventSocket(start.receiveBufferBytes);
    if (start.attribute) diag = openDiagSocket();
    const fds = [sock, start.wake, ...(audit ? [audit.sock] : [])];
    const pollfds = new Uint8Array(POLLFD.size * fds.length);
    const pv = new DataView(pollfds.buffer);
    fds.forEach((fd, i) => {
      pv.setInt32(i * POLLFD.size + POLLFD.fd, fd, true);
      pv.setInt16(i * POLLFD.size + POLLFD.events, POLL.IN, true);
    });
    const buf = new Uint8Array(256 * 1024);
    const auditBuf = new Uint8Array(64 * 1024);
    const joiner = new ConnectJoiner({ waitMs: start.connectWaitMs });
    const collector = new ConnectRecordCollector();
    // Records are host-wide, flows are the watched namespace's: a record of a
    // process that still runs in another namespace is dropped.
    const watchedNetns = netnsOf("thread-self");
    let expired = performance.now();
    let nextCheck = performance.now() + AUDIT_CHECK_MS;
    post(auditState ? { type: "ready", audit: auditState } : { type: "ready" });
    for (;;) {
      for (let i = 0; i < fds.length; i++) pv.setInt16(i * POLLFD.size + POLLFD.revents, 0, true);
      const deadline = Math.min(joiner.deadline ?? Infinity, audit ? nextCheck : Infinity);
      const timeout = deadline === Infinity
        ? -1
        : Math.max(0, Math.ceil(deadline - performance.now()));
      if (c.poll_blocking(pollfds, BigInt(fds.length), timeout) < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new SysError("poll", e, "netlink conntrack", strerror(e));
      }
      if (pv.getInt16(POLLFD.size + POLLFD.revents, true) !== 0) return;
      const records: FlowRecord[] = [];
      let events = 0;
      let unknown = 0;
      const lost = drain(sock, buf, "netlink conntrack", (datagram) => {
        const parsed = parseConntrackEvents(datagram);
        events += parsed.records.length;
        unknown += parsed.unknown;
        records.push(...parsed.records);
      }, () => records.push({ kind: "overflow" }));
      if (diag >= 0) {
        const owners = new Map<number, number | undefined>();
        for (const r of records) if (r.kind === "flow") attributeFlow(diag, r, owners);
      }
      let ready: FlowRecord[] = records;
      let auditLost = 0;
      const joinedBefore = joiner.joined;
      if (audit) {
        const now = performance.now();
        ready = [];
        // Records first: a flow in this batch may be the one a record waits for, or the reverse.
        const got = readAuditConnects(audit.sock, collector, auditBuf);
        auditLost = got.lost;
        for (const r of records) {
          ready.push(...(r.kind === "flow" ? joiner.addFlow(r, now) : [r]));
        }
        for (const record of got.records) {
          const ns = netnsOf(String(record.pid));
          if (ns !== undefined && ns !== watchedNetns) continue;
          ready.push(...joiner.addRecord(record, now));
        }
        ready.push(...joiner.due(now));
        for (const r of ready) {
          if (r.kind === "flow" && r.attribution === "connect") enrichFromProc(r);
        }
        if (now - expired > 1_000) {
          joiner.expire(now);
          expired = now;
        }
        if (now >= nextCheck) {
          nextCheck = now + AUDIT_CHECK_MS;
          const check = checkAuditConnect(audit);
          if (!check.on || check.readded > 0) {
            post({
              type: "audit",
              audit: check.on
                ? { on: true, readded: check.readded }
                : { on: false, error: check.error },
            });
          }
        }
      }
      if (ready.length > 0 || unknown > 0 || auditLost > 0) {
        post({
          type: "records",
          records: ready,
          events,
          lost,
          unknown,
          joined: joiner.joined - joinedBefore,
          auditLost,
        });
      }
    }
  } catch (error) {
    post({ type: "error", message: error instanceof Error ? error.message : String(error) });
  } finally {
    if (sock >= 0) c.close(sock);
    if (diag >= 0) c.close(diag);
    if (audit) closeAuditConnect(audit);
    if (tracking) {
      try {
        runNftables(false);
      } catch {
        // the namespace may be going away; nothing else to do
      }
    }
    c.close(start.wake);
    post({ type: "done" });
  }
}

/** How often the reader checks that audit is on and amp's rules are in place (ms). */
const AUDIT_CHECK_MS = 60_000;

/** The network namespace of a process (`net:[inode]`), or undefined when it is gone. */
function netnsOf(pid: string): string | undefined {
  try {
    return Deno.readLinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}

/**
 * A flow named by its connect record: if the process still runs the same
 * executable, /proc adds what the record lacks (the parent's executable,
 * the whole command line).
 */
function enrichFromProc(flow: FlowEvent): void {
  const p = flow.process;
  if (!p?.executable) return;
  const live = readProcessInfo(p.pid);
  if (live.executable && bytesEqual(live.executable, p.executable)) {
    flow.process = { ...p, ...live };
  } else if (p.ppid !== undefined && p.ppid > 0) {
    // Gone: its parent (a shell, a cron job) most often is not.
    const parent = readExe(p.ppid);
    if (parent) flow.process = { ...p, parentExecutable: parent };
  }
}

/**
 * Host-wide lock of the amp instances that use the connect rules (audit is
 * one per kernel, whatever `--root` or namespace): each holds it shared
 * while it runs; the last one out (an exclusive lock it can take without
 * waiting) removes the rules, and turns audit off again if an amp turned it
 * on (the file then says `enabled-by-amp`) and no audit daemon has
 * registered since.
 */
export const AUDIT_LOCK_PATH = "/run/amp-dfc-audit.lock";
const ENABLED_MARK = "enabled-by-amp\n";

/** The audit connect records' socket and what it holds. */
export interface AuditConnect {
  sock: number;
  /** Control socket (initial namespace), for the periodic check and the close. */
  control: number;
  /** The ownership lock (shared while running). */
  lock: number;
  rules: Uint8Array<ArrayBuffer>[];
}

let auditSeq = 0;

/** Sends one audit request and waits for its ack (and answer); returns the answer or throws the error. */
function auditCommand(sock: number, type: number, payload?: Uint8Array): AuditMessage[] {
  const c = lib();
  const seq = ++auditSeq;
  const message = auditRequest(type, seq, payload);
  const to = sockaddr(0);
  if (
    Number(c.sendto(sock, message, BigInt(message.length), 0, to, to.length)) !== message.length
  ) {
    fail("sendto", "audit");
  }
  const buf = new Uint8Array(16 * 1024);
  const answers: AuditMessage[] = [];
  for (;;) {
    const n = Number(c.recv(sock, buf, BigInt(buf.length), 0));
    if (n < 0) {
      if (errno() === EINTR) continue;
      fail("recv", "audit");
    }
    for (const m of parseAuditMessages(buf.subarray(0, n))) {
      if (m.kind === "status" && m.seq === seq) answers.push(m);
      if (m.kind === "ack" && m.seq === seq) {
        if (m.error !== 0) {
          throw new SysError("audit", m.error, `request ${type}`, strerror(m.error));
        }
        // GET answers before its ack; the others are acked only
        if (type !== AUDIT.GET || answers.length > 0) return answers;
      }
    }
    if (type === AUDIT.GET && answers.length > 0) return answers;
  }
}

/** The kernel's audit state: enabled (0 off, 1 on, 2 locked) and the audit daemon's pid (0: none). */
export function auditStatus(control: number): { enabled: number; pid: number } {
  const s = auditCommand(control, AUDIT.GET)[0];
  if (s?.kind !== "status") throw new Error("audit status: no answer");
  return { enabled: s.enabled, pid: s.pid };
}

/**
 * For tests and `amp status`-like checks: the kernel's audit state and
 * whether each of `rules` is in place (a rule found is left as it was).
 */
export function auditSnapshot(
  rules: Uint8Array[] = [],
): { enabled: number; pid: number; present: boolean[] } {
  const c = lib();
  const control = c.socket(AF_NETLINK, SOCK_RAW | SOCK.CLOEXEC, NETLINK_AUDIT);
  if (control < 0) fail("socket", "AF_NETLINK/NETLINK_AUDIT");
  try {
    const present = rules.map((rule) => {
      try {
        auditCommand(control, AUDIT.ADD_RULE, rule);
        auditCommand(control, AUDIT.DEL_RULE, rule); // it was not there: put things back
        return false;
      } catch (error) {
        if (error instanceof SysError && error.errno === EEXIST) return true;
        throw error;
      }
    });
    return { ...auditStatus(control), present };
  } finally {
    c.close(control);
  }
}

/** Adds the rules; an existing identical rule (another amp's, or one left by a crash) is fine. */
function addRules(control: number, rules: Uint8Array[]): number {
  let added = 0;
  for (const rule of rules) {
    try {
      auditCommand(control, AUDIT.ADD_RULE, rule);
      added++;
    } catch (error) {
      if (!(error instanceof SysError && error.errno === EEXIST)) throw error;
    }
  }
  return added;
}

/** The rules to use: by address family where the kernel filters on it, else by address length. */
function chooseRules(control: number): Uint8Array<ArrayBuffer>[] {
  const byFamily = connectRuleSet(Deno.build.arch, "family");
  if (!byFamily) throw new Error(`no audit connect rule for the ${Deno.build.arch} architecture`);
  try {
    addRules(control, byFamily.slice(0, 1));
    return byFamily;
  } catch (error) {
    // EINVAL: a kernel without the saddr_fam field (before 5.8)
    if (!(error instanceof SysError && error.errno === EINVAL)) throw error;
    return connectRuleSet(Deno.build.arch, "length")!;
  }
}

/**
 * Opens the audit socket of the calling thread's (initial) network
 * namespace, joins the read-only multicast group and adds amp's connect
 * rules (see `audit_connect.ts`). Audit that is off is turned on only when
 * `mode` is "on" ("auto" leaves it off and throws: the cost of audit falls
 * on every syscall of every new process). Throws, having undone its steps,
 * when any of that is refused.
 */
export function openAuditConnect(mode: "auto" | "on"): AuditConnect {
  const c = lib();
  const a: AuditConnect = { sock: -1, control: -1, lock: -1, rules: [] };
  try {
    a.lock = openat(
      AT.FDCWD,
      bytePath(AUDIT_LOCK_PATH),
      LIBC_O.RDWR | LIBC_O.CREAT | LIBC_O.CLOEXEC | LIBC_O.NOFOLLOW,
      0o600,
    );
    flock(a.lock, LOCK.EX); // one instance at a time sets up or tears down
    // Control requests go on their own socket, so that multicast records do not mix with acks.
    a.control = c.socket(AF_NETLINK, SOCK_RAW | SOCK.CLOEXEC, NETLINK_AUDIT);
    if (a.control < 0) fail("socket", "AF_NETLINK/NETLINK_AUDIT");
    a.sock = c.socket(AF_NETLINK, SOCK_RAW | SOCK.NONBLOCK | SOCK.CLOEXEC, NETLINK_AUDIT);
    if (a.sock < 0) fail("socket", "AF_NETLINK/NETLINK_AUDIT");
    const v = new Uint8Array(4);
    new DataView(v.buffer).setInt32(0, 4 * 1024 * 1024, true);
    if (c.setsockopt(a.sock, SOL_SOCKET, SO.RCVBUFFORCE, v, 4) !== 0) {
      c.setsockopt(a.sock, SOL_SOCKET, SO.RCVBUF, v, 4);
    }
    const addr = sockaddr(1 << (AUDIT_NLGRP.READLOG - 1));
    if (c.bind(a.sock, addr, addr.length) !== 0) fail("bind", "audit multicast group readlog");
    const status = auditStatus(a.control);
    if (status.enabled === 2) {
      throw new Error("audit rules are locked (enabled 2): cannot add the connect rules");
    }
    if (status.enabled === 0) {
      if (mode === "auto") {
        throw new Error(
          'kernel audit is off (dfc.connectAudit "on" turns it on while amp runs; it costs ' +
            "every syscall of new processes a little)",
        );
      }
      auditCommand(a.control, AUDIT.SET, enableRequest(1));
      Deno.writeTextFileSync(AUDIT_LOCK_PATH, ENABLED_MARK);
    }
    a.rules = chooseRules(a.control);
    addRules(a.control, a.rules);
    flock(a.lock, LOCK.SH);
    return a;
  } catch (error) {
    closeAuditConnect(a);
    throw error;
  }
}

/**
 * Re-adds the rules if something removed them (`auditctl -D`, an auditd
 * restart loading its rules); says whether audit is still usable.
 */
export function checkAuditConnect(
  a: AuditConnect,
): { on: boolean; readded: number; error?: string } {
  try {
    const status = auditStatus(a.control);
    if (status.enabled === 0) {
      return { on: false, readded: 0, error: "kernel audit was turned off" };
    }
    return { on: true, readded: addRules(a.control, a.rules) };
  } catch (error) {
    return { on: false, readded: 0, error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Closes the sockets; if no other amp uses the rules, removes them and turns
 * audit off if an amp turned it on and no audit daemon registered since.
 * Never throws.
 */
export function closeAuditConnect(a: AuditConnect): void {
  const c = lib();
  let last = false;
  if (a.lock >= 0) {
    try {
      flock(a.lock, LOCK.EX | LOCK.NB);
      last = true;
    } catch {
      // another amp holds it shared: it still needs the rules
    }
  }
  if (last && a.control >= 0) {
    for (const rule of a.rules) {
      try {
        auditCommand(a.control, AUDIT.DEL_RULE, rule);
      } catch {
        // already gone (an administrator's auditctl -D): nothing to undo
      }
    }
    try {
      if (Deno.readTextFileSync(AUDIT_LOCK_PATH) === ENABLED_MARK) {
        if (auditStatus(a.control).pid === 0) auditCommand(a.control, AUDIT.SET, enableRequest(0));
        Deno.writeTextFileSync(AUDIT_LOCK_PATH, "");
      }
    } catch {
      // locked since, or refused: left enabled
    }
  }
  if (a.sock >= 0) c.close(a.sock);
  if (a.control >= 0) c.close(a.control);
  if (a.lock >= 0) c.close(a.lock);
  a.sock = a.control = a.lock = -1;
  a.rules = [];
}

/** Reads every pending datagram of the audit socket into the collector; returns completed connects. */
export function readAuditConnects(
  sock: number,
  collector: ConnectRecordCollector,
  buf: Uint8Array<ArrayBuffer>,
): { records: ConnectRecord[]; lost: number } {
  const records: ConnectRecord[] = [];
  const lost = drain(sock, buf, "netlink audit", (datagram) => {
    for (const m of parseAuditMessages(datagram)) {
      if (m.kind !== "record") continue;
      const r = collector.add(m.type, m.text);
      if (r) records.push(r);
    }
  });
  return { records, lost };
}

/** A `NETLINK_SOCK_DIAG` socket of the calling thread's network namespace (blocking: the kernel answers at once). */
export function openDiagSocket(): number {
  const sock = lib().socket(AF_NETLINK, SOCK_RAW | SOCK.CLOEXEC, NETLINK_SOCK_DIAG);
  if (sock < 0) fail("socket", "AF_NETLINK/NETLINK_SOCK_DIAG");
  return sock;
}

let diagSeq = 0;

/** Sends one sock_diag request and reads its whole answer (up to the socket, error or end of dump). */
function diagQuery(
  sock: number,
  tuple: DiagTuple,
  options: { dump?: boolean; destroy?: boolean },
): DiagAnswer {
  const c = lib();
  const message = diagRequest(tuple, { seq: ++diagSeq, ...options });
  const to = sockaddr(0);
  if (
    Number(c.sendto(sock, message, BigInt(message.length), 0, to, to.length)) !== message.length
  ) {
    fail("sendto", "sock_diag");
  }
  const all: DiagAnswer = { sockets: [], done: false };
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = Number(c.recv(sock, buf, BigInt(buf.length), 0));
    if (n < 0) {
      if (errno() === EINTR) continue;
      fail("recv", "sock_diag");
    }
    const a = parseDiagAnswer(buf.subarray(0, n));
    all.sockets.push(...a.sockets);
    if (a.error !== undefined) all.error = a.error;
    all.done = a.done;
    if (!options.dump || a.done || a.error !== undefined || n === 0) return all;
  }
}

/** Orders to try: the flow's src as the local side first (outbound), then its dst (inbound). */
const SIDES = ["src", "dst"] as const;

function swapped(t: DiagTuple): DiagTuple {
  return { ...t, src: t.dst, srcPort: t.dstPort, dst: t.src, dstPort: t.srcPort };
}

/** The id to send so that the kernel finds the socket whose local side is `local` (UDP takes it swapped). */
function lookupId(t: DiagTuple, local: "src" | "dst", swap: boolean): DiagTuple {
  const asLocal = local === "src" ? t : swapped(t);
  return swap ? swapped(asLocal) : asLocal;
}

/**
 * Finds the local socket of a TCP or UDP flow with exact sock_diag lookups
 * (outbound, then inbound; for UDP both id orders, the kernel's UDP lookup
 * reads the id swapped), else for UDP a dump filtered here.
 */
export function findSocket(sock: number, tuple: DiagTuple): DiagSocket | undefined {
  const orders = tuple.protocol === "udp" ? [true, false] : [false];
  let exactWorks = true;
  for (const local of SIDES) {
    for (const swap of orders) {
      const a = diagQuery(sock, lookupId(tuple, local, swap), {});
      if (a.error !== undefined && a.error !== ENOENT) exactWorks = false;
      const s = a.sockets.find((x) => matchesTuple(x, tuple, local));
      if (s) return s;
    }
  }
  if (tuple.protocol === "udp" && !exactWorks) {
    const a = diagQuery(sock, tuple, { dump: true });
    for (const local of SIDES) {
      const s = a.sockets.find((x) => matchesTuple(x, tuple, local));
      if (s) return s;
    }
  }
  return undefined;
}

/**
 * The pid holding `socket:[inode]`: scans /proc/PID/fd, newest pids first
 * (a flow is most often a young process's), stopping at the first match;
 * every socket inode passed on the way is remembered in `owners` (one batch).
 */
export function findSocketOwner(
  inode: number,
  owners: Map<number, number | undefined>,
  proc = "/proc",
): number | undefined {
  if (owners.has(inode)) return owners.get(inode);
  const pids: number[] = [];
  for (const e of Deno.readDirSync(proc)) {
    const pid = Number(e.name);
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  pids.sort((a, b) => b - a);
  for (const pid of pids) {
    let fds: Iterable<Deno.DirEntry>;
    try {
      fds = Deno.readDirSync(`${proc}/${pid}/fd`);
    } catch {
      continue; // gone, or a kernel thread
    }
    try {
      for (const fd of fds) {
        let target: string;
        try {
          target = Deno.readLinkSync(`${proc}/${pid}/fd/${fd.name}`);
        } catch {
          continue;
        }
        if (!target.startsWith("socket:[")) continue;
        const found = Number(target.slice(8, -1));
        if (!owners.has(found)) owners.set(found, pid);
        if (found === inode) return pid;
      }
    } catch {
      // the process went away while we read its fds
    }
  }
  owners.set(inode, undefined);
  return undefined;
}

/**
 * Attributes a new TCP or UDP flow in place (see `FlowEvent.attribution`):
 * its socket by sock_diag, the process holding it from /proc, whose facts
 * are read at once so that they outlive it. Never throws.
 */
export function attributeFlow(
  sock: number,
  flow: FlowEvent,
  owners: Map<number, number | undefined>,
): void {
  if (flow.protocol !== "tcp" && flow.protocol !== "udp") return;
  let found: DiagSocket | undefined;
  try {
    found = findSocket(sock, { ...flow, protocol: flow.protocol });
  } catch {
    found = undefined;
  }
  if (!found || found.inode === 0) {
    flow.attribution = "no-socket";
    return;
  }
  flow.socket = { inode: found.inode, uid: found.uid };
  const pid = findSocketOwner(found.inode, owners);
  if (pid === undefined) {
    flow.attribution = "no-process";
    return;
  }
  const info = readProcessInfo(pid);
  flow.process = info;
  flow.attribution = "socket";
}

/** What {@linkcode destroySocket} answers. */
export interface DestroyResult {
  ok: boolean;
  /** Why not: the errno text, with what it means here. */
  error?: string;
}

/**
 * Closes the local socket of a flow (`SOCK_DESTROY`: TCP sends a reset and
 * the owner's calls fail with ECONNABORTED; UDP calls fail likewise), on a
 * sock_diag socket of the flow's namespace. Needs CAP_NET_ADMIN and a kernel
 * built with CONFIG_INET_DIAG_DESTROY.
 */
export function destroySocket(sock: number, tuple: DiagTuple): DestroyResult {
  const s = findSocket(sock, tuple);
  if (!s) return { ok: false, error: "No socket for this flow: ENOENT" };
  const local = matchesTuple(s, tuple, "src") ? tuple : swapped(tuple);
  // The UDP lookup behind SOCK_DESTROY reads the id swapped, as for SOCK_DIAG_BY_FAMILY.
  const id = tuple.protocol === "udp" ? swapped(local) : local;
  const a = diagQuery(sock, id, { destroy: true });
  if (a.error === undefined || a.error === 0) return { ok: true };
  const name = strerror(a.error);
  if (a.error === EOPNOTSUPP) {
    return {
      ok: false,
      error: `SOCK_DESTROY refused: ${name} (EOPNOTSUPP: kernel without CONFIG_INET_DIAG_DESTROY)`,
    };
  }
  return { ok: false, error: `SOCK_DESTROY failed: ${name} (errno ${a.error})` };
}
