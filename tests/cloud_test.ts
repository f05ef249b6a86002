/**
 * The connector's cloud link end to end against a real private cloud on
 * loopback HTTPS (a test CA): registration, policy updates within one
 * heartbeat, cloud convictions, retrospective quarantine, offline queueing
 * with in-order delivery and no duplicates, and the HTTP proxy. The cloud
 * runs on SQLite and on PostgreSQL (skipped outside CI without
 * `AMP_TEST_POSTGRES_URL`). The whole daemon with the same cloud is in
 * cloud_daemon_test.ts.
 */

import assert from "node:assert/strict";
import type { StoredWireEvent } from "../src/cloud/protocol.ts";
import type { PolicyView } from "../src/cloud/server/cloud_store.ts";
import { loadIdentity } from "../src/cloud/connector_identity.ts";
import { RetrospectiveDb } from "../src/cloud/retrospective_db.ts";
import { startTestConnector, type TestConnector } from "./fixtures/cloud_connector.ts";
import { postgresSkip } from "./fixtures/cloud_postgres.ts";
import { type Backend, startTestCloud, type TestCloud } from "./fixtures/cloud_server.ts";
import { startConnectProxy } from "./fixtures/connect_proxy.ts";
import { waitFor } from "./fixtures/daemon.ts";
import { sha256 } from "./fixtures/samples.ts";

const pgSkip = postgresSkip("cloud_test") !== undefined;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Every event the cloud holds for a computer (admin API, all pages). */
async function cloudEvents(cloud: TestCloud, computer: number): Promise<StoredWireEvent[]> {
  const all: StoredWireEvent[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await cloud.admin<{ events: StoredWireEvent[] }>(
      "GET",
      `/events?computer=${computer}&limit=1000${before ? `&before=${before}` : ""}`,
    );
    all.push(...page.events);
    if (page.events.length < 1000) return all;
    before = page.events.at(-1)!.id;
  }
}

async function connected(c: TestConnector, cloud: TestCloud): Promise<number> {
  await waitFor("Connected", () => (c.link.status === "Connected" ? true : undefined), 10_000);
  const identity = await loadIdentity(c.root);
  assert.ok(identity, "no identity saved");
  assert.equal(identity.url, cloud.url);
  return identity.computerId;
}

