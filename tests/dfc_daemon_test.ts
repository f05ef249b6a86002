/**
 * DFC end to end: a real daemon watches the flows of a network namespace the
 * test creates (A: 198.51.100.1, 2001:db8:100::1; B: .2 listed, .3 not
 * listed, ::2 listed), with a listener in B. Short-lived bash clients in A
 * connect through /dev/tcp. Root only.
 */

import assert from "node:assert/strict";
import { daemonSkip, events, startDaemon, waitFor } from "./fixtures/daemon.ts";
import { deleteNamespaces, run, vethPair } from "./fixtures/netns.ts";
import { auditSnapshot } from "../src/dfc/flow/_native.ts";
import { connectRuleSet } from "../src/dfc/flow/audit_connect.ts";

const ignore = daemonSkip("dfc_daemon_test") !== undefined;
const DENO = Deno.execPath();
const NS_A = `ampdfcA${Deno.pid}`;
const NS_B = `ampdfcB${Deno.pid}`;
// Per run: audit records are host-wide, so two runs at once must not share a port.
const PORT = 20_000 + (Deno.pid % 20_000);

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
async function connect(host: string, holdS = 0, protocol: "tcp" | "udp" = "tcp"): Promise<number> {
  // A builtin wait: a child (sleep) would inherit the socket too.
  const hold = holdS > 0 ? `read -t ${holdS} -u 3 || true; ` : "";
  // UDP's connect() sends nothing: the flow starts with the first datagram.
  const send = protocol === "udp" ? "echo x >&3; " : "";
  const out = await run(
    "ip",
    "netns",
    "exec",
    NS_A,
    "bash",
    "-c",
    `echo $$; exec 3<>/dev/${protocol}/${host}/${PORT}; ${send}${hold}exec 3>&-`,
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
      const before = auditSnapshot(connectRuleSet());
      d = await startDaemon({
        config: { dfc: { netns: NS_A, trackFlows: true, connectAudit: "on" } },
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

      // One held 0.2 s (its socket is still there when the flow is read);
      // the others close at once and exit: the connect audit names them.
      const heldPid = await connect("198.51.100.2", 0.2);
      const oneShotPid = await connect("198.51.100.2");
      const unlistedPid = await connect("198.51.100.3");
      const v6Pid = await connect("2001:db8:100::2");
      const udpPid = await connect("198.51.100.2", 0, "udp");
      const dfc = await waitFor("four DFC events", async () => {
        const all = (await events(d!)).filter((e) => e.type === "DFC Threat Detected");
        return all.length >= 4 ? all : undefined;
      }, 10_000);
      await new Promise((r) => setTimeout(r, 500));
      const all = (await events(d)).filter((e) => e.type === "DFC Threat Detected");
      assert.equal(all.length, 4, JSON.stringify(all));
      const byPid = (pid: number) => {
        const e = dfc.find((x) => x.pid === pid);
        assert.ok(e, `an event naming pid ${pid}: ${JSON.stringify(dfc)}`);
        assert.equal(e.executable, "/usr/bin/bash", JSON.stringify(e));
        // its parent: this test (`ip netns exec` execs bash), still there after bash exits
        assert.equal(e.parentExecutable, Deno.execPath(), JSON.stringify(e));
        assert.match(String(e.commandLine), /^bash -c echo \$\$; exec 3<>\/dev\/(tcp|udp)\//);
        assert.ok(
          ["socket", "connect"].includes((e.details as { attribution: string }).attribution),
          JSON.stringify(e),
        );
        assert.equal(e.action, "audit");
        assert.deepEqual((e.details as { lists: string[] }).lists, ["test-drop"]);
        return e;
      };
      const held = byPid(heldPid);
      assert.equal(held.remoteAddress, "198.51.100.2");
      assert.equal(held.remotePort, PORT);
      assert.equal(held.protocol, "tcp");
      assert.equal(byPid(oneShotPid).remoteAddress, "198.51.100.2");
      const v6 = byPid(v6Pid);
      assert.equal(v6.remoteAddress, "2001:db8:100::2");
      const udp = byPid(udpPid);
      assert.equal(udp.protocol, "udp");
      assert.equal(udp.remotePort, PORT);
      assert.ok(!all.some((e) => e.remoteAddress === "198.51.100.3"), "unlisted flow reported");
      assert.ok(!all.some((e) => e.pid === unlistedPid));
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(status.dfc.lists[0].malformed, 1, "the malformed line is reported");
      assert.ok(status.dfc.flows >= 5);
      assert.equal(status.dfc.connectAudit?.on, true, JSON.stringify(status.dfc));
      assert.ok(
        status.dfc.joined >= 1,
        `no flow was named from its connect record: ${status.dfc.joined}`,
      );
      const during = auditSnapshot(connectRuleSet());
      assert.equal(during.enabled, 1);
      assert.deepEqual(during.present, [true, true], "amp's rules are in place while it runs");
      const text = (await d.amp(["status"])).stdout;
      assert.match(
        text,
        /^DFC: +on \(audit\), lists test-drop 2;.*; connect audit on \([1-9]\d* named\)$/m,
      );
      await d.stop();
      d = undefined;
      // Stopped: the rules are gone and audit is as it was.
      const after = auditSnapshot(connectRuleSet());
      assert.deepEqual(after.present, before.present);
      assert.equal(after.enabled, before.enabled);
    } finally {
      await d?.stop();
      await tearDown(listener);
    }
  },
});

Deno.test({
  name: "amp daemon under a block policy resets a connection to a listed address",
  ignore,
  async fn() {
    let listener: Deno.ChildProcess | undefined;
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      listener = await setUp();
      d = await startDaemon({
        config: { dfc: { netns: NS_A, trackFlows: true } },
        policy: {
          id: 2,
          name: "Block Policy for Linux",
          mode: { network: "block" },
          dfc: { lists: [{ name: "test-drop", file: "/etc/amp/lists/drop.txt" }] },
        },
        prepare: async () => {},
      });
      await Deno.writeTextFile(`${d.root}/etc/amp/lists/drop.txt`, "198.51.100.2\n");
      d.process.kill("SIGHUP");
      await waitFor("DFC on", async () => {
        const s = JSON.parse((await d!.amp(["status", "--json"])).stdout);
        return s.dfc?.on && s.dfc.lists[0]?.entries === 1 ? s : undefined;
      }, 10_000);
      // The client waits up to 5 s for data that never comes; the reset ends
      // its wait early with an error.
      const started = performance.now();
      const out = await new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          NS_A,
          "bash",
          "-c",
          `echo $$; exec 3<>/dev/tcp/198.51.100.2/${PORT}; read -t 5 -u 3; echo "read=$?"`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const elapsed = performance.now() - started;
      const [pidLine, readLine] = new TextDecoder().decode(out.stdout).trim().split("\n");
      const stderr = new TextDecoder().decode(out.stderr);
      assert.ok(elapsed < 4_000, `the connection was not reset: ${elapsed} ms, ${stderr}`);
      // 142 would be the timeout; a reset read fails with 1 (bash prints the error).
      assert.equal(readLine, "read=1", stderr);
      assert.match(stderr, /Software caused connection abort|Connection reset/);
      const [e] = await waitFor("the DFC event", async () => {
        const all = (await events(d!)).filter((x) => x.type === "DFC Threat Detected");
        return all.length >= 1 ? all : undefined;
      }, 10_000);
      assert.equal(e.action, "blocked", JSON.stringify(e));
      assert.equal(e.pid, Number(pidLine));
      assert.equal(e.remoteAddress, "198.51.100.2");
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(status.dfc.blocked, 1);
      assert.equal(status.dfc.action, "block");
    } finally {
      await d?.stop();
      await tearDown(listener);
    }
  },
});

