/**
 * The service commands through the real CLI (`deno run main.ts …`): install
 * into a temporary root, disable twice, enable, uninstall. The detailed
 * trees are checked in service_test.ts; this proves the commands are wired,
 * print their changes and exit as documented.
 */

import assert from "node:assert/strict";
import { amp } from "./amp_cli.ts";

Deno.test("amp install, disable, enable and uninstall work through the CLI in a root", async () => {
  const root = await Deno.makeTempDir({ prefix: "amp-svc-cli-" });
  try {
    const noBinary = await amp(["install", "--root", root, "--init", "sysv", "--no-start"]);
    assert.equal(noBinary.code, 2);
    assert.match(noBinary.stderr, /--binary/);

    const install = await amp([
      "install",
      "--root",
      root,
      "--init",
      "sysv",
      "--policy",
      "protect",
      "--binary",
      "/bin/true",
      "--no-start",
    ]);
    assert.equal(install.code, 0, install.stderr);
    assert.match(install.stdout, /\/etc\/init\.d\/amp/);
    assert.equal((await Deno.stat(`${root}/opt/amp/bin/amp`)).mode! & 0o777, 0o755);
    const policy = JSON.parse(await Deno.readTextFile(`${root}/etc/amp/policy.json`));
    assert.equal(policy.name, "Protect Policy for Linux");
    assert.match(
      await Deno.readTextFile(`${root}/var/log/amp/ampinstaller.log`),
      /executing post/,
    );

    const disable = await amp(["disable", "--root", root]);
    assert.equal(disable.code, 0, disable.stderr);
    assert.match(disable.stdout, /rc[0-9]\.d/);
    assert.equal((await Deno.stat(`${root}/etc/cron.hourly/amp-updater`)).mode! & 0o111, 0);
    const again = await amp(["disable", "--root", root, "--json"]);
    assert.equal(again.code, 0);
    const report = JSON.parse(again.stdout);
    assert.ok(
      JSON.stringify(report).includes("already"),
      `second disable should change nothing: ${again.stdout}`,
    );

    // An upgrade (what a package's post-install runs) keeps it disabled.
    const upgrade = await amp([
      "install",
      "--root",
      root,
      "--init",
      "sysv",
      "--binary",
      "/bin/true",
    ]);
    assert.equal(upgrade.code, 0, upgrade.stderr);
    assert.match(upgrade.stdout, /kept disabled/);
    assert.equal((await Deno.stat(`${root}/etc/cron.hourly/amp-updater`)).mode! & 0o111, 0);
    await assert.rejects(Deno.lstat(`${root}/etc/rc2.d/S20amp`));

    const enable = await amp(["enable", "--root", root]);
    assert.equal(enable.code, 0, enable.stderr);
    assert.equal((await Deno.stat(`${root}/etc/cron.hourly/amp-updater`)).mode! & 0o111, 0o111);

    const uninstall = await amp(["uninstall", "--root", root]);
    assert.equal(uninstall.code, 0, uninstall.stderr);
    await assert.rejects(Deno.stat(`${root}/opt/amp/bin/amp`));
    await assert.rejects(Deno.stat(`${root}/etc/init.d/amp`));
    assert.ok((await Deno.stat(`${root}/etc/amp/policy.json`)).isFile, "policy kept");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
