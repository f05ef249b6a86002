import assert from "node:assert/strict";
import {
  AMPAVFLT_ALLOW,
  AMPAVFLT_COMMAND,
  AMPAVFLT_DENY,
  AMPAVFLT_EV,
  AMPAVFLT_EVF,
  AMPAVFLT_MASK,
  AMPAVFLT_VERSION,
} from "../../../ffi/ampavflt.ts";
import { parseMountInfo } from "../../fs/mounts.ts";
import { SysError } from "../../sys/sys_error.ts";
import type { AvfltPort, AvfltWait } from "./avflt_port.ts";
import { avfltAvailable, AvfltSource, configMask, skippedDevices } from "./avflt_source.ts";

/** A decoded command the source wrote. */
interface Written {
  cmd: number;
  arg: number;
  id: bigint;
  value: bigint;
  queueTimeoutMs: number;
  timeoutAnswer: number;
}

/** Errno values the fake device can fail a write with. */
const ERRNO: Record<string, number> = {
  ENOENT: 2,
  ENOSPC: 28,
  ETXTBSY: 26,
  EOPNOTSUPP: 95,
  ESTALE: 116,
  EMEDIUMTYPE: 124,
};

interface Rec {
  kind: number;
  fd?: number;
  id?: bigint;
  perm?: boolean;
  tgid?: number;
  ctimeNs?: bigint;
  path?: string;
  lost?: bigint;
  execLost?: boolean;
}

function record(r: Rec): Uint8Array {
  const path = r.path === undefined ? new Uint8Array() : new TextEncoder().encode(r.path);
  const size = Math.ceil((72 + path.length) / 8) * 8;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  v.setUint32(0, size, true);
  v.setUint16(4, AMPAVFLT_VERSION, true);
  v.setUint16(6, r.kind, true);
  v.setUint32(
    8,
    (r.perm ? AMPAVFLT_EVF.PERM : 0) | (r.path !== undefined ? AMPAVFLT_EVF.PATH : 0) |
      (r.execLost ? AMPAVFLT_EVF.EXEC_LOST : 0),
    true,
  );
  v.setInt32(12, r.path !== undefined ? -1 : r.fd ?? -1, true);
  v.setBigUint64(16, r.id ?? 0n, true);
  v.setUint32(24, r.tgid ?? 4242, true);
  v.setUint32(28, r.tgid ?? 4242, true);
  v.setUint32(36, path.length, true);
  v.setBigUint64(56, r.ctimeNs ?? 0n, true);
  v.setBigUint64(64, r.lost ?? 0n, true);
  b.set(path, 72);
  return b;
}

/** A hand-written device: reads give queued buffers, writes are decoded and kept. */
class FakePort implements AvfltPort {
  readonly written: Written[] = [];
  readonly closedFds: number[] = [];
  readonly paths = new Map<number, string>();
  /** Errno (by name) to throw for the next write of this command code. */
  failNext = new Map<number, string>();
  /** Errno (by name) to throw for every write of this command code. */
  failAlways = new Map<number, string>();
  /** What protocolVersion() says. */
  version: number | undefined = AMPAVFLT_VERSION;
  closed = 0;
  #reads: Uint8Array[] = [];
  #waiter?: (w: AvfltWait) => void;

