import assert from "node:assert/strict";
import { builtinPolicy } from "../../policy/builtin.ts";
import { PolicySchema } from "../../policy/schema.ts";
import { formatSize, policyToForm, readPolicyForm } from "./policy_form.ts";

Deno.test("policyToForm() then readPolicyForm() gives back the same policy", () => {
  const policy = PolicySchema.parse({
    id: 7,
    name: "Servers",
    serial: 3,
    description: "web tier",
    mode: { file: "quarantine", execute: "active", network: "block" },
    scan: { maxFileSize: "7MB", maxArchiveSize: 1234567, scanArchives: false },
    engines: { cloud: { enabled: true }, clamav: { enabled: false } },
    exclusions: [
      { type: "path", path: "/proc" },
      { type: "wildcard", pattern: "/tmp/*.log" },
      { type: "extension", extension: ".bak" },
    ],
    processExclusions: [
      { executable: "/usr/bin/backup tool", user: "root", children: true },
      { executable: "/usr/sbin/cron", user: 0 },
    ],
    dfc: {
      lists: [
        { name: "drop", url: "https://cloud.example/v1/ip-lists/drop" },
        { name: "csv", file: "/etc/amp/ips.csv", format: "csv", column: 2, delimiter: ";" },
      ],
    },
    monitor: { onAccess: false, permissionTimeoutMs: 250, timeoutAnswer: "deny" },
  });
  const form = policyToForm(policy);
  assert.equal(form.get("scan.maxFileSize"), "7MB");
  assert.equal(form.get("scan.maxArchiveSize"), "1234567");
  assert.equal(form.get("dfc.rows"), "4", "two lists and two spare rows");
  assert.equal(form.get("dfc.0.file"), "", "a url list's default file is not shown");
  const read = readPolicyForm(form, { id: 7, serial: 4 });
  assert.ok(read.ok, read.ok ? "" : JSON.stringify([...read.errors]));
  assert.deepEqual(read.policy, { ...policy, serial: 4 });
});

Deno.test("readPolicyForm() shows the schema's messages beside their fields and lines", () => {
  const form = policyToForm(builtinPolicy("protect"));
  form.set("name", "  ");
  form.set("scan.maxFileSize", "five megabytes");
  form.set("scan.maxRecursion", "deep");
  form.set("mode.file", "delete");
  form.set("lists.blockFiles", "/ok/list.txt\nrelative/list.txt");
  form.set("exclusions.wildcard", "/tmp/*\nno-slash*");
  form.set("processExclusions", "/bin/ok\nbackup user=root");
  form.set("dfc.1.name", "bad name!");
  form.set("dfc.1.format", "csv");
  form.set("monitor.permissionTimeoutMs", "10");
  const read = readPolicyForm(form, { id: 2, serial: 2 });
  assert.equal(read.ok, false);
  if (read.ok) return;
  const e = Object.fromEntries(read.errors);
  assert.ok(e["name"]?.[0], "name");
  assert.match(e["scan.maxFileSize"][0], /Invalid size "five megabytes"/);
  assert.match(e["scan.maxRecursion"][0], /expected number/);
  assert.match(e["mode.file"][0], /expected one of "audit"\|"quarantine"/);
  assert.match(e["lists.blockFiles"][0], /^Line 2: Expected an absolute path/);
  assert.match(e["exclusions.wildcard"][0], /^Line 2: Expected a pattern for an absolute path/);
  assert.match(e["processExclusions"][0], /^Line 2: Expected an absolute path/);
  assert.match(e["dfc.1.name"][0], /Use letters, digits, dot, dash, underscore/);
  assert.match(e["dfc.1.column"][0], /A csv list needs a column/);
  assert.ok(e["dfc.1.file"], "a list without a url or file");
  assert.match(e["monitor.permissionTimeoutMs"][0], /Too small/);
  assert.equal(e["_form"], undefined);
});

Deno.test("readPolicyForm(): unchecked boxes are false, empty numbers take the defaults", () => {
  const form = new URLSearchParams({ name: "Minimal", "mode.file": "audit", "dfc.rows": "2" });
  form.set("mode.execute", "passive");
  form.set("mode.network", "audit");
  form.set("monitor.timeoutAnswer", "allow");
  const read = readPolicyForm(form, { id: 9, serial: 1 });
  assert.ok(read.ok);
  assert.equal(read.policy.engines.clamav.enabled, false);
  assert.equal(read.policy.monitor.onAccess, false);
  assert.equal(read.policy.scan.maxFileSize, 5 * 1024 * 1024);
  assert.equal(read.policy.scan.maxRecursion, 16);
  assert.deepEqual(read.policy.exclusions, []);
  assert.deepEqual(read.policy.dfc.lists, []);
});

Deno.test("formatSize() shows MB and k when exact", () => {
  assert.equal(formatSize(50 * 1024 * 1024), "50MB");
  assert.equal(formatSize(512 * 1024), "512k");
  assert.equal(formatSize(1000), "1000");
});
