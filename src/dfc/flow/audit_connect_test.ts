import assert from "node:assert/strict";
import { AUDIT, AUDIT_EQUAL, AUDIT_RULE_DATA } from "../../../ffi/audit.ts";
import { NLMSG, NLMSGHDR } from "../../../ffi/netlink.ts";
import {
  AUDIT_KEY,
  auditRequest,
  ConnectJoiner,
  type ConnectRecord,
  ConnectRecordCollector,
  connectRule,
  connectRuleSet,
  parseAuditMessages,
  parseSockaddr,
} from "./audit_connect.ts";
import type { FlowEvent } from "./conntrack_events.ts";

// Records as a Debian 12 kernel (6.1) multicast them for amp's rule: a bash
// /dev/tcp connect to 127.0.0.1:9 (refused), then an IPv6 connect to [::1]:9.
const BASH = [
  [
    AUDIT.SYSCALL,
    'audit(1795705582.805:4): arch=c000003e syscall=42 success=no exit=-111 a0=3 a1=55b336a8bac0 a2=10 a3=7fae132b3ac0 items=0 ppid=27814 pid=27821 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="bash" exe="/usr/bin/bash" key="amp-dfc"',
  ],
  [AUDIT.SOCKADDR, "audit(1795705582.805:4): saddr=020000097F0000010000000000000000"],
  [
    AUDIT.PROCTITLE,
    "audit(1795705582.805:4): proctitle=2F7573722F62696E2F62617368002D6300736C656570",
  ],
  [AUDIT.EOE, "audit(1795705582.805:4): "],
] as const;
const PYTHON6 = [
  [
    AUDIT.SYSCALL,
    'audit(1795705582.893:5): arch=c000003e syscall=42 success=no exit=-111 a0=3 a1=7ffe0e737390 a2=1c a3=7fe9360ded62 items=0 ppid=27814 pid=27822 auid=4294967295 uid=1234 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="python3" exe=2F746D702F6261642070790A key="amp-dfc"',
  ],
  [
    AUDIT.SOCKADDR,
    "audit(1795705582.893:5): saddr=0A000009000000000000000000000000000000000000000100000000",
  ],
  [AUDIT.EOE, "audit(1795705582.893:5): "],
] as const;

