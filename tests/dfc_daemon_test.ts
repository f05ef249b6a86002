/**
 * DFC end to end: a real daemon watches the flows of a network namespace the
 * test creates (A: 198.51.100.1, 2001:db8:100::1; B: .2 listed, .3 not
 * listed, ::2 listed), with a listener in B. Short-lived bash clients in A
 * connect through /dev/tcp. Root only.
 */

import assert from "node:assert/strict";
import { daemonSkip, events, startDaemon, waitFor } from "./fixtures/daemon.ts";
import { deleteNamespaces, run, vethPair } from "./fixtures/netns.ts";

const ignore = daemonSkip("dfc_daemon_test") !== undefined;
const DENO = Deno.execPath();
const NS_A = `ampdfcA${Deno.pid}`;
const NS_B = `ampdfcB${Deno.pid}`;
const PORT = 18443;

async function setUp(): Promise<Deno.ChildProcess> {
  await vethPair({
    a: NS_A,
    b: NS_B,
    devA: "vda",
    devB: "vdb",
    addressesA: ["198.51.100.1/24", "2001:db8:100::1/64"],
    addressesB: ["198.51.100.2/24", "198.51.100.3/24", "2001:db8:100::2/64"],
  });
  const listener = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      NS_B,
      DENO,
      "eval",
      `for (const hostname of ["198.51.100.2", "198.51.100.3", "2001:db8:100::2"]) {
         const l = Deno.listen({ hostname, port: ${PORT} });
         (async () => {
           // Kept open until the client closes (a close here would end its wait).
           for await (const c of l) c.readable.pipeTo(new WritableStream()).catch(() => {});
         })();
       }
       console.log("ready");`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = listener.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /ready/);
  reader.releaseLock();
  return listener;
}

async function tearDown(listener?: Deno.ChildProcess): Promise<void> {
  try {
    listener?.kill("SIGKILL");
    await listener?.status;
  } catch {
    // gone
  }
  await deleteNamespaces(NS_A, NS_B);
}

/**
 * A bash in A connecting to `host`, holding the connection for `holdS`
 * seconds, then exiting; returns bash's pid.
 */
async function connect(host: string, holdS = 0): Promise<number> {
  // A builtin wait: a child (sleep) would inherit the socket too.
  const hold = holdS > 0 ? `read -t ${holdS} -u 3 || true; ` : "";
  const out = await run(
    "ip",
    "netns",
    "exec",
    NS_A,
    "bash",
    "-c",
    `echo $$; exec 3<>/dev/tcp/${host}/${PORT}; ${hold}exec 3>&-`,
  );
  return Number(out.trim());
}

Deno.test({
  name: "amp daemon raises one DFC event per flow to a listed address, naming its process",
  ignore,
  async fn() {
    let listener: Deno.ChildProcess | undefined;
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      listener = await setUp();
      d = await startDaemon({
        config: { dfc: { netns: NS_A, trackFlows: true } },
        policy: {
          id: 1,
          name: "Audit Policy for Linux",
          dfc: { lists: [{ name: "test-drop", file: "/etc/amp/lists/drop.txt" }] },
        },
        prepare: async () => {},
      });
      await Deno.writeTextFile(
        `${d.root}/etc/amp/lists/drop.txt`,
        "# test list\n198.51.100.2\n2001:db8:100::/120 ; v6\nnot an address\n",
      );
      d.process.kill("SIGHUP"); // the list file was written after start: reload it
      await waitFor("DFC on", async () => {
        const s = JSON.parse((await d!.amp(["status", "--json"])).stdout);
        return s.dfc?.on && s.dfc.lists[0]?.entries === 2 ? s : undefined;
      }, 10_000);

      // Held 0.2 s, so that its socket is still there when the flow is
      // attributed; the others close at once (see the limit in the README).
      const listedPid = await connect("198.51.100.2", 0.2);
      const unlistedPid = await connect("198.51.100.3");
      await connect("2001:db8:100::2");
      const dfc = await waitFor("two DFC events", async () => {
        const all = (await events(d!)).filter((e) => e.type === "DFC Threat Detected");
        return all.length >= 2 ? all : undefined;
      }, 10_000);
      await new Promise((r) => setTimeout(r, 500));
      const all = (await events(d)).filter((e) => e.type === "DFC Threat Detected");
      assert.equal(all.length, 2, JSON.stringify(all));
      const v4 = dfc.find((e) => e.remoteAddress === "198.51.100.2")!;
      assert.ok(v4, "the IPv4 flow");
      assert.equal(v4.remotePort, PORT);
      assert.equal(v4.protocol, "tcp");
      assert.equal(v4.action, "audit");
      assert.deepEqual((v4.details as { lists: string[] }).lists, ["test-drop"]);
      const v6 = dfc.find((e) => e.remoteAddress === "2001:db8:100::2")!;
      assert.ok(v6, "the IPv6 flow");
      assert.ok(!all.some((e) => e.remoteAddress === "198.51.100.3"), "unlisted flow reported");
      // The process behind the flow (it had exited by the time of the event).
      assert.equal(v4.pid, listedPid, JSON.stringify(v4));
      assert.equal(v4.executable, "/usr/bin/bash");
      assert.equal((v4.details as { attribution: string }).attribution, "socket");
      // A connection closed within a millisecond is reported with the flow,
      // but its process is often gone before it can be found.
      assert.ok(["socket", "no-socket", "no-process"].includes(String(
        (v6.details as { attribution: string }).attribution,
      )));
      assert.notEqual(unlistedPid, listedPid);
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(status.dfc.lists[0].malformed, 1, "the malformed line is reported");
      assert.ok(status.dfc.flows >= 3);
      const text = (await d.amp(["status"])).stdout;
      assert.match(text, /^DFC: +on \(audit\), lists test-drop 2;/m);
    } finally {
      await d?.stop();
      await tearDown(listener);
    }
  },
});
