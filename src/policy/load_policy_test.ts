import assert from "node:assert/strict";
import { ConfigError, loadPolicy, resolveUnderRoot } from "./load_policy.ts";

async function withRoot(policyText: string | undefined, fn: (root: string) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "amp_policy_" });
  try {
    if (policyText !== undefined) {
      await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
      await Deno.writeTextFile(`${root}/etc/amp/policy.json`, policyText);
    }
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("resolveUnderRoot() joins under the root and cannot climb out", () => {
  assert.equal(resolveUnderRoot("/", "/etc/amp/policy.json"), "/etc/amp/policy.json");
  assert.equal(resolveUnderRoot("/tmp/r", "/etc/amp/policy.json"), "/tmp/r/etc/amp/policy.json");
  assert.equal(resolveUnderRoot("/tmp/r/", "/../../etc/passwd"), "/tmp/r/etc/passwd");
  assert.equal(resolveUnderRoot("/tmp/r", "/"), "/tmp/r");
  assert.throws(() => resolveUnderRoot("/tmp/r", "etc"), TypeError);
});

Deno.test("loadPolicy() falls back to the built-in Audit policy", async () => {
  await withRoot(undefined, async (root) => {
    const loaded = await loadPolicy({ root });
    assert.equal(loaded.source, "built-in");
    assert.equal(loaded.policy.name, "Audit Policy for Linux");
  });
});

Deno.test("loadPolicy() reads <root>/etc/amp/policy.json", async () => {
  const text = JSON.stringify({ id: 9, name: "Web", serial: 4, scan: { maxFileSize: "8MB" } });
  await withRoot(text, async (root) => {
    const loaded = await loadPolicy({ root });
    assert.equal(loaded.source, `${root}/etc/amp/policy.json`);
    assert.equal(loaded.policy.name, "Web");
    assert.equal(loaded.policy.serial, 4);
    assert.equal(loaded.policy.scan.maxFileSize, 8 * 1024 * 1024);
  });
});

Deno.test("loadPolicy() prefers an explicit file", async () => {
  await withRoot('{"id": 1, "name": "root"}', async (root) => {
    const file = `${root}/other.json`;
    await Deno.writeTextFile(file, '\uFEFF{"id": 2, "name": "explicit"}');
    const loaded = await loadPolicy({ root, file });
    assert.equal(loaded.source, file);
    assert.equal(loaded.policy.name, "explicit");
  });
});

Deno.test("loadPolicy() rejects a missing explicit file", async () => {
  await withRoot(undefined, async (root) => {
    const file = `${root}/missing.json`;
    const error = await loadPolicy({ root, file }).then(() => undefined, (e) => e);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.name, "ConfigError");
    assert.equal(error.file, file);
    assert.equal(error.message, `Cannot read policy ${file}: no such file`);
    assert.ok(error.cause instanceof Deno.errors.NotFound);
  });
});

async function loadError(root: string): Promise<ConfigError> {
  try {
    await loadPolicy({ root });
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("loadPolicy() reports broken JSON with its position", async () => {
  await withRoot('{\n  "id": 1,\n}', async (root) => {
    const error = await loadError(root);
    const file = `${root}/etc/amp/policy.json`;
    assert.ok(error.message.startsWith(`Invalid JSON in policy ${file}: `), error.message);
    assert.match(error.message, /line 3/);
    assert.equal(error.file, file);
    assert.deepEqual(error.issues, []);
    assert.ok(error.cause instanceof SyntaxError);
  });
});

Deno.test("loadPolicy() reports a schema violation naming the field", async () => {
  await withRoot('{"id": 1, "name": "x", "mode": {"file": "delete"}}', async (root) => {
    const error = await loadError(root);
    const file = `${root}/etc/amp/policy.json`;
    assert.ok(error.message.startsWith(`Invalid policy ${file}:\n✖ `), error.message);
    assert.ok(error.message.includes('"audit"|"quarantine"\n  → at mode.file'), error.message);
    assert.deepEqual(error.issues.map((i) => i.path), [["mode", "file"]]);
  });
});
