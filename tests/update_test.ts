/**
 * `amp update` end to end: real containers built with sigtool, served by a
 * loopback HTTP mirror, installed into a temporary signature directory, and
 * a real daemon reloaded.
 */

import assert from "node:assert/strict";
import { Command } from "commander";
import { makeUpdateCommand } from "../src/cli/update_command.ts";
import { findExecutable } from "../src/update/freshclam.ts";
import { runUpdate, type UpdateOptions } from "../src/update/run_update.ts";
import { MIRROR_MANIFEST } from "../src/update/signature_download.ts";
import { daemonSkip, events, startDaemon } from "./fixtures/daemon.ts";
import { buildContainer, startMirror, type TestMirror } from "./fixtures/update_mirror.ts";
import { IpcServer } from "../src/ipc/ipc_server.ts";
import { CloudClient } from "../src/cloud/cloud_client.ts";
import { registerConnector, saveIdentity } from "../src/cloud/connector_identity.ts";
import { startTestCloud } from "./fixtures/cloud_server.ts";

const HOLDER = new URL("./fixtures/update_lock_holder.ts", import.meta.url).pathname;

interface Host {
  root: string;
  sigs: string;
  mirror: TestMirror;
  update: (options?: UpdateOptions) => ReturnType<typeof runUpdate>;
  close: () => Promise<void>;
}

/** A temporary root whose amp.json points at a fresh loopback mirror. */
async function host(
  update: Record<string, unknown> = { method: "download" },
  withMirror = true,
): Promise<Host> {
  const root = await Deno.makeTempDir({ prefix: "amp-update-" });
  const sigs = `${root}/sigs`;
  const mirrorDir = `${root}/mirror`;
  await Deno.mkdir(mirrorDir);
  await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
  const mirror = await startMirror(mirrorDir);
  const config = {
    clamav: { dbDir: sigs },
    update: withMirror ? { mirror: mirror.url, ...update } : update,
  };
  await Deno.writeTextFile(`${root}/etc/amp/amp.json`, JSON.stringify(config));
  return {
    root,
    sigs,
    mirror,
    update: (options) => runUpdate({ root, ...options }),
    close: async () => {
      await mirror.close();
      await Deno.remove(root, { recursive: true });
    },
  };
}

