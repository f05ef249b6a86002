import assert from "node:assert/strict";
import { FileSink } from "./file_sink.ts";
import type { LogRecord } from "./logger.ts";

const line = { host: "web1", ident: "amp", pid: 4242 };

function record(message: string, level: LogRecord["level"] = "notice"): LogRecord {
  return { time: new Date(2025, 10, 26, 13, 1, 2), level, message };
}

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-log-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("FileSink creates its directory 0700 and file 0600 and appends exact lines", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/var/log/amp/ampdaemon.log`;
    const sink = new FileSink(path, line);
    sink.write(record("Connector started"));
    sink.write({ ...record("Scan failed", "error"), fields: { path: "/tmp/a b" } });
    sink.close();
    assert.equal((await Deno.stat(`${dir}/var/log/amp`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal(
      await Deno.readTextFile(path),
      "Nov 26 13:01:02 web1 amp[4242]: notice: Connector started\n" +
        'Nov 26 13:01:02 web1 amp[4242]: error: Scan failed path="/tmp/a b"\n',
    );
    const again = new FileSink(path, line);
    again.write(record("Connector started again"));
    again.close();
    const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
    assert.equal(lines.length, 3, "an existing file is appended to");
    assert.equal(again.errors, 0);
  });
});

Deno.test("FileSink rotates by size and keeps `keep` old files", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/amp.log`;
    const lineBytes = "Nov 26 13:01:02 web1 amp[4242]: notice: line 00\n".length; // 49
    const sink = new FileSink(path, { ...line, maxBytes: lineBytes * 3, keep: 2 });
    for (let i = 0; i < 10; i++) sink.write(record(`line ${String(i).padStart(2, "0")}`));
    sink.close();
    const messages = async (p: string) =>
      (await Deno.readTextFile(p)).trimEnd().split("\n").map((l) => l.split(": ").at(-1));
    assert.deepEqual(await messages(path), ["line 09"]);
    assert.deepEqual(await messages(`${path}.1`), ["line 06", "line 07", "line 08"]);
    assert.deepEqual(await messages(`${path}.2`), ["line 03", "line 04", "line 05"]);
    await assert.rejects(Deno.stat(`${path}.3`), Deno.errors.NotFound, "the oldest is dropped");
    for (const p of [path, `${path}.1`, `${path}.2`]) {
      assert.ok((await Deno.stat(p)).size <= lineBytes * 3);
    }
    assert.equal(sink.errors, 0);
  });
});

Deno.test("FileSink counts the size of a file it reopens, and keep 0 starts over", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/amp.log`;
    await Deno.writeTextFile(path, "x".repeat(100) + "\n");
    const sink = new FileSink(path, { ...line, maxBytes: 120, keep: 0 });
    sink.write(record("does not fit beside the old 101 bytes"));
    sink.close();
    assert.equal(
      await Deno.readTextFile(path),
      "Nov 26 13:01:02 web1 amp[4242]: notice: does not fit beside the old 101 bytes\n",
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["amp.log"]);
  });
});

Deno.test("FileSink never throws on a failing disk: it counts errors and recovers", async () => {
  await withTempDir(async (dir) => {
    // The log directory's place is taken by a regular file: every open fails.
    await Deno.writeTextFile(`${dir}/amp`, "not a directory");
    const path = `${dir}/amp/ampdaemon.log`;
    let sink: FileSink | undefined;
    assert.doesNotThrow(() => {
      sink = new FileSink(path, line);
      sink.write(record("lost 1"));
      sink.write(record("lost 2"));
    });
    assert.ok(sink);
    assert.equal(sink.errors, 3, "the first open and both writes failed");
    assert.ok(sink.lastError instanceof Error);
    await Deno.remove(`${dir}/amp`);
    sink.write(record("kept"));
    sink.close();
    sink.write(record("after close"));
    assert.equal(sink.errors, 3);
    assert.equal(
      await Deno.readTextFile(path),
      "Nov 26 13:01:02 web1 amp[4242]: notice: kept\n",
    );
  });
});

Deno.test("FileSink.reopen() follows a file renamed by an outside rotation", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/amp.log`;
    const sink = new FileSink(path, line);
    sink.write(record("before"));
    await Deno.rename(path, `${path}.old`);
    sink.write(record("still to the renamed file"));
    sink.reopen();
    sink.write(record("after"));
    sink.close();
    sink.close();
    assert.match(await Deno.readTextFile(`${path}.old`), /before\n.*still to the renamed file\n$/);
    assert.match(await Deno.readTextFile(path), /^[^\n]*after\n$/);
  });
});
