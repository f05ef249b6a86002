import assert from "node:assert/strict";
import { isLogLevel, Logger, type LogRecord, type LogSink } from "./logger.ts";

class MemorySink implements LogSink {
  records: LogRecord[] = [];
  closed = 0;
  write(record: LogRecord): void {
    this.records.push(record);
  }
  close(): void {
    this.closed++;
  }
}

class ThrowingSink implements LogSink {
  write(): void {
    throw new Error("disk on fire");
  }
  close(): void {
    throw new Error("still on fire");
  }
}

const time = new Date(2025, 10, 26, 13, 1, 2);

Deno.test("Logger reports the levels at or above its minimum, notice by default", () => {
  const sink = new MemorySink();
  const log = new Logger([sink], { now: () => time });
  log.error("e");
  log.warning("w");
  log.notice("n", { path: "/tmp/x" });
  log.info("i");
  log.debug("d");
  assert.deepEqual(sink.records, [
    { time, level: "error", message: "e" },
    { time, level: "warning", message: "w" },
    { time, level: "notice", message: "n", fields: { path: "/tmp/x" } },
  ]);
  assert.equal(log.level, "notice");
  assert.equal(log.enabled("info"), false);
  assert.equal(log.enabled("error"), true);
});

Deno.test("Logger.setLevel() changes the filter and records the change at notice", () => {
  const sink = new MemorySink();
  const log = new Logger([sink], { level: "debug", now: () => time });
  log.debug("before");
  log.setLevel("error");
  log.warning("hidden");
  log.notice("hidden too");
  log.error("shown");
  assert.deepEqual(sink.records.map((r) => `${r.level}: ${r.message}`), [
    "debug: before",
    "notice: Set minimum reported log level to error",
    "error: shown",
  ]);
  assert.equal(log.level, "error");
  log.setLevel("debug");
  log.debug("visible again");
  assert.equal(sink.records.at(-1)?.message, "visible again");
});

Deno.test("Logger keeps going when a sink throws, and counts it", async () => {
  const good = new MemorySink();
  const log = new Logger([new ThrowingSink(), good]);
  assert.doesNotThrow(() => log.error("Scan failed"));
  assert.doesNotThrow(() => log.notice("Connector started"));
  assert.deepEqual(good.records.map((r) => r.message), ["Scan failed", "Connector started"]);
  assert.equal(log.sinkErrors, 2);
  await log.close();
  assert.equal(log.sinkErrors, 3, "the failing close() is counted too");
  assert.equal(good.closed, 1);
});

Deno.test("Logger.close() flushes then closes every sink once, and drops later records", async () => {
  const order: string[] = [];
  const sink: LogSink = {
    write: (r) => order.push(`write ${r.message}`),
    flush: async () => {
      await Promise.resolve();
      order.push("flush");
    },
    close: () => order.push("close"),
  };
  const log = new Logger([sink]);
  log.notice("a");
  await log.close();
  await log.close();
  log.notice("after close");
  assert.deepEqual(order, ["write a", "flush", "close"]);
});

Deno.test("Logger.addSink() adds a sink for later records", () => {
  const first = new MemorySink();
  const second = new MemorySink();
  const log = new Logger([first]);
  log.notice("one");
  log.addSink(second);
  log.notice("two");
  assert.equal(first.records.length, 2);
  assert.deepEqual(second.records.map((r) => r.message), ["two"]);
});

Deno.test("isLogLevel() accepts the five level names only", () => {
  for (const level of ["error", "warning", "notice", "info", "debug"]) assert.ok(isLogLevel(level));
  for (const other of ["warn", "ERROR", "", 3, undefined]) assert.equal(isLogLevel(other), false);
});