async function serve(h: Host, name: string, bytes: Uint8Array, manifest = true): Promise<void> {
  await Deno.writeFile(`${h.mirror.dir}/${name}`, bytes);
  if (manifest) await Deno.writeTextFile(`${h.mirror.dir}/${MIRROR_MANIFEST}`, `# test\n${name}\n`);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("runUpdate() without update.mirror downloads nothing and says so", async () => {
  const h = await host({}, false);
  try {
    const report = await h.update();
    assert.equal(report.exitCode, 0);
    assert.equal(report.signatures?.method, "none");
    assert.equal(
      report.signatures?.message,
      "no update.mirror configured in amp.json: signatures not updated",
    );
    assert.equal(report.policy?.message, "no cloud configured");
    assert.deepEqual(h.mirror.requests, []);
    const log = await Deno.readTextFile(`${h.root}/var/log/amp/ampupdater.log`);
    assert.match(log, /no update\.mirror configured/);
    assert.match(log, /Update finished: ok/);
  } finally {
    await h.close();
  }
});

Deno.test("runUpdate() installs, keeps, replaces a newer version and rejects a bad MD5", async () => {
  const h = await host();
  try {
    const v1 = await buildContainer({ name: "daily.cud", version: 1, samples: ["one"] });
    await serve(h, "daily.cud", v1);

    const first = await h.update();
    assert.equal(first.exitCode, 0, JSON.stringify(first));
    assert.equal(first.signatures?.method, "download");
    assert.equal(first.signatures?.changed, true);
    assert.deepEqual(first.signatures?.files, [
      {
        name: "daily.cud",
        status: "installed",
        version: 1,
        signatures: 1,
        previousVersion: undefined,
      },
    ]);
    assert.deepEqual(await Deno.readFile(`${h.sigs}/daily.cud`), v1);
    assert.equal(first.daemon, "not running");
    assert.deepEqual(h.mirror.requests, [`/clamav/${MIRROR_MANIFEST}`, "/clamav/daily.cud"]);

    // Same version again: nothing replaced, no reload asked.
    const mtime = (await Deno.stat(`${h.sigs}/daily.cud`)).mtime;
    const second = await h.update();
    assert.equal(second.exitCode, 0);
    assert.equal(second.signatures?.changed, false);
    assert.equal(second.signatures?.files[0].status, "up-to-date");
    assert.equal(second.daemon, "not needed");
    assert.deepEqual((await Deno.stat(`${h.sigs}/daily.cud`)).mtime, mtime);

    // A newer version replaces it.
    const v2 = await buildContainer({ name: "daily.cud", version: 2, samples: ["one", "two"] });
    await serve(h, "daily.cud", v2);
    const third = await h.update();
    assert.equal(third.exitCode, 0);
    assert.equal(third.signatures?.changed, true);
    assert.deepEqual(third.signatures?.files[0], {
      name: "daily.cud",
      status: "updated",
      version: 2,
      previousVersion: 1,
      signatures: 2,
    });
    assert.deepEqual(await Deno.readFile(`${h.sigs}/daily.cud`), v2);

    // Version 3 with one body byte changed: refused, version 2 kept.
    const v3 = await buildContainer({ name: "daily.cud", version: 3, samples: ["three"] });
    v3[v3.length - 20] ^= 0xff;
    await serve(h, "daily.cud", v3);
    const fourth = await h.update();
    assert.equal(fourth.exitCode, 1);
    assert.equal(fourth.signatures?.changed, false);
    assert.equal(fourth.signatures?.files[0].status, "rejected");
    assert.match(fourth.signatures?.files[0].detail ?? "", /MD5 mismatch/);
    assert.match(fourth.signatures?.error ?? "", /keeping version 2/);
    assert.deepEqual(await Deno.readFile(`${h.sigs}/daily.cud`), v2);
    const leftovers = [...Deno.readDirSync(h.sigs)].map((e) => e.name);
    assert.deepEqual(leftovers, ["daily.cud"]);

    // An older version on the mirror never replaces a newer local one.
    await serve(h, "daily.cud", v1);
    const fifth = await h.update();
    assert.equal(fifth.exitCode, 0);
    assert.equal(fifth.signatures?.files[0].status, "up-to-date");
    assert.deepEqual(await Deno.readFile(`${h.sigs}/daily.cud`), v2);
  } finally {
    await h.close();
  }
});

Deno.test("runUpdate() tries the standard names and refuses an unsigned .cvd libclamav cannot load", async () => {
  const h = await host();
  try {
    // sigtool without ClamAV's key writes digital signature "X": header and MD5 are fine.
    const cvd = await buildContainer({ name: "daily.cvd", version: 9, samples: ["x"] });
    await serve(h, "daily.cvd", cvd, false);
    const report = await h.update();
    assert.equal(report.exitCode, 1);
    const byName = Object.fromEntries(report.signatures!.files.map((f) => [f.name, f]));
    assert.equal(byName["main.cvd"].status, "missing");
    assert.equal(byName["bytecode.cvd"].status, "missing");
    assert.equal(byName["daily.cvd"].status, "rejected");
    assert.match(byName["daily.cvd"].detail ?? "", /libclamav cannot load it/);
    assert.equal(await exists(`${h.sigs}/daily.cvd`), false);
    assert.deepEqual([...Deno.readDirSync(h.sigs)], []);
    assert.deepEqual(h.mirror.requests, [
      `/clamav/${MIRROR_MANIFEST}`,
      "/clamav/main.cvd",
      "/clamav/daily.cvd",
      "/clamav/bytecode.cvd",
    ]);
  } finally {
    await h.close();
  }
});

Deno.test("runUpdate() refuses to run beside another update and says who holds the lock", async () => {
  const h = await host();
  const lockPath = `${h.root}/var/lib/amp/update.lock`;
  const holder = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", HOLDER, lockPath],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await reader.read();
    assert.match(value ?? "", /^locked (\d+)/);
    const pid = Number(/^locked (\d+)/.exec(value!)![1]);

    const busy = await h.update();
    assert.equal(busy.status, "busy");
    assert.equal(busy.exitCode, 0);
    assert.equal(busy.pid, pid);
    assert.equal(busy.message, `another update is running (pid ${pid})`);
    assert.deepEqual(h.mirror.requests, []);

    // Through the command: one line, exit 0 (cron must not report it as a failure).
    const out: string[] = [];
    let code = -1;
    const cmd = makeUpdateCommand({
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(t),
      exit: (c) => (code = c),
    });
    await cmd.parseAsync(["--root", h.root], { from: "user" });
    assert.equal(code, 0);
    assert.deepEqual(out, [`amp update: another update is running (pid ${pid}); nothing done`]);

    await holder.stdin.close();
    await reader.cancel();
    assert.equal((await holder.status).code, 0);
    const after = await h.update();
    assert.equal(after.status, "done");
    const log = await Deno.readTextFile(`${h.root}/var/log/amp/ampupdater.log`);
    assert.match(log, new RegExp(`Not updating: another update is running \\(pid ${pid}\\)`));
  } finally {
    try {
      holder.kill();
    } catch {
      // exited
    }
    await holder.status;
    await h.close();
  }
});

