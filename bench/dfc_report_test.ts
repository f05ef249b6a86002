import assert from "node:assert/strict";
import { dueConnections, formatDfcReport, matchLatencies, missedFlows } from "./dfc_report.ts";

Deno.test("matchLatencies() pairs by pid first, then by address among pid-less events", () => {
  const m = matchLatencies(
    [
      { pid: 1, address: "a", connectMs: 100 },
      { pid: 2, address: "b", connectMs: 200 },
      { pid: 3, address: "c", connectMs: 300 },
    ],
    [
      { time: 250, remoteAddress: "b", pid: 2 },
      { time: 140, remoteAddress: "a" },
    ],
  );
  assert.deepEqual(m, { latenciesMs: [40, 50], unmatched: 1, withPid: 1 });
});

Deno.test("matchLatencies() uses each event once", () => {
  const m = matchLatencies(
    [{ pid: 1, address: "a", connectMs: 0 }, { pid: 2, address: "a", connectMs: 10 }],
    [{ time: 5, remoteAddress: "a" }],
  );
  assert.deepEqual(m, { latenciesMs: [5], unmatched: 1, withPid: 0 });
});

Deno.test("dueConnections() paces by elapsed time and caps at the total", () => {
  assert.equal(dueConnections(0, 2000, 100), 0);
  assert.equal(dueConnections(10, 2000, 100), 20);
  assert.equal(dueConnections(1000, 2000, 100), 100);
  assert.equal(dueConnections(5, 0, 100), 100);
});

Deno.test("missedFlows() counts connections the daemon did not see", () => {
  const base = { flowsBefore: 10, lostBefore: 0, lostAfter: 0, clientMs: 1000, failed: 0 };
  assert.equal(missedFlows({ ...base, connections: 100, flowsAfter: 105 }), 5);
  assert.equal(missedFlows({ ...base, connections: 100, flowsAfter: 115 }), 0);
});

Deno.test("formatDfcReport() marks targets PASS and MISS", () => {
  const text = formatDfcReport({
    environment: ["test"],
    latency: { connections: 2, addresses: 2, latenciesMs: [10, 300], unmatched: 0, withPid: 2 },
    missed: {
      connections: 10,
      failed: 0,
      flowsBefore: 0,
      flowsAfter: 10,
      lostBefore: 0,
      lostAfter: 0,
      clientMs: 100,
    },
    failures: [],
  });
  assert.match(text, /\| detection latency p99 \| 300 ms \| < 200 ms \| MISS \|/);
  assert.match(text, /\| flows missed of 10 short connections.*\| 0 \(lost 0\) \| 0 \| PASS \|/);
});
