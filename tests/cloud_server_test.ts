/**
 * The private cloud's API end to end: a real `startCloudServer` on loopback
 * HTTPS (a test CA), spoken to with the connector's own `CloudClient` and the
 * admin API, on SQLite and on a real PostgreSQL server (each test on a fresh
 * database). The PostgreSQL runs skip outside CI without
 * `AMP_TEST_POSTGRES_URL`.
 */

import assert from "node:assert/strict";
import {
  CloudClient,
  CloudRequestError,
  CloudUnavailableError,
} from "../src/cloud/cloud_client.ts";
import { loadIdentity, registerConnector, saveIdentity } from "../src/cloud/connector_identity.ts";
import type { HeartbeatRequest, RegisterRequest, WireEvent } from "../src/cloud/protocol.ts";
import type { PolicyView } from "../src/cloud/server/cloud_store.ts";
import { EventUploader, isCloudRefusal } from "../src/cloud/event_uploader.ts";
import { EventsDb } from "../src/store/events_db.ts";
import { postgresSkip } from "./fixtures/cloud_postgres.ts";
import { type Backend, startTestCloud, type TestCloud } from "./fixtures/cloud_server.ts";

const pgSkip = postgresSkip("cloud_server_test") !== undefined;

function host(name: string): RegisterRequest {
  return {
    guid: crypto.randomUUID(),
    hostname: name,
    os: "Debian GNU/Linux 12 (bookworm)",
    kernel: "6.1.0-test",
    arch: "x86_64",
    version: "0.1.0",
  };
}

function beat(policy: { id: number; serial: number }): HeartbeatRequest {
  return {
    policy,
    faults: [],
    version: "0.1.0",
    monitor: "fanotify",
    counts: { queuedEvents: 0, quarantined: 0, detections: 0, cacheEntries: 0 },
  };
}

function event(key: string, extra: Partial<WireEvent> = {}): WireEvent {
  return { key, type: "Threat Detected", time: Date.now(), host: "web1", ...extra };
}

async function withCloud(
  backend: Backend,
  fn: (cloud: TestCloud, client: CloudClient) => Promise<void>,
) {
  const cloud = await startTestCloud({ backend, heartbeatSeconds: 1 });
  const client = new CloudClient({ url: cloud.url, caCerts: [cloud.ca.caPem] });
  try {
    await fn(cloud, client);
  } finally {
    client.close();
    await cloud.close();
  }
}

