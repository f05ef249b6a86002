/**
 * Parsing of the bytes `read(2)` returns from a fanotify descriptor. Pure, so
 * it is tested on byte fixtures without root.
 *
 * A buffer holds whole events, each a `struct fanotify_event_metadata` then
 * (in FID-reporting groups) variable-length info records, `event_len` bytes
 * in all. A record that cannot be understood is described in `problems` and
 * left out, never thrown: one bad record must not stop a source. Only a
 * version mismatch drops an event; an event whose info records are malformed
 * is still returned (its `fd` may need closing and its permission answering).
 *
 * @module
 */

import {
  FAN_EVENT_INFO_TYPE,
  FANOTIFY_EVENT_INFO_FID,
  FANOTIFY_EVENT_INFO_HEADER,
  FANOTIFY_EVENT_METADATA,
  FANOTIFY_METADATA_VERSION,
  FILE_HANDLE,
} from "../../../ffi/fanotify.ts";

/** A file identifier info record (`FID`, `DFID`, `DFID_NAME`, `OLD_/NEW_DFID_NAME`). */
export interface FanotifyFidInfo {
  /** `FAN_EVENT_INFO_TYPE_*`. */
  infoType: number;
  /** `__kernel_fsid_t` as one little-endian u64, comparable with `statfs`'s `f_fsid`. */
  fsid: bigint;
  /** The whole `struct file_handle` (header and `f_handle`), ready for `open_by_handle_at`. */
  handle: Uint8Array<ArrayBuffer>;
  /** The entry name (bytes, no NUL) of `DFID_NAME` records. */
  name?: Uint8Array;
}

/** One fanotify event. */
export interface FanotifyRecord {
  /** `FAN_*` event bits. */
  mask: number;
  /** The event's descriptor, or `FAN_NOFD` (-1). Owned by whoever read the event. */
  fd: number;
  /** The process (thread group) that caused the event. */
  pid: number;
  /** File identifier info records, in order (empty unless the group reports FIDs). */
  fids: FanotifyFidInfo[];
}

/** What a buffer held. */
export interface FanotifyParse {
  records: FanotifyRecord[];
  /** One line per record or info record that was malformed or unknown. */
  problems: string[];
}

const FID_TYPES: ReadonlySet<number> = new Set([
  FAN_EVENT_INFO_TYPE.FID,
  FAN_EVENT_INFO_TYPE.DFID,
  FAN_EVENT_INFO_TYPE.DFID_NAME,
  FAN_EVENT_INFO_TYPE.OLD_DFID_NAME,
  FAN_EVENT_INFO_TYPE.NEW_DFID_NAME,
]);
const NAMED_TYPES: ReadonlySet<number> = new Set([
  FAN_EVENT_INFO_TYPE.DFID_NAME,
  FAN_EVENT_INFO_TYPE.OLD_DFID_NAME,
  FAN_EVENT_INFO_TYPE.NEW_DFID_NAME,
]);
/** Info records the source never asks for but that are well-formed: skipped quietly. */
const KNOWN_OTHER_TYPES: ReadonlySet<number> = new Set([
  FAN_EVENT_INFO_TYPE.PIDFD,
  FAN_EVENT_INFO_TYPE.ERROR,
]);

/**
 * Splits the first `length` bytes of `buf` (one fanotify `read`) into events.
 * Handles and names are copied, so `buf` can be reused.
 *
 * @param buf the bytes read
 * @param length how many of them are valid (default: all)
 *
 * @example
 * ```ts
 * import { parseFanotifyEvents } from "./fanotify_events.ts";
 * const buf = new Uint8Array(24);
 * const view = new DataView(buf.buffer);
 * view.setUint32(0, 24, true); // event_len
 * buf[4] = 3; // vers
 * view.setUint16(6, 24, true); // metadata_len
 * view.setUint32(8, 0x4000, true); // FAN_Q_OVERFLOW
 * view.setInt32(16, -1, true); // FAN_NOFD
 * parseFanotifyEvents(buf).records[0].mask; // 0x4000
 * ```
 */
