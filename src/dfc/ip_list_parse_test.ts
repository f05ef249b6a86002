import assert from "node:assert/strict";
import {
  MAX_REPORTED,
  parseCidr,
  type ParsedIpList,
  parseIpAddressInto,
  parseIpList,
} from "./ip_list_parse.ts";

/** The list's entries as CIDR text, for readable assertions. */
function cidrs(list: ParsedIpList): string[] {
  const out: string[] = [];
  list.v4.forEach((a, i) => {
    out.push(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${list.v4Prefixes[i]}`);
  });
  for (let i = 0; i < list.v6Prefixes.length; i++) {
    const words = [...list.v6.subarray(4 * i, 4 * i + 4)];
    out.push(
      `${words.map((w) => w.toString(16).padStart(8, "0")).join(".")}/${list.v6Prefixes[i]}`,
    );
  }
  return out;
}

Deno.test("parseIpList() reads a Spamhaus DROP-like list with CRLF and ; comments", () => {
  const text = "; Spamhaus DROP List 2024/01/01 - (c) 2024 The Spamhaus Project\r\n" +
    "; Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
    "1.10.16.0/20 ; SBL256894\r\n" +
    "1.19.0.0/16 ; SBL434604\r\n" +
    "\r\n" +
    "2.56.192.0/22;SBL459831\r\n";
  const list = parseIpList("spamhaus-drop", text);
  assert.equal(list.name, "spamhaus-drop");
  assert.deepEqual(cidrs(list), ["1.10.16.0/20", "1.19.0.0/16", "2.56.192.0/22"]);
  assert.equal(list.size, 3);
  assert.equal(list.lines, 6);
  assert.equal(list.malformed, 0);
  assert.deepEqual(list.problems, []);
  assert.equal(list.hostBitsCleared, 0);
});

Deno.test("parseIpList() reads a FireHOL-like netset with # comments and bare addresses", () => {
  const text = "#\n# firehol_level1\n#\n# ipv4 hash:net ipset\n#\n" +
    "0.0.0.0/8\n1.2.3.4\n  5.6.7.0/24   # trailing comment\n\t\n223.254.0.0/16";
  const list = parseIpList("firehol_level1", text);
  assert.deepEqual(cidrs(list), ["0.0.0.0/8", "1.2.3.4/32", "5.6.7.0/24", "223.254.0.0/16"]);
  assert.equal(list.lines, 10);
  assert.equal(list.malformed, 0);
});

Deno.test("parseIpList() ignores a byte-order mark and an empty text", () => {
  assert.deepEqual(cidrs(parseIpList("bom", "\uFEFF10.0.0.0/8\n")), ["10.0.0.0/8"]);
  const empty = parseIpList("empty", "");
  assert.equal(empty.size, 0);
  assert.equal(empty.lines, 0);
});

Deno.test("parseIpList() counts malformed lines with line numbers and keeps the first 20", () => {
  const text = "10.0.0.0/8\nnot-an-ip\n1.2.3.4 5.6.7.8\n300.1.1.1\n1.2.3.4/33\n010.1.1.1\n" +
    "fe80::1%eth0\n::1/129\n1.2.3\n1.2.3.4/\n1.2.3.4/08\n2001:db8:::1\n192.0.2.1\n";
  const list = parseIpList("bad", text);
  assert.deepEqual(cidrs(list), ["10.0.0.0/8", "192.0.2.1/32"]);
  assert.equal(list.malformed, 11);
  assert.deepEqual(list.problems.map((p) => [p.line, p.text]), [
    [2, "not-an-ip"],
    [3, "1.2.3.4 5.6.7.8"],
    [4, "300.1.1.1"],
    [5, "1.2.3.4/33"],
    [6, "010.1.1.1"],
    [7, "fe80::1%eth0"],
    [8, "::1/129"],
    [9, "1.2.3"],
    [10, "1.2.3.4/"],
    [11, "1.2.3.4/08"],
    [12, "2001:db8:::1"],
  ]);
  assert.equal(list.problems[0].reason, "Not an IP address or CIDR");
  assert.equal(list.problems[1].reason, "More than one field on the line");
  assert.equal(list.problems[3].reason, "Invalid prefix length");
  assert.equal(list.problems[5].reason, "IPv6 zone ids are not allowed");

  const many = parseIpList("many", Array.from({ length: 50 }, (_, i) => `junk${i}`).join("\n"));
  assert.equal(many.malformed, 50);
  assert.equal(many.problems.length, MAX_REPORTED);
  assert.deepEqual(many.problems.at(-1), {
    line: 20,
    text: "junk19",
    reason: "Not an IP address or CIDR",
  });
});

Deno.test("parseIpList() truncates the text of a long malformed line", () => {
  const list = parseIpList("long", "x".repeat(500));
  assert.equal(list.problems[0].text.length, 120);
  assert.ok(list.problems[0].text.endsWith("..."));
});

Deno.test("parseIpList() clears host bits beyond the prefix with a warning", () => {
  const list = parseIpList("hostbits", "10.1.2.3/8\n192.0.2.0/24\n2001:db8::1/32\n");
  assert.deepEqual(cidrs(list), [
    "10.0.0.0/8",
    "192.0.2.0/24",
    "20010db8.00000000.00000000.00000000/32",
  ]);
  assert.equal(list.malformed, 0);
  assert.equal(list.hostBitsCleared, 2);
  assert.deepEqual(list.warnings.map((w) => [w.line, w.text]), [
    [1, "10.1.2.3/8"],
    [3, "2001:db8::1/32"],
  ]);
  assert.match(list.warnings[0].reason, /Host bits/);
});

Deno.test("parseIpList() reads the edge prefixes and addresses of IPv4", () => {
  const list = parseIpList("edges", "0.0.0.0/0\n0.0.0.0\n255.255.255.255\n255.255.255.255/32\n");
  assert.deepEqual(cidrs(list), [
    "0.0.0.0/0",
    "0.0.0.0/32",
    "255.255.255.255/32",
    "255.255.255.255/32",
  ]);
  assert.equal(list.v4[2], 0xffffffff);
});

Deno.test("parseIpList() reads IPv6 forms: compression, embedded IPv4, /128, ::/0", () => {
  const list = parseIpList(
    "v6",
    [
      "::/0",
      "::",
      "::1/128",
      "2001:DB8::/32",
      "2001:db8:0:0:1:0:0:1",
      "2001:db8::1:0:0:1/128",
      "1::",
      "1:2:3:4:5:6:7::",
      "::2:3:4:5:6:7:8",
      "64:ff9b::192.0.2.33",
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
    ].join("\n"),
  );
  assert.equal(list.malformed, 0, JSON.stringify(list.problems));
  assert.deepEqual(cidrs(list), [
    "00000000.00000000.00000000.00000000/0",
    "00000000.00000000.00000000.00000000/128",
    "00000000.00000000.00000000.00000001/128",
    "20010db8.00000000.00000000.00000000/32",
    "20010db8.00000000.00010000.00000001/128",
    "20010db8.00000000.00010000.00000001/128",
    "00010000.00000000.00000000.00000000/128",
    "00010002.00030004.00050006.00070000/128",
    "00000002.00030004.00050006.00070008/128",
    "0064ff9b.00000000.00000000.c0000221/128",
    "ffffffff.ffffffff.ffffffff.ffffffff/128",
  ]);
});

Deno.test("parseIpList() rejects malformed IPv6 text", () => {
  const bad = [
    ":",
    ":::",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "1:2:3:4:5:6:7:8::",
    "1::2::3",
    "12345::",
    "1:",
    ":1::",
    "g::",
    "::ffff:1.2.3",
    "::ffff:1.2.3.4.5",
    "1.2.3.4::",
    "1:2:3:4:5:6:7:1.2.3.4",
  ];
  const list = parseIpList("bad6", bad.join("\n"));
  assert.equal(list.size, 0, cidrs(list).join(" "));
  assert.equal(list.malformed, bad.length);
});

Deno.test("parseIpList() stores IPv4-mapped IPv6 entries as IPv4", () => {
  const list = parseIpList("mapped", "::ffff:192.0.2.0/120\n::ffff:c633:6407\n::ffff:0:0/96\n");
  assert.deepEqual(cidrs(list), ["192.0.2.0/24", "198.51.100.7/32", "0.0.0.0/0"]);
  assert.equal(list.v6Prefixes.length, 0);
  // A shorter prefix covers more than the mapped block and stays IPv6.
  assert.deepEqual(cidrs(parseIpList("wide", "::fffe:0:0/95\n")), [
    "00000000.00000000.0000fffe.00000000/95",
  ]);
});

Deno.test("parseIpList() reads a CSV column by header name, with quotes and comments", () => {
  const text = "################\n# abuse.ch Feodo Tracker (CSV)\n################\n" +
    '"first_seen_utc","dst_ip","dst_port","c2_status"\r\n' +
    '"2021-01-17 07:44:46","51.178.161.32","4643","online"\r\n' +
    '"2021-01-18 01:02:03","2001:db8::7","443","offline"\r\n' +
    '"2021-01-19 00:00:00","","443","offline"\r\n' +
    '"2021-01-20 00:00:00","bogus","443","offline"\r\n' +
    '"2021-01-21 00:00:00"\r\n' +
    "# END\r\n";
  const list = parseIpList("feodo", text, { format: "csv", column: "dst_ip" });
  assert.deepEqual(cidrs(list), ["51.178.161.32/32", "20010db8.00000000.00000000.00000007/128"]);
  assert.equal(list.malformed, 3);
  assert.deepEqual(list.problems.map((p) => [p.line, p.reason]), [
    [7, "Empty column"],
    [8, "Not an IP address or CIDR"],
    [9, "Missing column"],
  ]);
});

Deno.test("parseIpList() reads a CSV column by index, with another delimiter and no header", () => {
  const text = '203.0.113.0/24;spam;"a ""quoted""; note"\n198.51.100.9 ; scanner\n';
  const list = parseIpList("csv", text, { format: "csv", column: 0, delimiter: ";" });
  assert.deepEqual(cidrs(list), ["203.0.113.0/24", "198.51.100.9/32"]);
  const tsv = parseIpList("tsv", "name\tip\nx\t10.0.0.1\n", {
    format: "csv",
    column: 1,
    delimiter: "\t",
    header: true,
  });
  assert.deepEqual(cidrs(tsv), ["10.0.0.1/32"]);
});

Deno.test("parseIpList() reports a CSV column name missing from the header once", () => {
  const list = parseIpList("csv", "a,b\n1.2.3.4,5.6.7.8\n", { format: "csv", column: "ip" });
  assert.equal(list.size, 0);
  assert.equal(list.malformed, 1);
  assert.deepEqual(list.problems[0], {
    line: 1,
    text: "a,b",
    reason: "Column not in the header: ip",
  });
});

Deno.test("parseIpList() reports an unterminated CSV quote as malformed", () => {
  const list = parseIpList("csv", '"10.0.0.1\n10.0.0.2\n', { format: "csv", column: 0 });
  assert.deepEqual(cidrs(list), ["10.0.0.2/32"]);
  assert.deepEqual(list.problems.map((p) => [p.line, p.reason]), [[1, "Unterminated quote"]]);
});

Deno.test("parseIpList() rejects bad CSV options with a RangeError", () => {
  assert.throws(
    () => parseIpList("x", "", { format: "csv", column: 0, delimiter: ",," }),
    RangeError,
  );
  assert.throws(() => parseIpList("x", "", { format: "csv", column: -1 }), RangeError);
  assert.throws(
    () => parseIpList("x", "", { format: "csv", column: "ip", header: false }),
    RangeError,
  );
});

Deno.test("parseCidr() normalizes and flags host bits, and rejects non-CIDRs", () => {
  assert.deepEqual(parseCidr("10.1.2.3/8"), {
    family: 4,
    words: new Uint32Array([0x0a000000]),
    prefix: 8,
    hostBitsSet: true,
  });
  assert.deepEqual(parseCidr("2001:db8::/32"), {
    family: 6,
    words: new Uint32Array([0x20010db8, 0, 0, 0]),
    prefix: 32,
    hostBitsSet: false,
  });
  assert.equal(parseCidr("0.0.0.0/0")?.prefix, 0);
  assert.equal(parseCidr(" 10.0.0.0/8"), undefined);
  assert.equal(parseCidr("1.2.3.4/-1"), undefined);
  assert.equal(parseCidr(""), undefined);
});

Deno.test("parseIpAddressInto() parses addresses only, without prefixes", () => {
  const out = new Uint32Array(4);
  assert.equal(parseIpAddressInto("192.0.2.255", out), 4);
  assert.equal(out[0], 0xc00002ff);
  assert.equal(parseIpAddressInto("::ffff:192.0.2.1", out), 6);
  assert.deepEqual([...out], [0, 0, 0xffff, 0xc0000201]);
  assert.equal(parseIpAddressInto("192.0.2.0/24", out), 0);
  assert.equal(parseIpAddressInto("256.0.0.1", out), 0);
  assert.equal(parseIpAddressInto("", out), 0);
});
