import assert from "node:assert/strict";
import { loadHashList, parseHashList } from "./hash_list.ts";

const A = "a".repeat(64);
const B = "0123456789abcdef".repeat(4);
const C = "c".repeat(64);

Deno.test("parseHashList() reads hashes and names, skips comments and blank lines", () => {
  const map = new Map<string, string>();
  const text = [
    "# custom detections",
    "",
    `${A} Bad.Tool`,
    `   ${B}\tTrojan Two  # trailing comment`,
    `${C}`,
    "   ",
    "# " + "d".repeat(64) + " commented out",
  ].join("\n");
  const problems = parseHashList(text, "list.txt", "Custom.Default", map);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    map,
    new Map([[A, "Bad.Tool"], [B, "Trojan Two"], [C, "Custom.Default"]]),
  );
});

Deno.test("parseHashList() lowercases upper-case hex and accepts CRLF line ends", () => {
  const map = new Map<string, string>();
  const problems = parseHashList(`${B.toUpperCase()} Upper\r\n${A}\r\n`, "l", "Def", map);
  assert.deepEqual(problems, []);
  assert.equal(map.get(B), "Upper");
  assert.equal(map.has(B.toUpperCase()), false);
  assert.equal(map.get(A), "Def");
});

Deno.test("parseHashList() reports malformed lines as file:line and keeps going", () => {
  const map = new Map<string, string>();
  const text = [
    "# header",
    "not-a-hash Name",
    `${A.slice(1)} too short`,
    `${A}0 too long`,
    `${"g".repeat(64)} not hex`,
    `${C} Good`,
  ].join("\n");
  const problems = parseHashList(text, "/etc/amp/block.txt", "Def", map);
  assert.deepEqual(problems, [
    "/etc/amp/block.txt:2: not a SHA-256: not-a-hash Name",
    `/etc/amp/block.txt:3: not a SHA-256: ${A.slice(1)} too short`,
    `/etc/amp/block.txt:4: not a SHA-256: ${A}0 too long`,
    `/etc/amp/block.txt:5: not a SHA-256: ${"g".repeat(64)} not hex`,
  ]);
  assert.deepEqual(map, new Map([[C, "Good"]]));
});

Deno.test("loadHashList() treats a missing file as empty and merges the others", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-hashlist-" });
  try {
    await Deno.writeTextFile(`${dir}/one.txt`, `${A} First\n${B}\n`);
    await Deno.writeTextFile(`${dir}/two.txt`, `${A} Second\nbroken\n`);
    const list = await loadHashList(
      [`${dir}/missing.txt`, `${dir}/one.txt`, `${dir}/two.txt`],
      "Custom",
    );
    assert.equal(list.size, 2);
    assert.equal(list.lookup(A), "Second");
    assert.equal(list.lookup(B), "Custom");
    assert.equal(list.lookup(C), undefined);
    assert.deepEqual(list.problems, [`${dir}/two.txt:2: not a SHA-256: broken`]);
    assert.match(list.fingerprint, /^[0-9a-f]{16}$/);

    const none = await loadHashList([`${dir}/missing.txt`], "Custom");
    assert.equal(none.size, 0);
    assert.deepEqual(none.problems, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadHashList() reports an unreadable path as a problem, not an exception", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-hashlist-" });
  try {
    await Deno.mkdir(`${dir}/a-directory.txt`);
    const list = await loadHashList([`${dir}/a-directory.txt`], "Custom");
    assert.equal(list.size, 0);
    assert.equal(list.problems.length, 1);
    assert.ok(list.problems[0].startsWith(`${dir}/a-directory.txt: cannot read: `));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadHashList() keeps at most 20 problems", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-hashlist-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.txt`, "junk\n".repeat(30));
    const list = await loadHashList([`${dir}/bad.txt`], "Custom");
    assert.equal(list.problems.length, 20);
    assert.equal(list.problems[19], `${dir}/bad.txt:20: not a SHA-256: junk`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadHashList() fingerprint is stable for the same content and changes with it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-hashlist-" });
  try {
    const file = `${dir}/list.txt`;
    await Deno.writeTextFile(file, `${A} One\n`);
    const first = (await loadHashList([file], "Custom")).fingerprint;
    assert.equal((await loadHashList([file], "Custom")).fingerprint, first);
    await Deno.writeTextFile(file, `${A} Renamed\n`);
    const renamed = (await loadHashList([file], "Custom")).fingerprint;
    assert.notEqual(renamed, first);
    await Deno.writeTextFile(file, `${A} Renamed\n${B}\n`);
    assert.notEqual((await loadHashList([file], "Custom")).fingerprint, renamed);
    const empty = (await loadHashList([`${dir}/missing`], "Custom")).fingerprint;
    assert.notEqual(empty, first);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
