import assert from "node:assert/strict";
import type { AmpEvent } from "../store/event.ts";
import { type AttributedFlow, FlowCorrelator } from "./correlate.ts";
import { IpMatcher } from "./ip_list.ts";
import { parseIpList } from "./ip_list_parse.ts";

type Raised = Omit<AmpEvent, "time" | "host" | "policy">;

function setup(mode: "audit" | "block" = "audit", destroyOk = true) {
  const matcher = new IpMatcher([
    parseIpList("drop", "198.51.100.0/24\n2001:db8:100::/48\n"),
    parseIpList("bots", "198.51.100.7\n"),
  ]);
  let now = 1_000_000;
  const events: Raised[] = [];
  const destroyed: AttributedFlow[] = [];
  const correlator = new FlowCorrelator({
    matcher: () => matcher,
    mode: () => mode,
    event: (e) => events.push(e),
    destroy: (flow) => {
      destroyed.push(flow);
      return Promise.resolve(destroyOk ? { ok: true } : { ok: false, error: "EOPNOTSUPP" });
    },
    disposition: () => Promise.resolve({ sha256: "ab".repeat(32), disposition: "clean" }),
    rateLimitMs: 60_000,
    now: () => now,
  });
  return { correlator, events, destroyed, advance: (ms: number) => (now += ms) };
}

const flow = (dst: string, pid = 42): AttributedFlow => ({
  kind: "flow",
  family: dst.includes(":") ? 6 : 4,
  protocol: "tcp",
  src: dst.includes(":") ? "2001:db8:100::1" : "203.0.113.5",
  dst,
  srcPort: 40000,
  dstPort: 443,
  process: {
    pid,
    executable: new TextEncoder().encode("/usr/bin/curl"),
    commandLine: "curl x",
    uid: 1000,
  },
  attribution: "socket",
});

Deno.test("FlowCorrelator raises one event naming the flow, the lists and the process", async () => {
  const t = setup();
  await t.correlator.handle(flow("198.51.100.7"));
  await t.correlator.handle(flow("203.0.113.80")); // not listed
  assert.equal(t.events.length, 1);
  const e = t.events[0];
  assert.equal(e.type, "DFC Threat Detected");
  assert.equal(e.action, "audit");
  assert.equal(e.remoteAddress, "198.51.100.7");
  assert.equal(e.remotePort, 443);
  assert.equal(e.localAddress, "203.0.113.5");
  assert.equal(e.pid, 42);
  assert.equal(new TextDecoder().decode(e.executable), "/usr/bin/curl");
  assert.deepEqual(e.details?.lists, ["drop", "bots"]);
  assert.equal(e.details?.direction, "outbound");
  assert.equal(e.details?.disposition, "clean");
  assert.equal(e.sha256, "ab".repeat(32));
  assert.deepEqual(t.correlator.stats, {
    flows: 2,
    matches: 1,
    events: 1,
    suppressed: 0,
    blocked: 0,
    blockFailures: 0,
  });
});

Deno.test("FlowCorrelator rate-limits per process and address, and says how many it held back", async () => {
  const t = setup();
  for (let i = 0; i < 5; i++) await t.correlator.handle(flow("198.51.100.9"));
  await t.correlator.handle(flow("198.51.100.9", 43)); // another process: its own event
  await t.correlator.handle(flow("2001:db8:100::2")); // another address
  assert.equal(t.events.length, 3);
  assert.equal(t.correlator.stats.suppressed, 4);
  t.advance(60_001);
  await t.correlator.handle(flow("198.51.100.9"));
  assert.equal(t.events.length, 4);
  assert.equal(t.events[3].details?.heldBack, 4);
});

Deno.test("FlowCorrelator in block mode closes the connection, and reports when it cannot", async () => {
  const blocked = setup("block");
  await blocked.correlator.handle(flow("198.51.100.7"));
  assert.equal(blocked.destroyed.length, 1);
  assert.equal(blocked.events[0].action, "blocked");
  const failing = setup("block", false);
  await failing.correlator.handle(flow("198.51.100.7"));
  assert.equal(failing.events[0].action, "block-failed");
  assert.equal(failing.events[0].details?.blockError, "EOPNOTSUPP");
  assert.equal(failing.correlator.stats.blockFailures, 1);
});

Deno.test("FlowCorrelator treats a listed source as an inbound flow", async () => {
  const t = setup();
  await t.correlator.handle({ ...flow("203.0.113.5"), src: "198.51.100.20", srcPort: 5555 });
  assert.equal(t.events.length, 1);
  assert.equal(t.events[0].remoteAddress, "198.51.100.20");
  assert.equal(t.events[0].details?.direction, "inbound");
});
