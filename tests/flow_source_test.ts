/**
 * ConntrackFlowSource against the kernel: two network namespaces made here
 * (A: 198.51.100.1, 2001:db8:100::1; B: .2, ::2, joined by a veth pair), the
 * source opened in A with `trackFlows`, and a client in A that connects to a
 * listener in B over TCP (IPv4 and IPv6) and sends a UDP datagram. Nothing
 * touches the host's namespace or tables. Needs root and conntrack in the
 * kernel; skipped outside CI otherwise.
 */

import assert from "node:assert/strict";
import {
  ConntrackFlowSource,
  type FlowEvent,
  type FlowRecord,
} from "../src/dfc/flow/flow_source.ts";
import { IN_CI } from "./fixtures/native.ts";
import { deleteNamespaces, run, vethPair } from "./fixtures/netns.ts";

function skipReason(): string | undefined {
  if (Deno.uid() !== 0) return "needs root (network namespaces, netlink netfilter)";
  try {
    Deno.statSync("/proc/sys/net/netfilter/nf_conntrack_events");
  } catch {
    return "the kernel has no conntrack events (no /proc/sys/net/netfilter/nf_conntrack_events)";
  }
  return undefined;
}

const reason = skipReason();
const skip = reason !== undefined && !IN_CI;
if (skip) console.log(`flow_source_test: skipping: ${reason} (CI != true)`);

const DENO = Deno.execPath();
const NS_A = `ampflowA${Deno.pid}`;
const NS_B = `ampflowB${Deno.pid}`;
const V4_A = "198.51.100.1";
const V4_B = "198.51.100.2";
const V6_A = "2001:db8:100::1";
const V6_B = "2001:db8:100::2";
const TCP_PORT = 18080;
const UDP_PORT = 18053;
/** A TCP port in B whose connections are held open (for destroySocket). */
const HOLD_PORT = 18081;

/** A and B joined by a veth; nothing is sent unless B's addresses route through vfa. */
function setUpNamespaces(): Promise<void> {
  return vethPair({
    a: NS_A,
    b: NS_B,
    devA: "vfa",
    devB: "vfb",
    addressesA: [`${V4_A}/24`, `${V6_A}/64`],
    addressesB: [`${V4_B}/24`, `${V6_B}/64`],
  });
}

function tearDownNamespaces(): Promise<void> {
  return deleteNamespaces(NS_A, NS_B);
}

/** Deno code run in B: TCP listeners on both addresses and a UDP socket; prints "ready". */
const LISTENER = `
const tcp = [${JSON.stringify(V4_B)}, ${JSON.stringify(V6_B)}].map((hostname) =>
  Deno.listen({ hostname, port: ${TCP_PORT} }));
const udp = Deno.listenDatagram({ hostname: ${
  JSON.stringify(V4_B)
}, port: ${UDP_PORT}, transport: "udp" });
const hold = Deno.listen({ hostname: ${JSON.stringify(V4_B)}, port: ${HOLD_PORT} });
const held = [];
(async () => { for await (const c of hold) held.push(c); })();
console.log("ready");
for (const l of tcp) (async () => { for await (const c of l) c.close(); })();
(async () => { for (;;) await udp.receive(); })();
`;

/** Deno code run in A: one TCP connection per family, one UDP datagram; prints the local ports. */
const CLIENT = `
const ports = {};
for (const hostname of [${JSON.stringify(V4_B)}, ${JSON.stringify(V6_B)}]) {
  const c = await Deno.connect({ hostname, port: ${TCP_PORT} });
  ports[hostname] = c.localAddr.port;
  c.close();
}
const u = Deno.listenDatagram({ hostname: ${JSON.stringify(V4_A)}, port: 0, transport: "udp" });
await u.send(new Uint8Array([1, 2, 3]), { hostname: ${
  JSON.stringify(V4_B)
}, port: ${UDP_PORT}, transport: "udp" });
ports.udp = u.addr.port;
u.close();
console.log(JSON.stringify(ports));
`;

function inNetns(ns: string, code: string): Deno.Command {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, DENO, "eval", "--unstable-net", code],
    stdout: "piped",
    stderr: "piped",
  });
}

async function startListener(): Promise<Deno.ChildProcess> {
  const child = inNetns(NS_B, LISTENER).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  assert.equal(value?.trim(), "ready");
  return child;
}

/** How many flows conntrack holds in A. */
async function conntrackEntries(): Promise<number> {
  const text = await run("ip", "netns", "exec", NS_A, "cat", "/proc/net/nf_conntrack");
  return text.split("\n").filter((line) => line.length > 0).length;
}

