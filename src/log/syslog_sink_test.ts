import assert from "node:assert/strict";
import { LOG_FACILITY, LOG_OPTION } from "../sys/syslog.ts";
import { Logger } from "./logger.ts";
import { type SyslogPort, syslogSeverity, SyslogSink } from "./syslog_sink.ts";

/** Records calls; each `syslog` call stays pending until `release()`. */
class FakeSyslog implements SyslogPort {
  calls: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext = false;
  #waiting: (() => void)[] = [];

  openlog(ident: string, options: { option: number; facility: number }): void {
    this.calls.push(`openlog ${ident} ${options.option} ${options.facility}`);
  }
  async syslog(priority: number, message: string): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.inFlight--;
    this.calls.push(`syslog ${priority} ${message}`);
    if (this.failNext) {
      this.failNext = false;
      throw new Error("send failed");
    }
  }
  closelog(): void {
    this.calls.push("closelog");
  }
  /** Lets every pending call finish, until none is left. */
  async release(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 0));
      const waiting = this.#waiting.splice(0);
      if (waiting.length === 0 && this.inFlight === 0) return;
      for (const resolve of waiting) resolve();
    }
  }
}

Deno.test("syslogSeverity() maps levels to the syslog severities of the same names", () => {
  assert.deepEqual(
    (["error", "warning", "notice", "info", "debug"] as const).map(syslogSeverity),
    [3, 4, 5, 6, 7],
  );
});

Deno.test("SyslogSink opens with LOG_PID|LOG_NDELAY, LOG_DAEMON and sends records in order, one at a time", async () => {
  const port = new FakeSyslog();
  const log = new Logger([new SyslogSink({ ident: "amp", port })], { level: "debug" });
  log.error("Scan failed", { path: "/a b" });
  log.notice("Connector started");
  log.debug("tick");
  const closing = log.close();
  await port.release();
  await closing;
  assert.deepEqual(port.calls, [
    `openlog amp ${LOG_OPTION.PID | LOG_OPTION.NDELAY} ${LOG_FACILITY.DAEMON}`,
    'syslog 3 error: Scan failed path="/a b"',
    "syslog 5 notice: Connector started",
    "syslog 7 debug: tick",
    "closelog",
  ]);
  assert.equal(port.maxInFlight, 1);
});

Deno.test("SyslogSink drops and counts records past maxQueue, and counts failed calls", async () => {
  const port = new FakeSyslog();
  const sink = new SyslogSink({ port, maxQueue: 2 });
  const log = new Logger([sink]);
  port.failNext = true;
  for (let i = 0; i < 5; i++) log.notice(`m${i}`);
  // m0 is in flight, m1 and m2 wait, m3 and m4 do not fit.
  assert.equal(sink.dropped, 2);
  const flushing = sink.flush();
  await port.release();
  await flushing;
  assert.deepEqual(port.calls.filter((c) => c.startsWith("syslog")), [
    "syslog 5 notice: m0",
    "syslog 5 notice: m1",
    "syslog 5 notice: m2",
  ]);
  assert.equal(sink.errors, 1);
  sink.close();
  sink.close();
  log.notice("after close");
  assert.deepEqual(port.calls.filter((c) => c === "closelog").length, 1);
});
