import assert from "node:assert/strict";
import { bytePath, cPath, escapePath, joinBytePath, latin1 } from "./byte_path.ts";

const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("escapePath() passes valid UTF-8 through unchanged", () => {
  assert.equal(escapePath(bytePath("/tmp/plain.txt")), "/tmp/plain.txt");
  assert.equal(escapePath(bytePath("/home/zoë/日本語 file")), "/home/zoë/日本語 file");
  assert.equal(escapePath(new Uint8Array(0)), "");
});

Deno.test("escapePath() shows bytes that are not UTF-8 as \\xNN", () => {
  assert.equal(escapePath(bytes(0x62, 0x61, 0x64, 0xff, 0xfe)), "bad\\xff\\xfe");
  // A lone continuation byte and a truncated 3-byte sequence at the end.
  assert.equal(escapePath(bytes(0x61, 0x80)), "a\\x80");
  assert.equal(escapePath(bytes(0x61, 0xe6, 0x97)), "a\\xe6\\x97");
});

Deno.test("escapePath() keeps valid UTF-8 sequences next to invalid bytes", () => {
  const path = new Uint8Array([...bytePath("é"), 0xff, ...bytePath("日")]);
  assert.equal(escapePath(path), "é\\xff日");
});

Deno.test("escapePath() escapes newline, tab, CR, other controls, DEL and backslash", () => {
  assert.equal(escapePath(bytePath("a\nb")), "a\\nb");
  assert.equal(escapePath(bytePath("a\tb\rc")), "a\\tb\\rc");
  assert.equal(escapePath(bytes(0x61, 0x01, 0x7f)), "a\\x01\\x7f");
  assert.equal(escapePath(bytePath("a\\b")), "a\\\\b");
  assert.equal(escapePath(bytes(0x61, 0xff, 0x0a)), "a\\xff\\n");
});

Deno.test("escapePath() output differs for a literal backslash-x name and a raw byte", () => {
  const literal = escapePath(bytePath("\\xff"));
  const raw = escapePath(bytes(0xff));
  assert.equal(literal, "\\\\xff");
  assert.equal(raw, "\\xff");
  assert.notEqual(literal, raw);
});

Deno.test("joinBytePath() puts exactly one slash between directory and name", () => {
  const name = bytes(0x61, 0xff);
  assert.deepEqual(
    joinBytePath(bytePath("/tmp"), name),
    bytes(0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x61, 0xff),
  );
  assert.deepEqual(
    joinBytePath(bytePath("/tmp/"), name),
    bytes(0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x61, 0xff),
  );
  assert.deepEqual(joinBytePath(bytePath("/"), bytePath("etc")), bytePath("/etc"));
  assert.deepEqual(joinBytePath(new Uint8Array(0), bytePath("x")), bytePath("/x"));
});

Deno.test("cPath() appends one NUL and copies the input", () => {
  const src = bytePath("/a");
  const c = cPath(src);
  assert.deepEqual(c, bytes(0x2f, 0x61, 0x00));
  c[0] = 0x41;
  assert.equal(src[0], 0x2f);
});

Deno.test("cPath() rejects a path that contains a NUL byte", () => {
  assert.throws(() => cPath(bytes(0x61, 0x00, 0x62)), {
    name: "TypeError",
    message: /NUL/,
  });
});

Deno.test("latin1() maps each byte to one code point, including large paths", () => {
  assert.equal(latin1(bytes(0x61, 0xff, 0x00, 0x80)), "a\u00ff\u0000\u0080");
  const big = new Uint8Array(20_000).map((_, i) => i & 0xff);
  const text = latin1(big);
  assert.equal(text.length, big.length);
  assert.equal(text.charCodeAt(8192), 8192 & 0xff);
  assert.equal(text.charCodeAt(19_999), 19_999 & 0xff);
});
