import assert from "node:assert/strict";
import type { StoredEvent } from "../store/event.ts";
import { eventJson, eventLine, parseSince } from "./events_command.ts";

Deno.test("parseSince() reads durations and dates", () => {
  const now = Date.UTC(2026, 10, 26, 12, 0, 0);
  assert.equal(parseSince("30m", now), now - 30 * 60_000);
  assert.equal(parseSince("2h", now), now - 2 * 3600_000);
  assert.equal(parseSince("7d", now), now - 7 * 86400_000);
  assert.equal(parseSince("2026-11-26T10:00:00Z", now), Date.UTC(2026, 10, 26, 10, 0, 0));
  assert.throws(() => parseSince("yesterday-ish", now), /duration/);
});

const event: StoredEvent = {
  id: 4,
  type: "Threat Quarantined",
  time: Date.UTC(2026, 10, 26, 12, 0, 0),
  host: "web1",
  path: new Uint8Array([0x2f, 0x74, 0x2f, 0x62, 0xff]),
  detection: "Amp.Test.Eicar",
  engine: "clamav",
  action: "quarantined",
  pid: 42,
  sha256: "ab".repeat(32),
};

Deno.test("eventLine() shows the type, escaped path, detection, engine and process", () => {
  const line = eventLine(event);
  assert.match(line, /Threat Quarantined {2}\/t\/b\\xff {2}Amp\.Test\.Eicar {2}\[clamav\]/);
  assert.match(line, /action=quarantined {2}pid=42/);
});

Deno.test("eventJson() keeps exact path bytes in base64 when they are not UTF-8", () => {
  const json = eventJson(event);
  assert.equal(json.path, "/t/b\\xff");
  assert.equal(json.pathBase64, "L3QvYv8=");
  assert.equal(json.timeIso, "2026-11-26T12:00:00.000Z");
  const plain = eventJson({ ...event, path: new TextEncoder().encode("/t/ok") });
  assert.equal(plain.path, "/t/ok");
  assert.equal(plain.pathBase64, undefined);
});
