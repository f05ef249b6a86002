import assert from "node:assert/strict";
import { formatIpv6, parseConntrackEvents } from "./conntrack_events.ts";

const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

/**
 * Captured from this kernel (6.18): the NEW events of a TCP connection
 * 127.0.0.1:40002 → 127.0.0.1:52395 and [::1]:40010 → [::1]:57555, as one
 * datagram each.
 */
const CAPTURED_V4 = hex(
  "c4000000000100060000000000000000020000003400018014000180080001007f000001080002007f0000011c0002800500010006000000060002009c42000006000300ccab00003400028014000180080001007f000001080002007f0000011c000280050001000600000006000200ccab0000060003009c42000008000c008496101c08000300000000080800070000000078300004802c0001800500010001000000050002000a000000050003000000000006000400030000000600050000000000",
);
const CAPTURED_V6 = hex(
  "f40000000001000600000000000000000a0000004c0001802c000180140003000000000000000000000000000000000114000400000000000000000000000000000000011c0002800500010006000000060002009c4a000006000300e0d300004c0002802c000180140003000000000000000000000000000000000114000400000000000000000000000000000000011c000280050001000600000006000200e0d30000060003009c4a000008000c00a78a425908000300000000080800070000000078300004802c0001800500010001000000050002000a000000050003000000000006000400030000000600050000000000",
);

/** One attribute: len, type (| NLA_F_NESTED when `nested`), payload padded to 4. */
function attr(type: number, payload: Uint8Array, nested = false): Uint8Array {
  const len = 4 + payload.length;
  const out = new Uint8Array((len + 3) & ~3);
  const v = new DataView(out.buffer);
  v.setUint16(0, len, true);
  v.setUint16(2, type | (nested ? 0x8000 : 0), true);
  out.set(payload, 4);
  return out;
}

const nest = (type: number, ...parts: Uint8Array[]) => attr(type, concat(...parts), true);
const u8 = (x: number) => new Uint8Array([x]);
const be16 = (x: number) => new Uint8Array([x >> 8, x & 0xff]);
const be32 = (x: number) => new Uint8Array([x >>> 24, (x >> 16) & 0xff, (x >> 8) & 0xff, x & 0xff]);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** One netlink message: nlmsghdr(type, flags) + nfgenmsg(family) + attributes. */
function message(attrs: Uint8Array[], opts: { type?: number; flags?: number } = {}): Uint8Array {
  const body = concat(new Uint8Array([2, 0, 0, 0]), ...attrs);
  const out = new Uint8Array(16 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, opts.type ?? 0x100, true); // (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
  v.setUint16(6, opts.flags ?? 0x600, true); // NLM_F_CREATE | NLM_F_EXCL
  out.set(body, 16);
  return out;
}

function tuple(ip: Uint8Array[], proto: number, sport?: number, dport?: number): Uint8Array {
  const p = [attr(1, u8(proto))];
  if (sport !== undefined) p.push(attr(2, be16(sport)));
  if (dport !== undefined) p.push(attr(3, be16(dport)));
  return nest(1, nest(1, ...ip), nest(2, ...p));
}

const v4 = (a: number[]) => new Uint8Array(a);

Deno.test("parseConntrackEvents() reads captured IPv4 and IPv6 TCP NEW events", () => {
  assert.deepEqual(parseConntrackEvents(concat(CAPTURED_V4, CAPTURED_V6)), {
    records: [
      {
        kind: "flow",
        family: 4,
        protocol: "tcp",
        src: "127.0.0.1",
        dst: "127.0.0.1",
        srcPort: 40002,
        dstPort: 52395,
        id: 0x8496101c,
      },
      {
        kind: "flow",
        family: 6,
        protocol: "tcp",
        src: "::1",
        dst: "::1",
        srcPort: 40010,
        dstPort: 57555,
        id: 0xa78a4259,
      },
    ],
    unknown: 0,
  });
});

Deno.test("parseConntrackEvents() reads a UDP flow with its id and zone from the original tuple", () => {
  const m = message([
    tuple([attr(1, v4([198, 51, 100, 1])), attr(2, v4([198, 51, 100, 2]))], 17, 5000, 53),
    nest(2, nest(1, attr(1, v4([198, 51, 100, 2])), attr(2, v4([198, 51, 100, 1]))), nest(2)),
    attr(12, be32(0xdeadbeef)),
    attr(18, be16(7)),
  ]);
  assert.deepEqual(parseConntrackEvents(m), {
    records: [{
      kind: "flow",
      family: 4,
      protocol: "udp",
      src: "198.51.100.1",
      dst: "198.51.100.2",
      srcPort: 5000,
      dstPort: 53,
      id: 0xdeadbeef,
      zone: 7,
    }],
    unknown: 0,
  });
});

