import assert from "node:assert/strict";
import { IpMatcher } from "./ip_list.ts";
import { type IpListEntries, parseIpList } from "./ip_list_parse.ts";

function matcher(lists: Record<string, string>): IpMatcher {
  return new IpMatcher(Object.entries(lists).map(([name, text]) => parseIpList(name, text)));
}

Deno.test("IpMatcher.lookup() matches the first and last address of a range, not its neighbours", () => {
  const m = matcher({ drop: "192.0.2.0/24\n10.0.0.0/8\n" });
  assert.deepEqual(m.lookup("192.0.2.0"), ["drop"]);
  assert.deepEqual(m.lookup("192.0.2.255"), ["drop"]);
  assert.deepEqual(m.lookup("192.0.1.255"), []);
  assert.deepEqual(m.lookup("192.0.3.0"), []);
  assert.deepEqual(m.lookup("10.0.0.0"), ["drop"]);
  assert.deepEqual(m.lookup("10.255.255.255"), ["drop"]);
  assert.deepEqual(m.lookup("9.255.255.255"), []);
  assert.deepEqual(m.lookup("11.0.0.0"), []);
  assert.equal(m.contains("192.0.2.77"), true);
  assert.equal(m.contains("198.51.100.1"), false);
});

Deno.test("IpMatcher.lookup() matches IPv6 range boundaries", () => {
  const m = matcher({ v6: "2001:db8:100::/48\n2001:db8::1\n" });
  assert.deepEqual(m.lookup("2001:db8:100::"), ["v6"]);
  assert.deepEqual(m.lookup("2001:db8:100:ffff:ffff:ffff:ffff:ffff"), ["v6"]);
  assert.deepEqual(m.lookup("2001:db8:ff:ffff:ffff:ffff:ffff:ffff"), []);
  assert.deepEqual(m.lookup("2001:db8:101::"), []);
  assert.deepEqual(m.lookup("2001:db8::1"), ["v6"]);
  assert.deepEqual(m.lookup("2001:db8::"), []);
  assert.deepEqual(m.lookup("2001:db8::2"), []);
  assert.deepEqual(m.lookup("192.0.2.1"), []);
});

