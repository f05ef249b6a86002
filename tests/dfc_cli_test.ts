import assert from "node:assert/strict";
import { amp } from "./amp_cli.ts";

Deno.test("amp dfc check says which policy lists hold an address, with exit 1 when listed", async () => {
  const root = await Deno.makeTempDir({ prefix: "amp-dfc-" });
  try {
    await Deno.mkdir(`${root}/etc/amp/lists`, { recursive: true });
    await Deno.writeTextFile(
      `${root}/etc/amp/lists/drop.txt`,
      "; Spamhaus DROP style\r\n198.51.100.0/24 ; SBL1\r\nnot-an-address\r\n2001:db8:100::/48\r\n",
    );
    await Deno.writeTextFile(
      `${root}/etc/amp/lists/ips.csv`,
      "ip,reason\n198.51.100.7,scanner\n203.0.113.9,bot\n",
    );
    await Deno.writeTextFile(
      `${root}/etc/amp/policy.json`,
      JSON.stringify({
        id: 3,
        name: "DFC",
        dfc: {
          lists: [
            { name: "drop", file: "/etc/amp/lists/drop.txt" },
            { name: "csv", file: "/etc/amp/lists/ips.csv", format: "csv", column: "ip" },
            { name: "missing", file: "/etc/amp/lists/none.txt" },
          ],
        },
      }),
    );
    const listed = await amp(["dfc", "check", "198.51.100.7", "2001:db8:100::1", "--root", root]);
    assert.equal(listed.code, 1, listed.stderr);
    assert.match(listed.stdout, /^198\.51\.100\.7: listed in drop, csv$/m);
    assert.match(listed.stdout, /^2001:db8:100::1: listed in drop$/m);
    assert.match(listed.stderr, /list drop: 1 malformed line\(s\), e\.g\. line 3: not-an-address/);
    assert.match(listed.stderr, /list missing: cannot read/);

    const clean = await amp(["dfc", "check", "198.18.0.1", "--root", root, "--json"]);
    assert.equal(clean.code, 0);
    const report = JSON.parse(clean.stdout);
    assert.deepEqual(report.addresses, [{ address: "198.18.0.1", lists: [] }]);
    assert.deepEqual(
      report.lists.map((l: { name: string; entries: number }) => [l.name, l.entries]),
      [["drop", 2], ["csv", 2], ["missing", 0]],
    );

    const bad = await amp(["dfc", "check", "300.1.1.1", "--root", root]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Not an IPv4 or IPv6 address: 300\.1\.1\.1/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
