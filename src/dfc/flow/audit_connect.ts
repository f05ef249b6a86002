/**
 * Who called `connect()`: the audit records of amp's connect rule, parsed,
 * and paired with conntrack flows. Pure: bytes and records in, records
 * out, tested on byte fixtures; the socket is in `_native.ts`.
 *
 * Why audit: conntrack reports a flow the moment its first packet leaves,
 * but names no process; sock_diag and /proc name the process only while
 * its socket is open. A client that connects, sends and exits within a
 * millisecond (a `bash` `/dev/tcp` one-liner, a dropper's beacon) has
 * closed both before the flow event is read. The kernel's audit subsystem
 * writes a record at the exit of every audited syscall, with the pid,
 * parent, uid, executable, command line (PROCTITLE) and the address passed
 * in (SOCKADDR), all taken in the caller's context, so nothing is lost when
 * the process is gone. amp adds two exit rules for `connect` (the address
 * family AF_INET or AF_INET6, so not the far more frequent Unix socket
 * connects; on kernels before 5.8 the usual address lengths 16 and 28),
 * keyed `amp-dfc`, and reads the records from the read-only multicast group
 * (`AUDIT_NLGRP_READLOG`), which leaves an installed auditd in charge of the
 * audit log: amp never registers as the audit daemon. Records of any rule
 * count (the kernel stops at the first matching rule, so an administrator's
 * connect rule may come first). The reader checks every minute that audit is
 * on and re-adds the rules if something removed them (`auditctl -D`).
 *
 * Cost and default: with audit on, every syscall of a process started since
 * takes the kernel's audit path (measured here: about 130 ns more per
 * syscall, and ~50 µs more per audited connect). So `dfc.connectAudit`
 * "auto" (the default) uses it only where audit is already on (hosts that
 * run auditd); "on" turns audit on while amp runs and off again at stop.
 * Processes started before audit was first enabled since boot carry no
 * audit context and are not recorded (their flows still get sock_diag's
 * attribution). A locked configuration (`enabled 2`) refuses new rules.
 *
 * Ownership: the rules and the audit switch are host-wide, while several
 * amp daemons may run (other `--root`s, tests): each holds
 * /run/amp-dfc-audit.lock shared, and the last one out removes the rules
 * and turns audit off if an amp turned it on and no audit daemon registered
 * since.
 *
 * What an administrator sees: with auditd running, the records also land in
 * /var/log/audit/audit.log under key `amp-dfc` (`ausearch -k amp-dfc`);
 * without one, the kernel copies a rate-limited few of them to its log.
 *
 * Pairing: a record and a flow pair when they have the same remote address
 * and port and arrive within a short window of each other (a flow waits
 * 150 ms for its record, a record 500 ms for its flow), oldest first
 * (connects to one address and port leave in the order they were made).
 * Records of connects that made no flow (EISCONN, EALREADY, ENETUNREACH …)
 * are dropped, and so are records of processes that still run in another
 * network namespace than the watched one. A flow whose socket sock_diag
 * already tied to a pid consumes that pid's record, so that it cannot be
 * paired with the next flow. What remains uncertain: two processes in
 * different namespaces, both gone, connecting to the same address and port
 * within the window can be confused.
 *
 * @module
 */

import {
  AUDIT,
  AUDIT_ALWAYS,
  AUDIT_ARCH,
  AUDIT_EQUAL,
  AUDIT_FIELD,
  AUDIT_FILTER,
  AUDIT_RULE_DATA,
  AUDIT_STATUS,
  AUDIT_STATUS_LAYOUT,
  SYS_CONNECT,
} from "../../../ffi/audit.ts";
import { NLM_F, NLMSG, NLMSG_ALIGNTO, NLMSGERR, NLMSGHDR } from "../../../ffi/netlink.ts";
import { formatCommandLine, type ProcessInfo } from "../../protect/process_info.ts";
import { type FlowEvent, formatIpv6 } from "./conntrack_events.ts";

const decoder = new TextDecoder();

/** The filter key of amp's rules (`ausearch -k amp-dfc`). */
export const AUDIT_KEY = "amp-dfc";

/** What one audited `connect()` said. */
export interface ConnectRecord {
  /** The audit event serial. */
  serial: number;
  pid: number;
  ppid?: number;
  uid?: number;
  /** The executable's path as bytes. */
  executable?: Uint8Array;
  comm?: string;
  /** argv from PROCTITLE (the kernel keeps the first 128 bytes). */
  commandLine?: string;
  /** The syscall's return value (0, or -EINPROGRESS for a nonblocking connect, or an error). */
  exit?: number;
  family: 4 | 6;
  /** The address and port passed to connect(). */
  address: string;
  port: number;
}