Deno.test("amp update --json prints one object and exits 2 on a bad amp.json", async () => {
  const h = await host();
  try {
    await serve(
      h,
      "daily.cud",
      await buildContainer({ name: "daily.cud", version: 4, samples: ["a"] }),
    );
    const run = async (args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      let code = -1;
      const cmd = makeUpdateCommand({
        stdout: (t) => out.push(t),
        stderr: (t) => err.push(t),
        exit: (c) => (code = c),
      });
      await cmd.parseAsync(args, { from: "user" });
      return { code, out: out.join("\n"), err: err.join("\n") };
    };
    const json = await run(["--root", h.root, "--json"]);
    assert.equal(json.code, 0);
    const report = JSON.parse(json.out);
    assert.equal(report.signatures.method, "download");
    assert.equal(report.signatures.changed, true);
    assert.equal(report.signatures.files[0].name, "daily.cud");
    assert.equal(report.daemon, "not running");
    assert.equal(report.policy.status, "no-cloud");
    assert.equal(typeof report.durationMs, "number");

    const text = await run(["--root", h.root]);
    assert.equal(text.code, 0);
    assert.match(text.out, /^Policy: +no cloud configured$/m);
    assert.match(text.out, /daily\.cud: up to date \(version 4\)/);
    assert.match(text.out, /^Daemon: +not needed$/m);

    await Deno.writeTextFile(
      `${h.root}/etc/amp/amp.json`,
      '{"update": {"method": "carrier-pigeon"}}',
    );
    const bad = await run(["--root", h.root]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /update\.method/);
  } finally {
    await h.close();
  }
});

Deno.test("amp update --help explains the mirror, the methods and the exit status", () => {
  let help = "";
  const cmd = makeUpdateCommand().exitOverride().configureOutput({ writeOut: (s) => (help += s) });
  assert.throws(() => (cmd as Command).parse(["--help"], { from: "user" }));
  assert.match(help, /update\.mirror/);
  assert.match(help, /freshclam/);
  assert.match(help, /Exit status: 0/);
});

Deno.test("runUpdate() reports a cloud it cannot reach yet, and picks download when freshclam is absent", async () => {
  const h = await host({ method: "auto" });
  try {
    const config = JSON.parse(await Deno.readTextFile(`${h.root}/etc/amp/amp.json`));
    config.cloud = { url: "https://cloud.example" };
    await Deno.writeTextFile(`${h.root}/etc/amp/amp.json`, JSON.stringify(config));
    await serve(
      h,
      "daily.cud",
      await buildContainer({ name: "daily.cud", version: 1, samples: ["a"] }),
    );
    const report = await h.update({ searchPath: "/nonexistent" });
    assert.equal(report.policy?.status, "not-registered");
    assert.match(report.policy?.message ?? "", /not registered with https:\/\/cloud\.example/);
    assert.equal(report.signatures?.method, "download");
    assert.equal(report.exitCode, 0);

    config.update.method = "freshclam";
    await Deno.writeTextFile(`${h.root}/etc/amp/amp.json`, JSON.stringify(config));
    const missing = await h.update({ searchPath: "/nonexistent" });
    assert.equal(missing.exitCode, 1);
    assert.match(missing.signatures?.error ?? "", /freshclam is not installed/);
  } finally {
    await h.close();
  }
});

