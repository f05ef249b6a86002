import assert from "node:assert/strict";
import { FAN, FAN_EVENT_INFO_TYPE, FAN_NOFD } from "../../../ffi/fanotify.ts";
import { parseFanotifyEvents } from "./fanotify_events.ts";

interface Info {
  type: number;
  fsid?: bigint;
  handle?: number[];
  handleType?: number;
  name?: number[];
  /** Override of the header's len (for malformed fixtures). */
  len?: number;
  /** Raw body instead of a FID body. */
  raw?: number[];
}

interface Event {
  mask: number | bigint;
  fd?: number;
  pid?: number;
  vers?: number;
  info?: Info[];
  /** Overrides of event_len and metadata_len (for malformed fixtures). */
  eventLen?: number;
  metadataLen?: number;
}

/** An info record as the kernel writes it: header, fsid, file_handle, name + NUL, padded to 4. */
function infoBytes(info: Info): Uint8Array {
  const body = info.raw ?? (() => {
    const handle = info.handle ?? [];
    const name = info.name ? [...info.name, 0] : [];
    const b = new Uint8Array(8 + 8 + handle.length + name.length);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, info.fsid ?? 0n, true);
    v.setUint32(8, handle.length, true);
    v.setInt32(12, info.handleType ?? 1, true);
    b.set(handle, 16);
    b.set(name, 16 + handle.length);
    return [...b];
  })();
  const len = Math.ceil((4 + body.length) / 4) * 4;
  const out = new Uint8Array(len);
  out[0] = info.type;
  new DataView(out.buffer).setUint16(2, info.len ?? len, true);
  out.set(body, 4);
  return out;
}

