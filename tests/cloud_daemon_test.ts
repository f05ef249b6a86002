/**
 * The real `amp daemon` (fanotify, ClamAV, events.db, quarantine) with a real
 * private cloud on loopback HTTPS (a test CA named by amp.json's
 * `cloud.ca`), on SQLite and on PostgreSQL: registration with a waiting
 * token, `amp status` showing the connection, a policy change applied within
 * one heartbeat, a cloud conviction, a retrospective quarantine, and with the
 * cloud stopped, the offline engines still convicting while events queue and
 * all arrive once after restart. Root only (the daemon fixture); outside CI
 * the tests skip with the reason printed.
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { CloudClient } from "../src/cloud/cloud_client.ts";
import type { StoredWireEvent } from "../src/cloud/protocol.ts";
import type { PolicyView } from "../src/cloud/server/cloud_store.ts";
import type { StatusReport } from "../src/daemon/status_report.ts";
import { postgresSkip } from "./fixtures/cloud_postgres.ts";
import { type Backend, startTestCloud, type TestCloud } from "./fixtures/cloud_server.ts";
import { daemonSkip, events, startDaemon, type TestDaemon, waitFor } from "./fixtures/daemon.ts";
import { eicar, EICAR_SIGNATURE, sha256 } from "./fixtures/samples.ts";

const noDaemon = daemonSkip("cloud_daemon_test") !== undefined;
const noPostgres = postgresSkip("cloud_daemon_test") !== undefined;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function status(d: TestDaemon): Promise<StatusReport> {
  const out = await d.amp(["status", "--json"]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout) as StatusReport;
}

/** Starts a daemon whose amp.json names the cloud, with a registration token waiting. */
function startWithCloud(cloud: TestCloud, policy?: { id: number; name: string }) {
  return startDaemon({
    policy,
    config: { cloud: { url: cloud.url, ca: "/etc/amp/cloud_ca.pem" } },
    prepare: async (watched) => {
      const etc = `${dirname(watched)}/etc/amp`;
      await Deno.mkdir(etc, { recursive: true });
      await Deno.writeTextFile(`${etc}/cloud_ca.pem`, cloud.ca.caPem);
      await Deno.writeTextFile(`${etc}/cloud_registration.token`, cloud.registrationToken);
    },
  });
}

async function cloudEvents(cloud: TestCloud, computer: number): Promise<StoredWireEvent[]> {
  const page = await cloud.admin<{ events: StoredWireEvent[] }>(
    "GET",
    `/events?computer=${computer}&limit=1000`,
  );
  return page.events;
}

Deno.test({
  name: "amp daemon without a cloud in amp.json: Status Offline, no cloud files",
  ignore: noDaemon,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const d = await startDaemon();
    try {
      const s = await status(d);
      assert.equal(s.status, "Offline");
      assert.equal(s.cloud?.url, undefined);
      assert.match((await d.amp(["status"])).stdout, /^Status: +Offline$/m);
      assert.equal(await exists(`${d.root}/var/lib/amp/cloud_query.cache`), false);
    } finally {
      await d.stop();
    }
  },
});

