import assert from "node:assert/strict";
import { DT } from "../../ffi/libc.ts";
import { parseDirents } from "./dirents.ts";

interface Record {
  ino: bigint;
  type: number;
  name: number[];
  /** Override of d_reclen (for malformed fixtures). */
  reclen?: number;
}

/** Builds getdents64 output as the kernel does: 8-byte aligned records, NUL after the name. */
function fixture(records: Record[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const r of records) {
    const len = Math.ceil((19 + r.name.length + 1) / 8) * 8;
    const rec = new Uint8Array(len);
    const view = new DataView(rec.buffer);
    view.setBigUint64(0, r.ino, true);
    view.setBigInt64(8, 12345n, true);
    view.setUint16(16, r.reclen ?? len, true);
    rec[18] = r.type;
    rec.set(r.name, 19);
    parts.push(rec);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const ascii = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("parseDirents() skips . and .. and keeps non-UTF-8 names", () => {
  const buf = fixture([
    { ino: 2n, type: DT.DIR, name: ascii(".") },
    { ino: 1n, type: DT.DIR, name: ascii("..") },
    { ino: 11n, type: DT.REG, name: ascii("hello.txt") },
    { ino: 12n, type: DT.REG, name: [0x62, 0x61, 0x64, 0xff, 0xfe] },
    { ino: 0xffff_ffff_ffff_fff0n, type: DT.LNK, name: ascii("...") },
    { ino: 14n, type: DT.DIR, name: ascii(".hidden") },
  ]);
  const entries = parseDirents(buf, buf.length);
  assert.deepEqual(entries, [
    { name: new Uint8Array(ascii("hello.txt")), type: DT.REG, ino: 11n },
    { name: new Uint8Array([0x62, 0x61, 0x64, 0xff, 0xfe]), type: DT.REG, ino: 12n },
    { name: new Uint8Array(ascii("...")), type: DT.LNK, ino: 0xffff_ffff_ffff_fff0n },
    { name: new Uint8Array(ascii(".hidden")), type: DT.DIR, ino: 14n },
  ]);
});

Deno.test("parseDirents() copies names so the buffer can be reused", () => {
  const buf = fixture([{ ino: 5n, type: DT.REG, name: ascii("abc") }]);
  const [entry] = parseDirents(buf, buf.length);
  buf.fill(0);
  assert.deepEqual(entry.name, new Uint8Array(ascii("abc")));
});

Deno.test("parseDirents() reads only the first `length` bytes of the buffer", () => {
  const records = fixture([
    { ino: 1n, type: DT.REG, name: ascii("a") },
    { ino: 2n, type: DT.REG, name: ascii("b") },
  ]);
  const big = new Uint8Array(4096);
  big.set(records, 0);
  const firstLen = new DataView(records.buffer).getUint16(16, true);
  assert.deepEqual(parseDirents(big, firstLen).map((e) => e.ino), [1n]);
  assert.deepEqual(parseDirents(big, records.length).map((e) => e.ino), [1n, 2n]);
  assert.deepEqual(parseDirents(big, 0), []);
});

Deno.test("parseDirents() works on a subarray with a non-zero byteOffset", () => {
  const records = fixture([{ ino: 77n, type: DT.FIFO, name: ascii("pipe") }]);
  const backing = new Uint8Array(records.length + 8);
  backing.set(records, 8);
  const view = backing.subarray(8);
  assert.deepEqual(parseDirents(view, view.length), [
    { name: new Uint8Array(ascii("pipe")), type: DT.FIFO, ino: 77n },
  ]);
});

Deno.test("parseDirents() throws RangeError on a d_reclen that is too small or runs past the end", () => {
  const zero = fixture([{ ino: 1n, type: DT.REG, name: ascii("a"), reclen: 0 }]);
  assert.throws(() => parseDirents(zero, zero.length), {
    name: "RangeError",
    message: /offset 0: d_reclen 0/,
  });
  const tooLong = fixture([
    { ino: 1n, type: DT.REG, name: ascii("ok") },
    { ino: 2n, type: DT.REG, name: ascii("b"), reclen: 4000 },
  ]);
  assert.throws(() => parseDirents(tooLong, tooLong.length), {
    name: "RangeError",
    message: /offset 24: d_reclen 4000/,
  });
});
