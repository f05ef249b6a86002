import assert from "node:assert/strict";
import { freshclamConfig, parseFreshclamOutput } from "./freshclam.ts";

Deno.test("freshclamConfig() points freshclam at the mirror only, in the foreground, as root", () => {
  const text = freshclamConfig({
    dbDir: "/var/lib/clamav",
    mirror: "https://mirror.example/clamav",
    logFile: "/var/log/amp/freshclam.log",
    maxAttempts: 1,
  });
  const lines = text.split("\n");
  for (
    const line of [
      "DatabaseDirectory /var/lib/clamav",
      "PrivateMirror https://mirror.example/clamav",
      "DNSDatabaseInfo no",
      "ScriptedUpdates no",
      "Foreground yes",
      "LogTime yes",
      "DatabaseOwner root",
      "UpdateLogFile /var/log/amp/freshclam.log",
      "MaxAttempts 1",
    ]
  ) assert.ok(lines.includes(line), line);
  assert.ok(!/NotifyClamd/.test(text));
});

Deno.test("freshclamConfig() refuses a value that would add a line", () => {
  assert.throws(
    () => freshclamConfig({ dbDir: "/x\nDatabaseMirror evil", mirror: "http://m", logFile: "/l" }),
    TypeError,
  );
});

Deno.test("parseFreshclamOutput() reads updated, up-to-date and ERROR lines", () => {
  const out = parseFreshclamOutput(
    0,
    [
      "Thu Nov 26 14:08:27 2026 -> daily.cld updated (version: 27000, sigs: 2070000, f-level: 90, builder: raynman)",
      "Thu Nov 26 14:08:27 2026 -> main.cvd database is up-to-date (version: 62, sigs: 6647427, f-level: 90, builder: sigmgr)",
    ].join("\n"),
  );
  assert.deepEqual(out.files, [
    { name: "daily.cld", status: "updated", version: 27000, signatures: 2070000 },
    { name: "main.cvd", status: "up-to-date", version: 62, signatures: 6647427 },
  ]);
  const failed = parseFreshclamOutput(
    7,
    "ERROR: Thu Nov 26 14:08:37 2026 -> Verification: Can't verify database integrity\n" +
      "ERROR: Thu Nov 26 14:08:37 2026 -> Update failed.\n",
  );
  assert.deepEqual(failed.errors, [
    "Verification: Can't verify database integrity",
    "Update failed.",
  ]);
  assert.match(failed.meaning, /verification failed/);
});
