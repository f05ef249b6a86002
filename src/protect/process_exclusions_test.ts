import assert from "node:assert/strict";
import { bytePath } from "../sys/byte_path.ts";
import { compileProcessExclusions, type ProcessTable } from "./process_exclusions.ts";
import { formatCommandLine, parseProcStatus } from "./process_info.ts";

/** A made-up process tree: 1 init, 10 backup agent (uid 0), 11 its tar, 20 tar by uid 1000. */
const table: ProcessTable = {
  get(pid) {
    const procs: Record<number, { exe: string; uid: number; ppid: number }> = {
      1: { exe: "/sbin/init", uid: 0, ppid: 0 },
      10: { exe: "/opt/backup/agent", uid: 0, ppid: 1 },
      11: { exe: "/usr/bin/tar", uid: 0, ppid: 10 },
      20: { exe: "/usr/bin/tar", uid: 1000, ppid: 1 },
    };
    const p = procs[pid];
    return p ? { executable: bytePath(p.exe), uid: p.uid, ppid: p.ppid } : undefined;
  },
};

Deno.test("compileProcessExclusions() matches the executable, and children only when asked", () => {
  const plain = compileProcessExclusions(
    [{ executable: "/opt/backup/agent", children: false }],
    table,
  );
  assert.ok(plain.match(10));
  assert.equal(plain.match(11), undefined);
  const withChildren = compileProcessExclusions(
    [{ executable: "/opt/backup/agent", children: true }],
    table,
  );
  assert.ok(withChildren.match(11));
  assert.equal(withChildren.match(20), undefined);
  assert.equal(withChildren.match(999), undefined);
});

Deno.test("compileProcessExclusions() restricts a rule to a user by name or uid", () => {
  const lookup = (name: string) => (name === "backup" ? 1000 : undefined);
  const byName = compileProcessExclusions(
    [{ executable: "/usr/bin/tar", user: "backup", children: false }],
    table,
    lookup,
  );
  assert.ok(byName.match(20));
  assert.equal(byName.match(11), undefined);
  const unknownUser = compileProcessExclusions(
    [{ executable: "/usr/bin/tar", user: "nobody-here", children: false }],
    table,
    lookup,
  );
  assert.equal(unknownUser.match(20), undefined);
  const byUid = compileProcessExclusions(
    [{ executable: "/usr/bin/tar", user: 0, children: false }],
    table,
  );
  assert.ok(byUid.match(11));
  assert.equal(byUid.match(20), undefined);
});

Deno.test("parseProcStatus() reads the parent pid and real uid", () => {
  const status = "Name:\tsleep\nPPid:\t4321\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\n";
  assert.deepEqual(parseProcStatus(status), { ppid: 4321, uid: 1000 });
});

Deno.test("formatCommandLine() joins argv and escapes what is not printable", () => {
  const raw = new Uint8Array([...new TextEncoder().encode("cat\0a b\0"), 0x62, 0xff, 0]);
  assert.equal(formatCommandLine(raw), "cat a b b\\xff");
  assert.equal(formatCommandLine(new Uint8Array()), "");
});

Deno.test("compileProcessExclusions() judges an execution by the program executed", () => {
  // Process 11 (tar, started by the agent) is about to execute /opt/backup/agent.
  const plain = compileProcessExclusions(
    [{ executable: "/opt/backup/agent", children: false }],
    table,
  );
  assert.ok(plain.match(11, bytePath("/opt/backup/agent")));
  // The agent (10) starting another program: only a "children" rule covers it.
  assert.equal(plain.match(10, bytePath("/usr/bin/evil")), undefined);
  const withChildren = compileProcessExclusions(
    [{ executable: "/opt/backup/agent", children: true }],
    table,
  );
  assert.ok(withChildren.match(10, bytePath("/usr/bin/evil")));
  assert.equal(withChildren.match(20, bytePath("/usr/bin/evil")), undefined);
});
