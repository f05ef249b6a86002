import assert from "node:assert/strict";
import {
  detectionLine,
  jsonReport,
  progressLine,
  skippedByReason,
  summaryLines,
} from "./scan_output.ts";
import type { Detection, ScanReport, ScanSummary } from "./scan_run.ts";

const MB = 1024 * 1024;

function summary(over: Partial<ScanSummary> = {}): ScanSummary {
  return {
    files: 0,
    bytes: 0,
    detections: 0,
    skipped: 0,
    errors: 0,
    cached: 0,
    elapsedMs: 0,
    ...over,
  };
}

const detection: Detection = {
  path: "/home/u/bad\\xff.com",
  rawPath: new Uint8Array([0x2f, 0xff]),
  name: "AmpTest.Eicar",
  engine: "clamav",
  sha256: "a".repeat(64),
  size: 68,
};

function report(over: Partial<ScanReport> = {}): ScanReport {
  return {
    summary: summary({ files: 3, bytes: 3 * MB, detections: 1, skipped: 2, errors: 1 }),
    detections: [detection],
    skipped: [
      { path: "/big.iso", reason: "too-large", detail: "9 bytes > 5" },
      { path: "/pipe", reason: "not-regular", detail: "FIFO" },
    ],
    errors: [{ path: "/locked", error: "openat: EACCES" }],
    stopped: false,
    ...over,
  };
}

Deno.test("progressLine() shows files, MB, MB/s and pluralised detections", () => {
  assert.equal(
    progressLine(summary({ files: 10, bytes: 2 * MB, detections: 1, elapsedMs: 1000 })),
    "Scanning: 10 files, 2.0 MB, 2.0 MB/s, 1 detection",
  );
  assert.equal(
    progressLine(summary({ files: 4, bytes: MB / 2, detections: 3, elapsedMs: 250 })),
    "Scanning: 4 files, 0.5 MB, 2.0 MB/s, 3 detections",
  );
});

Deno.test("progressLine() shows 0.0 MB/s before any time has passed", () => {
  assert.equal(
    progressLine(summary({ bytes: MB, elapsedMs: 0 })),
    "Scanning: 0 files, 1.0 MB, 0.0 MB/s, 0 detections",
  );
});

Deno.test("detectionLine() reads like clamscan with the engine in brackets", () => {
  assert.equal(detectionLine(detection), "/home/u/bad\\xff.com: AmpTest.Eicar FOUND (clamav)");
  assert.equal(
    detectionLine({ ...detection, path: "/x", name: "Custom.Bad", engine: "hashlist" }),
    "/x: Custom.Bad FOUND (hashlist)",
  );
});

Deno.test("summaryLines() prints the summary block with engines, counts and rate", () => {
  const r = report();
  r.summary.elapsedMs = 1500;
  assert.deepEqual(summaryLines(r, ["ClamAV 1.4.6 (2 signatures)", "hash lists"]), [
    "",
    "----------- SCAN SUMMARY -----------",
    "Engines: ClamAV 1.4.6 (2 signatures), hash lists",
    "Scanned files: 3",
    "Data scanned: 3.00 MB",
    "Detections: 1",
    "Skipped: 2",
    "Errors: 1",
    "Time: 1.500 s (2.0 MB/s)",
  ]);
});

Deno.test("summaryLines() marks a stopped scan and counts cached files", () => {
  const r = report({ stopped: true });
  r.summary.cached = 2;
  const lines = summaryLines(r, []);
  assert.equal(lines[1], "----------- SCAN SUMMARY (stopped) -----------");
  assert.equal(lines[3], "Scanned files: 3 (2 unchanged since the last scan)");
  assert.equal(lines[2], "Engines: ");
});

Deno.test("skippedByReason() counts skipped entries per reason", () => {
  const r = report();
  r.skipped.push({ path: "/b.iso", reason: "too-large" });
  assert.deepEqual(skippedByReason(r), new Map([["too-large", 2], ["not-regular", 1]]));
  assert.equal(skippedByReason(report({ skipped: [] })).size, 0);
});

Deno.test("jsonReport() has extra fields, summary, detections without raw bytes, skipped, errors", () => {
  const text = jsonReport(report(), { policy: { name: "Audit", id: 1 }, kind: "custom" });
  const doc = JSON.parse(text);
  assert.deepEqual(Object.keys(doc), [
    "policy",
    "kind",
    "stopped",
    "summary",
    "detections",
    "skipped",
    "errors",
  ]);
  assert.deepEqual(doc.policy, { name: "Audit", id: 1 });
  assert.equal(doc.stopped, false);
  assert.deepEqual(doc.summary, report().summary);
  assert.deepEqual(doc.detections, [{
    path: "/home/u/bad\\xff.com",
    name: "AmpTest.Eicar",
    engine: "clamav",
    sha256: "a".repeat(64),
    size: 68,
  }]);
  assert.deepEqual(doc.skipped, report().skipped);
  assert.deepEqual(doc.errors, [{ path: "/locked", error: "openat: EACCES" }]);
  // Pretty-printed with two spaces.
  assert.ok(text.includes('\n  "stopped": false'));
});

Deno.test("jsonReport() lets the report's own fields win over extra ones", () => {
  const doc = JSON.parse(jsonReport(report({ stopped: true }), { stopped: "no", summary: 1 }));
  assert.equal(doc.stopped, true);
  assert.equal(doc.summary.files, 3);
});
