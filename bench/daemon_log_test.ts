import assert from "node:assert/strict";
import { parseRescans } from "./daemon_log.ts";

Deno.test("parseRescans() reads every Rescan done notice of a log, in order", () => {
  const log = [
    "2026-11-26 13:05:01 notice: Real-time protection on (fanotify)",
    "2026-11-26 13:05:02 warning: Events may have been missed (amp's scan queue is full): " +
    "rescanning files changed since 2026-11-26T12:04:59.000Z",
    "2026-11-26 13:05:04 notice: Rescan done: 20001 files changed since " +
    "2026-11-26T12:04:59.000Z, 1 detections, 0 errors in 2.1 s",
    "2026-11-26 13:05:05 notice: Rescan done: 12 files changed since " +
    "2026-11-26T12:05:02.000Z, 0 detections, 3 errors in 0.0 s",
  ].join("\n");
  assert.deepEqual(parseRescans(log), [
    { files: 20001, detections: 1, seconds: 2.1 },
    { files: 12, detections: 0, seconds: 0 },
  ]);
});

Deno.test("parseRescans() finds nothing in a log without rescans", () => {
  assert.deepEqual(parseRescans("notice: Loaded ClamAV 1.4.6\n"), []);
});
