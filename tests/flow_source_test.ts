/**
 * ConntrackFlowSource against the kernel: two network namespaces made here
 * (A: 198.51.100.1, 2001:db8:100::1; B: .2, ::2, joined by a veth pair), the
 * source opened in A with `trackFlows`, and a client in A that connects to a
 * listener in B over TCP (IPv4 and IPv6) and sends a UDP datagram. Nothing
 * touches the host's namespace or tables. Needs root and conntrack in the
 * kernel; skipped outside CI otherwise.
 */

import assert from "node:assert/strict";
import { ConntrackFlowSource, type FlowRecord } from "../src/dfc/flow/flow_source.ts";
import { IN_CI } from "./fixtures/native.ts";

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

async function run(...args: string[]): Promise<string> {
  const out = await new Deno.Command(args[0], { args: args.slice(1), stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

async function setUpNamespaces(): Promise<void> {
  await run("ip", "netns", "add", NS_A);
  await run("ip", "netns", "add", NS_B);
  await run(
    "ip",
    "-n",
    NS_A,
    "link",
    "add",
    "vfa",
    "type",
    "veth",
    "peer",
    "name",
    "vfb",
    "netns",
    NS_B,
  );
  for (const [ns, dev, v4, v6] of [[NS_A, "vfa", V4_A, V6_A], [NS_B, "vfb", V4_B, V6_B]]) {
    await run("ip", "-n", ns, "addr", "add", `${v4}/24`, "dev", dev);
    await run("ip", "-n", ns, "addr", "add", `${v6}/64`, "dev", dev, "nodad");
    await run("ip", "-n", ns, "link", "set", dev, "up");
    await run("ip", "-n", ns, "link", "set", "lo", "up");
  }
  // Nothing is sent unless the peer's addresses go out through our own veth.
  for (const to of [V4_B, V6_B]) {
    const route = await run("ip", "-n", NS_A, "route", "get", to);
    assert.match(route, / dev vfa /, `route to ${to} in ${NS_A}: ${route}`);
  }
}

async function tearDownNamespaces(): Promise<void> {
  for (const ns of [NS_A, NS_B]) {
    await new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).output();
  }
}

/** Deno code run in B: TCP listeners on both addresses and a UDP socket; prints "ready". */
const LISTENER = `
const tcp = [${JSON.stringify(V4_B)}, ${JSON.stringify(V6_B)}].map((hostname) =>
  Deno.listen({ hostname, port: ${TCP_PORT} }));
const udp = Deno.listenDatagram({ hostname: ${
  JSON.stringify(V4_B)
}, port: ${UDP_PORT}, transport: "udp" });
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
      assert.deepEqual(source.stats, { events: 3, lost: 0, unknown: 0 });

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
