/**
 * `NETLINK_SOCK_DIAG` messages for one flow's socket: the request
 * (`SOCK_DIAG_BY_FAMILY` lookup or dump, `SOCK_DESTROY`) built from a flow
 * tuple, and the answers (`inet_diag_msg`, `NLMSG_ERROR`) parsed. Pure: bytes
 * in, values out, tested on byte fixtures; the socket calls are `_native.ts`.
 *
 * Which side is which: `idiag_src`/`idiag_sport` are the socket's local side
 * for TCP lookups; the kernel's UDP lookup (`udp_dump_one`) takes them
 * swapped ("for historical reasons"), so callers try both orders and check
 * the answer's tuple with {@linkcode matchesTuple}.
 *
 * @module
 */

import {
  AF,
  INET_DIAG_MSG,
  INET_DIAG_NOCOOKIE,
  INET_DIAG_REQ_V2,
  INET_DIAG_SOCKID,
  IPPROTO,
  NLM_F,
  NLM_F_DUMP,
  NLMSG,
  NLMSG_ALIGNTO,
  NLMSGERR,
  NLMSGHDR,
  SOCK_DIAG,
} from "../../../ffi/netlink.ts";
import { parseIpAddressInto } from "../ip_list_parse.ts";

/** One side-to-side socket tuple, as sock_diag sees it (`src` is the first side of `id`). */
export interface DiagTuple {
  family: 4 | 6;
  protocol: "tcp" | "udp";
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
}

/** A socket as `inet_diag_msg` describes it. */
export interface DiagSocket {
  family: 4 | 6;
  state: number;
  src: Uint8Array;
  srcPort: number;
  dst: Uint8Array;
  dstPort: number;
  uid: number;
  inode: number;
}

/** The result of {@linkcode parseDiagAnswer}. */
export interface DiagAnswer {
  sockets: DiagSocket[];
  /** The errno of an `NLMSG_ERROR` (0 for an ack), if one came. */
  error?: number;
  /** `NLMSG_DONE` came (the end of a dump). */
  done: boolean;
}

/** All TCP states (`idiag_states`): every bit of `TCP_ESTABLISHED` … `TCP_NEW_SYN_RECV`. */
export const ALL_STATES = 0xffffffff;

/** 16 bytes of an address (IPv4 in the first four), or undefined if `text` is not one of `family`. */
export function addressBytes(text: string, family: 4 | 6): Uint8Array | undefined {
  const words = new Uint32Array(4);
  if (parseIpAddressInto(text, words) !== family) return undefined;
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  for (let i = 0; i < (family === 4 ? 1 : 4); i++) v.setUint32(i * 4, words[i], false);
  return out;
}

/**
 * One `sock_diag` request for `tuple`: an exact lookup (`SOCK_DIAG_BY_FAMILY`,
 * `NLM_F_REQUEST`), a dump of the family and protocol (`dump`), or a
 * `SOCK_DESTROY`; all states, no cookie.
 *
 * @example
 * ```ts
 * import { diagRequest } from "./sock_diag.ts";
 * const tuple = { family: 4, protocol: "tcp", src: "198.51.100.1", srcPort: 40000, dst: "198.51.100.2", dstPort: 80 } as const;
 * diagRequest(tuple, { seq: 1 }).length; // 72 (nlmsghdr + inet_diag_req_v2)
 * ```
 */