/** A read(2) buffer of fanotify events. */
function fixture(events: Event[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of events) {
    const infos = (e.info ?? []).map(infoBytes);
    const infoLen = infos.reduce((n, p) => n + p.length, 0);
    const rec = new Uint8Array(24 + infoLen);
    const v = new DataView(rec.buffer);
    v.setUint32(0, e.eventLen ?? rec.length, true);
    rec[4] = e.vers ?? 3;
    v.setUint16(6, e.metadataLen ?? 24, true);
    v.setBigUint64(8, BigInt(e.mask), true);
    v.setInt32(16, e.fd ?? FAN_NOFD, true);
    v.setInt32(20, e.pid ?? 0, true);
    let off = 24;
    for (const p of infos) {
      rec.set(p, off);
      off += p.length;
    }
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

Deno.test("parseFanotifyEvents() reads several events from one buffer", () => {
  const buf = fixture([
    { mask: FAN.CLOSE_WRITE, fd: 7, pid: 1234 },
    { mask: FAN.OPEN_EXEC_PERM, fd: 8, pid: 99 },
    { mask: FAN.OPEN_EXEC | FAN.CLOSE_WRITE, fd: 9, pid: 5 },
  ]);
  const { records, problems } = parseFanotifyEvents(buf);
  assert.deepEqual(problems, []);
  assert.deepEqual(records, [
    { mask: FAN.CLOSE_WRITE, fd: 7, pid: 1234, fids: [] },
    { mask: FAN.OPEN_EXEC_PERM, fd: 8, pid: 99, fids: [] },
    { mask: FAN.OPEN_EXEC | FAN.CLOSE_WRITE, fd: 9, pid: 5, fids: [] },
  ]);
});

Deno.test("parseFanotifyEvents() stops at `length` and ignores the rest of the buffer", () => {
  const events = fixture([{ mask: FAN.CLOSE_WRITE, fd: 3, pid: 1 }]);
  const buf = new Uint8Array(4096);
  buf.set(events);
  buf.fill(0xaa, events.length);
  const { records, problems } = parseFanotifyEvents(buf, events.length);
  assert.equal(records.length, 1);
  assert.deepEqual(problems, []);
});

Deno.test("parseFanotifyEvents() reads FAN_Q_OVERFLOW with FAN_NOFD", () => {
  const { records } = parseFanotifyEvents(fixture([{ mask: FAN.Q_OVERFLOW, pid: 0 }]));
  assert.deepEqual(records, [{ mask: FAN.Q_OVERFLOW, fd: FAN_NOFD, pid: 0, fids: [] }]);
});

Deno.test("parseFanotifyEvents() keeps the high half of a 64-bit mask", () => {
  const { records } = parseFanotifyEvents(fixture([{ mask: (1n << 40n) | 0x8n, fd: 4 }]));
  assert.equal(records[0].mask, 2 ** 40 + 8);
});

Deno.test("parseFanotifyEvents() reads a DFID_NAME record: fsid, file handle, byte name", () => {
  const name = [0x62, 0xff, 0xfe];
  const handle = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const buf = fixture([{
    mask: FAN.MOVED_TO,
    pid: 42,
    info: [{
      type: FAN_EVENT_INFO_TYPE.DFID_NAME,
      fsid: 0x1122334455667788n,
      handle,
      handleType: 0x81,
      name,
    }],
  }]);
  const { records, problems } = parseFanotifyEvents(buf);
  assert.deepEqual(problems, []);
  assert.equal(records.length, 1);
  assert.equal(records[0].fd, FAN_NOFD);
  assert.equal(records[0].pid, 42);
  const [fid] = records[0].fids;
  assert.equal(fid.infoType, FAN_EVENT_INFO_TYPE.DFID_NAME);
  assert.equal(fid.fsid, 0x1122334455667788n);
  assert.deepEqual([...fid.name!], name);
  // The handle is the whole struct file_handle: handle_bytes, handle_type, f_handle.
  const hv = new DataView(fid.handle.buffer, fid.handle.byteOffset);
  assert.equal(fid.handle.length, 8 + handle.length);
  assert.equal(hv.getUint32(0, true), handle.length);
  assert.equal(hv.getInt32(4, true), 0x81);
  assert.deepEqual([...fid.handle.subarray(8)], handle);
});

Deno.test("parseFanotifyEvents() reads FID and DFID records without names, and copies them", () => {
  const buf = fixture([{
    mask: FAN.MOVED_TO,
    info: [
      { type: FAN_EVENT_INFO_TYPE.DFID, fsid: 5n, handle: [9, 9, 9, 9, 9, 9, 9, 9] },
      { type: FAN_EVENT_INFO_TYPE.FID, fsid: 5n, handle: [7, 7, 7, 7] },
    ],
  }]);
  const { records, problems } = parseFanotifyEvents(buf);
  assert.deepEqual(problems, []);
  assert.deepEqual(records[0].fids.map((f) => [f.infoType, f.name, f.handle.length]), [
    [FAN_EVENT_INFO_TYPE.DFID, undefined, 16],
    [FAN_EVENT_INFO_TYPE.FID, undefined, 12],
  ]);
  buf.fill(0);
  assert.equal(records[0].fids[0].handle[8], 9);
});

Deno.test("parseFanotifyEvents() rejects a metadata version mismatch and walks on", () => {
  const buf = fixture([
    { mask: FAN.CLOSE_WRITE, fd: 5, vers: 2 },
    { mask: FAN.CLOSE_WRITE, fd: 6 },
  ]);
  const { records, problems } = parseFanotifyEvents(buf);
  assert.deepEqual(records.map((r) => r.fd), [6]);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /version mismatch at offset 0: 2, expected 3/);
});

Deno.test("parseFanotifyEvents() stops at an event_len that cannot be walked", () => {
  for (const eventLen of [0, 23, 1000]) {
    const buf = fixture([
      { mask: FAN.CLOSE_WRITE, fd: 5 },
      { mask: FAN.CLOSE_WRITE, fd: 6, eventLen },
      { mask: FAN.CLOSE_WRITE, fd: 7 },
    ]);
    const { records, problems } = parseFanotifyEvents(buf);
    assert.deepEqual(records.map((r) => r.fd), [5], `event_len ${eventLen}`);
    assert.equal(problems.length, 1);
    assert.match(problems[0], /Bad fanotify event_len at offset 24/);
  }
});

Deno.test("parseFanotifyEvents() counts a short tail", () => {
  const buf = fixture([{ mask: FAN.CLOSE_WRITE, fd: 5 }, { mask: FAN.CLOSE_WRITE, fd: 6 }]);
  const { records, problems } = parseFanotifyEvents(buf, 24 + 10);
  assert.deepEqual(records.map((r) => r.fd), [5]);
  assert.deepEqual(problems, ["Short fanotify event at offset 24: 10 bytes"]);
});

Deno.test("parseFanotifyEvents() keeps an event whose metadata_len is bad, without info", () => {
  const buf = fixture([{
    mask: FAN.OPEN_EXEC_PERM,
    fd: 11,
    metadataLen: 8,
    info: [{ type: FAN_EVENT_INFO_TYPE.FID, handle: [1, 2, 3, 4] }],
  }]);
  const { records, problems } = parseFanotifyEvents(buf);
  // The descriptor is still reported so that the caller can answer and close it.
  assert.deepEqual(records, [{ mask: FAN.OPEN_EXEC_PERM, fd: 11, pid: 0, fids: [] }]);
  assert.match(problems[0], /Bad fanotify metadata_len at offset 0: 8/);
});

Deno.test("parseFanotifyEvents() counts unknown and malformed info records, keeps the event", () => {
  const good = { type: FAN_EVENT_INFO_TYPE.DFID_NAME, handle: [1, 2, 3, 4], name: [0x61] };
  const cases: [Info, RegExp][] = [
    [{ type: 99, raw: [1, 2, 3, 4] }, /Unknown fanotify info record type 99/],
    [{ type: FAN_EVENT_INFO_TYPE.FID, raw: [0, 0, 0, 0] }, /Short fanotify FID record/],
    [
      { type: FAN_EVENT_INFO_TYPE.FID, raw: [0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 1, 0, 0, 0] },
      /file handle overruns its record/,
    ],
    [
      {
        type: FAN_EVENT_INFO_TYPE.DFID_NAME,
        raw: [...new Array(16).fill(0), 0x61, 0x62, 0x63, 0x64],
      },
      /name without NUL/,
    ],
    [
      { type: FAN_EVENT_INFO_TYPE.DFID_NAME, raw: [...new Array(16).fill(0), 0, 0, 0, 0] },
      /Empty fanotify name/,
    ],
    [{ ...good, len: 2 }, /Bad fanotify info record length/],
    [{ ...good, len: 400 }, /Bad fanotify info record length/],
  ];
  for (const [info, expected] of cases) {
    const { records, problems } = parseFanotifyEvents(fixture([
      { mask: FAN.MOVED_TO, pid: 3, info: [info] },
      { mask: FAN.MOVED_TO, pid: 4, info: [good] },
    ]));
    assert.deepEqual(records.map((r) => r.pid), [3, 4], String(expected));
    assert.equal(records[0].fids.length, 0);
    assert.deepEqual([...records[1].fids[0].name!], [0x61]);
    assert.equal(problems.length, 1, String(expected));
    assert.match(problems[0], expected);
  }
});

Deno.test("parseFanotifyEvents() skips well-formed PIDFD records quietly", () => {
  const { records, problems } = parseFanotifyEvents(fixture([{
    mask: FAN.CLOSE_WRITE,
    fd: 3,
    info: [{ type: FAN_EVENT_INFO_TYPE.PIDFD, raw: [5, 0, 0, 0] }],
  }]));
  assert.deepEqual(problems, []);
  assert.equal(records[0].fd, 3);
});

Deno.test("parseFanotifyEvents() returns nothing for an empty read", () => {
  assert.deepEqual(parseFanotifyEvents(new Uint8Array(0)), { records: [], problems: [] });
});
