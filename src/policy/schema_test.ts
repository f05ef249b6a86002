import assert from "node:assert/strict";
import { z } from "zod";
import { DEFAULT_EXCLUSIONS, parseSize, PolicySchema } from "./schema.ts";

const MIB = 1024 * 1024;

Deno.test("PolicySchema fills every default from id and name alone", () => {
  const policy = PolicySchema.parse({ id: 3, name: "Servers" });
  assert.equal(policy.serial, 0);
  assert.deepEqual(policy.mode, { file: "audit", execute: "passive", network: "audit" });
  assert.deepEqual(policy.scan, {
    maxFileSize: 5 * MIB,
    maxArchiveSize: 50 * MIB,
    maxRecursion: 16,
    maxFiles: 10_000,
    scanArchives: true,
  });
  assert.deepEqual(policy.engines, {
    clamav: { enabled: true },
    hashList: { enabled: true },
    cloud: { enabled: false },
  });
  assert.deepEqual(policy.lists.blockFiles, ["/etc/amp/lists/simple_custom_detections.txt"]);
  assert.deepEqual(policy.lists.allowFiles, ["/etc/amp/lists/allow_list.txt"]);
  assert.deepEqual(policy.exclusions, DEFAULT_EXCLUSIONS);
});

Deno.test("PolicySchema keeps defaults per field in a partial section", () => {
  const policy = PolicySchema.parse({
    id: 1,
    name: "x",
    mode: { file: "quarantine" },
    engines: { cloud: { enabled: true } },
  });
  assert.deepEqual(policy.mode, { file: "quarantine", execute: "passive", network: "audit" });
  assert.equal(policy.engines.clamav.enabled, true);
  assert.equal(policy.engines.cloud.enabled, true);
});

Deno.test("PolicySchema gives each parse its own default arrays", () => {
  const a = PolicySchema.parse({ id: 1, name: "a" });
  a.exclusions.length = 0;
  a.lists.blockFiles.push("/x");
  const b = PolicySchema.parse({ id: 1, name: "b" });
  assert.equal(b.exclusions.length, DEFAULT_EXCLUSIONS.length);
  assert.equal(b.lists.blockFiles.length, 1);
});

function issueText(input: unknown): string {
  const result = PolicySchema.safeParse(input);
  assert.equal(result.success, false);
  return z.prettifyError(result.error!);
}

Deno.test("PolicySchema names the field at fault", () => {
  assert.match(issueText({ name: "x" }), /→ at id/);
  assert.match(issueText({ id: 1, name: "" }), /→ at name/);
  assert.match(issueText({ id: 1, name: "x", mode: { file: "delete" } }), /→ at mode\.file/);
  assert.match(
    issueText({ id: 1, name: "x", scan: { maxFileSize: "5XB" } }),
    /at scan\.maxFileSize/,
  );
  assert.match(issueText({ id: 1, name: "x", scan: { maxFileSize: 0 } }), /at scan\.maxFileSize/);
  assert.match(issueText({ id: 1, name: "x", lists: { allowFiles: ["rel.txt"] } }), /absolute/);
  assert.match(
    issueText({ id: 1, name: "x", exclusions: [{ type: "glob", pattern: "*" }] }),
    /at exclusions\[0\]\.type/,
  );
});

Deno.test("PolicySchema rejects misspelt fields", () => {
  const text = issueText({ id: 1, name: "x", scan: { maxFileSzie: 1 } });
  assert.match(text, /Unrecognized key: "maxFileSzie"/);
  assert.match(text, /→ at scan/);
  assert.match(
    issueText({ id: 1, name: "x", exclusions: [{ type: "path", path: "/a", x: 1 }] }),
    /"x"/,
  );
});

Deno.test("parseSize() reads bytes and binary units", () => {
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize("4096"), 4096);
  assert.equal(parseSize("512k"), 512 * 1024);
  assert.equal(parseSize("512KB"), 512 * 1024);
  assert.equal(parseSize("5MB"), 5 * MIB);
  assert.equal(parseSize("5 MiB"), 5 * MIB);
  assert.equal(parseSize("50M"), 50 * MIB);
  assert.equal(parseSize("1.5m"), 1.5 * MIB);
  assert.equal(parseSize("2G"), 2 * 1024 * MIB);
  assert.equal(parseSize("100b"), 100);
});

Deno.test("parseSize() rejects zero, negative and malformed sizes", () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity, "0", "-5MB", "5XB", "", "MB", "5 M B"]) {
    assert.equal(parseSize(bad), undefined, String(bad));
  }
});

Deno.test("PolicySchema parses size strings to bytes", () => {
  const policy = PolicySchema.parse({
    id: 1,
    name: "x",
    scan: { maxFileSize: "10MB", maxArchiveSize: 1000 },
  });
  assert.equal(policy.scan.maxFileSize, 10 * MIB);
  assert.equal(policy.scan.maxArchiveSize, 1000);
});
