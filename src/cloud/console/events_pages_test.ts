import assert from "node:assert/strict";
import type { CloudEvent } from "../server/cloud_store.ts";
import { CSV_COLUMNS, eventCsvRow, parseEventQuery } from "./events_pages.ts";
import { csvRow } from "./csv.ts";

Deno.test("parseEventQuery() reads filters, times as UTC, and reports bad ones", () => {
  const ok = parseEventQuery(
    new URLSearchParams({
      type: "Threat Detected",
      computer: "3",
      from: "2025-11-26T10:00",
      to: "2025-11-27T00:00:00Z",
      sha256: "A".repeat(64),
      before: "99",
    }),
  );
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.filter, {
    type: "Threat Detected",
    computerId: 3,
    since: Date.UTC(2025, 10, 26, 10),
    until: Date.UTC(2025, 10, 27),
    sha256: "a".repeat(64),
    beforeId: 99,
  });
  const bad = parseEventQuery(
    new URLSearchParams({ type: "Nope", computer: "x", from: "yesterday", sha256: "abc" }),
  );
  assert.equal(bad.errors.length, 4);
  assert.deepEqual(bad.filter, {});
  assert.equal(bad.query.from, "yesterday", "kept to show again");
});

Deno.test("eventCsvRow() writes every column, escaped, in the header's order", () => {
  const e: CloudEvent = {
    id: 5,
    key: "k:1",
    type: "Threat Detected",
    time: Date.UTC(2025, 0, 1),
    received: Date.UTC(2025, 0, 1, 0, 0, 1),
    host: "web1",
    computerId: 2,
    pathText: "/tmp/a,b.sh",
    sha256: "b".repeat(64),
    commandLine: '=cmd|" /c calc"',
    pid: 42,
    details: { origin: "on-access" },
  };
  const row = eventCsvRow(e, "web1");
  assert.equal(csvRow(CSV_COLUMNS).split(",").length, 25);
  assert.ok(
    row.startsWith("5,2025-01-01T00:00:00.000Z,2025-01-01T00:00:01.000Z,2,web1,Threat Detected,"),
  );
  assert.match(row, /"\/tmp\/a,b\.sh"/);
  assert.match(row, /"'=cmd\|"" \/c calc"""/);
  assert.match(row, /"\{""origin"":""on-access""\}"\r\n$/);
  // A time beyond the range of Date is written as it came, not an exception.
  assert.ok(eventCsvRow({ ...e, time: 9e15 }, "web1").startsWith("5,9000000000000000,2025-"));
});
