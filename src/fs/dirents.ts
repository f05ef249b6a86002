/**
 * Parsing of the records `getdents64(2)` writes. Pure, so it is tested on byte
 * fixtures; names stay bytes.
 *
 * @module
 */

import { DIRENT64 } from "../../ffi/libc.ts";

/** One directory entry: its name as bytes and its `d_type`. */
export interface Dirent {
  name: Uint8Array;
  type: number;
  ino: bigint;
}

/**
 * Splits `length` bytes of `getdents64` output into entries, leaving out `.`
 * and `..`. Names are copied, so `buf` can be reused.
 *
 * @example
 * ```ts
 * import { parseDirents } from "./dirents.ts";
 * parseDirents(new Uint8Array(0), 0); // []
 * ```
 */
export function parseDirents(buf: Uint8Array, length: number): Dirent[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Dirent[] = [];
  let off = 0;
  while (off + DIRENT64.d_name <= length) {
    const reclen = view.getUint16(off + DIRENT64.d_reclen, true);
    if (reclen < DIRENT64.d_name + 1 || off + reclen > length) {
      throw new RangeError(`Malformed getdents64 record at offset ${off}: d_reclen ${reclen}`);
    }
    const nameStart = off + DIRENT64.d_name;
    let nameEnd = buf.indexOf(0, nameStart);
    if (nameEnd < 0 || nameEnd > off + reclen) nameEnd = off + reclen;
    const name = buf.slice(nameStart, nameEnd);
    const dot = name.length === 1 && name[0] === 0x2e;
    const dotdot = name.length === 2 && name[0] === 0x2e && name[1] === 0x2e;
    if (!dot && !dotdot) {
      out.push({
        name,
        type: buf[off + DIRENT64.d_type],
        ino: view.getBigUint64(off + DIRENT64.d_ino, true),
      });
    }
    off += reclen;
  }
  return out;
}
