import assert from "node:assert/strict";
import { parseProcEvents } from "./proc_events.ts";

/** Builds one netlink message: nlmsghdr + cn_msg + proc_event(what, payload u32s). */
function message(
  what: number,
  payload: number[] | Uint8Array,
  opts: { type?: number; idx?: number; ts?: bigint; cnLen?: number } = {},
): Uint8Array {
  const data = payload instanceof Uint8Array ? payload : u32s(payload);
  const eventLen = 16 + data.length;
  const len = 16 + 20 + eventLen;
  const buf = new Uint8Array((len + 3) & ~3);
  const v = new DataView(buf.buffer);
  v.setUint32(0, len, true);
  v.setUint16(4, opts.type ?? 3, true); // NLMSG_DONE, as the kernel sends it
  v.setUint32(16, opts.idx ?? 1, true);
  v.setUint32(20, 1, true);
  v.setUint16(32, opts.cnLen ?? eventLen, true);
  v.setUint32(36, what, true);
  v.setUint32(40, 3, true); // cpu
  v.setBigUint64(44, opts.ts ?? 123456789n, true);
  buf.set(data, 52);
  return buf;
}

function u32s(values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  values.forEach((x, i) => new DataView(b.buffer).setUint32(i * 4, x >>> 0, true));
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("parseProcEvents() reads fork, exec and exit from one datagram", () => {
  const bytes = concat(
    message(0x1, [100, 100, 200, 200], { ts: 5n }),
    message(0x2, [200, 200], { ts: 6n }),
    message(0x80000000, [200, 200, 256, 0, 100, 100], { ts: 7n }),
  );
  assert.deepEqual(parseProcEvents(bytes), [
    { kind: "fork", pid: 200, tgid: 200, ppid: 100, ptgid: 100, timestampNs: 5n },
    { kind: "exec", pid: 200, tgid: 200, timestampNs: 6n },
    {
      kind: "exit",
      pid: 200,
      tgid: 200,
      ppid: 100,
      ptgid: 100,
      exitCode: 256,
      exitSignal: 0,
      timestampNs: 7n,
    },
  ]);
});

Deno.test("parseProcEvents() reads uid, gid, sid, ptrace, comm, coredump and the ack", () => {
  const comm = new Uint8Array(24);
  new DataView(comm.buffer).setUint32(0, 7, true);
  new DataView(comm.buffer).setUint32(4, 7, true);
  comm.set(new TextEncoder().encode("worker"), 8);
  const records = parseProcEvents(concat(
    message(0x4, [7, 7, 1000, 0]),
    message(0x40, [7, 7, 50, 51]),
    message(0x80, [7, 7]),
    message(0x100, [7, 7, 9, 9]),
    message(0x200, comm),
    message(0x40000000, [7, 7, 1, 1]),
    message(0x0, [0]),
  ));
  const ts = 123456789n;
  assert.deepEqual(records, [
    { kind: "uid", pid: 7, tgid: 7, real: 1000, effective: 0, timestampNs: ts },
    { kind: "gid", pid: 7, tgid: 7, real: 50, effective: 51, timestampNs: ts },
    { kind: "sid", pid: 7, tgid: 7, timestampNs: ts },
    { kind: "ptrace", pid: 7, tgid: 7, tracerPid: 9, tracerTgid: 9, timestampNs: ts },
    { kind: "comm", pid: 7, tgid: 7, comm: "worker", timestampNs: ts },
    { kind: "coredump", pid: 7, tgid: 7, ppid: 1, ptgid: 1, timestampNs: ts },
    { kind: "ack", error: 0 },
  ]);
});

Deno.test("parseProcEvents() reports unknown and short events and goes on", () => {
  const records = parseProcEvents(concat(
    message(0x8000, [1, 2]),
    message(0x1, [1, 1]), // a fork needs 16 bytes
    message(0x2, [5, 5], { idx: 4 }), // another connector
    message(0x2, [5, 5], { cnLen: 10 }), // cn_msg.len shorter than the header
    message(0x2, [6, 6]),
  ));
  assert.deepEqual(records.map((r) => r.kind), [
    "unknown",
    "unknown",
    "unknown",
    "unknown",
    "exec",
  ]);
  assert.match((records[0] as { reason: string }).reason, /unknown proc_event: 0x8000/);
  assert.match((records[1] as { reason: string }).reason, /short proc_event 0x1/);
  assert.match((records[2] as { reason: string }).reason, /not a proc connector message: 4:1/);
  assert.deepEqual(records[4], { kind: "exec", pid: 6, tgid: 6, timestampNs: 123456789n });
});

Deno.test("parseProcEvents() handles NLMSG_ERROR, NLMSG_OVERRUN and NLMSG_NOOP", () => {
  const err = new Uint8Array(36);
  const v = new DataView(err.buffer);
  v.setUint32(0, 36, true);
  v.setUint16(4, 2, true);
  v.setInt32(16, -105, true);
  const overrun = new Uint8Array(16);
  new DataView(overrun.buffer).setUint32(0, 16, true);
  new DataView(overrun.buffer).setUint16(4, 4, true);
  const noop = new Uint8Array(16);
  new DataView(noop.buffer).setUint32(0, 16, true);
  new DataView(noop.buffer).setUint16(4, 1, true);
  assert.deepEqual(parseProcEvents(concat(err, overrun, noop, message(0x2, [8, 8]))), [
    { kind: "error", error: -105 },
    { kind: "overflow" },
    { kind: "exec", pid: 8, tgid: 8, timestampNs: 123456789n },
  ]);
});

Deno.test("parseProcEvents() stops at a truncated or malformed header", () => {
  const good = message(0x2, [8, 8]);
  const truncated = concat(good, good.subarray(0, 10));
  assert.deepEqual(parseProcEvents(truncated).map((r) => r.kind), ["exec", "unknown"]);
  const bad = good.slice();
  new DataView(bad.buffer).setUint32(0, 1000, true);
  const records = parseProcEvents(bad);
  assert.equal(records.length, 1);
  assert.match((records[0] as { reason: string }).reason, /bad netlink message length: 1000/);
  assert.deepEqual(parseProcEvents(new Uint8Array(0)), []);
});

Deno.test("parseProcEvents() reads a message at an unaligned offset within a larger buffer", () => {
  const backing = new Uint8Array(200);
  const msg = message(0x2, [9, 9]);
  backing.set(msg, 7);
  assert.deepEqual(parseProcEvents(backing.subarray(7, 7 + msg.length)), [
    { kind: "exec", pid: 9, tgid: 9, timestampNs: 123456789n },
  ]);
});