Deno.test("runUpdate() with freshclam: it asks only the mirror and its refusal of unsigned files is reported", async () => {
  const freshclam = await findExecutable("freshclam");
  if (!freshclam) {
    console.log("freshclam test: skipping: freshclam is not installed");
    return;
  }
  const h = await host({ method: "freshclam" });
  try {
    for (const name of ["main.cvd", "daily.cvd"]) {
      await serve(h, name, await buildContainer({ name, version: 2, samples: [name] }), false);
    }
    const report = await h.update({ freshclamMaxAttempts: 1 });
    assert.equal(report.signatures?.method, "freshclam");
    assert.equal(report.exitCode, 1);
    assert.equal(report.signatures?.changed, false);
    assert.match(report.signatures?.error ?? "", /^freshclam exited \d+ \(.+\)/);
    assert.match(report.signatures?.error ?? "", /verify|Invalid|corrupted/i);
    // freshclam went to our mirror (PrivateMirror), first for a .cld, then the .cvd.
    assert.ok(h.mirror.requests.includes("/clamav/daily.cld"), h.mirror.requests.join(" "));
    assert.ok(h.mirror.requests.includes("/clamav/daily.cvd"));
    const names = [...Deno.readDirSync(h.sigs)].map((e) => e.name).filter((n) =>
      /\.c[lvu]d$/.test(n)
    );
    assert.deepEqual(names, []);
    const log = await Deno.readTextFile(`${h.root}/var/log/amp/ampupdater.log`);
    assert.match(log, /freshclam: /);
  } finally {
    await h.close();
  }
});

Deno.test({
  name:
    "runUpdate() has a running daemon reload: Definitions Updated, more signatures, new detections",
  ignore: daemonSkip("update daemon test") !== undefined,
  async fn() {
    const mirrorDir = await Deno.makeTempDir({ prefix: "amp-mirror-" });
    const mirror = await startMirror(mirrorDir);
    const sample = "amp update: a file only the downloaded signatures know\n";
    await Deno.writeFile(
      `${mirrorDir}/daily.cud`,
      await buildContainer({ name: "daily.cud", version: 1, samples: [sample, "other"] }),
    );
    await Deno.writeTextFile(`${mirrorDir}/${MIRROR_MANIFEST}`, "daily.cud\n");
    const d = await startDaemon({ config: { update: { mirror: mirror.url, method: "download" } } });
    try {
      const status = async () => JSON.parse((await d.amp(["status", "--json"])).stdout);
      const before = (await status()).engines.clamav.signatures as number;
      const report = await runUpdate({ root: d.root });
      assert.equal(report.exitCode, 0, JSON.stringify(report));
      assert.equal(report.signatures?.changed, true);
      assert.equal(report.daemon, "reloaded");
      assert.equal(report.daemonSignatures, before + 2);
      assert.equal((await status()).engines.clamav.signatures, before + 2);
      const updated = (await events(d)).filter((e) => e.type === "Definitions Updated");
      assert.equal(updated.length, 1);

      await Deno.writeTextFile(`${d.root}/sample.txt`, sample);
      const scan = await d.amp(["scan", "--custom", `${d.root}/sample.txt`]);
      assert.equal(scan.code, 1, scan.stdout + scan.stderr);
      assert.match(scan.stdout, /Amp\.Update\.daily\.0/);

      // Nothing new: no reload, no second event.
      const again = await runUpdate({ root: d.root });
      assert.equal(again.daemon, "not needed");
      assert.equal((await events(d)).filter((e) => e.type === "Definitions Updated").length, 1);
    } finally {
      await d.stop();
      await mirror.close();
      await Deno.remove(mirrorDir, { recursive: true });
    }
  },
});

Deno.test("runUpdate() owes a failed daemon reload to the next run, even when nothing changed", async () => {
  const h = await host();
  // A daemon (our real IPC server) that refuses to reload.
  let reloads = 0;
  let refuse = true;
  const server = await IpcServer.listen({
    path: `${h.root}/run/amp/ampd.sock`,
    handlers: {
      reload: () => {
        reloads++;
        if (refuse) {
          return Promise.reject(Object.assign(new Error("engine busy"), { code: "busy" }));
        }
        return Promise.resolve({ engines: { clamav: { signatures: 1 } } });
      },
    },
  });
  try {
    await serve(
      h,
      "daily.cud",
      await buildContainer({ name: "daily.cud", version: 1, samples: ["a"] }),
    );
    const first = await h.update();
    assert.equal(first.daemon, "failed");
    assert.equal(first.exitCode, 1);
    assert.ok(await exists(`${h.root}/var/lib/amp/update.reload-pending`));

    refuse = false;
    const second = await h.update();
    assert.equal(second.signatures?.changed, false);
    assert.equal(second.daemon, "reloaded", "the owed reload is retried");
    assert.equal(second.exitCode, 0);
    assert.equal(reloads, 2);
    assert.ok(!(await exists(`${h.root}/var/lib/amp/update.reload-pending`)));

    const third = await h.update();
    assert.equal(third.daemon, "not needed");
    assert.equal(reloads, 2);
  } finally {
    await server.close();
    await h.close();
  }
});

