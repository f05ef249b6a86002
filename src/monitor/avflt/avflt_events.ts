/**
 * Parsing of the bytes `read(2)` returns from /dev/ampavflt, and encoding of
 * the commands written to it. Pure, so it is tested on byte fixtures
 * without root or the module.
 *
 * A buffer holds whole records, each a `struct ampavflt_event` followed, when
 * the module could give no descriptor, by the path (`path_len` bytes) and
 * padding up to `size`. A record that cannot be understood is described in
 * `problems`, never thrown. A record of an unknown kind (same version, so
 * the same layout) is returned as an "unknown" record so that the caller
 * closes its descriptor (and answers it, if it waits). A record of another
 * protocol version ends the parse: none of its fields, the descriptor
 * least of all, can be trusted (the source checks the module's version at
 * open, so this does not happen with a module it accepted).
 *
 * @module
 */

import {
  AMPAVFLT_ALLOW,
  AMPAVFLT_CMD,
  AMPAVFLT_COMMAND,
  AMPAVFLT_DENY,
  AMPAVFLT_EV,
  AMPAVFLT_EVENT,
  AMPAVFLT_EVF,
  AMPAVFLT_VERSION,
} from "../../../ffi/ampavflt.ts";

/** A file event of the module. */
export interface AvfltFileRecord {
  kind: "exec" | "open-write" | "close-write";
  /** Exec held until a verdict (`AMPAVFLT_EVF_PERM`). */
  perm: boolean;
  /** An exec the kernel started (a usermode helper; `AMPAVFLT_EVF_KERNEL`): never held. */
  kernel: boolean;
  /** Names the event in a verdict. */
  id: bigint;
  /** Read-only descriptor for the reader, or -1 (then `path` is set). */
  fd: number;
  /** Thread that caused the event. */
  pid: number;
  /** Its process. */
  tgid: number;
  uid: number;
  dev: bigint;
  ino: bigint;
  /** Inode change time at the event (for the verdict cache). */
  ctimeNs: bigint;
  /** The path (bytes, no NUL) when no descriptor could be given. */
  path?: Uint8Array;
}

/** Notifications were lost (the module's queue was full). */
export interface AvfltOverflowRecord {
  kind: "overflow";
  /** How many. */
  lost: bigint;
  /** Exec notifications were among them. */
  execs: boolean;
}

/** A record of an unknown kind: only its descriptor and id are of use. */
export interface AvfltUnknownRecord {
  kind: "unknown";
  fd: number;
  perm: boolean;
  id: bigint;
}

/** One record. */
export type AvfltRecord = AvfltFileRecord | AvfltOverflowRecord | AvfltUnknownRecord;

/** What a buffer held. */
export interface AvfltParse {
  records: AvfltRecord[];
  /** One line per record that was malformed or unknown. */
  problems: string[];
}

const KINDS: Record<number, AvfltFileRecord["kind"]> = {
  [AMPAVFLT_EV.EXEC]: "exec",
  [AMPAVFLT_EV.OPEN_WRITE]: "open-write",
  [AMPAVFLT_EV.CLOSE_WRITE]: "close-write",
};

/**
 * Splits the first `length` bytes of `buf` (one read of /dev/ampavflt) into
 * records. Paths are copied, so `buf` can be reused.
 *
 * @param buf the bytes read
 * @param length how many of them are valid (default: all)
 *
 * @example
 * ```ts
 * import { parseAvfltEvents } from "./avflt_events.ts";
 * const buf = new Uint8Array(72);
 * const view = new DataView(buf.buffer);
 * view.setUint32(0, 72, true); // size
 * view.setUint16(4, 2, true); // version (AMPAVFLT_VERSION)
 * view.setUint16(6, 4, true); // AMPAVFLT_EV_OVERFLOW
 * view.setInt32(12, -1, true); // fd
 * view.setBigUint64(64, 3n, true); // lost
 * parseAvfltEvents(buf).records[0]; // { kind: "overflow", lost: 3n, execs: false }
 * ```
 */
