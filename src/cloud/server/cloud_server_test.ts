import assert from "node:assert/strict";
import { parseCloudDbSpec, redact } from "./cloud_db.ts";
import { parseListen } from "./cloud_server.ts";

Deno.test("parseListen() reads ADDR:PORT, [IPv6]:PORT and :PORT", () => {
  assert.deepEqual(parseListen("127.0.0.1:8443"), { hostname: "127.0.0.1", port: 8443 });
  assert.deepEqual(parseListen("[::1]:443"), { hostname: "::1", port: 443 });
  assert.deepEqual(parseListen(":443"), { hostname: "0.0.0.0", port: 443 });
  assert.throws(() => parseListen("443"), /Invalid --listen/);
  assert.throws(() => parseListen("host:70000"), /Invalid --listen/);
});

Deno.test("parseCloudDbSpec() tells SQLite paths from PostgreSQL URLs", () => {
  assert.deepEqual(parseCloudDbSpec("sqlite:/var/lib/amp-cloud/cloud.db"), {
    dialect: "sqlite",
    path: "/var/lib/amp-cloud/cloud.db",
  });
  assert.deepEqual(parseCloudDbSpec("./cloud.db"), { dialect: "sqlite", path: "./cloud.db" });
  assert.deepEqual(parseCloudDbSpec("postgres://amp:pw@db:5432/amp"), {
    dialect: "postgres",
    url: "postgres://amp:pw@db:5432/amp",
  });
  assert.equal(parseCloudDbSpec("postgresql://db/amp").dialect, "postgres");
  assert.throws(() => parseCloudDbSpec("mysql://db/amp"), /Invalid --db/);
  assert.equal(redact("postgres://amp:secret@db/amp"), "postgres://amp:***@db/amp");
});
