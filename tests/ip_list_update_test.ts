/**
 * `amp update` fetching the policy's DFC lists from a loopback HTTP server:
 * conditional requests, a malformed line counted, a download with no
 * address refused, and a running daemon that loads the new list.
 */

import assert from "node:assert/strict";
import { IpListSourceSchema } from "../src/policy/schema.ts";
import { downloadIpLists } from "../src/update/ip_list_download.ts";
import { runUpdate } from "../src/update/run_update.ts";
import { daemonSkip, startDaemon, waitFor } from "./fixtures/daemon.ts";
import { deleteNamespaces, run } from "./fixtures/netns.ts";

interface ListServer {
  url: string;
  /** What /drop.txt answers: a body (with an ETag), or a status. */
  body: string;
  status: number;
  requests: Array<{ ifNoneMatch: string | null }>;
  close(): Promise<void>;
}

function listServer(body: string): ListServer {
  const s: Partial<ListServer> & { requests: ListServer["requests"] } = {
    body,
    status: 200,
    requests: [],
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    s.requests.push({ ifNoneMatch: req.headers.get("if-none-match") });
    if (new URL(req.url).pathname !== "/drop.txt") return new Response("no", { status: 404 });
    if (s.status !== 200) return new Response("server trouble", { status: s.status });
    const etag = `"${s.body!.length}-${
      [...s.body!].reduce((h, c) => h * 31 + c.charCodeAt(0) | 0, 7)
    }"`;
    if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304 });
    return new Response(s.body, { headers: { etag, "content-type": "text/plain" } });
  });
  s.url = `http://127.0.0.1:${server.addr.port}/drop.txt`;
  s.close = () => server.shutdown();
  return s as ListServer;
}

async function hostRoot(url: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "amp-iplist-" });
  await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
  await Deno.writeTextFile(`${root}/etc/amp/amp.json`, JSON.stringify({ log: { syslog: false } }));
  await Deno.writeTextFile(
    `${root}/etc/amp/policy.json`,
    JSON.stringify({
      id: 1,
      name: "Audit Policy for Linux",
      dfc: { lists: [{ name: "drop", url }] },
    }),
  );
  return root;
}

