import assert from "node:assert/strict";
import { builtinPolicy } from "../policy/builtin.ts";
import { loadPolicyOrLastGood, samePolicy, saveLastGood } from "./policy_keeper.ts";

Deno.test("loadPolicyOrLastGood() keeps the last good policy when the file is broken", async () => {
  const root = await Deno.makeTempDir({ prefix: "amp-keeper-" });
  try {
    await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
    await Deno.mkdir(`${root}/var/lib/amp`, { recursive: true });
    await Deno.writeTextFile(`${root}/etc/amp/policy.json`, '{"id": 9, "name": "Servers"}');
    const first = await loadPolicyOrLastGood(root);
    assert.equal(first.policy.name, "Servers");
    assert.equal(first.failure, undefined);
    await saveLastGood(root, first.policy);

    await Deno.writeTextFile(`${root}/etc/amp/policy.json`, '{"id": 9, "name": "Servers", ');
    const broken = await loadPolicyOrLastGood(root);
    assert.equal(broken.policy.name, "Servers");
    assert.match(broken.source, /last good/);
    assert.ok(broken.failure);
    assert.match(broken.failure.message, /Invalid JSON/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadPolicyOrLastGood() falls back to Audit when nothing good was ever seen", async () => {
  const root = await Deno.makeTempDir({ prefix: "amp-keeper-" });
  try {
    await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
    await Deno.writeTextFile(`${root}/etc/amp/policy.json`, '{"id": "x"}');
    const load = await loadPolicyOrLastGood(root);
    assert.equal(load.policy.name, "Audit Policy for Linux");
    assert.ok(load.failure);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("samePolicy() tells a changed mode apart", () => {
  const a = builtinPolicy("audit");
  assert.ok(samePolicy(a, builtinPolicy("audit")));
  assert.ok(!samePolicy(a, builtinPolicy("protect")));
});