for (const backend of ["sqlite", "postgres"] as Backend[]) {
  const ignore = backend === "postgres" && pgSkip;
  const test = (name: string, fn: (cloud: TestCloud, c: TestConnector) => Promise<void>) =>
    Deno.test({
      name: `[${backend}] ${name}`,
      ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        const cloud = await startTestCloud({ backend, heartbeatSeconds: 1 });
        try {
          const c = await startTestConnector({
            cloud: { url: cloud.url },
            caPem: cloud.ca.caPem,
            token: cloud.registrationToken,
          });
          try {
            await fn(cloud, c);
          } finally {
            await c.close();
          }
        } finally {
          await cloud.close();
        }
      },
    });

  test(
    "the connector registers with a waiting token, then takes the cloud's policy",
    async (cloud, c) => {
      const computer = await connected(c, cloud);
      const mode = (await Deno.stat(`${c.root}/var/lib/amp/cloud_identity.json`)).mode! & 0o777;
      assert.equal(mode, 0o600);
      assert.equal(await exists(`${c.root}/etc/amp/cloud_registration.token`), false);
      await waitFor("the cloud's policy", () => (c.policy().serial === 1 ? true : undefined));
      assert.equal(c.policy().name, "Audit Policy for Linux");
      const written = JSON.parse(await Deno.readTextFile(`${c.root}/etc/amp/policy.json`));
      assert.deepEqual([written.id, written.serial], [1, 1]);
      const view = await cloud.admin<{ hostname: string; status: { monitor: string } }>(
        "GET",
        `/computers/${computer}`,
      );
      assert.equal(view.hostname, Deno.hostname());
      assert.equal(view.status.monitor, "off");
    },
  );

  test(
    "a connector removed in the console registers anew with a waiting token",
    async (cloud, c) => {
      const first = await connected(c, cloud);
      await cloud.admin("DELETE", `/computers/${first}`);
      await waitFor(
        "the refusal",
        () => (c.link.status === "Disconnected" ? true : undefined),
        10_000,
      );
      await Deno.writeTextFile(
        `${c.root}/etc/amp/cloud_registration.token`,
        cloud.registrationToken,
      );
      const again = await waitFor("registered again", async () => {
        const identity = await loadIdentity(c.root);
        return identity && identity.computerId !== first && c.link.status === "Connected"
          ? identity
          : undefined;
      }, 15_000);
      assert.notEqual(again.computerId, first);
    },
  );

  test(
    "a policy change reaches the connector within one heartbeat (Policy Update)",
    async (cloud, c) => {
      const computer = await connected(c, cloud);
      await cloud.admin("PUT", `/computers/${computer}/policy`, { policyId: 2 });
      await waitFor("Protect", () => (c.policy().id === 2 ? true : undefined), 5_000);
      const protect = await cloud.admin<PolicyView>("GET", "/policies/2");
      const changed = performance.now();
      await cloud.admin("PUT", "/policies/2", {
        ...protect.document,
        monitor: { ...protect.document.monitor, permissionTimeoutMs: 2_500 },
      });
      await waitFor("serial 2", () => (c.policy().serial === 2 ? true : undefined), 5_000);
      const elapsed = performance.now() - changed;
      // One heartbeat is 1 s here; allow the loop's tick and the reload on top.
      assert.ok(elapsed < 2_000, `policy arrived after ${elapsed.toFixed(0)} ms`);
      assert.equal(c.policy().monitor.permissionTimeoutMs, 2_500);
      assert.equal(c.policy().mode.file, "quarantine");
      const updates = c.raised.filter((e) => e.type === "Policy Update");
      assert.ok(updates.length >= 2);
    },
  );

  test(
    "a hash made malicious in the cloud convicts the file at its next lookup",
    async (cloud, c) => {
      await connected(c, cloud);
      const content = `harmless until the cloud says otherwise ${crypto.randomUUID()}\n`;
      const first = await c.scan("tool.sh", content);
      assert.deepEqual(first.result.verdict, { kind: "clean", engine: "clamav" });
      await cloud.admin("PUT", `/dispositions/${sha256(content)}`, {
        disposition: "malicious",
        name: "Amp.Test.CloudBlocked",
      });
      // A file the connector never asked about: the lookup goes to the cloud.
      const other = `another one ${crypto.randomUUID()}`;
      await cloud.admin("PUT", `/dispositions/${sha256(other)}`, {
        disposition: "malicious",
        name: "Amp.Test.Other",
      });
      const fresh = await c.scan("other.sh", other);
      assert.deepEqual(fresh.result.verdict, {
        kind: "malicious",
        name: "Amp.Test.Other",
        engine: "cloud",
      });
      // The first one was cached as unknown: the change log replaces the entry.
      const again = await waitFor("the first file convicted", async () => {
        const { result } = await c.scan("tool.sh", content);
        return result.verdict.kind === "malicious" ? result.verdict : undefined;
      }, 5_000);
      assert.deepEqual(again, {
        kind: "malicious",
        name: "Amp.Test.CloudBlocked",
        engine: "cloud",
      });
      // An allow-listed file is never looked up.
      const allowed = await c.scan("tool.sh", content, { kind: "clean", engine: "allowlist" });
      assert.deepEqual(allowed.result.verdict, { kind: "clean", engine: "allowlist" });
    },
  );

  test(
    "a disposition flip after the file was seen quarantines it retrospectively",
    async (cloud, c) => {
      const computer = await connected(c, cloud);
      await cloud.admin("PUT", `/computers/${computer}/policy`, { policyId: 2 });
      await waitFor("Protect", () => (c.policy().mode.file === "quarantine" ? true : undefined));
      const content = `dropper ${crypto.randomUUID()}\n`;
      const seen = await c.scan("dropper.bin", content);
      assert.equal(seen.result.verdict.kind, "clean");
      const audited = await c.scan("elsewhere.bin", content);
      await Deno.remove(audited.path);
      await cloud.admin("PUT", `/dispositions/${sha256(content)}`, {
        disposition: "malicious",
        name: "Amp.Test.Retro",
      });
      await waitFor(
        "the file quarantined",
        async () => (await exists(seen.path)) ? undefined : true,
        5_000,
      );
      const records = await c.quarantine.list();
      assert.equal(records.length, 1);
      assert.equal(records[0].sha256, sha256(content));
      assert.equal(records[0].detection, "Amp.Test.Retro");
      assert.equal(records[0].engine, "cloud");
      const retro = c.raised.filter((e) => e.type === "Retrospective Detection");
      assert.deepEqual(
        retro.map((e) => [new TextDecoder().decode(e.path), e.action]).sort(),
        [[audited.path, "gone"], [seen.path, "quarantined"]].sort(),
      );
      const quarantined = c.raised.find((e) => e.type === "Threat Quarantined");
      assert.equal(quarantined?.details?.origin, "retrospective");
      // And the cloud gets to know.
      await waitFor("the events in the cloud", async () => {
        const events = await cloudEvents(cloud, computer);
        return events.filter((e) => e.type === "Retrospective Detection").length === 2
          ? true
          : undefined;
      }, 5_000);
    },
  );

  test(
    "a file the cloud called clean, then malicious, is detected and quarantined, once",
    async (cloud, c) => {
      const computer = await connected(c, cloud);
      await cloud.admin("PUT", `/computers/${computer}/policy`, { policyId: 2 });
      await waitFor("Protect", () => (c.policy().mode.file === "quarantine" ? true : undefined));
      const trusted = `trusted until it is not ${crypto.randomUUID()}\n`;
      const convicted = `convicted here first ${crypto.randomUUID()}\n`;
      for (const content of [trusted, convicted]) {
        await cloud.admin("PUT", `/dispositions/${sha256(content)}`, { disposition: "clean" });
      }
      const seen = await c.scan("trusted.bin", trusted);
      assert.deepEqual(seen.result.verdict, { kind: "clean", engine: "clamav" });
      const local = await c.scan("convicted.bin", convicted);
      assert.equal(local.result.verdict.kind, "clean");
      // New signatures convict the second file here (the daemon alerts then): not again later.
      const again = await c.scan("convicted.bin", convicted, {
        kind: "malicious",
        name: "Local.Signature",
        engine: "clamav",
      });
      assert.equal(again.result.verdict.kind, "malicious");
      for (const content of [trusted, convicted]) {
        await cloud.admin("PUT", `/dispositions/${sha256(content)}`, {
          disposition: "malicious",
          name: "Amp.Test.Flipped",
        });
      }
      await waitFor(
        "the trusted file quarantined",
        async () => (await exists(seen.path)) ? undefined : true,
        5_000,
      );
      const retro = () =>
        c.raised.filter((e) => e.type === "Retrospective Detection")
          .map((e) => [new TextDecoder().decode(e.path), e.action]);
      assert.deepEqual(retro(), [[seen.path, "quarantined"]]);
      const [record] = await c.quarantine.list();
      assert.deepEqual([record.sha256, record.detection], [sha256(trusted), "Amp.Test.Flipped"]);
      // Both changes were read; the convicted file raised nothing and stays where it is.
      await new Promise((r) => setTimeout(r, 1_500));
      assert.deepEqual(retro(), [[seen.path, "quarantined"]]);
      assert.ok(await exists(local.path));
    },
  );

  test(
    "a cloud whose change log restarted (a new database): changes are followed from the start",
    async (cloud, c) => {
      const computer = await connected(c, cloud);
      await cloud.admin("PUT", `/computers/${computer}/policy`, { policyId: 2 });
      await waitFor("Protect", () => (c.policy().mode.file === "quarantine" ? true : undefined));
      const content = `seen before the cloud was rebuilt ${crypto.randomUUID()}\n`;
      const seen = await c.scan("old.bin", content);
      assert.equal(seen.result.verdict.kind, "clean");
      // The connector read far into the change log of the cloud's earlier database.
      const retro = await RetrospectiveDb.open(`${c.root}/var/lib/amp/retrospective.db`);
      await retro.setCursor(cloud.url, 1_000);
      await retro.close();
      await cloud.admin("PUT", `/dispositions/${sha256(content)}`, {
        disposition: "malicious",
        name: "Amp.Test.NewDatabase",
      });
      await waitFor(
        "the file quarantined",
        async () => (await exists(seen.path)) ? undefined : true,
        5_000,
      );
      const check = await RetrospectiveDb.open(`${c.root}/var/lib/amp/retrospective.db`);
      try {
        assert.ok((await check.cursor(cloud.url)) < 1_000);
      } finally {
        await check.close();
      }
    },
  );

  test(
    "with the cloud stopped, events queue; after restart all arrive in order, none twice",
    async (cloud, c) => {
      const computer = await connected(c, cloud);
      await waitFor(
        "the first upload",
        async () => (await c.events.countUnsent()) === 0 ? true : undefined,
      );
      await cloud.stop();
      const lost = await waitFor(
        "Cloud Connection Lost",
        () =>
          c.link.status === "Disconnected"
            ? c.raised.find((e) => e.type === "Cloud Connection Lost")
            : undefined,
        10_000,
      );
      assert.ok(lost);
      assert.match(c.link.report().lastError ?? "", /Cannot reach the cloud/);
      // Lookups do not wait for a cloud that is away.
      const started = performance.now();
      const offline = await c.scan("offline.sh", `offline ${crypto.randomUUID()}`);
      assert.equal(offline.result.verdict.kind, "clean");
      assert.ok(performance.now() - started < 500, "a lookup waited for the missing cloud");
      for (let i = 0; i < 1200; i++) {
        await c.events.record({
          type: "Threat Detected",
          time: Date.now(),
          detection: `Queued.${i}`,
        });
      }
      await new Promise((r) => setTimeout(r, 1_000));
      assert.ok((await c.events.countUnsent()) >= 1200);
      await cloud.start();
      await waitFor(
        "Cloud Connection Restored",
        () => c.raised.find((e) => e.type === "Cloud Connection Restored"),
        15_000,
      );
      await waitFor(
        "the queue drained",
        async () => (await c.events.countUnsent()) === 0 ? true : undefined,
        10_000,
      );
      const local = await c.events.list({ limit: 100_000 });
      const remote = await cloudEvents(cloud, computer);
      assert.equal(remote.length, local.length, "every event arrived exactly once");
      assert.equal(
        new Set(remote.map((e) => e.key)).size,
        remote.length,
      );
      const instance = await c.events.instance();
      assert.deepEqual(
        new Set(remote.map((e) => e.key)),
        new Set(local.map((e) => `${instance}:${e.id}`)),
      );
      // In order: the cloud's ids follow the connector's.
      const byCloudId = [...remote].sort((a, b) => a.id - b.id).map((e) =>
        Number(e.key.split(":")[1])
      );
      assert.deepEqual(byCloudId, [...byCloudId].sort((a, b) => a - b));
    },
  );
}

