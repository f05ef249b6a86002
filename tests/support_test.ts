/**
 * `amp support`: a bundle from a temporary root with planted secrets, logs,
 * events, and (as root) a real daemon.
 */

import assert from "node:assert/strict";
import { Command } from "commander";
import { makeSupportCommand } from "../src/cli/support_command.ts";
import { EventsDb } from "../src/store/events_db.ts";
import { writeSupportBundle } from "../src/support/support_bundle.ts";
import { daemonSkip, startDaemon } from "./fixtures/daemon.ts";

async function plantedRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "amp-support-" });
  await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
  await Deno.mkdir(`${root}/var/log/amp`, { recursive: true });
  await Deno.mkdir(`${root}/var/lib/amp`, { recursive: true });
  await Deno.mkdir(`${root}/sigs`);
  await Deno.writeTextFile(`${root}/sigs/test.ndb`, "Amp.Test:0:*:414243\n");
  await Deno.writeTextFile(
    `${root}/etc/amp/amp.json`,
    JSON.stringify({
      clamav: { dbDir: `${root}/sigs` },
      cloud: {
        url: "https://connector:cloud-pass-1@cloud.example/",
        proxy: "http://p:proxy-pass-2@proxy:3128",
      },
      update: { mirror: "https://mirror-user:mirror-pass-3@mirror.example/clamav" },
    }),
  );
  await Deno.writeTextFile(
    `${root}/etc/amp/policy.json`,
    JSON.stringify({
      id: 7,
      name: "Servers",
      cloud: { apiToken: "tok-secret-4", api_key: "key-secret-5", password: "pw-secret-6" },
    }),
  );
  const lines = Array.from({ length: 1500 }, (_, i) => `line ${i + 1}`);
  lines[1499] = "line 1500 fetched https://mirror-user:mirror-pass-3@mirror.example/daily.cvd";
  await Deno.writeTextFile(`${root}/var/log/amp/ampdaemon.log`, lines.join("\n") + "\n");
  await Deno.writeTextFile(`${root}/var/log/amp/ampupdater.log`, "short log\n");
  const events = await EventsDb.open(`${root}/var/lib/amp/events.db`, { host: "h1" });
  await events.record({ type: "Connector Started", time: 1_000 });
  await events.record({ type: "Definitions Updated", time: 2_000, details: { signatures: 3 } });
  await events.close();
  return root;
}

async function readTree(dir: string): Promise<string> {
  let all = "";
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    all += e.isDirectory ? await readTree(p) : await Deno.readTextFile(p);
  }
  return all;
}

