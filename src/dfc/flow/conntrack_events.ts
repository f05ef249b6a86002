/**
 * Parses ctnetlink event datagrams (`NETLINK_NETFILTER`, subsystem
 * `NFNL_SUBSYS_CTNETLINK`) into flow records. Pure: bytes in, records out,
 * tested on byte fixtures. Each netlink message is `nlmsghdr`, `nfgenmsg`,
 * then attributes (`nlattr`, 4-byte aligned, nested ones flagged
 * `NLA_F_NESTED`). Only the original direction's tuple is read: it is the
 * flow as its first packet had it (who connected to whom).
 *
 * Anything short, malformed or of an unknown type is skipped and counted in
 * `unknown`, never thrown: one odd message must not stop the source.
 *
 * @module
 */

import {
  CTA,
  CTA_IP,
  CTA_PROTO,
  CTA_TUPLE,
  IPCTNL_MSG,
  NFGENMSG,
  NFNL_SUBSYS,
  NLA_F,
  NLATTR,
  NLM_F,
  NLMSG,
  NLMSG_ALIGNTO,
  NLMSGHDR,
} from "../../../ffi/netlink.ts";
import type { ProcessInfo } from "../../protect/process_info.ts";

/** The transport protocol of a flow: a name for the common ones, else the IP protocol number. */
export type FlowProtocol = "tcp" | "udp" | "icmp" | "icmpv6" | number;

/** A new flow seen by conntrack, in the direction of its first packet. */
export interface FlowEvent {
  kind: "flow";
  family: 4 | 6;
  protocol: FlowProtocol;
  /** Source address as text (IPv6 in RFC 5952 form). */
  src: string;
  dst: string;
  /** 0 when the protocol has no ports (ICMP). */
  srcPort: number;
  dstPort: number;
  /** The conntrack id (`CTA_ID`), when the kernel sent it. */
  id?: number;
  /** The conntrack zone (`CTA_ZONE`), when not the default. */
  zone?: number;
  /**
   * How far process attribution got (TCP and UDP flows, done by the flow
   * source's reader the moment the event arrives; absent when it was not
   * attempted): "socket" — the flow's socket and the process holding it were
   * found (`socket` and `process` set); "no-process" — the socket was found
   * but no process holds it any more (`socket` set); "no-socket" — sock_diag
   * knows no socket for the tuple (closed already, or a time-wait or orphaned
   * one without an inode); "connect" — the socket was gone, and the process
   * comes from the audit record of its `connect()` (see `audit_connect.ts`).
   */
  attribution?: FlowAttribution;
  /** The flow's local socket (`inet_diag_msg`): its inode and owner uid. */
  socket?: { inode: number; uid: number };
  /** The process holding the socket, read from /proc when the flow was seen. */
  process?: ProcessInfo;
}

/** See {@linkcode FlowEvent.attribution}. */
export type FlowAttribution = "socket" | "connect" | "no-socket" | "no-process";

/** Events were lost: the socket buffer overflowed (ENOBUFS) or the queue was full. */
export interface FlowOverflow {
  kind: "overflow";
}

/** What a flow source yields. */
export type FlowRecord = FlowEvent | FlowOverflow;

/** The result of {@linkcode parseConntrackEvents}. */
export interface ConntrackParse {
  records: FlowEvent[];
  /** Messages or attributes skipped because they were short, malformed or unknown. */
  unknown: number;
}

const CT_NEW_TYPE = (NFNL_SUBSYS.CTNETLINK << 8) | IPCTNL_MSG.CT_NEW;
const PROTOCOL_NAMES: Record<number, FlowProtocol> = {
  1: "icmp",
  6: "tcp",
  17: "udp",
  58: "icmpv6",
};

function align(n: number): number {
  return (n + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
}

interface Attr {
  type: number;
  nested: boolean;
  value: Uint8Array;
}

/** Splits an attribute stream; a truncated tail counts once as unknown. */
function attrs(buf: Uint8Array, counter: { unknown: number }): Attr[] {
  const out: Attr[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLATTR.size <= buf.length) {
    const len = v.getUint16(off + NLATTR.nla_len, true);
    const raw = v.getUint16(off + NLATTR.nla_type, true);
    if (len < NLATTR.size || off + len > buf.length) {
      counter.unknown++;
      return out;
    }
    out.push({
      type: raw & NLA_F.TYPE_MASK,
      nested: (raw & NLA_F.NESTED) !== 0,
      value: buf.subarray(off + NLATTR.size, off + len),
    });
    off += align(len);
  }
  if (off < buf.length) counter.unknown++;
  return out;
}

function be16(b: Uint8Array): number {
  return (b[0] << 8) | b[1];
}

function be32(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false);
}

/** Formats 16 bytes as an IPv6 address: lowercase, zeros dropped, the longest zero run (≥ 2) as "::". */
export function formatIpv6(b: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i] << 8) | b[i + 1]);
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