/** `arch` and connect's syscall number for a Deno architecture name. */
function archOf(arch: string): { arch: number; sys: number } | undefined {
  return arch === "x86_64"
    ? { arch: AUDIT_ARCH.X86_64, sys: SYS_CONNECT.X86_64 }
    : arch === "aarch64"
    ? { arch: AUDIT_ARCH.AARCH64, sys: SYS_CONNECT.AARCH64 }
    : undefined;
}

/**
 * The syscall rules for this machine's architecture (undefined where amp
 * does not know them): by the address's family (AF_INET, AF_INET6: every
 * IPv4 and IPv6 connect, whatever length the caller passes), or, on kernels
 * before 5.8 without that field, by the usual address lengths (16, 28).
 */
export function connectRuleSet(
  arch: string = Deno.build.arch,
  by: "family" | "length" = "family",
): Uint8Array<ArrayBuffer>[] | undefined {
  const a = archOf(arch);
  if (!a) return undefined;
  return by === "family"
    ? [2, 10].map((family) => connectRule(a.arch, a.sys, AUDIT_FIELD.SADDR_FAM, family))
    : [16, 28].map((len) => connectRule(a.arch, a.sys, AUDIT_FIELD.ARG2, len));
}

/** One `audit_rule_data`: exit, always, syscall `sys`, `arch`, `field == value`, key amp-dfc. */
export function connectRule(
  arch: number,
  sys: number,
  field: number,
  value: number,
): Uint8Array<ArrayBuffer> {
  const key = new TextEncoder().encode(AUDIT_KEY);
  const buf = new Uint8Array(AUDIT_RULE_DATA.size + key.length);
  const v = new DataView(buf.buffer);
  v.setUint32(AUDIT_RULE_DATA.flags, AUDIT_FILTER.EXIT, true);
  v.setUint32(AUDIT_RULE_DATA.action, AUDIT_ALWAYS, true);
  v.setUint32(AUDIT_RULE_DATA.mask + 4 * Math.floor(sys / 32), 1 << (sys % 32), true);
  const fields: [number, number][] = [
    [AUDIT_FIELD.ARCH, arch],
    [field, value],
    [AUDIT_FIELD.FILTERKEY, key.length],
  ];
  fields.forEach(([field, value], i) => {
    v.setUint32(AUDIT_RULE_DATA.fields + 4 * i, field, true);
    v.setUint32(AUDIT_RULE_DATA.values + 4 * i, value >>> 0, true);
    v.setUint32(AUDIT_RULE_DATA.fieldflags + 4 * i, AUDIT_EQUAL, true);
  });
  v.setUint32(AUDIT_RULE_DATA.field_count, fields.length, true);
  v.setUint32(AUDIT_RULE_DATA.buflen, key.length, true);
  buf.set(key, AUDIT_RULE_DATA.buf);
  return buf;
}

/** A request to the audit socket: `nlmsghdr` (REQUEST | ACK) and `payload`. */
export function auditRequest(
  type: number,
  seq: number,
  payload: Uint8Array = new Uint8Array(),
): Uint8Array<ArrayBuffer> {
  const len = NLMSGHDR.size + payload.length;
  const buf = new Uint8Array((len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1));
  const v = new DataView(buf.buffer);
  v.setUint32(NLMSGHDR.nlmsg_len, len, true);
  v.setUint16(NLMSGHDR.nlmsg_type, type, true);
  v.setUint16(NLMSGHDR.nlmsg_flags, NLM_F.REQUEST | NLM_F.ACK, true);
  v.setUint32(NLMSGHDR.nlmsg_seq, seq, true);
  buf.set(payload, NLMSGHDR.size);
  return buf;
}

/** `struct audit_status` setting only `enabled`. */
export function enableRequest(enabled: 0 | 1): Uint8Array<ArrayBuffer> {
  const s = new Uint8Array(AUDIT_STATUS_LAYOUT.size);
  const v = new DataView(s.buffer);
  v.setUint32(AUDIT_STATUS_LAYOUT.mask, AUDIT_STATUS.ENABLED, true);
  v.setUint32(AUDIT_STATUS_LAYOUT.enabled, enabled, true);
  return s;
}

/** One message read from the audit socket. */
export type AuditMessage =
  | { kind: "ack"; seq: number; error: number }
  | { kind: "status"; seq: number; enabled: number; pid: number }
  | { kind: "record"; type: number; text: string };

