import assert from "node:assert/strict";
import { AUDIT_POLICY, builtinPolicy, PROTECT_POLICY } from "./builtin.ts";

Deno.test("built-in policies differ only in mode.file", () => {
  assert.equal(AUDIT_POLICY.name, "Audit Policy for Linux");
  assert.equal(AUDIT_POLICY.id, 1);
  assert.equal(AUDIT_POLICY.mode.file, "audit");
  assert.equal(PROTECT_POLICY.name, "Protect Policy for Linux");
  assert.equal(PROTECT_POLICY.id, 2);
  assert.equal(PROTECT_POLICY.mode.file, "quarantine");
  const strip = (
    { id: _i, name: _n, mode: { file: _f, ...mode }, ...rest }: typeof AUDIT_POLICY,
  ) => ({
    mode,
    ...rest,
  });
  assert.deepEqual(strip(AUDIT_POLICY), strip(PROTECT_POLICY));
});

Deno.test("built-in constants are frozen; builtinPolicy() returns a copy", () => {
  assert.throws(() => {
    (AUDIT_POLICY.scan as { maxFiles: number }).maxFiles = 1;
  }, TypeError);
  const copy = builtinPolicy("audit");
  copy.scan.maxFiles = 1;
  assert.equal(AUDIT_POLICY.scan.maxFiles, 10_000);
  assert.deepEqual(builtinPolicy("protect"), PROTECT_POLICY);
});