Deno.test({
  name:
    "a cloud that answers more disposition changes without moving its cursor is not asked forever",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A faulty cloud on loopback: its change log claims more after 0, but never moves on.
    let pages = 0;
    let heartbeats = 0;
    const json = (body: unknown) => Response.json(body);
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/v1/register") {
        return json({
          protocol: 1,
          computerId: 1,
          key: `ampkey_${"k".repeat(40)}`,
          policy: { id: 1, serial: 0 },
          heartbeatSeconds: 1,
        });
      }
      if (path === "/v1/heartbeat") {
        heartbeats++;
        return json({
          protocol: 1,
          time: Date.now(),
          heartbeatSeconds: 1,
          policy: { id: 1, serial: 0 },
          dispositionCursor: 5,
        });
      }
      if (path === "/v1/dispositions") {
        pages++;
        return json({ changes: [], cursor: 0, more: true });
      }
      if (path === "/v1/events") {
        return request.json().then(() => json({ stored: 1, duplicates: 0 }));
      }
      return new Response("{}", { status: 404 });
    });
    const c = await startTestConnector({
      cloud: { url: `http://127.0.0.1:${server.addr.port}` },
      token: "ampreg_test_token_0000000000",
    });
    try {
      await waitFor("Connected", () => (c.link.status === "Connected" ? true : undefined), 10_000);
      await waitFor("three heartbeats", () => (heartbeats >= 3 ? true : undefined), 10_000);
      // One page per heartbeat at most, not a loop.
      assert.ok(pages <= heartbeats + 1, `${pages} pages for ${heartbeats} heartbeats`);
      assert.equal(c.link.status, "Connected");
    } finally {
      // The server first: a link caught in a loop of requests then fails out of it.
      await server.shutdown();
      await c.close();
    }
  },
});

