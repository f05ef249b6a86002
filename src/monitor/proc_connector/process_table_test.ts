import assert from "node:assert/strict";
import type { ProcEventSource, ProcRecord } from "./proc_events.ts";
import { ProcessTable } from "./process_table.ts";

/** Hands batches to the table one at a time; `push` resolves once the table asks for the next. */
class FakeSource implements ProcEventSource {
  #batches: ProcRecord[][] = [];
  #waiter: ((b: ProcRecord[]) => void) | undefined;
  #asked: (() => void) | undefined;
  closed = 0;

  next(): Promise<ProcRecord[]> {
    this.#asked?.();
    this.#asked = undefined;
    const b = this.#batches.shift();
    if (b) return Promise.resolve(b);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  async push(...records: ProcRecord[]): Promise<void> {
    const applied = new Promise<void>((resolve) => (this.#asked = resolve));
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w(records);
    } else this.#batches.push(records);
    await applied;
  }

  close(): Promise<void> {
    this.closed++;
    this.#waiter?.([]);
    this.#waiter = undefined;
    return Promise.resolve();
  }
}

/** A /proc with one process per entry: status, cmdline and an exe symlink. */
async function fakeProc(
  procs: Record<number, { ppid: number; uid: number; exe: string; argv: string[] }>,
) {
  const dir = await Deno.makeTempDir({ prefix: "amp-proc-" });
  for (const [pid, p] of Object.entries(procs)) {
    await Deno.mkdir(`${dir}/${pid}`);
    await Deno.writeTextFile(
      `${dir}/${pid}/status`,
      `Name:\tx\nPPid:\t${p.ppid}\nUid:\t${p.uid}\t${p.uid}\t${p.uid}\t${p.uid}\n`,
    );
    await Deno.writeTextFile(`${dir}/${pid}/cmdline`, p.argv.map((a) => a + "\0").join(""));
    await Deno.symlink(p.exe, `${dir}/${pid}/exe`);
  }
  return dir;
}

const text = (b?: Uint8Array) => b && new TextDecoder().decode(b);
const ts = 1n;

Deno.test("ProcessTable records exec from /proc and keeps the entry after exit for retainMs", async () => {
  const proc = await fakeProc({
    100: { ppid: 1, uid: 0, exe: "/usr/bin/dash", argv: ["sh", "-c", "x"] },
    200: { ppid: 100, uid: 1000, exe: "/usr/bin/curl", argv: ["curl", "http://a"] },
  });
  let now = 1000;
  const source = new FakeSource();
  const table = new ProcessTable(source, { proc, retainMs: 500, now: () => now });
  try {
    await source.push(
      { kind: "fork", pid: 200, tgid: 200, ppid: 100, ptgid: 100, timestampNs: ts },
      { kind: "exec", pid: 200, tgid: 200, timestampNs: ts },
    );
    // The process is gone from /proc: only the table knows it now.
    await Deno.remove(`${proc}/200`, { recursive: true });
    await source.push({
      kind: "exit",
      pid: 200,
      tgid: 200,
      ppid: 100,
      ptgid: 100,
      exitCode: 0,
      exitSignal: 17,
      timestampNs: ts,
    });
    const e = table.get(200);
    assert.ok(e);
    assert.equal(text(e.executable), "/usr/bin/curl");
    assert.equal(e.commandLine, "curl http://a");
    assert.equal(e.ppid, 100);
    assert.equal(e.uid, 1000);
    assert.equal(text(e.parentExecutable), "/usr/bin/dash");
    assert.equal(e.exited, 1000);
    now = 1499;
    assert.equal(table.get(200)?.exited, 1000);
    now = 1500;
    assert.equal(table.get(200), undefined);
    assert.deepEqual(
      { ...table.stats, size: undefined },
      {
        events: 3,
        execs: 1,
        exits: 1,
        lost: 0,
        unknown: 0,
        errors: 0,
        evicted: 0,
        size: undefined,
      },
    );
  } finally {
    await table.close();
    await Deno.remove(proc, { recursive: true });
  }
  assert.equal(source.closed, 1);
});

Deno.test("ProcessTable gives a forked child its parent's image and an exec the new one", async () => {
  const proc = await fakeProc({
    100: { ppid: 1, uid: 0, exe: "/usr/bin/bash", argv: ["bash", "run.sh"] },
  });
  const source = new FakeSource();
  const table = new ProcessTable(source, { proc });
  try {
    await source.push({
      kind: "fork",
      pid: 300,
      tgid: 300,
      ppid: 100,
      ptgid: 100,
      timestampNs: ts,
    });
    const forked = table.get(300);
    assert.equal(text(forked?.executable), "/usr/bin/bash");
    assert.equal(forked?.commandLine, "bash run.sh");
    assert.equal(forked?.ppid, 100);
    // The exec is seen after the process is gone: nothing of bash is kept as its image.
    await source.push({ kind: "exec", pid: 300, tgid: 300, timestampNs: ts });
    const execd = table.get(300);
    assert.equal(execd?.executable, undefined);
    assert.equal(execd?.commandLine, undefined);
    assert.equal(execd?.ppid, 100);
    assert.equal(text(execd?.parentExecutable), "/usr/bin/bash");
    // A prefetched read (the native reader's) wins over /proc.
    await source.push({
      kind: "exec",
      pid: 300,
      tgid: 300,
      timestampNs: ts,
      process: {
        pid: 300,
        ppid: 100,
        executable: new TextEncoder().encode("/x"),
        commandLine: "x",
      },
    });
    assert.equal(text(table.get(300)?.executable), "/x");
    // Threads are not processes.
    await source.push({
      kind: "fork",
      pid: 301,
      tgid: 300,
      ppid: 300,
      ptgid: 300,
      timestampNs: ts,
    });
    assert.equal(table.get(301), undefined);
  } finally {
    await table.close();
    await Deno.remove(proc, { recursive: true });
  }
});

Deno.test("ProcessTable counts overflows, unknown records and errors, and falls back to /proc", async () => {
  const proc = await fakeProc({
    42: { ppid: 1, uid: 7, exe: "/usr/sbin/sshd", argv: ["sshd"] },
  });
  const source = new FakeSource();
  const table = new ProcessTable(source, { proc });
  try {
    await source.push(
      { kind: "overflow" },
      { kind: "unknown", reason: "x" },
      { kind: "error", error: -105 },
      { kind: "ack", error: 0 },
      { kind: "uid", pid: 42, tgid: 42, real: 9, effective: 9, timestampNs: ts },
    );
    const s = table.stats;
    assert.equal(s.lost, 1);
    assert.equal(s.unknown, 1);
    assert.equal(s.errors, 1);
    assert.equal(s.size, 0);
    const e = table.get(42); // not seen: read from /proc now, and kept
    assert.equal(text(e?.executable), "/usr/sbin/sshd");
    assert.equal(e?.uid, 7);
    assert.equal(e?.exited, undefined);
    assert.equal(table.stats.size, 1);
    await source.push({ kind: "uid", pid: 42, tgid: 42, real: 9, effective: 9, timestampNs: ts });
    assert.equal(table.get(42)?.uid, 9);
    assert.equal(table.get(99999), undefined);
  } finally {
    await table.close();
    await table.close();
    await Deno.remove(proc, { recursive: true });
  }
  assert.equal(source.closed, 1);
});

Deno.test("ProcessTable drops the oldest exited entry first when full", async () => {
  const source = new FakeSource();
  const table = new ProcessTable(source, { proc: "/nonexistent", maxEntries: 3 });
  const fork = (pid: number): ProcRecord => ({
    kind: "fork",
    pid,
    tgid: pid,
    ppid: 1,
    ptgid: 1,
    timestampNs: ts,
  });
  const exit = (pid: number): ProcRecord => ({
    kind: "exit",
    pid,
    tgid: pid,
    ppid: 1,
    ptgid: 1,
    exitCode: 0,
    exitSignal: 17,
    timestampNs: ts,
  });
  try {
    await source.push(fork(10), fork(11), fork(12), exit(12), exit(11));
    await source.push(fork(13)); // full: 12 exited first, so it goes
    assert.equal(table.get(12), undefined);
    assert.ok(table.get(10));
    assert.ok(table.get(11)?.exited);
    assert.ok(table.get(13));
    await source.push(fork(14)); // 11, the only exited one left
    assert.equal(table.get(11), undefined);
    await source.push(fork(15)); // none exited: the oldest, 10
    assert.equal(table.get(10), undefined);
    assert.deepEqual([13, 14, 15].map((p) => table.get(p)?.pid), [13, 14, 15]);
    assert.equal(table.stats.evicted, 3);
    assert.equal(table.stats.size, 3);
  } finally {
    await table.close();
  }
});
