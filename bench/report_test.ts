import assert from "node:assert/strict";
import { formatReport, scoreDetections, summarise } from "./report.ts";
import type { PlantedSample } from "./samples.ts";
import type { ToolRun } from "./tool.ts";

const samples: PlantedSample[] = [
  { path: "/c/s/eicar.com", kind: "eicar" },
  { path: "/c/s/eicar.zip", kind: "eicar-zip" },
];

Deno.test("scoreDetections() counts archive members for their archive", () => {
  const score = scoreDetections(["/c/s/eicar.com", "/c/s/eicar.zip!eicar.com"], samples);
  assert.deepEqual(score, { found: 2, expected: 2, extra: [] });
});

Deno.test("scoreDetections() reports paths that are not planted as extra", () => {
  const score = scoreDetections(["/c/s/eicar.com", "/c/s/eicar.comX", "/c/other"], samples);
  assert.deepEqual(score, { found: 1, expected: 2, extra: ["/c/s/eicar.comX", "/c/other"] });
});

Deno.test("summarise() takes the median wall and the highest RSS of successful runs", () => {
  const run = (wallMs: number, peakRssKb: number, error?: string): ToolRun => ({
    label: "t",
    wallMs,
    peakRssKb,
    detections: [],
    error,
    notes: [],
  });
  const [row] = summarise([run(3000, 10), run(1000, 30), run(2000, 20), run(1, 99, "boom")]);
  assert.equal(row.wallMs, 2000);
  assert.deepEqual(row.wallRangeMs, [1000, 3000]);
  assert.equal(row.peakRssKb, 30);
  assert.equal(row.runs, 3);
  assert.deepEqual(row.errors, ["boom"]);
});

Deno.test("formatReport() marks the targets PASS or MISS from amp's ratios", () => {
  const row = (label: string, wallMs: number, rssMb: number): ToolRun => ({
    label,
    wallMs,
    peakRssKb: rssMb * 1024,
    detections: samples.map((s) => s.path),
    notes: [],
  });
  const rows = summarise([
    row("clamscan -r", 40_000, 150),
    row("clamdscan --multiscan --fdpass (fresh clamd, MaxThreads 2)", 30_000, 160),
    row("amp scan (first, cold verdict cache)", 20_000, 200),
    row("amp rescan (warm verdict cache)", 4_000, 210),
  ]);
  const text = formatReport(rows, {
    corpus: {
      dir: "/c",
      files: 1000,
      bytes: 100e6,
      samples,
      listFile: "/c.files0",
      reused: true,
      roots: ["/usr"],
    },
    db: { dir: "/db", signatures: 520_002, format: "cud", recipe: "sigtool", reused: true },
    runs: 1,
    cores: 2,
    warmMs: 100,
    environment: [],
    commands: [],
    rssMethod: "test",
  });
  assert.match(text, /\| amp throughput ≥ clamdscan --multiscan \| 1\.50× \| PASS \|/);
  assert.match(text, /\| amp throughput ≥ 1\.8× clamscan \| 2\.00× \| PASS \|/);
  assert.match(text, /\| rescan ≥ 10× faster than first scan \| 5\.00× \| MISS \|/);
  assert.match(text, /\| amp peak RSS ≤ clamscan \+ 80 MB \| 210 vs 150 \+ 80 MB \| PASS \|/);
  assert.match(text, /\| amp detects every planted sample \| 2\/2 \| PASS \|/);
});