  push(...records: Rec[]): void {
    const parts = records.map(record);
    const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      buf.set(p, off);
      off += p.length;
    }
    this.#reads.push(buf);
    this.#waiter?.("ready");
    this.#waiter = undefined;
  }

  read(buf: Uint8Array<ArrayBuffer>): number {
    const next = this.#reads.shift();
    if (!next) return 0;
    buf.set(next);
    return next.length;
  }

  write(commands: Uint8Array<ArrayBuffer>): void {
    const v = new DataView(commands.buffer, commands.byteOffset, commands.byteLength);
    for (let off = 0; off < commands.length; off += AMPAVFLT_COMMAND.size) {
      const cmd = v.getUint16(off + AMPAVFLT_COMMAND.cmd, true);
      const code = this.failNext.get(cmd) ?? this.failAlways.get(cmd);
      if (code) {
        this.failNext.delete(cmd);
        throw new SysError("write", ERRNO[code]);
      }
      this.written.push({
        cmd,
        arg: v.getUint32(off + AMPAVFLT_COMMAND.arg, true),
        id: v.getBigUint64(off + AMPAVFLT_COMMAND.id, true),
        value: v.getBigUint64(off + AMPAVFLT_COMMAND.value, true),
        queueTimeoutMs: v.getUint32(off + AMPAVFLT_COMMAND.queue_timeout_ms, true),
        timeoutAnswer: v.getUint32(off + AMPAVFLT_COMMAND.timeout_answer, true),
      });
    }
  }

  wait(): Promise<AvfltWait> {
    if (this.#reads.length > 0) return Promise.resolve("ready");
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  wake(): void {
    this.#waiter?.("woken");
    this.#waiter = undefined;
  }

  closeFd(fd: number): void {
    this.closedFds.push(fd);
  }

  fdPath(fd: number): Uint8Array {
    const p = this.paths.get(fd);
    if (p === undefined) throw new SysError("readlink", 2);
    return new TextEncoder().encode(p);
  }

  protocolVersion(): number | undefined {
    return this.version;
  }

  close(): void {
    this.closed++;
  }

  verdicts(): Array<[bigint, number]> {
    return this.written.filter((w) => w.cmd === 1).map((w) => [w.id, w.arg]);
  }
}

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("AvfltSource.open() configures the module: mask, both timeouts a second beyond its own, the timeout answer", async () => {
  const port = new FakePort();
  const source = AvfltSource.open(
    { onAccess: true, exec: "active", permissionTimeoutMs: 3000, timeoutAnswer: "deny" },
    port,
  );
  assert.deepEqual(port.written, [{
    cmd: 2,
    arg: AMPAVFLT_MASK.EXEC_PERM | AMPAVFLT_MASK.CLOSE_WRITE,
    id: 0n,
    value: 4000n,
    queueTimeoutMs: 4000,
    timeoutAnswer: AMPAVFLT_DENY,
  }]);
  assert.equal(source.backend, "avflt");
  assert.deepEqual(source.watched, ["/"]);
  await source.close();
  await source.close();
  assert.equal(port.closed, 1);
  assert.equal(configMask({ onAccess: false, exec: "passive" }), AMPAVFLT_MASK.EXEC);
  assert.throws(
    () => AvfltSource.open({ onAccess: false, exec: "off" }, new FakePort()),
    TypeError,
  );
  // Fail-open by default; the module's timeouts stay within its 60 s maximum.
  const open = new FakePort();
  await AvfltSource.open(
    { onAccess: false, exec: "active", permissionTimeoutMs: 60_000 },
    open,
  ).close();
  assert.equal(open.written[0].value, 60_000n);
  assert.equal(open.written[0].queueTimeoutMs, 60_000);
  assert.equal(open.written[0].timeoutAnswer, AMPAVFLT_ALLOW);
});

Deno.test("AvfltSource.open() refuses a module of another protocol, closing the device unconfigured", () => {
  for (const version of [1, undefined]) {
    const port = new FakePort();
    port.version = version;
    assert.throws(
      () => AvfltSource.open({ onAccess: true, exec: "active" }, port),
      new RegExp(
        `speaks protocol ${version ?? "1 or unknown"}, this amp needs ${AMPAVFLT_VERSION}`,
      ),
    );
    assert.equal(port.closed, 1);
    assert.deepEqual(port.written, []);
  }
});

Deno.test("AvfltSource.open() names the devices to skip after CONFIG, one per write; a refusal is a problem", async () => {
  const port = new FakePort();
  const source = AvfltSource.open(
    { onAccess: true, exec: "active", skipDevices: [21n, 0x803n] },
    port,
  );
  assert.deepEqual(port.written.map((w) => [w.cmd, w.value]), [[2, 6000n], [5, 21n], [5, 0x803n]]);
  await source.close();

  const full = new FakePort();
  full.failAlways.set(5, "ENOSPC");
  const problems: string[] = [];
  const limited = AvfltSource.open(
    { onAccess: true, exec: "active", skipDevices: [1n, 2n], onProblem: (m) => problems.push(m) },
    full,
  );
  assert.equal(problems.length, 1, "told once, then no more tries");
  assert.match(problems[0], /Cannot make ampavflt skip device 1: write: ENOSPC/);
  assert.equal(limited.stats.errors, 1);
  await limited.close();
});

Deno.test("skippedDevices() lists each network, FUSE or pseudo mount's device once", () => {
  const mounts = parseMountInfo(new TextEncoder().encode([
    "1 0 8:1 / / rw - ext4 /dev/sda1 rw",
    "2 1 0:21 / /proc rw - proc proc rw",
    "3 1 0:21 / /chroot/proc rw - proc proc rw",
    "4 1 0:50 / /mnt/nfs rw - nfs4 srv:/x rw",
    "5 1 0:51 / /mnt/ssh rw - fuse.sshfs u@h: rw",
    "6 1 0:30 / /tmp rw - tmpfs tmpfs rw",
    "",
  ].join("\n")));
  assert.deepEqual(skippedDevices(mounts), [21n, 50n, 51n]);
});

Deno.test("AvfltSource yields exec-perm events whose respond writes one verdict", async () => {
  const port = new FakePort();
  const source = AvfltSource.open({ onAccess: true, exec: "active" }, port);
  port.paths.set(7, "/usr/bin/prog");
  port.paths.set(8, "/home/a/file.txt");
  port.push(
    { kind: AMPAVFLT_EV.EXEC, perm: true, fd: 7, id: 11n, tgid: 300 },
    { kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 8, id: 12n, tgid: 301 },
  );
  const batch = await source.next();
  assert.equal(batch.length, 2);
  const [exec, write] = batch;
  assert.ok(exec.kind === "exec-perm" && write.kind === "close-write");
  assert.equal(decode(exec.path), "/usr/bin/prog");
  assert.equal(exec.pid, 300);
  assert.equal(exec.fd, 7);
  assert.equal(write.respond, undefined);
  assert.equal(write.ignoreUntilModified, undefined);
  assert.equal(exec.respond!(false), true);
  assert.equal(exec.respond!(true), false, "answered once");
  assert.deepEqual(port.verdicts(), [[11n, 2]]);
  assert.equal(source.stats.events, 2);
  await source.close();
});

Deno.test("AvfltSource: a verdict the module no longer waits for (its timeout) returns false", async () => {
  const port = new FakePort();
  const source = AvfltSource.open({ onAccess: false, exec: "active" }, port);
  port.paths.set(3, "/bin/x");
  port.push({ kind: AMPAVFLT_EV.EXEC, perm: true, fd: 3, id: 5n });
  const [event] = await source.next();
  assert.ok(event.kind === "exec-perm");
  port.failNext.set(1, "ENOENT");
  assert.equal(event.respond!(false), false);
  assert.equal(source.stats.permissionTimeouts, 1);
  await source.close();
});

Deno.test("AvfltSource answers a permission event on its own timer, then respond returns false", async () => {
  const port = new FakePort();
  const problems: string[] = [];
  const source = AvfltSource.open({
    onAccess: false,
    exec: "active",
    permissionTimeoutMs: 30,
    timeoutAnswer: "deny",
    onProblem: (m) => problems.push(m),
  }, port);
  port.paths.set(3, "/bin/slow");
  port.push({ kind: AMPAVFLT_EV.EXEC, perm: true, fd: 3, id: 9n });
  const [event] = await source.next();
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(port.verdicts(), [[9n, 2]]);
  assert.equal(source.stats.permissionTimeouts, 1);
  assert.match(problems[0], /waited 30 ms without a verdict: answered deny/);
  assert.ok(event.kind === "exec-perm");
  assert.equal(event.respond!(true), false);
  await source.close();
});

Deno.test("AvfltSource.close() allows every unanswered permission event once", async () => {
  const port = new FakePort();
  const source = AvfltSource.open({ onAccess: false, exec: "active" }, port);
  port.paths.set(3, "/bin/a");
  port.paths.set(4, "/bin/b");
  port.push(
    { kind: AMPAVFLT_EV.EXEC, perm: true, fd: 3, id: 1n },
    { kind: AMPAVFLT_EV.EXEC, perm: true, fd: 4, id: 2n },
  );
  const [a] = await source.next();
  assert.ok(a.kind === "exec-perm");
  a.respond!(true);
  const pending = source.next();
  await source.close();
  assert.deepEqual(await pending, []);
  assert.deepEqual(port.verdicts(), [[1n, 1], [2n, 1]]);
  assert.equal(port.closed, 1);
});

Deno.test("AvfltSource skips its own process, unwanted paths (caching their programs) and unknown records, allowing and closing them", async () => {
  const port = new FakePort();
  const source = AvfltSource.open(
    {
      onAccess: true,
      exec: "active",
      pathPrefixes: [new TextEncoder().encode("/watched/")],
      paths: ["/watched"],
    },
    port,
  );
  assert.deepEqual(source.watched, ["/watched"]);
  port.paths.set(3, "/watched/mine");
  port.paths.set(4, "/elsewhere/prog");
  port.paths.set(6, "/watched/opened");
  port.paths.set(7, "/watched/ok");
  port.push(
    { kind: AMPAVFLT_EV.EXEC, perm: true, fd: 3, id: 1n, tgid: Deno.pid },
    { kind: AMPAVFLT_EV.EXEC, perm: true, fd: 4, id: 2n },
    { kind: 77, perm: true, fd: 5, id: 3n },
    { kind: AMPAVFLT_EV.OPEN_WRITE, fd: 6, id: 4n },
    { kind: AMPAVFLT_EV.CLOSE_WRITE, fd: 7, id: 5n },
  );
  const batch = await source.next();
  assert.equal(batch.length, 1);
  assert.ok(batch[0].kind === "close-write");
  assert.equal(decode(batch[0].path), "/watched/ok");
  assert.deepEqual(port.verdicts(), [[1n, 1], [2n, 1], [3n, 1]]);
  // The program outside the watched paths goes to the module's cache (fd 4), nothing else.
  assert.deepEqual(port.written.filter((w) => w.cmd === 3).map((w) => w.arg), [4]);
  assert.deepEqual(port.closedFds, [3, 4, 5, 6]);
  assert.equal(source.stats.ownEvents, 1);
  assert.equal(source.stats.errors, 1, "the unknown kind is a problem");
  await source.close();
});

Deno.test("AvfltSource turns overflows and events without a descriptor into overflow events", async () => {
  const port = new FakePort();
  const problems: string[] = [];
  const source = AvfltSource.open(
    { onAccess: true, exec: "active", onProblem: (m) => problems.push(m) },
    port,
  );
  port.push(
    { kind: AMPAVFLT_EV.OVERFLOW, lost: 12n, execLost: true },
    { kind: AMPAVFLT_EV.CLOSE_WRITE, path: "/no/fd" },
    { kind: AMPAVFLT_EV.EXEC, perm: true, id: 8n, path: "/no/fd/prog" },
  );
  const batch = await source.next();
  assert.deepEqual(batch.map((e) => e.kind === "overflow" ? !!e.execs : "file"), [
    true,
    false,
    true,
  ]);
  assert.equal(source.stats.overflows, 3);
  assert.deepEqual(port.verdicts(), [[8n, 1]], "the waiting exec is allowed");
  assert.deepEqual(port.closedFds, []);
  assert.equal(problems.length, 2);
  await source.close();
});

Deno.test("AvfltSource ignoreUntilModified sends CACHE with the event's change time; refusals return false", async () => {
  const port = new FakePort();
  const problems: string[] = [];
  const source = AvfltSource.open(
    { onAccess: false, exec: "passive", onProblem: (m) => problems.push(m) },
    port,
  );
  for (const fd of [3, 4, 5, 6]) port.paths.set(fd, `/bin/p${fd}`);
  port.push(
    { kind: AMPAVFLT_EV.EXEC, fd: 3, id: 1n, ctimeNs: 1234n },
    { kind: AMPAVFLT_EV.EXEC, fd: 4, id: 2n, ctimeNs: 99n },
    { kind: AMPAVFLT_EV.EXEC, fd: 5, id: 3n },
    { kind: AMPAVFLT_EV.EXEC, fd: 6, id: 4n },
  );
  const batch = await source.next();
  assert.ok(batch.every((e) => e.kind === "exec" && e.respond === undefined));
  const ignore = (i: number) =>
    (batch[i] as { ignoreUntilModified: () => boolean }).ignoreUntilModified();
  assert.equal(ignore(0), true);
  port.failNext.set(3, "ESTALE");
  assert.equal(ignore(1), false, "changed since the event");
  port.failNext.set(3, "ETXTBSY");
  assert.equal(ignore(1), false, "a writer has it");
  port.failNext.set(3, "EMEDIUMTYPE");
  assert.equal(ignore(1), false, "a file system the module does not cache");
  assert.equal(ignore(2), true);
  assert.deepEqual(problems, [], "none of these is a problem");
  // The module bounds its cache: ENOSPC is told once until the next forget, and not sticky.
  port.failNext.set(3, "ENOSPC");
  assert.equal(ignore(3), false);
  port.failNext.set(3, "ENOSPC");
  assert.equal(ignore(3), false);
  assert.deepEqual(problems, ["The ampavflt verdict cache is full"]);
  assert.equal(ignore(3), true, "no limit of the source's own");
  const caches = port.written.filter((w) => w.cmd === 3);
  assert.deepEqual(caches.map((w) => [w.arg, w.value]), [[3, 1234n], [5, 0n], [6, 0n]]);
  assert.equal(source.stats.ignoreMarks, 3);
  source.forgetIgnored();
  assert.equal(port.written.at(-1)!.cmd, 4);
  assert.equal(source.stats.ignoreMarks, 0);
  port.failNext.set(3, "ENOSPC");
  assert.equal(ignore(3), false);
  assert.equal(problems.length, 2, "told again after a forget");
  await source.close();
});

Deno.test("AvfltSource stops asking a module that cannot cache (EOPNOTSUPP), telling once", async () => {
  const port = new FakePort();
  const problems: string[] = [];
  const source = AvfltSource.open(
    { onAccess: false, exec: "passive", onProblem: (m) => problems.push(m) },
    port,
  );
  port.paths.set(3, "/bin/p");
  port.push({ kind: AMPAVFLT_EV.EXEC, fd: 3, id: 1n });
  const [event] = await source.next();
  assert.ok(event.kind === "exec");
  port.failAlways.set(3, "EOPNOTSUPP");
  assert.equal(event.ignoreUntilModified!(), false);
  assert.equal(event.ignoreUntilModified!(), false);
  assert.equal(problems.length, 1);
  assert.match(problems[0], /keeps no verdict cache/);
  assert.equal(source.stats.errors, 0, "a limit of the module, not an error");
  await source.close();
});

Deno.test("avfltAvailable() is false for a missing device and for a file that is no device", () => {
  assert.equal(avfltAvailable("/nonexistent/ampavflt"), false);
  assert.equal(avfltAvailable(new URL(import.meta.url).pathname), false);
});