/** Collects flow records until `count` have come (or 5 s), then 300 ms more to catch extras. */
async function collect(source: ConntrackFlowSource, count: number): Promise<FlowRecord[]> {
  const got: FlowRecord[] = [];
  const deadline = Date.now() + 5000;
  let extraUntil = Infinity;
  while (Date.now() < Math.min(deadline, extraUntil)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const batch = await Promise.race([
      source.next(),
      new Promise<FlowRecord[]>((r) => (timer = setTimeout(() => r([]), 100))),
    ]);
    clearTimeout(timer);
    got.push(...batch);
    if (got.length >= count && extraUntil === Infinity) extraUntil = Date.now() + 300;
  }
  return got;
}

Deno.test({
  name: "ConntrackFlowSource reports each new TCP, UDP and IPv6 flow of a namespace once",
  ignore: skip,
  async fn() {
    let listener: Deno.ChildProcess | undefined;
    let source: ConntrackFlowSource | undefined;
    try {
      await setUpNamespaces();
      listener = await startListener();
      source = await ConntrackFlowSource.open({ netns: NS_A, trackFlows: true });
      const out = await inNetns(NS_A, CLIENT).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const ports = JSON.parse(new TextDecoder().decode(out.stdout));
      const records = await collect(source, 3);
      for (const r of records) {
        assert.equal(r.kind, "flow");
        if (r.kind === "flow") {
          assert.equal(typeof r.id, "number");
          delete r.id;
          // Attribution is proven with bash below; here it only has to be there.
          assert.ok(["socket", "no-socket", "no-process"].includes(r.attribution!));
          delete r.attribution;
          delete r.socket;
          delete r.process;
        }
      }
      assert.deepEqual(records, [
        {
          kind: "flow",
          family: 4,
          protocol: "tcp",
          src: V4_A,
          dst: V4_B,
          srcPort: ports[V4_B],
          dstPort: TCP_PORT,
        },
        {
          kind: "flow",
          family: 6,
          protocol: "tcp",
          src: V6_A,
          dst: V6_B,
          srcPort: ports[V6_B],
          dstPort: TCP_PORT,
        },
        {
          kind: "flow",
          family: 4,
          protocol: "udp",
          src: V4_A,
          dst: V4_B,
          srcPort: ports.udp,
          dstPort: UDP_PORT,
        },
      ]);
      assert.deepEqual(source.stats, { events: 3, lost: 0, unknown: 0, joined: 0, auditLost: 0 });

      // close() while a next() waits: both end promptly, the waiter with [].
      const pending = source.next();
      const t0 = performance.now();
      await source.close();
      assert.deepEqual(await pending, []);
      assert.ok(performance.now() - t0 < 1000, `close took ${performance.now() - t0} ms`);
      await source.close(); // safe twice
      source = undefined;
      // The reader removed its nftables table on the way out: new flows are no longer tracked.
      const before = await conntrackEntries();
      assert.ok(before >= 3, `${before} conntrack entries in ${NS_A}`);
      assert.ok((await inNetns(NS_A, CLIENT).output()).success);
      assert.equal(await conntrackEntries(), before);
    } finally {
      await source?.close();
      if (listener) {
        listener.kill();
        await listener.status;
        await listener.stdout.cancel().catch(() => {});
        await listener.stderr.cancel().catch(() => {});
      }
      await tearDownNamespaces();
    }
  },
});

Deno.test({
  name: "ConntrackFlowSource.open() rejects a network namespace that does not exist",
  ignore: skip,
  async fn() {
    await assert.rejects(
      ConntrackFlowSource.open({ netns: `ampflow-missing-${Deno.pid}` }),
      /open.*ENOENT/,
    );
  },
});

/** Runs `script` with bash in A; its first line of output is its pid (`echo $$`). */
function bashInA(script: string): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", NS_A, "bash", "-c", `echo $$; ${script}`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function firstLine(
  child: Deno.ChildProcess,
): Promise<{ pid: number; rest: Promise<string> }> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += value;
    }
  })();
  return { pid: Number(text.split("\n")[0]), rest };
}

/** Waits (5 s at most) for the flow record to `dstPort` over `protocol`. */
async function flowTo(
  source: ConntrackFlowSource,
  protocol: string,
  dstPort: number,
): Promise<FlowEvent> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const batch = await Promise.race([
      source.next(),
      new Promise<FlowRecord[]>((r) => (timer = setTimeout(() => r([]), 100))),
    ]);
    clearTimeout(timer);
    for (const r of batch) {
      if (r.kind === "flow" && r.protocol === protocol && r.dstPort === dstPort) return r;
    }
  }
  throw new Error(`No ${protocol} flow to port ${dstPort} within 5 s`);
}