Deno.test("amp update downloads a DFC list, asks again conditionally, and never empties it", async () => {
  const server = listServer("; Spamhaus-style\n198.51.100.0/24 ; SBL1\n2001:db8:100::/48\nbogus\n");
  const root = await hostRoot(server.url);
  const file = `${root}/var/lib/amp/dfc/drop.list`;
  try {
    const first = await runUpdate({ root });
    assert.equal(first.exitCode, 0, JSON.stringify(first));
    assert.deepEqual(first.ipLists?.map((l) => [l.name, l.status, l.entries, l.malformed]), [
      ["drop", "updated", 2, 1],
    ]);
    assert.equal(await Deno.readTextFile(file), server.body);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o644);
    assert.equal(first.daemon, "not running");

    // Same ETag: the server answers 304 and nothing changes.
    const second = await runUpdate({ root });
    assert.equal(second.ipLists?.[0].status, "unchanged");
    assert.notEqual(server.requests.at(-1)?.ifNoneMatch, null, "a conditional request");
    assert.equal(second.daemon, "not needed");

    // An error page or a list with no address keeps the old list, and fails the run.
    server.body = "<html>maintenance</html>\n";
    const third = await runUpdate({ root });
    assert.equal(third.exitCode, 1);
    assert.equal(third.ipLists?.[0].status, "failed");
    assert.match(
      third.ipLists?.[0].detail ?? "",
      /not an address list.*keeping the list in place/,
    );
    assert.match(await Deno.readTextFile(file), /198\.51\.100\.0\/24/);
    server.status = 503;
    const fourth = await runUpdate({ root });
    assert.equal(fourth.ipLists?.[0].status, "failed");
    assert.match(fourth.ipLists?.[0].detail ?? "", /HTTP 503/);
    assert.match(await Deno.readTextFile(file), /198\.51\.100\.0\/24/);

    const log = await Deno.readTextFile(`${root}/var/log/amp/ampupdater.log`);
    assert.match(log, /DFC list drop: updated \(2 entries, 1 malformed\)/);
    assert.match(log, /DFC list drop: failed: HTTP 503/);
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("amp update with a policy it cannot read fails the list step and says why", async () => {
  const root = await hostRoot("http://127.0.0.1:9/none");
  try {
    await Deno.writeTextFile(`${root}/etc/amp/policy.json`, "{ not json");
    const report = await runUpdate({ root });
    assert.equal(report.exitCode, 1);
    assert.match(report.ipListsError ?? "", /policy cannot be read/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a policy cannot make amp update write a DFC list outside /var/lib/amp/dfc", async () => {
  const server = listServer("198.51.100.0/24\n");
  const root = await hostRoot(server.url);
  try {
    // The schema refuses a file beside a url, so such a policy is never in force.
    const refused = IpListSourceSchema.safeParse({
      name: "drop",
      url: server.url,
      file: "/etc/cron.d/amp-owned",
    });
    assert.equal(refused.success, false);
    assert.equal(
      refused.error?.issues[0].message,
      "A list with a url is kept in /var/lib/amp/dfc/drop.list; give a file or a url, not both",
    );
    await Deno.writeTextFile(
      `${root}/etc/amp/policy.json`,
      JSON.stringify({
        id: 1,
        name: "Audit Policy for Linux",
        dfc: { lists: [{ name: "drop", url: server.url, file: "/etc/cron.d/amp-owned" }] },
      }),
    );
    const report = await runUpdate({ root });
    assert.equal(report.exitCode, 1);
    assert.match(report.ipListsError ?? "", /give a file or a url, not both/);
    assert.equal(await Deno.lstat(`${root}/etc/cron.d`).then(() => true, () => false), false);

    // And the download itself writes nowhere else, whatever source it is given.
    const [outside] = await downloadIpLists(
      [{ name: "drop", url: server.url, file: "/etc/cron.d/amp-owned", format: "lines" }],
      { root },
    );
    assert.equal(outside.status, "failed");
    assert.match(outside.detail ?? "", /refusing to write .*\/etc\/cron\.d\/amp-owned/);
    assert.equal(await Deno.lstat(`${root}/etc/cron.d`).then(() => true, () => false), false);
    const [climbing] = await downloadIpLists(
      [{ name: "drop", url: server.url, file: "/var/lib/amp/dfc/../x.list", format: "lines" }],
      { root },
    );
    assert.equal(climbing.status, "failed");
    assert.equal(
      await Deno.lstat(`${root}/var/lib/amp/x.list`).then(() => true, () => false),
      false,
    );
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("amp update writes a DFC list through no link left in /var/lib/amp/dfc", async () => {
  const server = listServer("198.51.100.0/24\n");
  const root = await hostRoot(server.url);
  const dir = `${root}/var/lib/amp/dfc`;
  const victim = `${root}/etc/victim`;
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(victim, "untouched\n");
    // Links where the list and its temporary file go: the list replaces them, never writes through.
    await Deno.symlink(victim, `${dir}/drop.list`);
    await Deno.symlink(victim, `${dir}/drop.list.tmp-${Deno.pid}`);
    await Deno.symlink(victim, `${dir}/drop.list.meta.json.tmp-${Deno.pid}`);
    const source = IpListSourceSchema.parse({ name: "drop", url: server.url });
    const [download] = await downloadIpLists([source], { root });
    assert.equal(download.status, "updated", download.detail);
    assert.equal(await Deno.readTextFile(victim), "untouched\n");
    assert.equal((await Deno.lstat(`${dir}/drop.list`)).isFile, true);
    assert.equal(await Deno.readTextFile(`${dir}/drop.list`), server.body);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
      "drop.list",
      "drop.list.meta.json",
    ]);
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a list download is refused when it is too large however it is sent, or mostly not addresses", async () => {
  const root = await Deno.makeTempDir({ prefix: "amp-iplist-" });
  // A chunked answer (no Content-Length) of 100 lines of 16 bytes, and an error page with an address.
  const line = "198.51.100.1/32\n";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname === "/page") {
      return new Response("<html>\n<p>blocked, you are</p>\n198.51.100.7\n</html>\n");
    }
    let n = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (n++ === 100) c.close();
          else c.enqueue(new TextEncoder().encode(line));
        },
      }),
    );
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const big = IpListSourceSchema.parse({ name: "big", url: `${base}/big` });
    const [tooLarge] = await downloadIpLists([big], { root, maxBytes: 1000 });
    assert.equal(tooLarge.status, "failed");
    assert.match(tooLarge.detail ?? "", /too large \(more than 1000 bytes\)/);
    const [fits] = await downloadIpLists([big], { root, maxBytes: 2000 });
    assert.equal(fits.status, "updated", fits.detail);
    assert.equal(fits.entries, 100);
    const page = IpListSourceSchema.parse({ name: "page", url: `${base}/page` });
    const [refused] = await downloadIpLists([page], { root });
    assert.equal(refused.status, "failed");
    assert.match(refused.detail ?? "", /not an address list \(1 addresses, 3 malformed/);
  } finally {
    await server.shutdown();
    await Deno.remove(root, { recursive: true });
  }
});

const NS = `ampiplist${Deno.pid}`;

Deno.test({
  name: "amp update reloads a running daemon, which then matches the downloaded list",
  ignore: daemonSkip("ip_list_update_test") !== undefined,
  async fn() {
    const server = listServer("198.51.100.0/25\n");
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      // DFC watches a namespace of the test's own, where nothing happens.
      await run("ip", "netns", "add", NS);
      d = await startDaemon({
        config: { dfc: { netns: NS, trackFlows: true, connectAudit: "off" } },
        policy: {
          id: 1,
          name: "Audit Policy for Linux",
          dfc: { lists: [{ name: "drop", url: server.url }] },
        },
      });
      const status = async () => JSON.parse((await d!.amp(["status", "--json"])).stdout);
      const before = await waitFor("DFC started", async () => {
        const s = await status();
        return s.dfc?.lists?.length === 1 ? s : undefined;
      }, 10_000);
      assert.equal(before.dfc.lists[0].entries, 0);
      assert.match(before.dfc.lists[0].error ?? "", /not downloaded yet.*amp update/);

      const report = await runUpdate({ root: d.root });
      assert.equal(report.ipLists?.[0].status, "updated");
      assert.equal(report.daemon, "reloaded", JSON.stringify(report));
      const after = await waitFor("list loaded", async () => {
        const s = await status();
        return s.dfc?.on && s.dfc.lists[0]?.entries === 1 ? s : undefined;
      }, 10_000);
      assert.equal(after.dfc.lists[0].error, undefined);
      const check = await d.amp(["dfc", "check", "198.51.100.9"]);
      assert.match(check.stdout, /drop/, check.stdout + check.stderr);
    } finally {
      await d?.stop();
      await server.close();
      await deleteNamespaces(NS);
    }
  },
});
