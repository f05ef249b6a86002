import assert from "node:assert/strict";
import { parseAmpReport } from "./amp_tool.ts";
import { parseFoundLines } from "./tool.ts";

Deno.test("parseFoundLines() reads clamscan's FOUND lines, paths with ': ' included", () => {
  const text = [
    "/c/a: b.com: Amp.Bench.Eicar.UNOFFICIAL FOUND",
    "/c/ok: OK",
    "",
    "----------- SCAN SUMMARY -----------",
    "Infected files: 1",
  ].join("\n");
  assert.deepEqual(parseFoundLines(text), [
    { path: "/c/a: b.com", name: "Amp.Bench.Eicar.UNOFFICIAL" },
  ]);
});

Deno.test("parseAmpReport() accepts the JSON document, or its last JSON line", () => {
  const report = {
    summary: { files: 1, bytes: 2, detections: 0, skipped: 0, errors: 0, elapsedMs: 3 },
    detections: [],
  };
  assert.deepEqual(parseAmpReport(JSON.stringify(report, null, 2)), report);
  assert.deepEqual(parseAmpReport(`warming up\n${JSON.stringify(report)}\n`), report);
  assert.equal(parseAmpReport("not json"), undefined);
});
