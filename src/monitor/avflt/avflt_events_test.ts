import assert from "node:assert/strict";
import {
  AMPAVFLT_ALLOW,
  AMPAVFLT_CMD,
  AMPAVFLT_DENY,
  AMPAVFLT_EV,
  AMPAVFLT_EVF,
  AMPAVFLT_MASK,
  AMPAVFLT_VERSION,
} from "../../../ffi/ampavflt.ts";
import { encodeAvfltCommands, parseAvfltEvents } from "./avflt_events.ts";

interface Event {
  kind: number;
  flags?: number;
  fd?: number;
  id?: bigint;
  pid?: number;
  tgid?: number;
  uid?: number;
  dev?: bigint;
  ino?: bigint;
  ctimeNs?: bigint;
  lost?: bigint;
  path?: string;
  version?: number;
  /** Override of the size field (for malformed fixtures). */
  size?: number;
  /** Override of path_len (for malformed fixtures). */
  pathLen?: number;
}

/** A read(2) buffer of ampavflt records, laid out as the module writes them. */
function fixture(events: Event[]): Uint8Array {
  const parts = events.map((e) => {
    const path = e.path === undefined ? new Uint8Array() : new TextEncoder().encode(e.path);
    const size = Math.ceil((72 + path.length) / 8) * 8;
    const rec = new Uint8Array(size);
    const v = new DataView(rec.buffer);
    v.setUint32(0, e.size ?? size, true);
    v.setUint16(4, e.version ?? AMPAVFLT_VERSION, true);
    v.setUint16(6, e.kind, true);
    v.setUint32(8, (e.flags ?? 0) | (e.path === undefined ? 0 : AMPAVFLT_EVF.PATH), true);
    v.setInt32(12, e.path === undefined ? e.fd ?? 3 : -1, true);
    v.setBigUint64(16, e.id ?? 0n, true);
    v.setUint32(24, e.pid ?? 100, true);
    v.setUint32(28, e.tgid ?? 100, true);
    v.setUint32(32, e.uid ?? 0, true);
    v.setUint32(36, e.pathLen ?? path.length, true);
    v.setBigUint64(40, e.dev ?? 0n, true);
    v.setBigUint64(48, e.ino ?? 0n, true);
    v.setBigUint64(56, e.ctimeNs ?? 0n, true);
    v.setBigUint64(64, e.lost ?? 0n, true);
    rec.set(path, 72);
    return rec;
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

Deno.test("parseAvfltEvents() reads an exec permission event and a close-write from one buffer", () => {
  const buf = fixture([
    {
      kind: AMPAVFLT_EV.EXEC,
      flags: AMPAVFLT_EVF.PERM,
      fd: 7,
      id: 41n,
      pid: 1234,
      tgid: 1200,
      uid: 1000,
      dev: 0x803n,
      ino: 0x1_0000_0001n,
      ctimeNs: 1_700_000_000_123_456_789n,
    },
    { kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 8, id: 42n, pid: 9, tgid: 9 },
  ]);
  const { records, problems } = parseAvfltEvents(buf);
  assert.deepEqual(problems, []);
  assert.deepEqual(records, [
    {
      kind: "exec",
      perm: true,
      kernel: false,
      id: 41n,
      fd: 7,
      pid: 1234,
      tgid: 1200,
      uid: 1000,
      dev: 0x803n,
      ino: 0x1_0000_0001n,
      ctimeNs: 1_700_000_000_123_456_789n,
    },
    {
      kind: "close-write",
      perm: false,
      kernel: false,
      id: 42n,
      fd: 8,
      pid: 9,
      tgid: 9,
      uid: 0,
      dev: 0n,
      ino: 0n,
      ctimeNs: 0n,
    },
  ]);
});

Deno.test("parseAvfltEvents() takes the path after a record without a descriptor, bytes kept", () => {
  const buf = fixture([{ kind: AMPAVFLT_EV.OPEN_WRITE, path: "/tmp/a b" }]);
  // Not valid UTF-8: a path is bytes.
  const bytes = fixture([{ kind: AMPAVFLT_EV.EXEC, path: "/x" }]);
  bytes[72 + 1] = 0xff;
  const one = parseAvfltEvents(buf);
  assert.deepEqual(one.problems, []);
  assert.equal(buf.length, 80);
  const rec = one.records[0];
  assert.equal(rec.kind, "open-write");
  assert.ok(rec.kind === "open-write");
  assert.equal(rec.fd, -1);
  assert.equal(new TextDecoder().decode(rec.path), "/tmp/a b");
  const two = parseAvfltEvents(bytes).records[0];
  assert.ok(two.kind === "exec");
  assert.deepEqual([...two.path!], [0x2f, 0xff]);
});

Deno.test("parseAvfltEvents() reports an overflow with its count and whether execs were lost", () => {
  const { records } = parseAvfltEvents(fixture([
    { kind: AMPAVFLT_EV.OVERFLOW, fd: -1, lost: 17n, flags: AMPAVFLT_EVF.EXEC_LOST },
    { kind: AMPAVFLT_EV.OVERFLOW, fd: -1, lost: 1n },
  ]));
  assert.deepEqual(records, [
    { kind: "overflow", lost: 17n, execs: true },
    { kind: "overflow", lost: 1n, execs: false },
  ]);
});

Deno.test("parseAvfltEvents() returns an unknown kind with its descriptor, as a problem", () => {
  const { records, problems } = parseAvfltEvents(fixture([
    { kind: 99, fd: 5, id: 3n, flags: AMPAVFLT_EVF.PERM },
    { kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 7 },
  ]));
  assert.deepEqual(records[0], { kind: "unknown", fd: 5, perm: true, id: 3n });
  assert.equal(records[1].kind, "close-write");
  assert.equal(problems.length, 1);
  assert.match(problems[0], /Unknown ampavflt event kind 99 at offset 0/);
});

Deno.test("parseAvfltEvents() stops at a record of another version, trusting none of its fields", () => {
  const { records, problems } = parseAvfltEvents(fixture([
    { kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 4 },
    { kind: AMPAVFLT_EV.EXEC, version: 1, fd: 6, id: 4n, flags: AMPAVFLT_EVF.PERM },
    { kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 7 },
  ]));
  // No "unknown" record: its fd (6) is not closed, as it may name any descriptor of ours.
  assert.deepEqual(records.map((r) => r.kind), ["close-write"]);
  assert.deepEqual(problems, [
    `Ampavflt event version mismatch at offset 72: 1, expected ${AMPAVFLT_VERSION}`,
  ]);
});

Deno.test("parseAvfltEvents() reads the kernel-started flag of an exec", () => {
  const { records } = parseAvfltEvents(fixture([
    { kind: AMPAVFLT_EV.EXEC, fd: 3, flags: AMPAVFLT_EVF.KERNEL },
  ]));
  assert.ok(records[0].kind === "exec");
  assert.equal(records[0].kernel, true);
  assert.equal(records[0].perm, false);
});

Deno.test("parseAvfltEvents() stops at a bad size or a short tail, keeping what came before", () => {
  const good = fixture([{ kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 4 }]);
  const badSize = fixture([{ kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 5, size: 4096 }]);
  const joined = new Uint8Array([...good, ...badSize]);
  const a = parseAvfltEvents(joined);
  assert.equal(a.records.length, 1);
  assert.match(a.problems[0], /Bad ampavflt event size at offset 72: 4096/);
  const b = parseAvfltEvents(good, 40);
  assert.deepEqual(b.records, []);
  assert.match(b.problems[0], /Short ampavflt event at offset 0: 40 bytes/);
  const unaligned = fixture([{ kind: AMPAVFLT_EV.CLOSE_WRITE, size: 76 }]);
  assert.match(parseAvfltEvents(unaligned).problems[0], /Bad ampavflt event size/);
});

Deno.test("parseAvfltEvents() flags a path length that overruns the record and a waiting non-exec", () => {
  const { records, problems } = parseAvfltEvents(fixture([
    { kind: AMPAVFLT_EV.OPEN_WRITE, path: "/a", pathLen: 200 },
    { kind: AMPAVFLT_EV.CLOSE_WRITE, flags: AMPAVFLT_EVF.PERM, fd: 3 },
  ]));
  assert.equal(records.length, 2);
  assert.ok(records[0].kind === "open-write" && records[0].path === undefined);
  assert.match(problems[0], /path overruns its event at offset 0: 200 bytes/);
  assert.match(problems[1], /close-write event marked as waiting/);
});

Deno.test("encodeAvfltCommands() lays out verdict, config, cache, forget and skip-dev commands", () => {
  const buf = encodeAvfltCommands([
    { cmd: "verdict", id: 0x1_0000_0002n, allow: false },
    {
      cmd: "config",
      mask: AMPAVFLT_MASK.EXEC_PERM | AMPAVFLT_MASK.CLOSE_WRITE,
      timeoutMs: 6000,
      queueTimeoutMs: 7000,
      timeoutAnswer: "deny",
    },
    { cmd: "cache", fd: 12, ctimeNs: 99n },
    { cmd: "forget" },
    { cmd: "verdict", id: 5n, allow: true },
    { cmd: "skip-dev", dev: 0x2an },
    {
      cmd: "config",
      mask: AMPAVFLT_MASK.EXEC,
      timeoutMs: 0,
      queueTimeoutMs: 0,
      timeoutAnswer: "allow",
    },
  ]);
  assert.equal(buf.length, 7 * 32);
  const v = new DataView(buf.buffer);
  const at = (i: number) => ({
    version: v.getUint16(i * 32, true),
    cmd: v.getUint16(i * 32 + 2, true),
    arg: v.getUint32(i * 32 + 4, true),
    id: v.getBigUint64(i * 32 + 8, true),
    value: v.getBigUint64(i * 32 + 16, true),
    queue: v.getUint32(i * 32 + 24, true),
    answer: v.getUint32(i * 32 + 28, true),
  });
  const V = AMPAVFLT_VERSION;
  const zero = { arg: 0, id: 0n, value: 0n, queue: 0, answer: 0 };
  assert.deepEqual(at(0), {
    ...zero,
    version: V,
    cmd: AMPAVFLT_CMD.VERDICT,
    arg: AMPAVFLT_DENY,
    id: 0x1_0000_0002n,
  });
  assert.deepEqual(at(1), {
    ...zero,
    version: V,
    cmd: AMPAVFLT_CMD.CONFIG,
    arg: 0xa,
    value: 6000n,
    queue: 7000,
    answer: AMPAVFLT_DENY,
  });
  assert.deepEqual(at(2), { ...zero, version: V, cmd: AMPAVFLT_CMD.CACHE, arg: 12, value: 99n });
  assert.deepEqual(at(3), { ...zero, version: V, cmd: AMPAVFLT_CMD.FORGET });
  assert.equal(at(4).arg, AMPAVFLT_ALLOW);
  assert.deepEqual(at(5), { ...zero, version: V, cmd: AMPAVFLT_CMD.SKIP_DEV, value: 0x2an });
  assert.equal(at(6).answer, AMPAVFLT_ALLOW);
});
