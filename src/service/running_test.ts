import assert from "node:assert/strict";
import { processesRunning } from "./running.ts";

Deno.test("processesRunning() finds a child by its executable, and a replaced one as deleted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-running-" });
  const exe = `${dir}/sleeper`;
  await Deno.copyFile("/bin/sleep", exe);
  await Deno.chmod(exe, 0o755);
  const child = new Deno.Command(exe, { args: ["30"] }).spawn();
  try {
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(processesRunning(exe), [child.pid]);
    assert.deepEqual(processesRunning(exe, { deletedOnly: true }), []);
    // An upgrade replaces the file: the running process now shows it as deleted.
    await Deno.copyFile("/bin/sleep", `${exe}.new`);
    await Deno.rename(`${exe}.new`, exe);
    assert.deepEqual(processesRunning(exe, { deletedOnly: true }), [child.pid]);
    assert.deepEqual(processesRunning(`${dir}/other`), []);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
