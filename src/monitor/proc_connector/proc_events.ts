/**
 * Parses what one `recv()` on a proc connector socket returns: one or more
 * netlink messages, each a `cn_msg` carrying one `struct proc_event`. Pure:
 * bytes in, records out. A record that is short, of an unknown type or from
 * another connector becomes an "unknown" record (counted by the consumer,
 * never fatal), and parsing goes on with the next message.
 *
 * @module
 */

import {
  ACK_PROC_EVENT,
  CN_IDX_PROC,
  CN_MSG,
  CN_VAL_PROC,
  COMM_PROC_EVENT,
  COREDUMP_PROC_EVENT,
  EXEC_PROC_EVENT,
  EXIT_PROC_EVENT,
  FORK_PROC_EVENT,
  ID_PROC_EVENT,
  NLMSG,
  NLMSG_ALIGNTO,
  NLMSGERR,
  NLMSGHDR,
  PROC_EVENT,
  PROC_EVENT_HEADER,
  PTRACE_PROC_EVENT,
  SID_PROC_EVENT,
} from "../../../ffi/netlink.ts";
import type { ProcessInfo } from "../../protect/process_info.ts";

/** Fields every process event has: the thread (`pid`), its process (`tgid`), the kernel's monotonic time. */
interface ProcEventBase {
  pid: number;
  tgid: number;
  timestampNs: bigint;
}

/** A new task: `pid`/`tgid` are the child's, `ppid`/`ptgid` the parent's (a new thread when `pid !== tgid`). */
export interface ForkRecord extends ProcEventBase {
  kind: "fork";
  ppid: number;
  ptgid: number;
}

/**
 * A successful `execve`. `process` is what /proc said right after the event
 * was received, when the reader could look (the parser never sets it).
 */
export interface ExecRecord extends ProcEventBase {
  kind: "exec";
  process?: ProcessInfo;
}

/** A task ended; a process when `pid === tgid`. `exitCode` is the wait status. */
export interface ExitRecord extends ProcEventBase {
  kind: "exit";
  ppid: number;
  ptgid: number;
  exitCode: number;
  exitSignal: number;
}

/** Real and effective uid (or gid) changed. */
export interface IdRecord extends ProcEventBase {
  kind: "uid" | "gid";
  real: number;
  effective: number;
}

/** `setsid`. */
export interface SidRecord extends ProcEventBase {
  kind: "sid";
}

/** `ptrace` attach (tracer set) or detach (tracer 0). */
export interface PtraceRecord extends ProcEventBase {
  kind: "ptrace";
  tracerPid: number;
  tracerTgid: number;
}

/** The task's `comm` changed. */
export interface CommRecord extends ProcEventBase {
  kind: "comm";
  comm: string;
}

/** A core dump started. */
export interface CoredumpRecord extends ProcEventBase {
  kind: "coredump";
  ppid: number;
  ptgid: number;
}

/** The kernel's answer to a LISTEN or IGNORE message: `error` 0 on success. */
export interface AckRecord {
  kind: "ack";
  error: number;
}

/** An `NLMSG_ERROR` message: `error` is a negative errno (0 is an ack). */
export interface NetlinkErrorRecord {
  kind: "error";
  error: number;
}

/** Events were lost: the socket's receive buffer overflowed (`ENOBUFS`, or `NLMSG_OVERRUN`). */
export interface OverflowRecord {
  kind: "overflow";
}

/** A message that could not be parsed, with why. */
export interface UnknownRecord {
  kind: "unknown";
  reason: string;
}

/** One record of the proc connector. */
export type ProcRecord =
  | ForkRecord
  | ExecRecord
  | ExitRecord
  | IdRecord
  | SidRecord
  | PtraceRecord
  | CommRecord
  | CoredumpRecord
  | AckRecord
  | NetlinkErrorRecord
  | OverflowRecord
  | UnknownRecord;