/** The datagram the kernel sends for a list of records. */
function datagram(records: readonly (readonly [number, string])[]): Uint8Array {
  const parts = records.map(([type, text]) => {
    const body = new TextEncoder().encode(text);
    const len = NLMSGHDR.size + body.length;
    const b = new Uint8Array((len + 3) & ~3);
    const v = new DataView(b.buffer);
    v.setUint32(NLMSGHDR.nlmsg_len, len, true);
    v.setUint16(NLMSGHDR.nlmsg_type, type, true);
    b.set(body, NLMSGHDR.size);
    return b;
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function collect(records: readonly (readonly [number, string])[]): ConnectRecord[] {
  const c = new ConnectRecordCollector();
  const out: ConnectRecord[] = [];
  for (const m of parseAuditMessages(datagram(records))) {
    assert.equal(m.kind, "record");
    if (m.kind !== "record") continue;
    const r = c.add(m.type, m.text);
    if (r) out.push(r);
  }
  return out;
}

Deno.test("a connect's records become one record with the process and the address", () => {
  const [r] = collect(BASH);
  assert.equal(r.serial, 4);
  assert.equal(r.pid, 27821);
  assert.equal(r.ppid, 27814);
  assert.equal(r.uid, 0);
  assert.deepEqual(r.executable, new TextEncoder().encode("/usr/bin/bash"));
  assert.equal(r.comm, "bash");
  assert.equal(r.commandLine, "/usr/bin/bash -c sleep");
  assert.equal(r.exit, -111);
  assert.equal(r.family, 4);
  assert.equal(r.address, "127.0.0.1");
  assert.equal(r.port, 9);
});

Deno.test("hex-encoded executables keep their bytes; IPv6 addresses are RFC 5952 text", () => {
  const [r] = collect(PYTHON6);
  assert.deepEqual(r.executable, new TextEncoder().encode("/tmp/bad py\n"));
  assert.equal(r.uid, 1234);
  assert.equal(r.family, 6);
  assert.equal(r.address, "::1");
  assert.equal(r.port, 9);
  assert.equal(r.commandLine, undefined, "no PROCTITLE record");
});

Deno.test("connects of any rule count; other syscalls, Unix addresses and failed connects do not", () => {
  // An administrator's connect rule matched first: its key, not amp's.
  const otherKey = [
    [
      AUDIT.SYSCALL,
      BASH[0][1].replace('key="amp-dfc"', 'key="net-connect"').replaceAll(":4)", ":9)"),
    ],
    [AUDIT.SOCKADDR, BASH[1][1].replaceAll(":4)", ":9)")],
    [AUDIT.EOE, "audit(1795705582.805:9): "],
  ] as const;
  const openSyscall = [
    [AUDIT.SYSCALL, BASH[0][1].replace("syscall=42", "syscall=257").replaceAll(":4)", ":11)")],
    [AUDIT.SOCKADDR, BASH[1][1].replaceAll(":4)", ":11)")],
    [AUDIT.EOE, "audit(1795705582.805:11): "],
  ] as const;
  const unix = [
    [AUDIT.SYSCALL, BASH[0][1].replaceAll(":4)", ":10)")],
    [AUDIT.SOCKADDR, "audit(1795705582.805:10): saddr=01002F72756E2F6E7363642F736F636B657400"],
    [AUDIT.EOE, "audit(1795705582.805:10): "],
  ] as const;
  // EISCONN: a second connect() on a connected socket makes no flow.
  const again = [
    [AUDIT.SYSCALL, BASH[0][1].replace("exit=-111", "exit=-106").replaceAll(":4)", ":12)")],
    [AUDIT.SOCKADDR, BASH[1][1].replaceAll(":4)", ":12)")],
    [AUDIT.EOE, "audit(1795705582.805:12): "],
  ] as const;
  // Two events interleaved, as records of different CPUs can be.
  const mixed = [BASH[0], PYTHON6[0], BASH[1], PYTHON6[1], PYTHON6[2], BASH[2], BASH[3]] as const;
  const got = collect([...otherKey, ...openSyscall, ...unix, ...again, ...mixed]);
  assert.deepEqual(got.map((r) => r.serial), [9, 5, 4]);
  // Another architecture's records (an i386 program) are not read as x86_64 ones.
  const c = new ConnectRecordCollector("aarch64");
  for (const [type, text] of BASH) assert.equal(c.add(type, text), undefined);
});

Deno.test("acks and status answers are told apart from records", () => {
  const b = new Uint8Array(NLMSGHDR.size + 20);
  const v = new DataView(b.buffer);
  v.setUint32(NLMSGHDR.nlmsg_len, b.length, true);
  v.setUint16(NLMSGHDR.nlmsg_type, NLMSG.ERROR, true);
  v.setUint32(NLMSGHDR.nlmsg_seq, 7, true);
  v.setInt32(NLMSGHDR.size, -17, true);
  assert.deepEqual(parseAuditMessages(b), [{ kind: "ack", seq: 7, error: 17 }]);
  const s = new Uint8Array(NLMSGHDR.size + 44);
  const sv = new DataView(s.buffer);
  sv.setUint32(NLMSGHDR.nlmsg_len, s.length, true);
  sv.setUint16(NLMSGHDR.nlmsg_type, AUDIT.GET, true);
  sv.setUint32(NLMSGHDR.nlmsg_seq, 3, true);
  sv.setUint32(NLMSGHDR.size + 4, 1, true);
  sv.setUint32(NLMSGHDR.size + 12, 812, true);
  assert.deepEqual(parseAuditMessages(s), [{ kind: "status", seq: 3, enabled: 1, pid: 812 }]);
  assert.deepEqual(parseAuditMessages(new Uint8Array(10)), [], "a short datagram");
});

Deno.test("parseSockaddr reads IPv4, IPv6 and IPv4-mapped addresses, and refuses the rest", () => {
  const hex = (h: string) => Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
  assert.deepEqual(parseSockaddr(hex("02001F90C6336402")), {
    family: 4,
    address: "198.51.100.2",
    port: 8080,
  });
  assert.deepEqual(
    parseSockaddr(hex("0A000050" + "00000000" + "00000000000000000000FFFFC6336402" + "00000000")),
    { family: 4, address: "198.51.100.2", port: 80 },
  );
  assert.deepEqual(
    parseSockaddr(hex("0A0001BB" + "00000000" + "20010DB8010000000000000000000002" + "00000000")),
    { family: 6, address: "2001:db8:100::2", port: 443 },
  );
  assert.equal(parseSockaddr(hex("01002F746D70")), undefined);
  assert.equal(parseSockaddr(hex("0A00")), undefined);
});

Deno.test("connectRule is an exit rule for connect with the arch, a field and the key", () => {
  const r = connectRule(0xc000003e, 42, 202, 28);
  const v = new DataView(r.buffer);
  assert.equal(r.length, AUDIT_RULE_DATA.size + AUDIT_KEY.length);
  assert.equal(v.getUint32(AUDIT_RULE_DATA.flags, true), 4);
  assert.equal(v.getUint32(AUDIT_RULE_DATA.action, true), 2);
  assert.equal(v.getUint32(AUDIT_RULE_DATA.mask + 4, true), 1 << 10, "bit 42");
  assert.equal(v.getUint32(AUDIT_RULE_DATA.field_count, true), 3);
  const field = (i: number) => [
    v.getUint32(AUDIT_RULE_DATA.fields + 4 * i, true),
    v.getUint32(AUDIT_RULE_DATA.values + 4 * i, true),
    v.getUint32(AUDIT_RULE_DATA.fieldflags + 4 * i, true),
  ];
  assert.deepEqual(field(0), [11, 0xc000003e, AUDIT_EQUAL]);
  assert.deepEqual(field(1), [202, 28, AUDIT_EQUAL]);
  assert.deepEqual(field(2), [210, AUDIT_KEY.length, AUDIT_EQUAL]);
  assert.equal(v.getUint32(AUDIT_RULE_DATA.buflen, true), AUDIT_KEY.length);
  assert.equal(new TextDecoder().decode(r.subarray(AUDIT_RULE_DATA.buf)), AUDIT_KEY);
  const [v4] = connectRuleSet("x86_64")!;
  const v4View = new DataView(v4.buffer);
  assert.deepEqual(
    [
      v4View.getUint32(AUDIT_RULE_DATA.fields + 4, true),
      v4View.getUint32(AUDIT_RULE_DATA.values + 4, true),
    ],
    [113, 2],
    "by default by address family (saddr_fam == AF_INET)",
  );
  assert.equal(connectRuleSet("x86_64", "length")?.length, 2);
  assert.equal(connectRuleSet("riscv64"), undefined);
  const req = auditRequest(AUDIT.ADD_RULE, 5, r);
  assert.equal(new DataView(req.buffer).getUint32(0, true), NLMSGHDR.size + r.length);
  assert.equal(req.length % 4, 0);
});

function flow(dst: string, dstPort: number, more: Partial<FlowEvent> = {}): FlowEvent {
  return {
    kind: "flow",
    family: 4,
    protocol: "tcp",
    src: "198.51.100.1",
    srcPort: 40000,
    dst,
    dstPort,
    attribution: "no-socket",
    ...more,
  };
}

function record(pid: number, address: string, port: number): ConnectRecord {
  return { serial: pid, pid, family: 4, address, port, executable: new Uint8Array([47]) };
}

Deno.test("ConnectJoiner names a flow from a record that came before it or after it", () => {
  const j = new ConnectJoiner({ waitMs: 100, keepMs: 1000 });
  // UDP: the connect's record comes before the first packet's flow.
  assert.deepEqual(j.addRecord(record(10, "198.51.100.2", 53), 0), []);
  const [a] = j.addFlow(flow("198.51.100.2", 53, { protocol: "udp" }), 5);
  assert.equal(a.attribution, "connect");
  assert.equal(a.process?.pid, 10);
  // TCP: the flow (SYN) comes first, the record at the connect's return.
  assert.deepEqual(j.addFlow(flow("198.51.100.2", 80), 10), []);
  assert.equal(j.waiting, 1);
  assert.equal(j.deadline, 110);
  const [b] = j.addRecord(record(11, "198.51.100.2", 80), 20);
  assert.equal(b.process?.pid, 11);
  assert.equal(j.waiting, 0);
  assert.equal(j.joined, 2);
});

Deno.test("ConnectJoiner lets a flow go without a process when no record comes in time", () => {
  const j = new ConnectJoiner({ waitMs: 100, keepMs: 1000 });
  const f = flow("198.51.100.2", 80);
  assert.deepEqual(j.addFlow(f, 0), []);
  assert.deepEqual(j.due(99), []);
  assert.deepEqual(j.due(100), [f]);
  assert.equal(f.attribution, "no-socket");
  assert.equal(j.unjoined, 1);
  // A record after that is kept for the next flow, then forgotten after keepMs.
  j.addRecord(record(12, "198.51.100.2", 80), 150);
  assert.deepEqual(j.addFlow(flow("198.51.100.2", 80), 2000), [], "expired record not used");
  assert.equal(j.waiting, 1, "the flow after the expired record waits");
  // ICMP flows never wait.
  const icmp = flow("198.51.100.2", 0, { protocol: "icmp" });
  assert.deepEqual(j.addFlow(icmp, 3000), [icmp]);
});

Deno.test("ConnectJoiner: a flow sock_diag named claims its own record, so it never names another", () => {
  const j = new ConnectJoiner({ waitMs: 100, keepMs: 1000 });
  const named = flow("198.51.100.2", 80, {
    attribution: "socket",
    process: { pid: 20 },
  });
  assert.deepEqual(j.addFlow(named, 0), [named]);
  const other = flow("198.51.100.2", 80);
  assert.deepEqual(j.addFlow(other, 1), []);
  // pid 20's record arrives first: it is claimed, not given to the waiting flow.
  assert.deepEqual(j.addRecord(record(20, "198.51.100.2", 80), 2), []);
  const [done] = j.addRecord(record(21, "198.51.100.2", 80), 3);
  assert.equal(done, other);
  assert.equal(other.process?.pid, 21);
  // A record already waiting is taken by its own pid, leaving the others in order.
  j.addRecord(record(30, "198.51.100.9", 80), 10);
  j.addRecord(record(31, "198.51.100.9", 80), 11);
  j.addFlow(flow("198.51.100.9", 80, { attribution: "socket", process: { pid: 31 } }), 12);
  const [next] = j.addFlow(flow("198.51.100.9", 80), 13);
  assert.equal(next.process?.pid, 30);
});

Deno.test("ConnectJoiner keeps at most `max` records, dropping the oldest", () => {
  const j = new ConnectJoiner({ waitMs: 100, keepMs: 10_000, max: 10 });
  for (let i = 0; i < 25; i++) j.addRecord(record(i, `198.51.100.${i}`, 80), i);
  const found = [];
  for (let i = 0; i < 25; i++) {
    const [f] = j.addFlow(flow(`198.51.100.${i}`, 80), 100);
    if (f) found.push(f.process?.pid);
  }
  assert.ok(found.length <= 10, `kept ${found.length}`);
  assert.ok(found.includes(24), "the newest is kept");
  assert.ok(!found.includes(0), "the oldest is dropped");
});