Deno.test("runUpdate() never sends the key of another cloud's registration", async () => {
  const root = await Deno.makeTempDir({ prefix: "amp-update-other-cloud-" });
  const seen: Array<string | null> = [];
  const cloud = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    seen.push(request.headers.get("authorization"));
    return new Response("{}", { status: 500 });
  });
  try {
    const url = `http://127.0.0.1:${cloud.addr.port}`;
    await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
    await Deno.writeTextFile(`${root}/etc/amp/amp.json`, JSON.stringify({ cloud: { url } }));
    await saveIdentity(root, {
      url: "https://other.example.org",
      guid: crypto.randomUUID(),
      computerId: 7,
      key: `ampkey_of_the_other_cloud_${"0".repeat(20)}`,
      registeredAt: Date.now(),
      heartbeatSeconds: 60,
    });
    const report = await runUpdate({ root });
    assert.equal(report.policy?.status, "not-registered");
    assert.equal(
      report.policy?.message,
      `registered with another cloud (https://other.example.org), not ${url}: ` +
        "amp cloud register --token TOKEN",
    );
    assert.deepEqual(seen, [], "the cloud was asked with the other cloud's key");
  } finally {
    await cloud.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runUpdate() takes the policy the cloud assigns, once per change, and keeps it when the cloud is away", async () => {
  const cloud = await startTestCloud({ backend: "sqlite" });
  const root = await Deno.makeTempDir({ prefix: "amp-update-cloud-" });
  try {
    await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
    await Deno.copyFile(cloud.ca.caFile, `${root}/etc/amp/cloud-ca.pem`);
    await Deno.writeTextFile(
      `${root}/etc/amp/amp.json`,
      JSON.stringify({ cloud: { url: cloud.url, ca: "/etc/amp/cloud-ca.pem" } }),
    );
    const client = new CloudClient({ url: cloud.url, caCerts: [cloud.ca.caPem] });
    let identity;
    try {
      identity = await registerConnector(client, cloud.registrationToken, { root, url: cloud.url });
    } finally {
      client.close();
    }
    await cloud.admin("PUT", `/computers/${identity.computerId}/policy`, { policyId: 2 });

    const first = await runUpdate({ root });
    assert.equal(first.policy?.status, "updated", JSON.stringify(first.policy));
    assert.equal(first.policy?.policy?.id, 2);
    const written = JSON.parse(await Deno.readTextFile(`${root}/etc/amp/policy.json`));
    assert.equal(written.id, 2);
    assert.equal(written.mode.file, "quarantine");
    assert.equal(first.exitCode, 0);

    const again = await runUpdate({ root });
    assert.equal(again.policy?.status, "up-to-date");
    assert.equal(again.daemon, "not needed");

    const protect = await cloud.admin<{ document: Record<string, unknown> }>("GET", "/policies/2");
    await cloud.admin("PUT", "/policies/2", { ...protect.document, description: "edited" });
    const edited = await runUpdate({ root });
    assert.equal(edited.policy?.status, "updated");
    assert.match(edited.policy?.message ?? "", /serial 2 .*was #2 serial 1/);
    assert.equal(JSON.parse(await Deno.readTextFile(`${root}/etc/amp/policy.json`)).serial, 2);

    await cloud.stop();
    const away = await runUpdate({ root });
    assert.equal(away.policy?.status, "unavailable");
    assert.equal(away.exitCode, 0, "an unreachable cloud is not a failed update");
    assert.equal(JSON.parse(await Deno.readTextFile(`${root}/etc/amp/policy.json`)).serial, 2);
  } finally {
    await cloud.close();
    await Deno.remove(root, { recursive: true });
  }
});