/** Where a source of proc connector records comes from: the kernel, or a fake in tests. */
export interface ProcEventSource {
  /**
   * The next records, waiting for at least one; [] only once the source is
   * closed or has nothing more to give (its consumer stops reading then).
   */
  next(): Promise<ProcRecord[]>;
  /** Resolves once the source is reading (optional: ready at once when absent). */
  readonly ready?: Promise<void>;
  /** Stops listening and releases the source; safe to call twice. */
  close(): Promise<void>;
}

const PAYLOAD_SIZE: Readonly<Record<number, number>> = {
  [PROC_EVENT.NONE]: ACK_PROC_EVENT.size,
  [PROC_EVENT.FORK]: FORK_PROC_EVENT.size,
  [PROC_EVENT.EXEC]: EXEC_PROC_EVENT.size,
  [PROC_EVENT.UID]: ID_PROC_EVENT.size,
  [PROC_EVENT.GID]: ID_PROC_EVENT.size,
  [PROC_EVENT.SID]: SID_PROC_EVENT.size,
  [PROC_EVENT.PTRACE]: PTRACE_PROC_EVENT.size,
  [PROC_EVENT.COMM]: COMM_PROC_EVENT.size,
  [PROC_EVENT.COREDUMP]: COREDUMP_PROC_EVENT.size,
  [PROC_EVENT.EXIT]: EXIT_PROC_EVENT.size,
};

const align = (n: number) => (n + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
const latin1 = new TextDecoder("latin1");

/**
 * Parses the netlink messages in `bytes` (what one `recv()` returned) into
 * records, in order.
 *
 * @example
 * ```ts
 * import { parseProcEvents } from "./proc_events.ts";
 * parseProcEvents(new Uint8Array(0)); // []
 * ```
 *
 * @param bytes the datagram
 */
export function parseProcEvents(bytes: Uint8Array): ProcRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ProcRecord[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < NLMSGHDR.size) {
      out.push({ kind: "unknown", reason: `short netlink header: ${bytes.length - off} bytes` });
      break;
    }
    const len = view.getUint32(off + NLMSGHDR.nlmsg_len, true);
    const type = view.getUint16(off + NLMSGHDR.nlmsg_type, true);
    if (len < NLMSGHDR.size || len > bytes.length - off) {
      out.push({ kind: "unknown", reason: `bad netlink message length: ${len}` });
      break;
    }
    const body = off + NLMSGHDR.size;
    const bodyLen = len - NLMSGHDR.size;
    off += align(len);
    if (type === NLMSG.NOOP) continue;
    if (type === NLMSG.OVERRUN) {
      out.push({ kind: "overflow" });
      continue;
    }
    if (type === NLMSG.ERROR) {
      out.push(
        bodyLen < 4
          ? { kind: "unknown", reason: "short netlink error" }
          : { kind: "error", error: view.getInt32(body + NLMSGERR.error, true) },
      );
      continue;
    }
    // The connector sends its messages as NLMSG_DONE; accept any other
    // non-control type too, as the kernel does not promise the type.
    out.push(parseCnMsg(view, body, bodyLen));
  }
  return out;
}