for (const backend of ["sqlite", "postgres"] as Backend[]) {
  const ignore = noDaemon || (backend === "postgres" && noPostgres);

  Deno.test({
    name:
      `[${backend}] amp daemon with a private cloud: registration, policy within a heartbeat, ` +
      "cloud conviction, retrospective quarantine",
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const cloud = await startTestCloud({ backend, heartbeatSeconds: 1 });
      const d = await startWithCloud(cloud).catch(async (error) => {
        await cloud.close();
        throw error;
      });
      try {
        const connected = await waitFor("Connected", async () => {
          const s = await status(d);
          return s.status === "Connected" && s.policy.serial === 1 ? s : undefined;
        }, 15_000);
        const computer = connected.cloud!.computerId!;
        assert.equal(connected.policy.name, "Audit Policy for Linux");
        const text = await d.amp(["status"]);
        assert.match(text.stdout, /^Status: +Connected$/m);
        assert.match(
          text.stdout,
          new RegExp(
            `^Cloud: +https://localhost:${cloud.port} \\(computer #${computer}\\), last contact \\d{4}-`,
            "m",
          ),
        );

        // A policy change reaches the connector within one heartbeat.
        await cloud.admin("PUT", `/computers/${computer}/policy`, { policyId: 2 });
        await waitFor(
          "Protect",
          async () => (await status(d)).policy.id === 2 ? true : undefined,
          10_000,
        );
        const protect = await cloud.admin<PolicyView>("GET", "/policies/2");
        const changed = performance.now();
        await cloud.admin("PUT", "/policies/2", {
          ...protect.document,
          scan: { ...protect.document.scan, maxFileSize: "6MB" },
        });
        const updated = await waitFor("serial 2", async () => {
          const s = await status(d);
          return s.policy.serial === 2 ? s : undefined;
        }, 10_000);
        const elapsed = performance.now() - changed;
        assert.ok(elapsed < 2_500, `the policy took ${elapsed.toFixed(0)} ms (heartbeat 1 s)`);
        assert.equal(updated.mode.file, "quarantine");
        assert.ok((await events(d)).some((e) => e.type === "Policy Update"));

        // A hash the cloud calls malicious convicts a file at its lookup.
        const bad = `cloud-only detection ${crypto.randomUUID()}\n`;
        await cloud.admin("PUT", `/dispositions/${sha256(bad)}`, {
          disposition: "malicious",
          name: "Amp.Test.CloudDetection",
        });
        const badPath = `${d.watched}/payload.sh`;
        await Deno.writeTextFile(badPath, bad);
        await waitFor(
          "the cloud conviction",
          async () => (await exists(badPath)) ? undefined : true,
          5_000,
        );
        const convicted = await waitFor(
          "Threat Quarantined",
          async () =>
            (await events(d)).find((e) => e.type === "Threat Quarantined" && e.path === badPath),
        );
        assert.equal(convicted.engine, "cloud");
        assert.equal(convicted.detection, "Amp.Test.CloudDetection");

        // A file seen while unknown, then made malicious: quarantined retrospectively.
        const later = `unknown for now ${crypto.randomUUID()}\n`;
        const laterPath = `${d.watched}/later.bin`;
        await Deno.writeTextFile(laterPath, later);
        const scan = await d.amp(["scan", "--custom", laterPath, "--json"]);
        assert.equal(scan.code, 0, scan.stdout + scan.stderr);
        await new Promise((r) => setTimeout(r, 300));
        assert.ok(await exists(laterPath));
        await cloud.admin("PUT", `/dispositions/${sha256(later)}`, {
          disposition: "malicious",
          name: "Amp.Test.Retrospective",
        });
        await waitFor(
          "the retrospective quarantine",
          async () => (await exists(laterPath)) ? undefined : true,
          5_000,
        );
        const local = await events(d);
        const retro = local.find((e) => e.type === "Retrospective Detection");
        assert.ok(retro, "no Retrospective Detection");
        assert.equal(retro.path, laterPath);
        assert.equal(retro.action, "quarantined");
        assert.equal(retro.sha256, sha256(later));
        const list = JSON.parse((await d.amp(["quarantine", "list", "--json"])).stdout) as {
          records: Array<{ path: string; engine: string }>;
        };
        assert.deepEqual(
          list.records.map((r) => [r.path, r.engine]).sort(),
          [
            [badPath, "cloud"],
            [laterPath, "cloud"],
          ].sort(),
        );

        // Every event reaches the cloud.
        await waitFor("the events in the cloud", async () => {
          const remote = await cloudEvents(cloud, computer);
          return remote.some((e) => e.type === "Retrospective Detection") ? true : undefined;
        }, 5_000);
      } finally {
        await d.stop();
        await cloud.close();
      }
    },
  });

  Deno.test({
    name: `[${backend}] amp daemon with its cloud stopped: offline engines convict, events queue ` +
      "and all arrive once after restart; another connector cannot read them",
    ignore,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const cloud = await startTestCloud({ backend, heartbeatSeconds: 1 });
      const blocked = `simple custom detection ${crypto.randomUUID()}\n`;
      const d = await startDaemon({
        blockList: [sha256(blocked)],
        config: { cloud: { url: cloud.url, ca: "/etc/amp/cloud_ca.pem" } },
        prepare: async (watched) => {
          const etc = `${dirname(watched)}/etc/amp`;
          await Deno.mkdir(etc, { recursive: true });
          await Deno.writeTextFile(`${etc}/cloud_ca.pem`, cloud.ca.caPem);
          await Deno.writeTextFile(`${etc}/cloud_registration.token`, cloud.registrationToken);
        },
      }).catch(async (error) => {
        await cloud.close();
        throw error;
      });
      try {
        const s = await waitFor("Connected", async () => {
          const s = await status(d);
          return s.status === "Connected" ? s : undefined;
        }, 15_000);
        const computer = s.cloud!.computerId!;

        await cloud.stop();
        await waitFor(
          "Disconnected",
          async () => (await status(d)).status === "Disconnected" ? true : undefined,
          15_000,
        );
        const text = await d.amp(["status"]);
        assert.match(text.stdout, /^Status: +Disconnected$/m);
        assert.match(text.stdout, /Cannot reach the cloud/);

        // ClamAV and the lists still convict (audit policy: detections recorded).
        await Deno.writeTextFile(`${d.watched}/eicar.com`, eicar());
        await Deno.writeTextFile(`${d.watched}/blocked.txt`, blocked);
        const detections = await waitFor("both detections", async () => {
          const found = (await events(d)).filter((e) => e.type === "Threat Detected");
          return found.length >= 2 ? found : undefined;
        }, 10_000);
        assert.deepEqual(
          detections.map((e) => [e.engine, e.path]).sort(),
          [["clamav", `${d.watched}/eicar.com`], ["hashlist", `${d.watched}/blocked.txt`]].sort(),
        );
        assert.match(
          String(detections.find((e) => e.engine === "clamav")?.detection),
          new RegExp(EICAR_SIGNATURE),
        );
        const types = (await events(d)).map((e) => e.type);
        assert.ok(types.includes("Cloud Connection Lost"));

        await cloud.start();
        await waitFor(
          "Connected again",
          async () => (await status(d)).status === "Connected" ? true : undefined,
          20_000,
        );
        const all = await waitFor("every event in the cloud", async () => {
          const local = await events(d);
          const remote = await cloudEvents(cloud, computer);
          const restored = local.some((e) => e.type === "Cloud Connection Restored");
          return restored && remote.length === local.length ? { local, remote } : undefined;
        }, 15_000);
        const keys = all.remote.map((e) => e.key);
        assert.equal(new Set(keys).size, keys.length, "an event was stored twice");
        assert.deepEqual(
          new Set(all.remote.map((e) => Number(e.key.split(":")[1]))),
          new Set(all.local.map((e) => e.id as number)),
        );
        assert.ok(all.remote.some((e) => e.type === "Threat Detected" && e.engine === "clamav"));

        // A second connector's key reads its own events only.
        const client = new CloudClient({ url: cloud.url, caCerts: [cloud.ca.caPem] });
        try {
          const other = await client.register(cloud.registrationToken, {
            guid: crypto.randomUUID(),
            hostname: "intruder",
            os: "Linux",
            kernel: "6.1",
            arch: "x86_64",
            version: "0.1.0",
          });
          assert.notEqual(other.computerId, computer);
          assert.deepEqual(await client.events(other.key, 1000), []);
        } finally {
          client.close();
        }
      } finally {
        await d.stop();
        await cloud.close();
      }
    },
  });
}
