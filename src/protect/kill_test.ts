import assert from "node:assert/strict";
import { fstat, openat } from "../sys/libc.ts";
import { bytePath } from "../sys/byte_path.ts";
import { AT } from "../sys/libc.ts";
import { close } from "../sys/libc.ts";
import { killProcessRunning, runsFile } from "./kill.ts";

function identity(path: string) {
  const fd = openat(AT.FDCWD, bytePath(path), 0);
  try {
    const s = fstat(fd);
    return { dev: s.dev, ino: s.ino };
  } finally {
    close(fd);
  }
}

Deno.test("killProcessRunning() kills a child that runs the file, and only then", async () => {
  const child = new Deno.Command("/bin/sleep", { args: ["30"] }).spawn();
  try {
    assert.ok(runsFile(child.pid, identity("/bin/sleep")));
    const other = await killProcessRunning(child.pid, identity("/bin/true"), 50);
    assert.deepEqual(other, { killed: false, reason: "not-running-file" });
    const result = await killProcessRunning(child.pid, identity("/bin/sleep"));
    assert.deepEqual(result, { killed: true });
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already dead
    }
  }
});

Deno.test("killProcessRunning() reports a pid that is gone", async () => {
  const child = new Deno.Command("/bin/true").spawn();
  await child.status;
  const result = await killProcessRunning(child.pid, identity("/bin/true"));
  assert.equal(result.killed, false);
});
