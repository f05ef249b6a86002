import assert from "node:assert/strict";
import { ConfigError } from "../policy/load_policy.ts";
import { loadConfig, parseConfigText } from "./amp_config.ts";

Deno.test("loadConfig() gives the defaults when amp.json is missing", async () => {
  const { config, source } = await loadConfig({ root: "/nonexistent-amp-root" });
  assert.equal(source, "defaults");
  assert.equal(config.logLevel, "notice");
  assert.equal(config.socket, "/run/amp/ampd.sock");
  assert.deepEqual(config.monitor.paths, []);
  assert.equal(config.clamav.dbDir, "/var/lib/clamav");
});

Deno.test("parseConfigText() rejects unknown fields and bad levels with the field named", () => {
  assert.throws(() => parseConfigText('{"logLevel": "loud"}', "amp.json"), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /logLevel/);
    return true;
  });
  assert.throws(() => parseConfigText('{"monitr": {}}', "amp.json"), /monitr/);
  assert.throws(() => parseConfigText("{", "amp.json"), /Invalid JSON/);
});

Deno.test("parseConfigText() keeps given monitor paths", () => {
  const config = parseConfigText('{"monitor": {"paths": ["/srv"]}, "logLevel": "debug"}', "x");
  assert.deepEqual(config.monitor.paths, ["/srv"]);
  assert.equal(config.logLevel, "debug");
});

Deno.test("parseConfigText() refuses a plain-http cloud URL unless it is this machine", () => {
  assert.throws(
    () => parseConfigText('{"cloud": {"url": "http://cloud.example.org"}}', "amp.json"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /cloud\.url/);
      assert.match(e.message, /use https:\/\//);
      return true;
    },
  );
  const local = parseConfigText('{"cloud": {"url": "http://127.0.0.1:8080"}}', "amp.json");
  assert.equal(local.cloud.url, "http://127.0.0.1:8080");
  const tls = parseConfigText('{"cloud": {"url": "https://cloud.example.org"}}', "amp.json");
  assert.equal(tls.cloud.url, "https://cloud.example.org");
});