export function parseAvfltEvents(buf: Uint8Array, length = buf.length): AvfltParse {
  const E = AMPAVFLT_EVENT;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: AvfltRecord[] = [];
  const problems: string[] = [];
  let off = 0;
  while (off < length) {
    const left = length - off;
    if (left < E.size) {
      problems.push(`Short ampavflt event at offset ${off}: ${left} bytes`);
      break;
    }
    const size = view.getUint32(off + E.size_field, true);
    if (size < E.size || size > left || size % 8 !== 0) {
      // Without a trustworthy size the rest of the buffer cannot be walked.
      problems.push(`Bad ampavflt event size at offset ${off}: ${size} (${left} bytes left)`);
      break;
    }
    const version = view.getUint16(off + E.version, true);
    if (version !== AMPAVFLT_VERSION) {
      // Another layout: its descriptor field may name any of our descriptors.
      problems.push(
        `Ampavflt event version mismatch at offset ${off}: ${version}, expected ${AMPAVFLT_VERSION}`,
      );
      break;
    }
    const kind = view.getUint16(off + E.kind, true);
    const flags = view.getUint32(off + E.flags, true);
    const fd = view.getInt32(off + E.fd, true);
    const id = view.getBigUint64(off + E.id, true);
    const perm = (flags & AMPAVFLT_EVF.PERM) !== 0;
    if (kind === AMPAVFLT_EV.OVERFLOW) {
      records.push({
        kind: "overflow",
        lost: view.getBigUint64(off + E.lost, true),
        execs: (flags & AMPAVFLT_EVF.EXEC_LOST) !== 0,
      });
      off += size;
      continue;
    }
    const name = KINDS[kind];
    if (name === undefined) {
      problems.push(`Unknown ampavflt event kind ${kind} at offset ${off}`);
      records.push({ kind: "unknown", fd, perm, id });
      off += size;
      continue;
    }
    const record: AvfltFileRecord = {
      kind: name,
      perm,
      kernel: (flags & AMPAVFLT_EVF.KERNEL) !== 0,
      id,
      fd,
      pid: view.getUint32(off + E.pid, true),
      tgid: view.getUint32(off + E.tgid, true),
      uid: view.getUint32(off + E.uid, true),
      dev: view.getBigUint64(off + E.dev, true),
      ino: view.getBigUint64(off + E.ino, true),
      ctimeNs: view.getBigUint64(off + E.ctime_ns, true),
    };
    if (flags & AMPAVFLT_EVF.PATH) {
      const pathLen = view.getUint32(off + E.path_len, true);
      if (E.size + pathLen > size) {
        problems.push(`Ampavflt path overruns its event at offset ${off}: ${pathLen} bytes`);
      } else {
        record.path = buf.slice(off + E.size, off + E.size + pathLen);
      }
    }
    if (perm && name !== "exec") {
      problems.push(`Ampavflt ${name} event marked as waiting at offset ${off}`);
    }
    records.push(record);
    off += size;
  }
  return { records, problems };
}

/** A command for /dev/ampavflt. */
export type AvfltCommand =
  | { cmd: "verdict"; id: bigint; allow: boolean }
  | {
    cmd: "config";
    mask: number;
    /** Longest wait of a held exec after it was read (0: the module's default). */
    timeoutMs: number;
    /** Longest wait of a held exec before it was read (0: the module's default). */
    queueTimeoutMs: number;
    /** What a held exec gets when either timeout passes. */
    timeoutAnswer: "allow" | "deny";
  }
  | { cmd: "cache"; fd: number; ctimeNs: bigint }
  | { cmd: "forget" }
  | { cmd: "skip-dev"; dev: bigint };

/**
 * Encodes commands as one buffer of `struct ampavflt_command`s (one write).
 *
 * @param commands in the order the module runs them
 *
 * @example
 * ```ts
 * import { encodeAvfltCommands } from "./avflt_events.ts";
 * encodeAvfltCommands([{ cmd: "forget" }]).length; // 32
 * ```
 */
export function encodeAvfltCommands(commands: AvfltCommand[]): Uint8Array<ArrayBuffer> {
  const C = AMPAVFLT_COMMAND;
  const buf = new Uint8Array(C.size * commands.length);
  const view = new DataView(buf.buffer);
  commands.forEach((c, i) => {
    const off = i * C.size;
    view.setUint16(off + C.version, AMPAVFLT_VERSION, true);
    let code: number;
    let arg = 0;
    let id = 0n;
    let value = 0n;
    let queueTimeoutMs = 0;
    let timeoutAnswer = 0;
    switch (c.cmd) {
      case "verdict":
        code = AMPAVFLT_CMD.VERDICT;
        arg = c.allow ? AMPAVFLT_ALLOW : AMPAVFLT_DENY;
        id = c.id;
        break;
      case "config":
        code = AMPAVFLT_CMD.CONFIG;
        arg = c.mask;
        value = BigInt(c.timeoutMs);
        queueTimeoutMs = c.queueTimeoutMs;
        timeoutAnswer = c.timeoutAnswer === "deny" ? AMPAVFLT_DENY : AMPAVFLT_ALLOW;
        break;
      case "cache":
        code = AMPAVFLT_CMD.CACHE;
        arg = c.fd;
        value = c.ctimeNs;
        break;
      case "forget":
        code = AMPAVFLT_CMD.FORGET;
        break;
      case "skip-dev":
        code = AMPAVFLT_CMD.SKIP_DEV;
        value = c.dev;
        break;
    }
    view.setUint16(off + C.cmd, code, true);
    view.setUint32(off + C.arg, arg, true);
    view.setBigUint64(off + C.id, id, true);
    view.setBigUint64(off + C.value, value, true);
    view.setUint32(off + C.queue_timeout_ms, queueTimeoutMs, true);
    view.setUint32(off + C.timeout_answer, timeoutAnswer, true);
  });
  return buf;
}