Deno.test({
  name: "DFC started by a reload stops with the daemon: amp's audit rules are removed",
  ignore,
  async fn() {
    let d: Awaited<ReturnType<typeof startDaemon>> | undefined;
    try {
      await run("ip", "netns", "add", NS_A);
      const before = auditSnapshot(connectRuleSet());
      d = await startDaemon({
        config: { dfc: { netns: NS_A, trackFlows: true, connectAudit: "on" } },
        policy: { id: 1, name: "Audit Policy for Linux" },
        prepare: async () => {},
      });
      const status = async () => JSON.parse((await d!.amp(["status", "--json"])).stdout);
      assert.equal((await status()).dfc.on, false, "no lists: DFC off");
      await Deno.writeTextFile(`${d.root}/etc/amp/lists/drop.txt`, "198.51.100.2\n");
      await Deno.writeTextFile(
        `${d.root}/etc/amp/policy.json`,
        JSON.stringify({
          id: 1,
          name: "Audit Policy for Linux",
          serial: 1,
          dfc: { lists: [{ name: "test-drop", file: "/etc/amp/lists/drop.txt" }] },
        }),
      );
      d.process.kill("SIGHUP");
      const on = await waitFor("DFC on after the reload", async () => {
        const s = await status();
        return s.dfc?.on ? s : undefined;
      }, 10_000);
      assert.equal(on.dfc.connectAudit?.on, true, JSON.stringify(on.dfc));
      assert.deepEqual(auditSnapshot(connectRuleSet()).present, [true, true]);
      await d.stop();
      d = undefined;
      const after = auditSnapshot(connectRuleSet());
      assert.deepEqual(after.present, before.present, "the rules went with the daemon");
      assert.equal(after.enabled, before.enabled, "audit is as it was");
    } finally {
      await d?.stop();
      await deleteNamespaces(NS_A);
    }
  },
});