Deno.test("parseConntrackEvents() gives ICMP port 0 and other protocols their number", () => {
  const a = [attr(1, v4([10, 0, 0, 1])), attr(2, v4([10, 0, 0, 2]))];
  const icmp = message([
    nest(1, nest(1, ...a), nest(2, attr(1, u8(1)), attr(4, be16(9)), attr(5, u8(8)))),
  ]);
  const sctp = message([tuple(a, 132, 1, 2)]);
  const { records, unknown } = parseConntrackEvents(concat(icmp, sctp));
  assert.equal(unknown, 0);
  assert.deepEqual(records.map((r) => [r.protocol, r.srcPort, r.dstPort]), [["icmp", 0, 0], [
    132,
    1,
    2,
  ]]);
});

Deno.test("parseConntrackEvents() skips updates and control messages without counting them", () => {
  const a = [attr(1, v4([10, 0, 0, 1])), attr(2, v4([10, 0, 0, 2]))];
  const update = message([tuple(a, 6, 1, 2)], { flags: 0 });
  const done = message([], { type: 3, flags: 2 });
  assert.deepEqual(parseConntrackEvents(concat(update, done)), { records: [], unknown: 0 });
});

Deno.test("parseConntrackEvents() counts unknown messages and bad attributes, keeping the rest", () => {
  const a = [attr(1, v4([10, 0, 0, 1])), attr(2, v4([10, 0, 0, 2]))];
  const good = message([tuple(a, 6, 1, 2)]);
  const destroy = message([tuple(a, 6, 1, 2)], { type: 0x102 }); // IPCTNL_MSG_CT_DELETE
  const shortAddr = message([tuple([attr(1, v4([10, 0])), attr(2, v4([10, 0, 0, 2]))], 6, 1, 2)]);
  const noTuple = message([attr(12, be32(1))]);
  const badAttr = message([tuple(a, 6, 1, 2), new Uint8Array([0xff, 0, 1, 0])]); // len 255 > rest
  const { records, unknown } = parseConntrackEvents(
    concat(destroy, shortAddr, noTuple, badAttr, good),
  );
  assert.equal(records.length, 2); // badAttr's tuple came before the bad attribute
  assert.ok(records.every((r) => r.src === "10.0.0.1" && r.dstPort === 2));
  // destroy, the short address and its record without a source, no tuple, the bad attribute
  assert.equal(unknown, 5);
});

Deno.test("parseConntrackEvents() stops at a truncated message and counts it", () => {
  const a = [attr(1, v4([10, 0, 0, 1])), attr(2, v4([10, 0, 0, 2]))];
  const good = message([tuple(a, 17, 1, 2)]);
  const cut = message([tuple(a, 17, 3, 4)]).subarray(0, 30);
  const { records, unknown } = parseConntrackEvents(concat(good, cut));
  assert.deepEqual(records.map((r) => r.srcPort), [1]);
  assert.equal(unknown, 1);
  assert.deepEqual(parseConntrackEvents(new Uint8Array(7)), { records: [], unknown: 1 });
});

Deno.test("formatIpv6() writes RFC 5952 text", () => {
  const ip = (words: number[]) => concat(...words.map(be16));
  assert.equal(formatIpv6(ip([0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1])), "2001:db8:100::1");
  assert.equal(formatIpv6(ip([0, 0, 0, 0, 0, 0, 0, 0])), "::");
  assert.equal(formatIpv6(ip([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])), "2001:db8:0:1:1:1:1:1");
  assert.equal(formatIpv6(ip([1, 0, 0, 2, 0, 0, 0, 3])), "1:0:0:2::3");
  assert.equal(formatIpv6(ip([0xfe80, 0, 0, 0, 0, 0, 0, 0])), "fe80::");
  assert.equal(formatIpv6(ip([0, 0, 0, 0, 0, 0xffff, 0xc633, 0x6401])), "::ffff:198.51.100.1");
});