const text = (b?: Uint8Array) => b === undefined ? undefined : new TextDecoder().decode(b);

Deno.test({
  name:
    "ConntrackFlowSource names the short-lived process behind a flow, and destroySocket resets a connection",
  ignore: skip,
  async fn() {
    let listener: Deno.ChildProcess | undefined;
    let source: ConntrackFlowSource | undefined;
    try {
      await setUpNamespaces();
      listener = await startListener();
      source = await ConntrackFlowSource.open({ netns: NS_A, trackFlows: true });

      // TCP: bash connects, writes, closes and exits within a few ms.
      const tcp = bashInA(`exec 3<>/dev/tcp/${V4_B}/${TCP_PORT}; echo hi >&3; exec 3>&-`);
      const { pid: tcpPid, rest: tcpRest } = await firstLine(tcp);
      const t = await flowTo(source, "tcp", TCP_PORT);
      assert.ok((await tcp.status).success);
      await tcpRest;
      await tcp.stderr.cancel();
      // Racy by nature: bash may close its socket before the lookup (then "no-socket").
      console.log(`flow_source_test: bash /dev/tcp flow attribution: ${t.attribution}`);
      assert.ok(["socket", "no-socket", "no-process"].includes(t.attribution!), t.attribution);
      if (t.attribution === "socket") {
        assert.equal(t.process?.pid, tcpPid);
        assert.equal(text(t.process?.executable), "/usr/bin/bash");
        assert.match(t.process?.commandLine ?? "", /^bash -c echo \$\$; exec 3<>\/dev\/tcp/);
        assert.equal(t.process?.uid, 0);
        assert.equal(t.socket?.uid, 0);
        assert.ok(t.socket!.inode > 0);
      }

      // UDP: bash's /dev/udp socket is connected, written once and closed.
      const udp = bashInA(`exec 3<>/dev/udp/${V4_B}/${UDP_PORT}; echo hi >&3; exec 3>&-`);
      const { pid: udpPid, rest: udpRest } = await firstLine(udp);
      const u = await flowTo(source, "udp", UDP_PORT);
      assert.ok((await udp.status).success);
      await udpRest;
      await udp.stderr.cancel();
      console.log(`flow_source_test: bash /dev/udp flow attribution: ${u.attribution}`);
      assert.ok(["socket", "no-socket", "no-process"].includes(u.attribution!), u.attribution);
      if (u.attribution === "socket") {
        assert.equal(u.process?.pid, udpPid);
        assert.equal(text(u.process?.executable), "/usr/bin/bash");
      }

      // destroySocket: bash holds a connection open and blocks in read.
      const held = bashInA(
        `exec 3<>/dev/tcp/${V4_B}/${HOLD_PORT}; echo hi >&3; read -r line <&3; echo "rc=$?"`,
      );
      const { pid: heldPid, rest: heldRest } = await firstLine(held);
      const h = await flowTo(source, "tcp", HOLD_PORT);
      assert.equal(h.attribution, "socket", JSON.stringify(h));
      assert.equal(h.process?.pid, heldPid);
      assert.equal(text(h.process?.executable), "/usr/bin/bash");
      const result = await source.destroySocket(h);
      if (result.ok) {
        const status = await held.status;
        const stdout = await heldRest;
        const stderr = new TextDecoder().decode(
          new Uint8Array(await new Response(held.stderr).arrayBuffer()),
        );
        assert.ok(status.success);
        assert.match(stdout, /rc=[1-9]/);
        assert.match(stderr, /connection abort|reset/i);
      } else {
        console.log(`flow_source_test: destroySocket refused: ${result.error}`);
        assert.match(result.error ?? "", /EOPNOTSUPP.*CONFIG_INET_DIAG_DESTROY/);
        held.kill();
        await held.status;
        await heldRest;
        await held.stderr.cancel();
      }
      // A socket that is gone: a clear error, no throw.
      const gone = await source.destroySocket({ ...h, srcPort: h.srcPort === 1 ? 2 : 1 });
      assert.deepEqual(gone, { ok: false, error: "No socket for this flow: ENOENT" });
    } finally {
      await source?.close();
      if (listener) {
        listener.kill();
        await listener.status;
        await listener.stdout.cancel().catch(() => {});
        await listener.stderr.cancel().catch(() => {});
      }
      await tearDownNamespaces();
    }
  },
});
