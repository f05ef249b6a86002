import assert from "node:assert/strict";
import type { LogRecord } from "./logger.ts";
import { StderrSink, type SyncWriter } from "./stderr_sink.ts";

/** Takes at most `chunk` bytes per call, as a pipe may. */
class ChunkWriter implements SyncWriter {
  bytes: number[] = [];
  constructor(readonly chunk = Infinity) {}
  writeSync(p: Uint8Array): number {
    const n = Math.min(p.length, this.chunk);
    this.bytes.push(...p.subarray(0, n));
    return n;
  }
  get text(): string {
    return new TextDecoder().decode(new Uint8Array(this.bytes));
  }
}

const record: LogRecord = {
  time: new Date(2025, 10, 26, 13, 1, 2),
  level: "warning",
  message: "Signature directory is empty",
  fields: { dir: "/var/lib/clamav" },
};

Deno.test("StderrSink writes the log-file line in line style, even through short writes", () => {
  const writer = new ChunkWriter(7);
  const sink = new StderrSink({ style: "line", writer, host: "web1", pid: 4242 });
  sink.write(record);
  sink.write({ time: record.time, level: "error", message: "second" });
  assert.equal(
    writer.text,
    "Nov 26 13:01:02 web1 amp[4242]: warning: Signature directory is empty dir=/var/lib/clamav\n" +
      "Nov 26 13:01:02 web1 amp[4242]: error: second\n",
  );
});

Deno.test("StderrSink writes the sd-daemon <priority> prefix in journal style", () => {
  const writer = new ChunkWriter();
  const sink = new StderrSink({ style: "journal", writer });
  for (const level of ["error", "warning", "notice", "info", "debug"] as const) {
    sink.write({ time: record.time, level, message: "m" });
  }
  assert.equal(
    writer.text,
    "<3>error: m\n<4>warning: m\n<5>notice: m\n<6>info: m\n<7>debug: m\n",
  );
});

Deno.test("StderrSink counts a failing stderr instead of throwing, and stops after close()", () => {
  let calls = 0;
  const sink = new StderrSink({
    style: "journal",
    writer: {
      writeSync() {
        calls++;
        throw new Deno.errors.BrokenPipe("Broken pipe (os error 32)");
      },
    },
  });
  assert.doesNotThrow(() => sink.write(record));
  assert.equal(sink.errors, 1);
  sink.close();
  sink.close();
  sink.write(record);
  assert.equal(calls, 1);
});