/** Splits a datagram from the audit socket into messages; malformed tails are dropped. */
export function parseAuditMessages(buf: Uint8Array): AuditMessage[] {
  const out: AuditMessage[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLMSGHDR.size <= buf.length) {
    const len = v.getUint32(off + NLMSGHDR.nlmsg_len, true);
    if (len < NLMSGHDR.size || off + len > buf.length) break;
    const type = v.getUint16(off + NLMSGHDR.nlmsg_type, true);
    const seq = v.getUint32(off + NLMSGHDR.nlmsg_seq, true);
    const body = buf.subarray(off + NLMSGHDR.size, off + len);
    if (type === NLMSG.ERROR && body.length >= 4) {
      out.push({
        kind: "ack",
        seq,
        error: -v.getInt32(off + NLMSGHDR.size + NLMSGERR.error, true),
      });
    } else if (type === AUDIT.GET && body.length >= AUDIT_STATUS_LAYOUT.pid + 4) {
      const b = new DataView(body.buffer, body.byteOffset, body.byteLength);
      out.push({
        kind: "status",
        seq,
        enabled: b.getUint32(AUDIT_STATUS_LAYOUT.enabled, true),
        pid: b.getUint32(AUDIT_STATUS_LAYOUT.pid, true),
      });
    } else if (type >= AUDIT.SYSCALL && type < 2100) {
      let end = body.length;
      while (end > 0 && body[end - 1] === 0) end--;
      out.push({ kind: "record", type, text: decoder.decode(body.subarray(0, end)) });
    }
    off += (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
  }
  return out;
}

/** `audit(SECONDS.MILLIS:SERIAL): ` at the start of a record; the serial. */
function recordSerial(text: string): { serial: number; rest: string } | undefined {
  const m = /^audit\(\d+\.\d+:(\d+)\):\s*/.exec(text);
  return m ? { serial: Number(m[1]), rest: text.slice(m[0].length) } : undefined;
}

/** A field value as the kernel writes it: "quoted", HEX (untrusted strings with odd bytes) or plain. */
function fieldBytes(raw: string): Uint8Array | undefined {
  if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) {
    return new TextEncoder().encode(raw.slice(1, -1));
  }
  if (raw === "(null)" || raw.length % 2 !== 0 || !/^[0-9A-Fa-f]+$/.test(raw)) return undefined;
  const out = new Uint8Array(raw.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(raw.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** `key=value` pairs of a record (values with spaces are quoted or hex by the kernel). */
export function recordFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/([A-Za-z0-9_-]+)=("[^"]*"|\S+)/g)) {
    if (!out.has(m[1])) out.set(m[1], m[2]);
  }
  return out;
}

/** An IPv4 or IPv6 `struct sockaddr` (as SOCKADDR's `saddr` bytes) as address and port. */
export function parseSockaddr(
  b: Uint8Array,
): { family: 4 | 6; address: string; port: number } | undefined {
  if (b.length < 8) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = v.getUint16(0, true);
  const port = v.getUint16(2, false);
  if (family === 2) return { family: 4, address: b.subarray(4, 8).join("."), port };
  if (family === 10 && b.length >= 24) {
    const a = b.subarray(8, 24);
    // An IPv4-mapped address leaves as an IPv4 flow, and conntrack reports it so.
    if (a.subarray(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff) {
      return { family: 4, address: a.subarray(12).join("."), port };
    }
    return { family: 6, address: formatIpv6(a), port };
  }
  return undefined;
}

interface Partial {
  syscall?: Map<string, string>;
  sockaddr?: { family: 4 | 6; address: string; port: number };
  proctitle?: Uint8Array;
}

/** Most incomplete events kept (records of one event arrive together; this bounds a lost EOE). */
const MAX_PARTIAL = 1024;

/**
 * connect()'s return values that mean a packet left (or was about to):
 * success, in progress (nonblocking), refused, timed out, host unreachable
 * and interrupted. The others (EISCONN, EALREADY, ENETUNREACH, EACCES, …)
 * made no new flow, so their records would only pair with someone else's.
 */
const FLOW_EXITS = new Set([0, -115, -111, -110, -113, -4]);

/**
 * Gathers the records of each audit event (they share a serial, and EOE
 * ends them) and yields the IPv4 and IPv6 connects of this architecture.
 * Any rule's records count, not only amp's: the kernel stops at the first
 * matching exit rule, so with an administrator's connect rule ahead of
 * amp's the record carries the other key.
 */
export class ConnectRecordCollector {
  readonly #partial = new Map<number, Partial>();
  readonly #arch: string;
  readonly #sys: string;
  /** Records skipped as unreadable. */
  unknown = 0;

  constructor(arch: string = Deno.build.arch) {
    const a = archOf(arch);
    this.#arch = (a?.arch ?? 0).toString(16);
    this.#sys = String(a?.sys ?? -1);
  }

  /** Takes one record; returns the connect it completed, if any. */
  add(type: number, text: string): ConnectRecord | undefined {
    const head = recordSerial(text);
    if (!head) {
      this.unknown++;
      return undefined;
    }
    if (type === AUDIT.EOE) {
      const p = this.#partial.get(head.serial);
      this.#partial.delete(head.serial);
      return p ? this.#complete(head.serial, p) : undefined;
    }
    if (type !== AUDIT.SYSCALL && type !== AUDIT.SOCKADDR && type !== AUDIT.PROCTITLE) {
      return undefined;
    }
    let p = this.#partial.get(head.serial);
    if (!p) {
      if (type !== AUDIT.SYSCALL) return undefined; // not one of ours: SYSCALL comes first
      const f = recordFields(head.rest);
      if (f.get("syscall") !== this.#sys || f.get("arch") !== this.#arch) return undefined;
      p = { syscall: f };
      this.#partial.set(head.serial, p);
      if (this.#partial.size > MAX_PARTIAL) {
        this.#partial.delete(this.#partial.keys().next().value!);
        this.unknown++;
      }
      return undefined;
    }
    const f = recordFields(head.rest);
    if (type === AUDIT.SOCKADDR) {
      const raw = f.get("saddr");
      const bytes = raw ? fieldBytes(raw) : undefined;
      p.sockaddr = bytes ? parseSockaddr(bytes) : undefined;
    } else if (type === AUDIT.PROCTITLE) {
      const raw = f.get("proctitle");
      p.proctitle = raw ? fieldBytes(raw) : undefined;
    }
    return undefined;
  }

  #complete(serial: number, p: Partial): ConnectRecord | undefined {
    const f = p.syscall;
    if (!f || !p.sockaddr) return undefined; // a Unix or other family address: not a flow
    const num = (k: string) => {
      const x = f.get(k);
      return x !== undefined && /^-?\d+$/.test(x) ? Number(x) : undefined;
    };
    const pid = num("pid");
    if (pid === undefined) {
      this.unknown++;
      return undefined;
    }
    const exit = num("exit");
    if (exit !== undefined && !FLOW_EXITS.has(exit)) return undefined;
    const exe = f.get("exe");
    const comm = f.get("comm");
    return {
      serial,
      pid,
      ppid: num("ppid"),
      uid: num("uid"),
      executable: exe ? fieldBytes(exe) : undefined,
      comm: comm ? decoder.decode(fieldBytes(comm)) : undefined,
      commandLine: p.proctitle ? formatCommandLine(p.proctitle) : undefined,
      exit,
      ...p.sockaddr,
    };
  }
}

/** The facts of a process as its connect record gave them. */
export function processFromRecord(r: ConnectRecord): ProcessInfo {
  const p: ProcessInfo = { pid: r.pid };
  if (r.ppid !== undefined) p.ppid = r.ppid;
  if (r.uid !== undefined) p.uid = r.uid;
  if (r.executable) p.executable = r.executable;
  if (r.commandLine !== undefined) p.commandLine = r.commandLine;
  return p;
}

interface Waiting<T> {
  item: T;
  at: number;
}

/** Options of {@linkcode ConnectJoiner}. */
export interface ConnectJoinerOptions {
  /** How long a flow without a process waits for its record (ms). Default 150. */
  waitMs?: number;
  /** How long a record (or a claim) waits for its flow (ms). Default 500. */
  keepMs?: number;
  /** Most records and claims kept; the oldest go first. Default 16384. */
  max?: number;
}

/**
 * Joins conntrack flows with connect records (see the module comment): a
 * TCP or UDP flow that sock_diag could not tie to a process waits up to
 * `waitMs` for the record of the connect that made it; a record waits up to
 * `keepMs` for its flow. A flow sock_diag did tie to a pid claims that
 * pid's record, now or when it comes. Pure: the caller passes the time.
 */
export class ConnectJoiner {
  readonly #records = new Map<string, Waiting<ConnectRecord>[]>();
  readonly #claims = new Map<string, Waiting<number>[]>();
  #flows: Waiting<FlowEvent>[] = [];
  #kept = 0;
  readonly #waitMs: number;
  readonly #keepMs: number;
  readonly #max: number;
  /** Flows given a process from a record. */
  joined = 0;
  /** Flows that waited in vain. */
  unjoined = 0;

  constructor(options: ConnectJoinerOptions = {}) {
    this.#waitMs = options.waitMs ?? 150;
    this.#keepMs = options.keepMs ?? 500;
    this.#max = options.max ?? 16_384;
  }

  /** Flows waiting for a record. */
  get waiting(): number {
    return this.#flows.length;
  }

  /** When the oldest waiting flow is due, if any. */
  get deadline(): number | undefined {
    return this.#flows.length > 0 ? this.#flows[0].at + this.#waitMs : undefined;
  }

  /** Takes a new flow; returns the flows ready now (it, unless it waits). */
  addFlow(flow: FlowEvent, now: number): FlowEvent[] {
    if (flow.protocol !== "tcp" && flow.protocol !== "udp") return [flow];
    const key = `${flow.dst}|${flow.dstPort}`;
    if (flow.attribution === "socket" && flow.process) {
      if (!this.#takeRecord(key, now, flow.process.pid)) {
        this.#push(this.#claims, key, flow.process.pid, now);
      }
      return [flow];
    }
    const record = this.#takeRecord(key, now);
    if (record) return [this.#join(flow, record)];
    this.#flows.push({ item: flow, at: now });
    return [];
  }

  /** Takes a connect record; returns the flow it completed, if one was waiting. */
  addRecord(record: ConnectRecord, now: number): FlowEvent[] {
    const key = `${record.address}|${record.port}`;
    const claims = this.#fresh(this.#claims, key, now);
    const c = claims?.findIndex((w) => w.item === record.pid) ?? -1;
    if (c >= 0) {
      claims!.splice(c, 1);
      this.#kept--;
      if (claims!.length === 0) this.#claims.delete(key);
      return [];
    }
    const i = this.#flows.findIndex((w) =>
      `${w.item.dst}|${w.item.dstPort}` === key && now - w.at <= this.#waitMs
    );
    if (i >= 0) {
      const [w] = this.#flows.splice(i, 1);
      return [this.#join(w.item, record)];
    }
    this.#push(this.#records, key, record, now);
    return [];
  }

  /** The flows whose wait is over, as they are. */
  due(now: number): FlowEvent[] {
    const out: FlowEvent[] = [];
    while (this.#flows.length > 0 && now - this.#flows[0].at >= this.#waitMs) {
      out.push(this.#flows.shift()!.item);
      this.unjoined++;
    }
    return out;
  }

  #join(flow: FlowEvent, record: ConnectRecord): FlowEvent {
    flow.process = processFromRecord(record);
    flow.attribution = "connect";
    this.joined++;
    return flow;
  }

  #push<T>(map: Map<string, Waiting<T>[]>, key: string, item: T, now: number): void {
    let list = map.get(key);
    if (!list) map.set(key, list = []);
    list.push({ item, at: now });
    if (++this.#kept > this.#max) this.#expire(now, true);
  }

  /** The list under `key` without its expired entries (kept count adjusted). */
  #fresh<T>(map: Map<string, Waiting<T>[]>, key: string, now: number): Waiting<T>[] | undefined {
    const list = map.get(key);
    if (!list) return undefined;
    const fresh = list.filter((w) => now - w.at <= this.#keepMs);
    this.#kept -= list.length - fresh.length;
    if (fresh.length === 0) {
      map.delete(key);
      return undefined;
    }
    map.set(key, fresh);
    return fresh;
  }

  #takeRecord(key: string, now: number, pid?: number): ConnectRecord | undefined {
    const list = this.#fresh(this.#records, key, now);
    if (!list) return undefined;
    const i = pid === undefined ? 0 : list.findIndex((w) => w.item.pid === pid);
    if (i < 0) return undefined;
    const [w] = list.splice(i, 1);
    this.#kept--;
    if (list.length === 0) this.#records.delete(key);
    return w.item;
  }

  /** Forgets expired records and claims; under `pressure` the oldest half as well. */
  #expire(now: number, pressure: boolean): void {
    for (const map of [this.#records, this.#claims] as Map<string, Waiting<unknown>[]>[]) {
      for (const key of [...map.keys()]) this.#fresh(map, key, now);
    }
    if (!pressure) return;
    for (const map of [this.#records, this.#claims] as Map<string, Waiting<unknown>[]>[]) {
      for (const [key, list] of map) {
        if (this.#kept <= this.#max / 2) return;
        this.#kept -= list.length;
        map.delete(key);
      }
    }
  }

  /** Forgets expired records and claims (call now and then). */
  expire(now: number): void {
    this.#expire(now, false);
  }
}