export function parseFanotifyEvents(buf: Uint8Array, length = buf.length): FanotifyParse {
  const M = FANOTIFY_EVENT_METADATA;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: FanotifyRecord[] = [];
  const problems: string[] = [];
  let off = 0;
  while (off < length) {
    const left = length - off;
    if (left < M.size) {
      problems.push(`Short fanotify event at offset ${off}: ${left} bytes`);
      break;
    }
    const eventLen = view.getUint32(off + M.event_len, true);
    if (eventLen < M.size || eventLen > left) {
      // Without a trustworthy length the rest of the buffer cannot be walked.
      problems.push(`Bad fanotify event_len at offset ${off}: ${eventLen} (${left} bytes left)`);
      break;
    }
    const vers = buf[off + M.vers];
    if (vers !== FANOTIFY_METADATA_VERSION) {
      problems.push(
        `Fanotify metadata version mismatch at offset ${off}: ${vers}, expected ${FANOTIFY_METADATA_VERSION}`,
      );
      off += eventLen;
      continue;
    }
    const record: FanotifyRecord = {
      mask: view.getUint32(off + M.mask, true) + view.getUint32(off + M.mask + 4, true) * 2 ** 32,
      fd: view.getInt32(off + M.fd, true),
      pid: view.getInt32(off + M.pid, true),
      fids: [],
    };
    const metadataLen = view.getUint16(off + M.metadata_len, true);
    if (metadataLen < M.size || metadataLen > eventLen) {
      problems.push(`Bad fanotify metadata_len at offset ${off}: ${metadataLen}`);
    } else {
      parseInfo(buf, view, off + metadataLen, off + eventLen, record, problems);
    }
    records.push(record);
    off += eventLen;
  }
  return { records, problems };
}

function parseInfo(
  buf: Uint8Array,
  view: DataView,
  start: number,
  end: number,
  record: FanotifyRecord,
  problems: string[],
): void {
  const H = FANOTIFY_EVENT_INFO_HEADER;
  let off = start;
  while (off < end) {
    if (end - off < H.size) {
      problems.push(`Short fanotify info record at offset ${off}: ${end - off} bytes`);
      return;
    }
    const type = buf[off + H.info_type];
    const len = view.getUint16(off + H.len, true);
    if (len < H.size || len > end - off) {
      problems.push(`Bad fanotify info record length at offset ${off}: ${len}`);
      return;
    }
    if (FID_TYPES.has(type)) {
      const fid = parseFid(buf, view, off, off + len, type);
      if (typeof fid === "string") problems.push(fid);
      else record.fids.push(fid);
    } else if (!KNOWN_OTHER_TYPES.has(type)) {
      problems.push(`Unknown fanotify info record type ${type} at offset ${off}`);
    }
    off += len;
  }
}

function parseFid(
  buf: Uint8Array,
  view: DataView,
  off: number,
  end: number,
  infoType: number,
): FanotifyFidInfo | string {
  const F = FANOTIFY_EVENT_INFO_FID;
  const handleStart = off + F.handle;
  if (handleStart + FILE_HANDLE.size > end) {
    return `Short fanotify FID record at offset ${off}: ${end - off} bytes`;
  }
  const handleBytes = view.getUint32(handleStart + FILE_HANDLE.handle_bytes, true);
  const handleEnd = handleStart + FILE_HANDLE.size + handleBytes;
  if (handleEnd > end) {
    return `Fanotify file handle overruns its record at offset ${off}: ${handleBytes} bytes`;
  }
  const fid: FanotifyFidInfo = {
    infoType,
    fsid: view.getBigUint64(off + F.fsid, true),
    handle: buf.slice(handleStart, handleEnd),
  };
  if (NAMED_TYPES.has(infoType)) {
    const nameLen = buf.subarray(handleEnd, end).indexOf(0);
    if (nameLen < 0) return `Fanotify name without NUL at offset ${off}`;
    if (nameLen === 0) return `Empty fanotify name at offset ${off}`;
    fid.name = buf.slice(handleEnd, handleEnd + nameLen);
  }
  return fid;
}