interface Tuple {
  family?: 4 | 6;
  src?: string;
  dst?: string;
  protoNum?: number;
  srcPort: number;
  dstPort: number;
}

function parseTuple(buf: Uint8Array, counter: { unknown: number }): Tuple {
  const t: Tuple = { srcPort: 0, dstPort: 0 };
  for (const a of attrs(buf, counter)) {
    if (a.type === CTA_TUPLE.IP) {
      for (const ip of attrs(a.value, counter)) {
        const v4 = ip.type === CTA_IP.V4_SRC || ip.type === CTA_IP.V4_DST;
        const v6 = ip.type === CTA_IP.V6_SRC || ip.type === CTA_IP.V6_DST;
        if ((v4 && ip.value.length < 4) || (v6 && ip.value.length < 16) || (!v4 && !v6)) {
          counter.unknown++;
          continue;
        }
        const text = v4 ? Array.from(ip.value.subarray(0, 4)).join(".") : formatIpv6(ip.value);
        t.family = v4 ? 4 : 6;
        if (ip.type === CTA_IP.V4_SRC || ip.type === CTA_IP.V6_SRC) t.src = text;
        else t.dst = text;
      }
    } else if (a.type === CTA_TUPLE.PROTO) {
      for (const p of attrs(a.value, counter)) {
        if (p.type === CTA_PROTO.NUM && p.value.length >= 1) t.protoNum = p.value[0];
        else if (p.type === CTA_PROTO.SRC_PORT && p.value.length >= 2) t.srcPort = be16(p.value);
        else if (p.type === CTA_PROTO.DST_PORT && p.value.length >= 2) t.dstPort = be16(p.value);
        else if (p.type < CTA_PROTO.ICMP_ID || p.type > CTA_PROTO.ICMPV6_CODE) counter.unknown++;
      }
    }
    // CTA_TUPLE_ZONE and later attributes: not needed for a flow
  }
  return t;
}

/**
 * Parses one datagram of ctnetlink messages into new-flow records. Messages
 * other than `IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE` (updates, deletions,
 * other subsystems) are skipped; netlink control messages are ignored.
 *
 * @example
 * ```ts
 * import { parseConntrackEvents } from "./conntrack_events.ts";
 * const { records, unknown } = parseConntrackEvents(new Uint8Array(0));
 * console.log(records.length, unknown); // 0 0
 * ```
 *
 * @param buf the bytes `recv` returned
 */
export function parseConntrackEvents(buf: Uint8Array): ConntrackParse {
  const counter = { unknown: 0 };
  const records: FlowEvent[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLMSGHDR.size <= buf.length) {
    const len = v.getUint32(off + NLMSGHDR.nlmsg_len, true);
    if (len < NLMSGHDR.size || off + len > buf.length) {
      counter.unknown++;
      break;
    }
    const type = v.getUint16(off + NLMSGHDR.nlmsg_type, true);
    const flags = v.getUint16(off + NLMSGHDR.nlmsg_flags, true);
    const body = buf.subarray(off + NLMSGHDR.size, off + len);
    off += align(len);
    if (type === NLMSG.NOOP || type === NLMSG.DONE || type === NLMSG.ERROR) continue;
    if (type !== CT_NEW_TYPE || body.length < NFGENMSG.size) {
      counter.unknown++;
      continue;
    }
    if ((flags & NLM_F.CREATE) === 0) continue; // an update, not a new flow
    const r = parseFlow(body, counter);
    if (r) records.push(r);
    else counter.unknown++;
  }
  if (off < buf.length && buf.length - off < NLMSGHDR.size) counter.unknown++;
  return { records, unknown: counter.unknown };
}

function parseFlow(body: Uint8Array, counter: { unknown: number }): FlowEvent | undefined {
  let tuple: Tuple | undefined;
  let id: number | undefined;
  let zone: number | undefined;
  for (const a of attrs(body.subarray(NFGENMSG.size), counter)) {
    if (a.type === CTA.TUPLE_ORIG) tuple = parseTuple(a.value, counter);
    else if (a.type === CTA.ID && a.value.length >= 4) id = be32(a.value);
    else if (a.type === CTA.ZONE && a.value.length >= 2) zone = be16(a.value);
  }
  if (!tuple || !tuple.family || tuple.src === undefined || tuple.dst === undefined) return;
  if (tuple.protoNum === undefined) return;
  const record: FlowEvent = {
    kind: "flow",
    family: tuple.family,
    protocol: PROTOCOL_NAMES[tuple.protoNum] ?? tuple.protoNum,
    src: tuple.src,
    dst: tuple.dst,
    srcPort: tuple.srcPort,
    dstPort: tuple.dstPort,
  };
  if (id !== undefined) record.id = id;
  if (zone !== undefined && zone !== 0) record.zone = zone;
  return record;
}
