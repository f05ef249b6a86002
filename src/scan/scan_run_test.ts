import assert from "node:assert/strict";
import type { WalkItem } from "../fs/walk.ts";
import { bytePath } from "../sys/byte_path.ts";
import { runScan } from "./scan_run.ts";

Deno.test("runScan() gives the event loop turns during a long run that never waits", async () => {
  // Items that need no scan (skipped, ticks) never make the loop await by
  // themselves: without turns a daemon could not answer the kernel meanwhile.
  function* items(): Generator<WalkItem> {
    for (let i = 0; i < 200_000; i++) {
      yield i % 2
        ? { kind: "tick", path: bytePath("/t") }
        : { kind: "skipped", path: bytePath(`/t/${i}`), reason: "excluded" };
    }
  }
  let turns = 0;
  const timer = setInterval(() => turns++, 1);
  const started = performance.now();
  try {
    const report = await runScan(items(), { scanFile: () => Promise.reject(new Error("unused")) }, {
      concurrency: 2,
    });
    assert.equal(report.summary.skipped, 100_000);
  } finally {
    clearInterval(timer);
  }
  const elapsed = performance.now() - started;
  // At least one turn per ~10 ms of work (the timer may coalesce; be lenient).
  assert.ok(turns >= Math.floor(elapsed / 50), `${turns} turns in ${elapsed.toFixed(0)} ms`);
  assert.ok(turns > 0);
});