Deno.test("writeSupportBundle() redacts secrets, tails logs, reports no daemon, keeps events", async () => {
  const root = await plantedRoot();
  const out = `${root}/out`;
  try {
    const bundle = await writeSupportBundle({
      outDir: out,
      root,
      host: "web 1",
      now: new Date("2026-11-26T14:05:06.789Z"),
    });
    assert.equal(bundle.dir, `${out}/amp-support-web_1-20261126T140506Z`);
    assert.equal(bundle.archive, `${bundle.dir}.tar.gz`);
    assert.equal((await Deno.stat(bundle.archive)).mode! & 0o777, 0o600, "archive is root only");
    assert.deepEqual(bundle.sections.filter((s) => s.error), []);

    const all = await readTree(bundle.dir);
    for (
      const secret of [
        "cloud-pass-1",
        "proxy-pass-2",
        "mirror-pass-3",
        "tok-secret-4",
        "key-secret-5",
        "pw-secret-6",
        "connector:",
        "mirror-user",
      ]
    ) {
      assert.ok(!all.includes(secret), `${secret} leaked into the bundle`);
    }
    const ampJson = JSON.parse(await Deno.readTextFile(`${bundle.dir}/amp.json`));
    assert.equal(ampJson.cloud.url, "https://REDACTED@cloud.example/");
    assert.equal(ampJson.update.mirror, "https://REDACTED@mirror.example/clamav");
    assert.equal(ampJson.clamav.dbDir, `${root}/sigs`);
    const policy = JSON.parse(await Deno.readTextFile(`${bundle.dir}/policy.json`));
    assert.deepEqual(policy, {
      id: 7,
      name: "Servers",
      cloud: { apiToken: "REDACTED", api_key: "REDACTED", password: "REDACTED" },
    });

    const log = (await Deno.readTextFile(`${bundle.dir}/logs/ampdaemon.log`)).split("\n");
    assert.equal(log.length, 1001); // 1000 lines and the final newline
    assert.equal(log[0], "line 501");
    assert.equal(log[999], "line 1500 fetched https://REDACTED@mirror.example/daily.cvd");
    assert.equal(await Deno.readTextFile(`${bundle.dir}/logs/ampupdater.log`), "short log\n");

    const status = JSON.parse(await Deno.readTextFile(`${bundle.dir}/status.json`));
    assert.equal(status.connected, false);
    assert.equal(status.daemon, "not running");

    const events = (await Deno.readTextFile(`${bundle.dir}/events.jsonl`)).trim().split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => e.type), ["Connector Started", "Definitions Updated"]);

    assert.match(await Deno.readTextFile(`${bundle.dir}/signatures.txt`), /file +20 .* test\.ndb/);
    assert.match(await Deno.readTextFile(`${bundle.dir}/quarantine.txt`), /total: 0/);
    assert.match(await Deno.readTextFile(`${bundle.dir}/kernel.txt`), /\/dev\/ampavflt: absent/);
    const init = await Deno.readTextFile(`${bundle.dir}/init.txt`);
    assert.match(init, /\/etc\/cron\.hourly\/amp-updater: absent/);
    const versions = await Deno.readTextFile(`${bundle.dir}/versions.txt`);
    assert.match(versions, /^amp: \d+\.\d+\.\d+$/m);
    assert.match(versions, /^libclamav: /m);

    const readme = await Deno.readTextFile(`${bundle.dir}/README.txt`);
    for (const s of bundle.sections) assert.ok(readme.includes(s.file), s.file);

    const tar = await new Deno.Command("tar", { args: ["tzf", bundle.archive!], stdout: "piped" })
      .output();
    const listed = new TextDecoder().decode(tar.stdout);
    assert.match(listed, /amp-support-web_1-20261126T140506Z\/README\.txt/);
    assert.match(listed, /logs\/ampdaemon\.log/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeSupportBundle() writes the other sections when one cannot be collected", async () => {
  const root = await plantedRoot();
  try {
    await Deno.remove(`${root}/var/log/amp`, { recursive: true });
    await Deno.writeTextFile(`${root}/var/log/amp`, "not a directory\n");
    const bundle = await writeSupportBundle({ outDir: `${root}/out`, root, archive: false });
    const logs = bundle.sections.find((s) => s.file === "logs/");
    assert.match(logs?.error ?? "", /Not a directory|NotADirectory/i);
    assert.match(await Deno.readTextFile(`${bundle.dir}/logs/ERROR.txt`), /^ERROR: /);
    assert.match(await Deno.readTextFile(`${bundle.dir}/README.txt`), /logs\/ .*\[FAILED: /);
    assert.equal(bundle.sections.filter((s) => s.error).length, 1);
    assert.ok(await Deno.stat(`${bundle.dir}/amp.json`));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("amp support -o DIR exits 0 and prints the bundle; --help teaches", async () => {
  const root = await plantedRoot();
  try {
    const out: string[] = [];
    let code = -1;
    const cmd = makeSupportCommand({
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(t),
      exit: (c) => (code = c),
    });
    await cmd.parseAsync(["-o", `${root}/out`, "--root", root], { from: "user" });
    assert.equal(code, 0);
    const bundleLine = out.find((l) => l.startsWith("Bundle: "));
    assert.ok(bundleLine, out.join("\n"));
    assert.ok(await Deno.stat(`${bundleLine.slice(8)}/README.txt`));
    assert.ok(out.some((l) => /^Archive: .*\.tar\.gz$/.test(l)));

    let help = "";
    const helpCmd = makeSupportCommand().exitOverride().configureOutput({
      writeOut: (s) => (help += s),
    });
    assert.throws(() => (helpCmd as Command).parse(["--help"], { from: "user" }));
    assert.match(help, /-o, --output <dir>/);
    assert.match(help, /REDACTED/);
    assert.match(help, /Exit status: 0/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "writeSupportBundle() holds the running daemon's status",
  ignore: daemonSkip("support daemon test") !== undefined,
  async fn() {
    const d = await startDaemon();
    try {
      const bundle = await writeSupportBundle({
        outDir: `${d.root}/out`,
        root: d.root,
        archive: false,
      });
      const status = JSON.parse(await Deno.readTextFile(`${bundle.dir}/status.json`));
      assert.equal(status.connected, true);
      assert.equal(status.policy.name, "Audit Policy for Linux");
      assert.ok(status.engines.clamav.signatures > 0);
      const events = await Deno.readTextFile(`${bundle.dir}/events.jsonl`);
      assert.match(events, /"type":"Connector Started"/);
    } finally {
      await d.stop();
    }
  },
});