for (const backend of ["sqlite", "postgres"] as const) {
  const ignore = backend === "postgres" && pgSkip;
  const test = (name: string, fn: (cloud: TestCloud, client: CloudClient) => Promise<void>) =>
    Deno.test({
      name: `[${backend}] ${name}`,
      ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => withCloud(backend, fn),
    });

  test("the cloud creates the two built-in policies once, with cloud lookups on", async (cloud) => {
    const { policies } = await cloud.admin<{ policies: PolicyView[] }>("GET", "/policies");
    assert.deepEqual(policies.map((p) => [p.id, p.name, p.builtin]), [
      [1, "Audit Policy for Linux", true],
      [2, "Protect Policy for Linux", true],
    ]);
    assert.equal(policies[0].document.mode.file, "audit");
    assert.equal(policies[1].document.mode.file, "quarantine");
    assert.equal(policies[1].document.engines.cloud.enabled, true);
    await cloud.stop();
    await cloud.start();
    const again = await cloud.admin<{ policies: PolicyView[] }>("GET", "/policies");
    assert.equal(again.policies.length, 2, "built-ins created again on restart");
  });

  test(
    "register: a registration token gives a key; a wrong token is refused",
    async (cloud, client) => {
      await assert.rejects(
        client.register("ampreg_wrong_token_000000000000", host("web1")),
        (e: Error) => e instanceof CloudRequestError && e.status === 401,
      );
      const first = await client.register(cloud.registrationToken, host("web1"));
      assert.equal(first.protocol, 1);
      assert.deepEqual(first.policy, { id: 1, serial: 1 });
      assert.equal(first.heartbeatSeconds, 1);
      assert.ok(first.key.length >= 40);
      const { computers } = await cloud.admin<
        { computers: Array<{ hostname: string; id: number }> }
      >(
        "GET",
        "/computers",
      );
      assert.deepEqual(computers.map((c) => [c.id, c.hostname]), [[first.computerId, "web1"]]);
      // The key is never stored: the database holds only its hash.
      const raw = await cloud.store().authenticate(first.key);
      assert.ok(raw);
      assert.notEqual(raw.key_hash, first.key);
    },
  );

  test(
    "register: a known GUID is registered again only with its current key, not the token alone",
    async (cloud, client) => {
      const victim = host("web1");
      const first = await client.register(cloud.registrationToken, victim);
      await client.uploadEvents(first.key, [event("v:1", { detection: "Victim.Event" })]);
      // Anyone with the fleet's token: refused, and the victim's key keeps working.
      await assert.rejects(
        client.register(cloud.registrationToken, { ...victim, hostname: "attacker" }),
        (e: Error) =>
          e instanceof CloudRequestError && e.status === 409 && e.code === "conflict" &&
          /already registered.*remove the computer in the console.*current key/.test(e.message),
      );
      await assert.rejects(
        client.register(cloud.registrationToken, {
          ...victim,
          currentKey: "ampkey_guessed_000000000000000000000000",
        }),
        (e: Error) => e instanceof CloudRequestError && e.status === 409,
      );
      assert.deepEqual((await client.events(first.key)).map((e) => e.detection), ["Victim.Event"]);
      assert.equal((await cloud.store().getComputer(first.computerId)).hostname, "web1");
      assert.ok(cloud.log.some((l) => /^warning: Registration of attacker .* refused/.test(l)));
      // A wrong token is still a 401, before the GUID is looked at.
      await assert.rejects(
        client.register("ampreg_wrong_token_000000000000", victim),
        (e: Error) => e instanceof CloudRequestError && e.status === 401,
      );
      // The computer itself, with its current key: a new key, the same computer.
      const again = await client.register(cloud.registrationToken, {
        ...victim,
        currentKey: first.key,
      });
      assert.equal(again.computerId, first.computerId);
      assert.notEqual(again.key, first.key);
      await assert.rejects(
        client.events(first.key),
        (e: Error) => e instanceof CloudRequestError && e.status === 401,
      );
      assert.deepEqual((await client.events(again.key)).map((e) => e.detection), ["Victim.Event"]);
      // Removed in the console: the GUID registers afresh with the token.
      await cloud.admin("DELETE", `/computers/${first.computerId}`);
      const fresh = await client.register(cloud.registrationToken, victim);
      assert.notEqual(fresh.computerId, first.computerId);
    },
  );

  test(
    "registerConnector() registers again with its earlier key, for the same cloud only",
    async (cloud, client) => {
      const root = await Deno.makeTempDir({ prefix: "amp-register-" });
      try {
        const options = { root, url: cloud.url };
        const first = await registerConnector(client, cloud.registrationToken, options);
        const again = await registerConnector(client, cloud.registrationToken, options);
        assert.equal(again.computerId, first.computerId);
        assert.equal(again.guid, first.guid);
        assert.notEqual(again.key, first.key);
        assert.deepEqual(await loadIdentity(root), again);
        // An identity of another cloud is not proof here: its key is never sent.
        await saveIdentity(root, { ...again, url: "https://other.example.org" });
        await assert.rejects(
          registerConnector(client, cloud.registrationToken, options),
          (e: Error) => e instanceof CloudRequestError && e.status === 409,
        );
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    },
  );

  test(
    "register checks the token before reading the body, and takes a few KB at most",
    async (cloud, client) => {
      using http = Deno.createHttpClient({ caCerts: [cloud.ca.caPem] });
      const post = async (token: string, body: string) => {
        const response = await fetch(`${cloud.url}/v1/register`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body,
          client: http,
        });
        return { status: response.status, body: await response.json() as { code: string } };
      };
      // Valid JSON, but far too large: without the token it is refused as such, unread.
      const big = JSON.stringify({ ...host("web1"), hostname: "x".repeat(1024 * 1024) });
      const anonymous = await post("ampreg_wrong_token_000000000000", big);
      assert.deepEqual([anonymous.status, anonymous.body.code], [401, "unauthorized"]);
      const tooLarge = await post(cloud.registrationToken, big);
      assert.deepEqual([tooLarge.status, tooLarge.body.code], [413, "too-large"]);
      const padded = JSON.stringify({ ...host("web1"), os: "o".repeat(9 * 1024) });
      assert.equal((await post(cloud.registrationToken, padded)).status, 413);
      // A malformed path parameter is a bad request, not an internal error.
      const { key } = await client.register(cloud.registrationToken, host("web1"));
      const bad = await fetch(`${cloud.url}/v1/ip-lists/%E0`, {
        headers: { authorization: `Bearer ${key}` },
        client: http,
      });
      assert.equal(bad.status, 400);
      assert.equal((await bad.json() as { code: string }).code, "bad-request");
      assert.ok(!cloud.log.some((l) => l.startsWith("error:")), cloud.log.join("\n"));
    },
  );

  test(
    "a policy edit bumps the serial and reaches the connector at its next heartbeat",
    async (cloud, client) => {
      const { key } = await client.register(cloud.registrationToken, host("web1"));
      const initial = await client.heartbeat(key, beat({ id: 9, serial: 0 }));
      assert.deepEqual(initial.policy, { id: 1, serial: 1 });
      assert.equal(initial.policyDocument?.name, "Audit Policy for Linux");
      const steady = await client.heartbeat(key, beat({ id: 1, serial: 1 }));
      assert.equal(steady.policyDocument, undefined, "an unchanged policy is not sent again");

      const current = await cloud.admin<PolicyView>("GET", "/policies/1");
      const edited = await cloud.admin<PolicyView>("PUT", "/policies/1", {
        ...current.document,
        scan: { ...current.document.scan, maxFileSize: "7MB" },
      });
      assert.equal(edited.serial, 2);
      const next = await client.heartbeat(key, beat({ id: 1, serial: 1 }));
      assert.deepEqual(next.policy, { id: 1, serial: 2 });
      assert.equal(
        (next.policyDocument?.scan as { maxFileSize: number }).maxFileSize,
        7 * 1024 * 1024,
      );
      assert.equal((await client.policy(key)).policy.serial, 2);

      // A document the schema rejects changes nothing.
      await assert.rejects(
        cloud.admin("PUT", "/policies/1", { ...current.document, mode: { file: "delete" } }),
        /400 .*Invalid policy/s,
      );
      assert.equal((await cloud.admin<PolicyView>("GET", "/policies/1")).serial, 2);
    },
  );

  test("policies: copy, create, assign, and delete only what is unused", async (cloud, client) => {
    const { key, computerId } = await client.register(cloud.registrationToken, host("web1"));
    const copy = await cloud.admin<PolicyView>("POST", "/policies/2/copy", { name: "Servers" });
    assert.equal(copy.name, "Servers");
    assert.equal(copy.document.mode.file, "quarantine");
    assert.equal(copy.builtin, false);
    const created = await cloud.admin<PolicyView>("POST", "/policies", { name: "Kiosks" });
    assert.equal(created.document.mode.file, "audit");
    await cloud.admin("PUT", `/computers/${computerId}/policy`, { policyId: copy.id });
    const hb = await client.heartbeat(key, beat({ id: 1, serial: 1 }));
    assert.deepEqual(hb.policy, { id: copy.id, serial: 1 });
    assert.equal(hb.policyDocument?.name, "Servers");
    await assert.rejects(cloud.admin("DELETE", `/policies/${copy.id}`), /409/);
    await assert.rejects(cloud.admin("DELETE", "/policies/1"), /409 .*built-in/);
    await cloud.admin("DELETE", `/policies/${created.id}`);
    await assert.rejects(cloud.admin("GET", `/policies/${created.id}`), /404/);
  });

  test(
    "lookups: unknown until a disposition is set; the change log follows by cursor",
    async (cloud, client) => {
      const { key } = await client.register(cloud.registrationToken, host("web1"));
      const bad = "ab".repeat(32);
      const good = "cd".repeat(32);
      const { results } = await client.lookup(key, [bad, good]);
      assert.deepEqual(results.map((r) => r.disposition), ["unknown", "unknown"]);
      await cloud.admin("PUT", `/dispositions/${bad}`, {
        disposition: "malicious",
        name: "Amp.Test.Cloud",
      });
      await cloud.admin("PUT", `/dispositions/${good}`, { disposition: "clean" });
      // Setting the same again makes no change record.
      await cloud.admin("PUT", `/dispositions/${bad}`, {
        disposition: "malicious",
        name: "Amp.Test.Cloud",
      });
      const again = await client.lookup(key, [bad, good]);
      assert.deepEqual(
        again.results.map((r) => [r.sha256, r.disposition, r.name]),
        [[bad, "malicious", "Amp.Test.Cloud"], [good, "clean", undefined]],
      );
      const changes = await client.dispositions(key, 0);
      assert.deepEqual(changes.changes.map((c) => [c.sha256, c.disposition]), [
        [bad, "malicious"],
        [good, "clean"],
      ]);
      assert.equal(changes.more, false);
      const hb = await client.heartbeat(key, beat({ id: 1, serial: 1 }));
      assert.equal(hb.dispositionCursor, changes.cursor);

      const text = `# imported\n${"ef".repeat(32)} Bad.One\n${"01".repeat(32)}\nnot-a-hash\n` +
        `${"02".repeat(32)} ${"Long.Name.".repeat(40)}\n`;
      const imported = await cloud.admin<{ entries: number; problems: string[] }>(
        "POST",
        "/dispositions/import",
        { text },
      );
      assert.equal(imported.entries, 3);
      const long = await client.lookup(key, ["02".repeat(32)]);
      assert.equal(long.results[0].name?.length, 255, "a long imported name is cut for the wire");
      assert.equal(imported.problems.length, 1);
      await cloud.admin("DELETE", `/dispositions/${bad}`);
      const later = await client.dispositions(key, changes.cursor);
      assert.deepEqual(later.changes.map((c) => [c.sha256, c.disposition]), [
        ["ef".repeat(32), "malicious"],
        ["01".repeat(32), "malicious"],
        ["02".repeat(32), "malicious"],
        [bad, "unknown"],
      ]);
      assert.deepEqual(later.changes.slice(0, 2).map((c) => c.name), [
        "Bad.One",
        "Custom.Detection",
      ]);
      const paged = await client.dispositions(key, 0, 2);
      assert.equal(paged.changes.length, 2);
      assert.equal(paged.more, true);
      assert.equal((await client.lookup(key, [bad])).results[0].disposition, "unknown");
    },
  );

  test(
    "the cloud refuses (400) text with NUL and times beyond Date, and stores the rest",
    async (cloud, client) => {
      const refused = (status: number) => (e: Error) =>
        e instanceof CloudRequestError && e.status === status;
      await assert.rejects(
        client.register(cloud.registrationToken, { ...host("web1"), hostname: "web\u00001" }),
        refused(400),
      );
      const { key, computerId } = await client.register(cloud.registrationToken, host("web1"));
      await assert.rejects(
        client.uploadEvents(key, [event("n:1", { detection: "Bad\u0000Name" })]),
        refused(400),
      );
      await assert.rejects(
        client.uploadEvents(key, [event("n:2", { time: 9e15 })]),
        refused(400),
      );
      const item = {
        id: 1,
        pathText: "/srv/evil.sh",
        sha256: "c".repeat(64),
        size: 10,
        detection: "Amp.Test",
        engine: "clamav",
        time: Date.now(),
      };
      const ref = { id: 1, serial: 1 };
      for (
        const request of [
          { ...beat(ref), quarantine: [{ ...item, time: 9e15 }] },
          { ...beat(ref), quarantine: [{ ...item, detection: "Bad\u0000Name" }] },
          { ...beat(ref), commandResults: [{ id: 1, ok: false, message: "no\u0000pe" }] },
          { ...beat(ref), version: "0.1.0\u0000" },
        ]
      ) {
        await assert.rejects(client.heartbeat(key, request), refused(400));
      }
      // The uploader of a connector that sends such an event anyway: the cloud refuses it
      // (no 500), the batch goes again one event at a time, and that one event is dropped.
      const dir = await Deno.makeTempDir({ prefix: "amp-nul-" });
      const events = await EventsDb.open(`${dir}/events.db`, { host: "web1" });
      try {
        for (const detection of ["Before", "Odd", "After"]) {
          await events.record({ type: "Threat Detected", time: Date.now(), detection });
        }
        const dropped: string[] = [];
        const uploader = new EventUploader({
          events,
          isRefusal: isCloudRefusal,
          onRefused: (e) => dropped.push(e.key),
        });
        const withNul = (e: WireEvent) =>
          e.detection === "Odd" ? { ...e, detection: "Bad\u0000Name" } : e;
        await uploader.drain(async (batch) => {
          await client.uploadEvents(key, batch.map(withNul));
        });
        assert.equal(await uploader.pending(), 0);
        assert.equal(dropped.length, 1);
        const stored = await client.events(key);
        assert.deepEqual(stored.map((e) => e.detection), ["After", "Before"]);
        assert.equal(await cloud.store().countEvents(computerId), 2);
      } finally {
        await events.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  test("events: a batch delivered twice is stored once", async (cloud, client) => {
    const { key, computerId } = await client.register(cloud.registrationToken, host("web1"));
    const batch = [
      event("i1:1", { path: btoa("/tmp/a"), pathText: "/tmp/a", sha256: "aa".repeat(32) }),
      event("i1:2", { type: "Connector Started" }),
    ];
    assert.deepEqual(await client.uploadEvents(key, batch), { stored: 2, duplicates: 0 });
    assert.deepEqual(
      await client.uploadEvents(key, [...batch, event("i1:3")]),
      { stored: 1, duplicates: 2 },
    );
    const stored = await client.events(key);
    assert.deepEqual(stored.map((e) => e.key), ["i1:3", "i1:2", "i1:1"]);
    assert.equal(stored[2].pathText, "/tmp/a");
    assert.equal(await cloud.store().countEvents(computerId), 3);
    const bySha = await cloud.admin<{ events: Array<{ key: string }> }>(
      "GET",
      `/events?sha256=${"aa".repeat(32)}`,
    );
    assert.deepEqual(bySha.events.map((e) => e.key), ["i1:1"]);
  });

  test(
    "isolation: a second connector's key cannot read or write the first's data",
    async (cloud, client) => {
      const a = await client.register(cloud.registrationToken, host("web1"));
      const b = await client.register(cloud.registrationToken, host("web2"));
      assert.notEqual(a.computerId, b.computerId);
      await client.uploadEvents(a.key, [event("ka:1", { detection: "Secret.A" })]);
      await client.uploadEvents(b.key, [event("ka:1", { detection: "From.B" })]);
      // Same event key from B: stored for B, A's event untouched.
      const ofA = await client.events(a.key);
      const ofB = await client.events(b.key);
      assert.deepEqual(ofA.map((e) => e.detection), ["Secret.A"]);
      assert.deepEqual(ofB.map((e) => e.detection), ["From.B"]);
      // A computer named in the query is ignored: the key decides.
      using http = Deno.createHttpClient({ caCerts: [cloud.ca.caPem] });
      const response = await fetch(`${cloud.url}/v1/events?computer=${a.computerId}`, {
        headers: { authorization: `Bearer ${b.key}` },
        client: http,
      });
      const body = await response.json() as { events: Array<{ detection?: string }> };
      assert.deepEqual(body.events.map((e) => e.detection), ["From.B"]);
      // A connector key is not an admin token.
      const admin = await fetch(`${cloud.url}/admin/v1/events`, {
        headers: { authorization: `Bearer ${b.key}` },
        client: http,
      });
      assert.equal(admin.status, 401);
      await admin.body?.cancel();
      // A deleted computer's key stops working.
      await cloud.admin("DELETE", `/computers/${a.computerId}`);
      await assert.rejects(
        client.events(a.key),
        (e: Error) => e instanceof CloudRequestError && e.status === 401,
      );
    },
  );

  test(
    "registration tokens: made with a policy, listed without the token, revoked",
    async (cloud, client) => {
      const { id, token } = await cloud.admin<{ id: number; token: string }>(
        "POST",
        "/registration-tokens",
        { label: "protect fleet", policyId: 2 },
      );
      const registered = await client.register(token, host("db1"));
      assert.deepEqual(registered.policy, { id: 2, serial: 1 });
      const { tokens } = await cloud.admin<{ tokens: Array<Record<string, unknown>> }>(
        "GET",
        "/registration-tokens",
      );
      assert.ok(tokens.every((t) => !("token" in t) && !("token_hash" in t)));
      await cloud.admin("DELETE", `/registration-tokens/${id}`);
      await assert.rejects(client.register(token, host("db2")), /401/);
      // The connector registered with it keeps working.
      await client.heartbeat(registered.key, beat({ id: 2, serial: 1 }));
    },
  );

  test(
    "commands: a restore travels in heartbeats until its result comes back, for its computer only",
    async (cloud, client) => {
      const a = await client.register(cloud.registrationToken, host("web1"));
      const b = await client.register(cloud.registrationToken, host("web2"));
      const item = {
        id: 4,
        pathText: "/srv/evil.sh",
        sha256: "c".repeat(64),
        size: 10,
        detection: "Amp.Test",
        engine: "clamav",
        time: Date.now(),
      };
      const ref = { id: 1, serial: 1 };
      await assert.rejects(
        cloud.admin("POST", `/computers/${a.computerId}/restore`, {
          quarantineId: 4,
          sha256: item.sha256,
        }),
        /404/,
        "a file the computer never reported",
      );
      await client.heartbeat(a.key, { ...beat(ref), quarantine: [item] });
      const stored = await cloud.admin<{ quarantine: unknown[]; status: Record<string, unknown> }>(
        "GET",
        `/computers/${a.computerId}`,
      );
      assert.deepEqual(stored.quarantine, [item]);
      assert.equal("quarantine" in stored.status, false);
      const command = await cloud.admin<{ id: number; status: string }>(
        "POST",
        `/computers/${a.computerId}/restore`,
        { quarantineId: 4, sha256: item.sha256 },
      );
      assert.equal(command.status, "pending");
      const again = await cloud.admin<{ id: number }>(
        "POST",
        `/computers/${a.computerId}/restore`,
        { quarantineId: 4, sha256: item.sha256 },
      );
      assert.equal(again.id, command.id, "a waiting restore is not queued twice");
      assert.equal((await client.heartbeat(b.key, beat(ref))).commands, undefined);
      const first = await client.heartbeat(a.key, beat(ref));
      assert.deepEqual(first.commands, [
        { id: command.id, type: "restore", quarantineId: 4, sha256: item.sha256 },
      ]);
      // Not reported yet: sent again. Another computer's report is ignored.
      assert.equal((await client.heartbeat(a.key, beat(ref))).commands?.length, 1);
      await client.heartbeat(b.key, {
        ...beat(ref),
        commandResults: [{ id: command.id, ok: false, message: "forged" }],
      });
      const done = await client.heartbeat(a.key, {
        ...beat(ref),
        quarantine: [],
        commandResults: [{ id: command.id, ok: true, message: "Restored to /srv/evil.sh" }],
      });
      assert.equal(done.commands, undefined);
      const { commands } = await cloud.admin<
        { commands: Array<{ status: string; message: string }> }
      >("GET", `/computers/${a.computerId}/commands`);
      assert.deepEqual(commands.map((c) => [c.status, c.message]), [
        ["done", "Restored to /srv/evil.sh"],
      ]);
    },
  );

  test(
    "IP lists: checked when saved, served to connectors with their key (ETag)",
    async (cloud, client) => {
      const { key } = await client.register(cloud.registrationToken, host("web1"));
      await assert.rejects(
        cloud.admin("PUT", "/ip-lists/drop", { content: "198.51.100.0/24\nbogus\n" }),
        /400.*malformed/,
      );
      const saved = await cloud.admin<{ entries: number; etag: string }>(
        "PUT",
        "/ip-lists/drop",
        { content: "198.51.100.0/24\r\n2001:db8:100::/48", description: "test" },
      );
      assert.equal(saved.entries, 2);
      const http = Deno.createHttpClient({ caCerts: [cloud.ca.caPem] });
      try {
        const url = `${cloud.url}/v1/ip-lists/drop`;
        const got = await fetch(url, { client: http, headers: { authorization: `Bearer ${key}` } });
        assert.equal(got.status, 200);
        assert.equal(got.headers.get("etag"), saved.etag);
        assert.equal(await got.text(), "198.51.100.0/24\n2001:db8:100::/48\n");
        const cached = await fetch(url, {
          client: http,
          headers: { authorization: `Bearer ${key}`, "if-none-match": saved.etag },
        });
        assert.equal(cached.status, 304);
        await cached.body?.cancel();
        const anonymous = await fetch(url, { client: http });
        assert.equal(anonymous.status, 401);
        await anonymous.body?.cancel();
        const missing = await fetch(`${cloud.url}/v1/ip-lists/none`, {
          client: http,
          headers: { authorization: `Bearer ${key}` },
        });
        assert.equal(missing.status, 404);
        await missing.body?.cancel();
      } finally {
        http.close();
      }
      await cloud.admin("DELETE", "/ip-lists/drop");
      assert.deepEqual((await cloud.admin<{ lists: unknown[] }>("GET", "/ip-lists")).lists, []);
    },
  );

  test("the dashboard's counts: per day, top detections, since", async (cloud, client) => {
    const { key } = await client.register(cloud.registrationToken, host("web1"));
    const day = 86_400_000;
    const today = Math.floor(Date.now() / day) * day;
    await client.uploadEvents(key, [
      event("d:1", { detection: "Eicar", time: today + 1000 }),
      event("d:2", { detection: "Eicar", time: today - day + 5 }),
      event("d:3", { detection: "Other", time: today + 2000 }),
      event("d:4", { type: "DFC Threat Detected", time: today + 3000 }),
    ]);
    const store = cloud.store();
    assert.deepEqual(
      await store.countEventsByDay(today - day, ["Threat Detected", "DFC Threat Detected"]),
      [
        { day: today - day, type: "Threat Detected", count: 1 },
        { day: today, type: "DFC Threat Detected", count: 1 },
        { day: today, type: "Threat Detected", count: 2 },
      ],
    );
    assert.deepEqual(await store.topDetections(today - day, ["Threat Detected"]), [
      { detection: "Eicar", count: 2, computers: 1 },
      { detection: "Other", count: 1, computers: 1 },
    ]);
    assert.equal(await store.countEventsSince(today, ["DFC Threat Detected"]), 1);
  });
}

Deno.test({
  name: "CloudClient trusts the cloud's certificate only through the configured CA",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cloud = await startTestCloud({ backend: "sqlite" });
    const untrusting = new CloudClient({ url: cloud.url, timeoutMs: 5_000 });
    try {
      await assert.rejects(
        untrusting.register(cloud.registrationToken, host("web1")),
        (e: Error) =>
          e instanceof CloudUnavailableError && /certificate|UnknownIssuer/i.test(e.message),
      );
    } finally {
      untrusting.close();
      await cloud.close();
    }
  },
});

Deno.test({
  name: "CloudClient reports a cloud that is not listening as unavailable",
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const client = new CloudClient({ url: `https://127.0.0.1:${port}`, timeoutMs: 3_000 });
    try {
      await assert.rejects(client.lookup("k".repeat(40), ["a".repeat(64)]), CloudUnavailableError);
    } finally {
      client.close();
    }
  },
});
