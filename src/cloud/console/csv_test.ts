import assert from "node:assert/strict";
import { csvField, csvRow } from "./csv.ts";

Deno.test("csvField() quotes commas, quotes and line breaks, doubling quotes", () => {
  assert.equal(csvField("plain"), "plain");
  assert.equal(csvField("a,b"), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField("two\nlines"), '"two\nlines"');
  assert.equal(csvField("cr\rhere"), '"cr\rhere"');
  assert.equal(csvField(""), "");
  assert.equal(csvField(null), "");
  assert.equal(csvField(undefined), "");
  assert.equal(csvField(42), "42");
  assert.equal(csvField(-1), "-1", "numbers are not formulas");
  assert.equal(csvField(true), "true");
});

Deno.test("csvField() defuses cells a spreadsheet would run as formulas", () => {
  assert.equal(csvField('=HYPERLINK("http://x")'), `"'=HYPERLINK(""http://x"")"`);
  assert.equal(csvField("+1"), "'+1");
  assert.equal(csvField("-2+3"), "'-2+3");
  assert.equal(csvField("@SUM(A1)"), "'@SUM(A1)");
  assert.equal(csvField("\tx"), "'\tx");
  assert.equal(csvField("/bin/sh -c =x"), "/bin/sh -c =x", "only a leading sign counts");
});

Deno.test("csvRow() joins fields with commas and ends with CRLF", () => {
  assert.equal(csvRow(["a", 1, null, "b,c", undefined]), 'a,1,,"b,c",\r\n');
  assert.equal(csvRow([]), "\r\n");
});
