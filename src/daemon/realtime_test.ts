import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Logger, type LogRecord } from "../log/logger.ts";
import type { FileEventSource, MonitorEvent } from "../monitor/file_event.ts";
import { PolicySchema } from "../policy/schema.ts";
import { type ConvictionEvent, Convictor } from "../protect/conviction.ts";
import { compileProcessExclusions } from "../protect/process_exclusions.ts";
import { ScanContext } from "../scan/scan_context.ts";
import { customTargets } from "../scan/scan_targets.ts";
import { bytePath } from "../sys/byte_path.ts";
import { O } from "../../ffi/libc.ts";
import { AT, openat } from "../sys/libc.ts";
import { RealTimeProtection } from "./realtime.ts";

/** A source fed by the test: batches are handed out in order; close() ends the loop. */
class FakeSource implements FileEventSource {
  readonly backend = "fake";
  readonly stats = {
    events: 0,
    overflows: 0,
    permissionTimeouts: 0,
    ownEvents: 0,
    errors: 0,
    ignoreMarks: 0,
  };
  #batches: MonitorEvent[][] = [];
  #wake?: () => void;
  #closed = false;

  push(...events: MonitorEvent[]): void {
    this.#batches.push(events);
    this.#wake?.();
  }

  async next(): Promise<MonitorEvent[]> {
    while (this.#batches.length === 0 && !this.#closed) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    return this.#batches.shift() ?? [];
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    return Promise.resolve();
  }
}

const MALICIOUS = "realtime test sample\n";

async function setup(options: { queueLimit?: number } = {}) {
  const root = await Deno.makeTempDir({ prefix: "amp-rt-" });
  const dir = `${root}/watched`;
  await Deno.mkdir(`${root}/etc/amp/lists`, { recursive: true });
  await Deno.mkdir(dir);
  const sha = createHash("sha256").update(MALICIOUS).digest("hex");
  await Deno.writeTextFile(
    `${root}/etc/amp/lists/simple_custom_detections.txt`,
    `${sha} Amp.Test.RealTime\n`,
  );
  const policy = PolicySchema.parse({
    id: 1,
    name: "Test",
    engines: { clamav: { enabled: false } },
    exclusions: [{ type: "extension", extension: ".log" }],
  });
  const context = await ScanContext.prepare({
    policy,
    root,
    dbDir: `${root}/none`,
    notice: () => {},
  });
  const events: ConvictionEvent[] = [];
  const logs: LogRecord[] = [];
  const source = new FakeSource();
  const realtime = new RealTimeProtection({
    source,
    context: () => context,
    scanner: context,
    enforce: () => true,
    processExclusions: () => compileProcessExclusions([]),
    convictor: new Convictor({ mode: () => "audit", event: (e) => events.push(e) }),
    event: (e) => events.push(e),
    log: new Logger([{ write: (r) => logs.push(r), close() {} }], { level: "debug" }),
    queueLimit: options.queueLimit ?? 100,
    concurrency: 2,
    ownPaths: [bytePath(`${root}/var/lib/amp`)],
    rescanTargets: () => customTargets([dir]),
  });
  const done = realtime.run();
  const open = (path: string) => openat(AT.FDCWD, bytePath(path), O.RDONLY | O.CLOEXEC);
  const finish = async () => {
    await source.close();
    await done;
    await context.close();
    await Deno.remove(root, { recursive: true });
  };
  return { root, dir, source, realtime, events, logs, open, finish };
}

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("Timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("RealTimeProtection convicts a file closed after writing, and skips excluded ones", async () => {
  const t = await setup();
  try {
    await Deno.writeTextFile(`${t.dir}/bad.bin`, MALICIOUS);
    await Deno.writeTextFile(`${t.dir}/bad.log`, MALICIOUS);
    await Deno.writeTextFile(`${t.dir}/fine.txt`, "fine\n");
    for (const name of ["bad.bin", "bad.log", "fine.txt"]) {
      const path = `${t.dir}/${name}`;
      t.source.push({ kind: "close-write", fd: t.open(path), pid: 1, path: bytePath(path) });
    }
    await until(() => t.realtime.stats.onAccessScanned === 2);
    const detected = t.events.filter((e) => e.type === "Threat Detected");
    assert.equal(detected.length, 1);
    assert.equal(new TextDecoder().decode(detected[0].path), `${t.dir}/bad.bin`);
    assert.equal(detected[0].detection, "Amp.Test.RealTime");
    assert.deepEqual(detected[0].details, { origin: "on-access" });
    assert.equal(t.realtime.stats.excluded, 1);
  } finally {
    await t.finish();
  }
});

Deno.test("RealTimeProtection rescans what changed after a kernel queue overflow", async () => {
  const t = await setup();
  try {
    // Written, but its event was lost in the overflow.
    await Deno.writeTextFile(`${t.dir}/missed.bin`, MALICIOUS);
    t.source.push({ kind: "overflow", time: Date.now() });
    await until(() => t.events.some((e) => e.type === "Threat Detected"));
    const detected = t.events.find((e) => e.type === "Threat Detected")!;
    assert.deepEqual(detected.details, { origin: "rescan" });
    assert.equal(t.realtime.stats.kernelOverflows, 1);
    assert.equal(t.realtime.stats.rescans, 1);
    assert.ok(t.logs.some((l) => l.level === "warning" && /overflowed/.test(l.message)));
  } finally {
    await t.finish();
  }
});

Deno.test("RealTimeProtection covers events refused by a full queue with a rescan", async () => {
  const t = await setup({ queueLimit: 1 });
  try {
    const batch: MonitorEvent[] = [];
    for (let i = 0; i < 20; i++) {
      const path = `${t.dir}/f${i}`;
      await Deno.writeTextFile(path, i === 17 ? MALICIOUS : `file ${i}\n`);
      batch.push({ kind: "close-write", fd: t.open(path), pid: 1, path: bytePath(path) });
    }
    t.source.push(...batch);
    await until(() => t.events.some((e) => e.type === "Threat Detected"));
    await until(() => !t.realtime.stats.rescanning);
    assert.ok(t.realtime.stats.queueFull > 0);
    assert.ok(t.realtime.stats.rescans >= 1);
    const detected = t.events.filter((e) => e.type === "Threat Detected");
    assert.ok(detected.some((e) => new TextDecoder().decode(e.path) === `${t.dir}/f17`));
  } finally {
    await t.finish();
  }
});

Deno.test("RealTimeProtection answers each execution permission exactly once", async () => {
  const t = await setup();
  try {
    await Deno.writeTextFile(`${t.dir}/bad`, MALICIOUS);
    await Deno.writeTextFile(`${t.dir}/good`, "good\n");
    const answers: Record<string, boolean[]> = { bad: [], good: [] };
    for (const name of ["bad", "good"] as const) {
      const path = `${t.dir}/${name}`;
      t.source.push({
        kind: "exec-perm",
        fd: t.open(path),
        pid: Deno.pid,
        path: bytePath(path),
        respond: (allow) => answers[name].push(allow) === 1,
      });
    }
    await until(() => answers.bad.length > 0 && answers.good.length > 0);
    await until(() => t.events.some((e) => e.type === "Threat Detected"));
    // The later "allow" of the finally block is the source's no-op: the first answer counts.
    assert.equal(answers.bad[0], false);
    assert.equal(answers.good[0], true);
    assert.equal(t.realtime.stats.executionsBlocked, 1);
    const executed = t.events.find((e) => e.type === "Executed Malware")!;
    assert.equal(executed.action, "blocked");
    assert.equal(executed.pid, Deno.pid);
  } finally {
    await t.finish();
  }
});