/** One `cn_msg` holding one `proc_event`, at `off` in `view`. */
function parseCnMsg(view: DataView, off: number, size: number): ProcRecord {
  if (size < CN_MSG.size) return { kind: "unknown", reason: `short cn_msg: ${size} bytes` };
  const idx = view.getUint32(off + CN_MSG.idx, true);
  const val = view.getUint32(off + CN_MSG.val, true);
  if (idx !== CN_IDX_PROC || val !== CN_VAL_PROC) {
    return { kind: "unknown", reason: `not a proc connector message: ${idx}:${val}` };
  }
  const dataLen = Math.min(view.getUint16(off + CN_MSG.len, true), size - CN_MSG.size);
  const ev = off + CN_MSG.size;
  if (dataLen < PROC_EVENT_HEADER.size) {
    return { kind: "unknown", reason: `short proc_event: ${dataLen} bytes` };
  }
  const what = view.getUint32(ev + PROC_EVENT_HEADER.what, true);
  const need = PAYLOAD_SIZE[what];
  if (need === undefined) {
    return { kind: "unknown", reason: `unknown proc_event: 0x${what.toString(16)}` };
  }
  if (dataLen < PROC_EVENT_HEADER.size + need) {
    return { kind: "unknown", reason: `short proc_event 0x${what.toString(16)}: ${dataLen} bytes` };
  }
  const timestampNs = view.getBigUint64(ev + PROC_EVENT_HEADER.timestamp_ns, true);
  const d = ev + PROC_EVENT_HEADER.size;
  const u32 = (at: number) => view.getUint32(d + at, true);
  const i32 = (at: number) => view.getInt32(d + at, true);
  switch (what) {
    case PROC_EVENT.NONE:
      return { kind: "ack", error: u32(ACK_PROC_EVENT.err) };
    case PROC_EVENT.FORK:
      return {
        kind: "fork",
        pid: i32(FORK_PROC_EVENT.child_pid),
        tgid: i32(FORK_PROC_EVENT.child_tgid),
        ppid: i32(FORK_PROC_EVENT.parent_pid),
        ptgid: i32(FORK_PROC_EVENT.parent_tgid),
        timestampNs,
      };
    case PROC_EVENT.EXEC:
      return {
        kind: "exec",
        pid: i32(EXEC_PROC_EVENT.process_pid),
        tgid: i32(EXEC_PROC_EVENT.process_tgid),
        timestampNs,
      };
    case PROC_EVENT.UID:
    case PROC_EVENT.GID:
      return {
        kind: what === PROC_EVENT.UID ? "uid" : "gid",
        pid: i32(ID_PROC_EVENT.process_pid),
        tgid: i32(ID_PROC_EVENT.process_tgid),
        real: u32(ID_PROC_EVENT.ruid),
        effective: u32(ID_PROC_EVENT.euid),
        timestampNs,
      };
    case PROC_EVENT.SID:
      return {
        kind: "sid",
        pid: i32(SID_PROC_EVENT.process_pid),
        tgid: i32(SID_PROC_EVENT.process_tgid),
        timestampNs,
      };
    case PROC_EVENT.PTRACE:
      return {
        kind: "ptrace",
        pid: i32(PTRACE_PROC_EVENT.process_pid),
        tgid: i32(PTRACE_PROC_EVENT.process_tgid),
        tracerPid: i32(PTRACE_PROC_EVENT.tracer_pid),
        tracerTgid: i32(PTRACE_PROC_EVENT.tracer_tgid),
        timestampNs,
      };
    case PROC_EVENT.COMM: {
      const start = d + COMM_PROC_EVENT.comm;
      const raw = new Uint8Array(view.buffer, view.byteOffset + start, 16);
      const nul = raw.indexOf(0);
      return {
        kind: "comm",
        pid: i32(COMM_PROC_EVENT.process_pid),
        tgid: i32(COMM_PROC_EVENT.process_tgid),
        comm: latin1.decode(nul < 0 ? raw : raw.subarray(0, nul)),
        timestampNs,
      };
    }
    case PROC_EVENT.COREDUMP:
      return {
        kind: "coredump",
        pid: i32(COREDUMP_PROC_EVENT.process_pid),
        tgid: i32(COREDUMP_PROC_EVENT.process_tgid),
        ppid: i32(COREDUMP_PROC_EVENT.parent_pid),
        ptgid: i32(COREDUMP_PROC_EVENT.parent_tgid),
        timestampNs,
      };
    default: // PROC_EVENT.EXIT
      return {
        kind: "exit",
        pid: i32(EXIT_PROC_EVENT.process_pid),
        tgid: i32(EXIT_PROC_EVENT.process_tgid),
        ppid: i32(EXIT_PROC_EVENT.parent_pid),
        ptgid: i32(EXIT_PROC_EVENT.parent_tgid),
        exitCode: u32(EXIT_PROC_EVENT.exit_code),
        exitSignal: u32(EXIT_PROC_EVENT.exit_signal),
        timestampNs,
      };
  }
}