export function diagRequest(
  tuple: DiagTuple,
  options: { seq: number; dump?: boolean; destroy?: boolean },
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(NLMSGHDR.size + INET_DIAG_REQ_V2.size);
  const v = new DataView(out.buffer);
  v.setUint32(NLMSGHDR.nlmsg_len, out.length, true);
  v.setUint16(NLMSGHDR.nlmsg_type, options.destroy ? SOCK_DIAG.DESTROY : SOCK_DIAG.BY_FAMILY, true);
  let flags = NLM_F.REQUEST;
  if (options.dump) flags |= NLM_F_DUMP;
  else if (options.destroy) flags |= NLM_F.ACK;
  v.setUint16(NLMSGHDR.nlmsg_flags, flags, true);
  v.setUint32(NLMSGHDR.nlmsg_seq, options.seq, true);
  const r = NLMSGHDR.size;
  v.setUint8(r + INET_DIAG_REQ_V2.sdiag_family, tuple.family === 4 ? AF.INET : AF.INET6);
  v.setUint8(
    r + INET_DIAG_REQ_V2.sdiag_protocol,
    tuple.protocol === "tcp" ? IPPROTO.TCP : IPPROTO.UDP,
  );
  v.setUint32(r + INET_DIAG_REQ_V2.idiag_states, ALL_STATES, true);
  const id = r + INET_DIAG_REQ_V2.id;
  if (!options.dump) {
    const src = addressBytes(tuple.src, tuple.family);
    const dst = addressBytes(tuple.dst, tuple.family);
    if (!src || !dst) {
      throw new TypeError(`Not an IPv${tuple.family} tuple: ${tuple.src} ${tuple.dst}`);
    }
    v.setUint16(id + INET_DIAG_SOCKID.idiag_sport, tuple.srcPort, false);
    v.setUint16(id + INET_DIAG_SOCKID.idiag_dport, tuple.dstPort, false);
    out.set(src, id + INET_DIAG_SOCKID.idiag_src);
    out.set(dst, id + INET_DIAG_SOCKID.idiag_dst);
  }
  v.setUint32(id + INET_DIAG_SOCKID.idiag_cookie, INET_DIAG_NOCOOKIE, true);
  v.setUint32(id + INET_DIAG_SOCKID.idiag_cookie + 4, INET_DIAG_NOCOOKIE, true);
  return out;
}

/**
 * Parses what the kernel answered to a `sock_diag` request: sockets
 * (`SOCK_DIAG_BY_FAMILY` messages holding an `inet_diag_msg`), an error or
 * ack, the end of a dump. Short or truncated messages are skipped.
 */
export function parseDiagAnswer(buf: Uint8Array): DiagAnswer {
  const out: DiagAnswer = { sockets: [], done: false };
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLMSGHDR.size <= buf.length) {
    const len = v.getUint32(off + NLMSGHDR.nlmsg_len, true);
    if (len < NLMSGHDR.size || off + len > buf.length) break;
    const type = v.getUint16(off + NLMSGHDR.nlmsg_type, true);
    const body = off + NLMSGHDR.size;
    if (type === NLMSG.ERROR && len >= NLMSGHDR.size + 4) {
      out.error = -v.getInt32(body + NLMSGERR.error, true);
    } else if (type === NLMSG.DONE) {
      out.done = true;
    } else if (type === SOCK_DIAG.BY_FAMILY && len >= NLMSGHDR.size + INET_DIAG_MSG.size) {
      const family = v.getUint8(body + INET_DIAG_MSG.idiag_family) === AF.INET ? 4 : 6;
      const id = body + INET_DIAG_MSG.id;
      const n = family === 4 ? 4 : 16;
      out.sockets.push({
        family,
        state: v.getUint8(body + INET_DIAG_MSG.idiag_state),
        srcPort: v.getUint16(id + INET_DIAG_SOCKID.idiag_sport, false),
        dstPort: v.getUint16(id + INET_DIAG_SOCKID.idiag_dport, false),
        src: buf.slice(id + INET_DIAG_SOCKID.idiag_src, id + INET_DIAG_SOCKID.idiag_src + n),
        dst: buf.slice(id + INET_DIAG_SOCKID.idiag_dst, id + INET_DIAG_SOCKID.idiag_dst + n),
        uid: v.getUint32(body + INET_DIAG_MSG.idiag_uid, true),
        inode: v.getUint32(body + INET_DIAG_MSG.idiag_inode, true),
      });
    }
    off += (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length <= b.length && a.every((x, i) => x === b[i]);
}

/** Whether `socket` is the local side `local` of `tuple` (`local` = its src side, or its dst side). */
export function matchesTuple(socket: DiagSocket, tuple: DiagTuple, local: "src" | "dst"): boolean {
  const [l, lp, r, rp] = local === "src"
    ? [tuple.src, tuple.srcPort, tuple.dst, tuple.dstPort]
    : [tuple.dst, tuple.dstPort, tuple.src, tuple.srcPort];
  const lb = addressBytes(l, tuple.family);
  const rb = addressBytes(r, tuple.family);
  if (!lb || !rb || socket.family !== tuple.family) return false;
  if (socket.srcPort !== lp || !sameBytes(socket.src, lb)) return false;
  // An unconnected UDP socket has no remote side: it matches any.
  const wildcard = tuple.protocol === "udp" && socket.dstPort === 0 &&
    socket.dst.every((x) => x === 0);
  return wildcard || (socket.dstPort === rp && sameBytes(socket.dst, rb));
}
