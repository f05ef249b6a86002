import assert from "node:assert/strict";
import { formatFields, formatLogLine, formatLogText, formatLogTime } from "./log_line.ts";

const line = { host: "web1", ident: "amp", pid: 4242 };

Deno.test("formatLogLine() writes local syslog time, host, ident[pid], level and message", () => {
  const time = new Date(2025, 10, 26, 13, 1, 2);
  assert.equal(
    formatLogLine({ time, level: "notice", message: "Connector started" }, line),
    "Nov 26 13:01:02 web1 amp[4242]: notice: Connector started",
  );
});

Deno.test("formatLogTime() pads a one-digit day with a space, as syslog does", () => {
  assert.equal(formatLogTime(new Date(2025, 0, 6, 3, 4, 5), "syslog"), "Jan  6 03:04:05");
});

Deno.test("formatLogTime() writes ISO 8601 local time with milliseconds and offset", () => {
  const time = new Date(2025, 10, 26, 13, 1, 2, 7);
  const iso = formatLogTime(time, "iso");
  assert.match(iso, /^2025-11-26T13:01:02\.007[+-]\d\d:\d\d$/);
  assert.equal(new Date(iso).getTime(), time.getTime(), "the offset is the real one");
  assert.equal(
    formatLogLine({ time, level: "info", message: "x" }, { ...line, timeFormat: "iso" }),
    `${iso} web1 amp[4242]: info: x`,
  );
});

Deno.test("formatLogText() appends fields as key=value, quoting what is not a plain word", () => {
  const text = formatLogText({
    time: new Date(),
    level: "error",
    message: "Quarantine failed",
    fields: {
      path: "/tmp/a b",
      size: 12,
      ok: false,
      sha256: "ab12",
      empty: "",
      skipped: undefined,
      quote: 'say "hi"',
      error: new Error("EACCES (Permission denied)"),
      list: [1, "two"],
      big: 5n,
    },
  });
  assert.equal(
    text,
    'error: Quarantine failed path="/tmp/a b" size=12 ok=false sha256=ab12 empty="" ' +
      'quote="say \\"hi\\"" error="EACCES (Permission denied)" list="[1,\\"two\\"]" big=5',
  );
});

Deno.test("formatLogText() keeps a record on one line whatever the message holds", () => {
  const text = formatLogText({
    time: new Date(),
    level: "warning",
    message: "two\nlines\twith\x1b[31mescape",
    fields: { name: "evil\nname" },
  });
  assert.equal(text, 'warning: two\\nlines\\twith\\x1b[31mescape name="evil\\nname"');
  assert.ok(!text.includes("\n"));
});

Deno.test("formatFields() shows byte paths escaped", () => {
  assert.equal(
    formatFields({ path: new Uint8Array([0x2f, 0x62, 0x61, 0x64, 0xff, 0x2e, 0x63]) }),
    "path=/bad\\xff.c",
  );
});
