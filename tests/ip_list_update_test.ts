/**
 * `amp update` fetching the policy's DFC lists from a loopback HTTP server:
 * conditional requests, a malformed line counted, a download with no
 * address refused, and a running daemon that loads the new list.
 */

import assert from "node:assert/strict";
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
    assert.match(third.ipLists?.[0].detail ?? "", /no address.*keeping the list in place/);
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
        config: { dfc: { netns: NS, trackFlows: true, connectAudit: false } },
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
