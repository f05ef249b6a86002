/**
 * ProcessTable against the kernel's proc connector: short-lived children of
 * this process are looked up after they exit. Needs root (CAP_NET_ADMIN for
 * the connector); skipped outside CI otherwise.
 */

import assert from "node:assert/strict";
import { ProcessTable } from "../src/monitor/proc_connector/process_table.ts";
import { IN_CI } from "./fixtures/native.ts";

const skip = Deno.uid() !== 0 && !IN_CI;
if (skip) {
  console.log(
    "proc_connector_test: skipping: needs root for the netlink proc connector (CI != true)",
  );
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skip, fn });
const text = (b?: Uint8Array) => b && new TextDecoder().decode(b);

/** Waits until `cond` holds, up to `ms`. */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    assert.ok(Date.now() < end, "timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function withTable(
  retainMs: number,
  fn: (table: ProcessTable) => Promise<void>,
): Promise<void> {
  const table = ProcessTable.open({ retainMs });
  try {
    await table.ready;
    await fn(table);
  } finally {
    await table.close();
  }
}

/** Spawns `cmd` and waits for it to exit and for the table to see the exit. */
async function runShortLived(table: ProcessTable, cmd: string, args: string[]): Promise<number> {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
    .spawn();
  assert.equal((await child.status).code, 0);
  await until(() => table.get(child.pid)?.exited !== undefined);
  return child.pid;
}

test("ProcessTable keeps short-lived processes after they exit", async () => {
  await withTable(60_000, async (table) => {
    // Whether /proc could be read before the process exited is a race (a
    // few hundred µs): each one must be in the table with its parent, and
    // what was captured must be right; most runs capture it.
    const cases = [
      { cmd: "/bin/sh", args: ["-c", "exit 0"], exe: /\/(dash|bash)$/, line: "/bin/sh -c exit 0" },
      { cmd: "/bin/true", args: [], exe: /\/true$/, line: "/bin/true" },
    ];
    for (const c of cases) {
      let captured = 0;
      for (let i = 0; i < 10; i++) {
        const pid = await runShortLived(table, c.cmd, c.args);
        const e = table.get(pid);
        assert.ok(e?.exited);
        assert.equal(e.pid, pid);
        assert.equal(e.ppid, Deno.pid);
        if (e.executable) {
          assert.match(text(e.executable)!, c.exe);
          assert.equal(e.commandLine, c.line);
          assert.equal(e.uid, 0);
          captured++;
        }
      }
      console.log(`${c.cmd}: executable captured for ${captured}/10 short-lived runs`);
      assert.ok(captured >= 1, `${c.cmd}: never captured`);
    }
    const s = table.stats;
    assert.ok(s.execs >= 20 && s.exits >= 20 && s.events >= 60, JSON.stringify(s));
    assert.equal(s.lost, 0);
  });
});

test("ProcessTable records the parent of a fork+exec chain", async () => {
  await withTable(60_000, async (table) => {
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", "/bin/sleep 0.2 & echo $!; wait"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const out = await child.output();
    const grandchild = Number(new TextDecoder().decode(out.stdout).trim());
    assert.ok(grandchild > 0);
    await until(() => table.get(grandchild)?.exited !== undefined);
    const e = table.get(grandchild)!;
    assert.equal(e.ppid, child.pid);
    assert.match(text(e.executable)!, /\/sleep$/);
    assert.equal(e.commandLine, "/bin/sleep 0.2");
    assert.match(text(e.parentExecutable)!, /\/(dash|bash)$/);
    await until(() => table.get(child.pid)?.exited !== undefined);
    assert.equal(table.get(child.pid)?.ppid, Deno.pid);
  });
});

test("ProcessTable drops exited processes after retainMs", async () => {
  await withTable(300, async (table) => {
    const pid = await runShortLived(table, "/bin/sleep", ["0.01"]);
    assert.match(text(table.get(pid)?.executable)!, /\/sleep$/);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(table.get(pid), undefined);
  });
});

test("ProcessTable.close() returns promptly while a read is pending", async () => {
  const table = ProcessTable.open();
  await table.ready;
  await new Promise((r) => setTimeout(r, 50)); // the reader is waiting in poll
  const start = performance.now();
  await table.close();
  assert.ok(performance.now() - start < 1000, `close took ${performance.now() - start} ms`);
  await table.close();
});