Deno.test({
  name: "the connector reaches its cloud through the HTTP proxy of amp.json",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cloud = await startTestCloud({ backend: "sqlite" });
    const proxy = startConnectProxy();
    const c = await startTestConnector({
      cloud: { url: cloud.url, proxy: proxy.url },
      caPem: cloud.ca.caPem,
      token: cloud.registrationToken,
    });
    try {
      await connected(c, cloud);
      assert.ok(proxy.targets.length > 0);
      assert.ok(proxy.targets.every((t) => t === `localhost:${cloud.port}`), proxy.targets.join());
    } finally {
      await c.close();
      await proxy.close();
      await cloud.close();
    }
  },
});

Deno.test({
  name: "a connector that refuses the cloud's certificate stays Disconnected and says why",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cloud = await startTestCloud({ backend: "sqlite" });
    const c = await startTestConnector({
      cloud: { url: cloud.url },
      token: cloud.registrationToken,
    });
    try {
      await waitFor(
        "Cloud Connection Lost",
        () => c.raised.find((e) => e.type === "Cloud Connection Lost"),
        10_000,
      );
      assert.equal(c.link.status, "Disconnected");
      assert.match(c.link.report().lastError ?? "", /certificate|issuer/i);
    } finally {
      await c.close();
      await cloud.close();
    }
  },
});