Deno.test("IpMatcher handles the edges of the address spaces: /0, 0.0.0.0, 255.255.255.255", () => {
  const all = matcher({ all4: "0.0.0.0/0\n", all6: "::/0\n" });
  assert.deepEqual(all.lookup("0.0.0.0"), ["all4"]);
  assert.deepEqual(all.lookup("255.255.255.255"), ["all4"]);
  assert.deepEqual(all.lookup("::"), ["all6"]);
  assert.deepEqual(all.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ["all6"]);
  assert.equal(all.v4Ranges, 1);
  assert.equal(all.v6Ranges, 1);

  const ends = matcher({
    low: "0.0.0.0\n::\n",
    high: "255.255.255.255/32\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\n",
  });
  assert.deepEqual(ends.lookup("0.0.0.0"), ["low"]);
  assert.deepEqual(ends.lookup("0.0.0.1"), []);
  assert.deepEqual(ends.lookup("255.255.255.255"), ["high"]);
  assert.deepEqual(ends.lookup("255.255.255.254"), []);
  assert.deepEqual(ends.lookup("::"), ["low"]);
  assert.deepEqual(ends.lookup("::1"), []);
  assert.deepEqual(ends.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ["high"]);
  assert.deepEqual(ends.lookup("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), []);
});

Deno.test("IpMatcher merges overlapping, duplicate and adjacent ranges of a list", () => {
  const m = matcher({
    l: "10.0.0.0/24\n10.0.0.128/25\n10.0.0.0/24\n10.0.1.0/24\n10.0.2.0/23\n10.0.5.0/24\n" +
      "2001:db8::/33\n2001:db8:8000::/33\n2001:db8::5\n",
  });
  // 10.0.0.0–10.0.3.255 is one range; 10.0.5.0/24 is apart (10.0.4.0/24 is missing).
  assert.equal(m.v4Ranges, 2);
  assert.equal(m.v6Ranges, 1);
  assert.deepEqual(m.lookup("10.0.3.255"), ["l"]);
  assert.deepEqual(m.lookup("10.0.4.0"), []);
  assert.deepEqual(m.lookup("10.0.5.0"), ["l"]);
  assert.deepEqual(m.lookup("2001:db8:ffff::1"), ["l"]);
  assert.deepEqual(m.lists, [{ name: "l", entries: 9 }]);
});

Deno.test("IpMatcher.lookup() returns every list containing the address, in list order", () => {
  const m = matcher({
    wide: "10.0.0.0/8\n",
    c2: "10.1.2.3\n",
    mid: "10.1.0.0/16\n",
    other: "192.0.2.0/24\n",
  });
  assert.deepEqual(m.lookup("10.1.2.3"), ["wide", "c2", "mid"]);
  assert.deepEqual(m.lookup("10.1.2.4"), ["wide", "mid"]);
  assert.deepEqual(m.lookup("10.2.0.0"), ["wide"]);
  assert.deepEqual(m.lookup("192.0.2.1"), ["other"]);
  // 10/8 is cut at 10.1.0.0, 10.1.2.3, 10.1.2.4 and 10.2.0.0, plus 192.0.2.0/24.
  assert.equal(m.v4Ranges, 6);
  // The same answer is the same frozen array: no allocation per lookup.
  assert.equal(m.lookup("10.1.2.5"), m.lookup("10.1.9.9"));
  assert.ok(Object.isFrozen(m.lookup("10.1.2.5")));
});

Deno.test("IpMatcher treats lists with the same name as one list", () => {
  const m = new IpMatcher([
    parseIpList("drop", "10.0.0.0/24\n"),
    parseIpList("edrop", "10.0.0.0/25\n"),
    parseIpList("drop", "10.0.1.0/24\n"),
  ]);
  assert.deepEqual(m.lists, [{ name: "drop", entries: 2 }, { name: "edrop", entries: 1 }]);
  assert.deepEqual(m.lookup("10.0.0.1"), ["drop", "edrop"]);
  assert.deepEqual(m.lookup("10.0.1.200"), ["drop"]);
  assert.equal(m.v4Ranges, 2);
});

Deno.test("IpMatcher looks up IPv4-mapped IPv6 addresses in the IPv4 lists only", () => {
  const m = matcher({
    v4: "198.51.100.0/24\n",
    all6: "::/0\n",
    mapped: "::ffff:203.0.113.0/120\n",
  });
  assert.deepEqual(m.lookup("::ffff:198.51.100.7"), ["v4"]);
  assert.deepEqual(m.lookup("::FFFF:c633:6407"), ["v4"]);
  assert.deepEqual(m.lookup("203.0.113.9"), ["mapped"]);
  assert.deepEqual(m.lookup("::ffff:192.0.2.1"), []);
  // IPv4-compatible (deprecated) addresses are plain IPv6.
  assert.deepEqual(m.lookup("::198.51.100.7"), ["all6"]);
});

Deno.test("IpMatcher.lookup() takes 4 and 16 network-order bytes", () => {
  const m = matcher({ l: "198.51.100.0/24\n2001:db8:100::/64\n" });
  assert.deepEqual(m.lookup(new Uint8Array([198, 51, 100, 200])), ["l"]);
  assert.deepEqual(m.lookup(new Uint8Array([198, 51, 101, 0])), []);
  const v6 = new Uint8Array(16);
  v6.set([0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00]);
  v6[15] = 1;
  assert.deepEqual(m.lookup(v6), ["l"]);
  const mapped = new Uint8Array(16);
  mapped.set([0xff, 0xff, 198, 51, 100, 1], 10);
  assert.equal(m.contains(mapped), true);
  assert.deepEqual(m.lookupV4(0xc6336401), ["l"]);
  assert.deepEqual(m.lookupV6(0x20010db8, 0x01000000, 0, 0), ["l"]);
});

Deno.test("IpMatcher.lookup() throws a TypeError on what is not an address", () => {
  const m = matcher({ l: "10.0.0.0/8\n" });
  assert.throws(() => m.lookup("10.0.0.0/8"), TypeError);
  assert.throws(() => m.lookup("example.com"), /Not an IP address: "example.com"/);
  assert.throws(() => m.contains(new Uint8Array(5)), /Not an IP address: 5 bytes/);
});

Deno.test("IpMatcher with no lists or empty lists matches nothing", () => {
  const none = new IpMatcher([]);
  assert.deepEqual(none.lookup("10.0.0.1"), []);
  assert.deepEqual(none.lookup("::1"), []);
  const empty = matcher({ empty: "# nothing\n" });
  assert.deepEqual(empty.lists, [{ name: "empty", entries: 0 }]);
  assert.equal(empty.contains("10.0.0.1"), false);
});

Deno.test("IpMatcher clears host bits of entries that did not come from the parser", () => {
  const raw: IpListEntries = {
    name: "raw",
    v4: new Uint32Array([0x0a010203]),
    v4Prefixes: new Uint8Array([8]),
    v6: new Uint32Array(0),
    v6Prefixes: new Uint8Array(0),
  };
  const m = new IpMatcher([raw]);
  assert.deepEqual(m.lookup("10.0.0.0"), ["raw"]);
  assert.deepEqual(m.lookup("10.255.255.255"), ["raw"]);
  assert.throws(() => new IpMatcher([{ ...raw, v4Prefixes: new Uint8Array(2) }]), RangeError);
});

/** Deterministic generator for the cross-check (mulberry32). */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

Deno.test("IpMatcher agrees with a brute-force check on random overlapping lists", () => {
  const next = prng(42);
  // Small address windows so that entries overlap, nest and touch often.
  const v4Base = 0xc6336400; // 198.51.100.0
  const lists: { name: string; v4: [number, number][]; v6: [number, number][] }[] = [];
  const parsed = [];
  for (let l = 0; l < 6; l++) {
    const v4: [number, number][] = [];
    const v6: [number, number][] = [];
    const lines: string[] = [];
    for (let i = 0; i < 25; i++) {
      const p4 = 22 + (next() % 11);
      const size4 = 2 ** (32 - p4);
      const net4 = (v4Base + (next() % 2048)) & ~(size4 - 1);
      v4.push([net4 >>> 0, (net4 >>> 0) + size4 - 1]);
      const a = net4 >>> 0;
      lines.push(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${p4}`);
      // IPv6 entries within 2001:db8::/116, varying only the last word.
      const p6 = 117 + (next() % 12);
      const size6 = 2 ** (128 - p6);
      const low = (next() % 2048) & ~(size6 - 1);
      v6.push([low, low + size6 - 1]);
      lines.push(`2001:db8::${low.toString(16)}/${p6}`);
    }
    lists.push({ name: `list${l}`, v4, v6 });
    parsed.push(parseIpList(`list${l}`, lines.join("\n")));
  }
  const m = new IpMatcher(parsed);
  for (let offset = -64; offset < 2048 + 64; offset++) {
    const a = v4Base + offset;
    const expected4 = lists.filter((l) => l.v4.some(([s, e]) => a >= s && a <= e)).map((l) =>
      l.name
    );
    const text4 = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
    assert.deepEqual(m.lookup(text4), expected4, text4);
    if (offset >= 0) {
      const expected6 = lists.filter((l) => l.v6.some(([s, e]) => offset >= s && offset <= e))
        .map((l) => l.name);
      const text6 = `2001:db8::${offset.toString(16)}`;
      assert.deepEqual(m.lookup(text6), expected6, text6);
    }
  }
});
