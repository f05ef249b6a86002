/**
 * Tests of packaging/build.ts: the .deb and .rpm built around a stand-in amp
 * (a script that logs its arguments) have the right metadata, exactly the
 * expected files with root owner and the right modes, and scriptlets that
 * call amp install / disable / uninstall in the right order. The .deb is
 * installed, reinstalled, removed and purged with dpkg in a scratch root
 * (maintainer scripts chrootless, so they act on $DPKG_ROOT); the .rpm is
 * installed into a scratch root without scripts, and its scriptlets are run
 * by hand with rpm's arguments. Needs root, dpkg and rpm (outside CI the test
 * skips with the reason printed).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { VERSION } from "../src/version.ts";
import {
  packagingSkip,
  run,
  runOk,
  standInCalls,
  writeStandIn,
} from "./fixtures/packaging_tools.ts";

const BUILD = new URL("../packaging/build.ts", import.meta.url).pathname;
const ignore = packagingSkip("packaging_test") !== undefined;

/** Runs packaging/build.ts with `args`. */
function build(args: string[]) {
  return run(Deno.execPath(), ["run", "--allow-all", "--quiet", BUILD, ...args]);
}

/** rpm options for a private, empty database (Debian's rpm defaults to ~/.rpmdb). */
function rpmDb(dir: string): string[] {
  return ["--dbpath", join(dir, "rpmdb")];
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test("packaging/build.ts refuses bad input with a clear message and builds nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-pkg-bad-" });
  try {
    const out = join(dir, "out");
    const plain = join(dir, "plain");
    await Deno.writeTextFile(plain, "#!/bin/sh\n");
    await Deno.chmod(plain, 0o644);
    const standIn = join(dir, "amp");
    await writeStandIn(standIn, join(dir, "log"));
    const cases: [string[], RegExp][] = [
      [["--out", out], /Missing --binary: the amp executable to package/],
      [["--binary", join(dir, "nothing"), "--out", out], /nothing: it does not exist/],
      [["--binary", plain, "--out", out], /plain: not executable \(mode 0644\)/],
      [["--binary", dir, "--out", out], /not a regular file/],
      [["--binary", standIn, "--out", out, "--version", "1.0-2"], /Invalid --version "1.0-2"/],
      [["--binary", standIn, "--out", out, "--arch", "i386"], /Unsupported --arch i386/],
      [["--binary", standIn, "--out", out, "--kmod", join(dir, "nokmod")], /not a directory/],
      [["--binary", standIn], /Missing --out/],
    ];
    for (const [args, message] of cases) {
      const result = await build(args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, "");
    }
    assert.equal(await exists(out), false, "nothing was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "packaging/build.ts builds a .deb and an .rpm whose scriptlets drive amp",
  ignore,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "amp-pkg-" });
    try {
      const log = join(dir, "amp-calls.log");
      const standIn = join(dir, "amp-standin");
      await writeStandIn(standIn, log);
      const out = join(dir, "out");
      const deb = join(out, `amp_${VERSION}_amd64.deb`);
      const rpm = join(out, `amp-${VERSION}-1.x86_64.rpm`);

      await t.step("build prints both packages with their sizes", async () => {
        const result = await build(["--binary", standIn, "--out", out, "--no-kmod"]);
        assert.equal(result.code, 0, result.stderr);
        const lines = result.stdout.trim().split("\n");
        assert.match(lines[0], /^build: note: kernel module sources left out/);
        assert.deepEqual(lines.slice(1).map((line) => line.split("\t")[0]), [deb, rpm]);
        for (const [i, path] of [deb, rpm].entries()) {
          assert.equal(lines[i + 1].split("\t")[1], `${(await Deno.stat(path)).size} bytes`);
        }
        assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name).sort(), [
          `amp-${VERSION}-1.x86_64.rpm`,
          `amp_${VERSION}_amd64.deb`,
        ]);
        assert.equal(await standInCalls(log).then((calls) => calls.length), 0);
      });

      await t.step("dpkg-deb --info shows the control fields", async () => {
        const field = async (name: string) =>
          (await runOk("dpkg-deb", ["--field", deb, name])).trim();
        assert.equal(await field("Package"), "amp");
        assert.equal(await field("Version"), VERSION);
        assert.equal(await field("Architecture"), "amd64");
        assert.equal(await field("Depends"), "libc6, libclamav12");
        assert.match(await field("Maintainer"), /<.+@.+>/);
        assert.match(await field("Description"), /^open Linux endpoint-protection connector\n/);
        const info = await runOk("dpkg-deb", ["--info", deb]);
        for (const script of ["postinst", "prerm", "postrm"]) {
          assert.match(info, new RegExp(`\\s\\*\\s+${script}\\s+#!/bin/sh`), script);
        }
      });

      await t.step("dpkg-deb --contents lists exactly the payload, root-owned", async () => {
        const rows = (await runOk("dpkg-deb", ["--contents", deb])).trim().split("\n")
          .map((line) => {
            const [mode, owner, , , , path] = line.split(/\s+/);
            return `${mode} ${owner} ${path}`;
          });
        assert.deepEqual(rows, [
          "drwxr-xr-x root/root ./",
          "drwxr-xr-x root/root ./opt/",
          "drwxr-xr-x root/root ./opt/amp/",
          "drwxr-xr-x root/root ./opt/amp/bin/",
          "-rwxr-xr-x root/root ./opt/amp/bin/amp",
          "drwxr-xr-x root/root ./usr/",
          "drwxr-xr-x root/root ./usr/share/",
          "drwxr-xr-x root/root ./usr/share/doc/",
          "drwxr-xr-x root/root ./usr/share/doc/amp/",
          "-rw-r--r-- root/root ./usr/share/doc/amp/README.md",
        ]);
      });

      await t.step(
        "dpkg installs, reinstalls, removes and purges it in a scratch root",
        async () => {
          const root = join(dir, "deb-root");
          const admin = join(root, "var/lib/dpkg");
          for (const sub of ["info", "updates", "triggers"]) {
            await Deno.mkdir(join(admin, sub), { recursive: true });
          }
          await Deno.writeTextFile(join(admin, "status"), "");
          const dpkg = (...args: string[]) =>
            runOk("dpkg", [
              `--root=${root}`,
              `--log=${join(dir, "dpkg.log")}`,
              "--force-script-chrootless",
              // The scratch root has no libc6 or libclamav12 to satisfy Depends.
              "--force-depends",
              ...args,
            ]);
          const status = async () =>
            (await run("dpkg-query", [`--admindir=${admin}`, "-W", "-f=${Status}", "amp"])).stdout;
          const bin = join(root, "opt/amp/bin/amp");
          const install = `install --binary ${bin} --root ${root} --no-start`;

          await dpkg("--install", deb);
          assert.deepEqual(await standInCalls(log), [install]);
          assert.equal(await status(), "install ok installed");
          const binInfo = await Deno.stat(bin);
          assert.equal(binInfo.mode! & 0o7777, 0o755);
          assert.equal(binInfo.uid, 0);
          assert.equal(binInfo.gid, 0);
          assert.equal(
            await Deno.readTextFile(bin),
            await Deno.readTextFile(standIn),
            "the packaged executable is the given one",
          );
          const doc = await Deno.stat(join(root, "usr/share/doc/amp/README.md"));
          assert.equal(doc.mode! & 0o7777, 0o644);

          // An upgrade (here to the same version): prerm upgrade does nothing,
          // the new postinst runs amp install again.
          await dpkg("--install", deb);
          assert.deepEqual(await standInCalls(log), [install, install]);

          await dpkg("--remove", "amp");
          assert.deepEqual((await standInCalls(log)).slice(2), [
            `disable --root ${root}`,
            `uninstall --root ${root}`,
          ]);
          assert.equal(await status(), "deinstall ok config-files");
          assert.equal(await exists(join(root, "opt/amp")), false);
          assert.equal(await exists(join(root, "usr/share/doc/amp")), false);

          // What amp made and uninstall keeps (config, databases, logs) goes on purge.
          for (
            const file of ["etc/amp/amp.json", "var/lib/amp/events.db", "var/log/amp/ampd.log"]
          ) {
            await Deno.mkdir(join(root, file, ".."), { recursive: true });
            await Deno.writeTextFile(join(root, file), "x");
          }
          await dpkg("--purge", "amp");
          assert.equal((await standInCalls(log)).length, 4, "purge does not call amp");
          for (const gone of ["etc/amp", "var/lib/amp", "var/log/amp"]) {
            assert.equal(await exists(join(root, gone)), false, gone);
          }
          assert.match(await status(), /^$|not-installed/);
        },
      );

      await Deno.remove(log).catch(() => {});

      await t.step("rpm -qp shows the header and the libclamav requirement", async () => {
        const info = await runOk("rpm", [...rpmDb(dir), "-qp", "--info", rpm]);
        assert.match(info, /^Name\s+: amp$/m);
        assert.match(info, new RegExp(`^Version\\s+: ${VERSION.replaceAll(".", "\\.")}$`, "m"));
        assert.match(info, /^Release\s+: 1$/m);
        assert.match(info, /^Architecture: x86_64$/m);
        const requires = (await runOk("rpm", [...rpmDb(dir), "-qp", "--requires", rpm])).split(
          "\n",
        );
        assert.ok(requires.includes("libclamav.so.12()(64bit)"), requires.join(", "));
      });

      await t.step("rpm -qp --list is exactly the payload and the installer's files", async () => {
        const files = (await runOk("rpm", [
          ...rpmDb(dir),
          "-qp",
          "--qf",
          "[%{FILENAMES} %{FILEMODES:octal} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]",
          rpm,
        ])).trim().split("\n").sort();
        assert.deepEqual(files, [
          "/etc/cron.hourly/amp-updater 100755 root:root g",
          "/etc/init.d/amp 100755 root:root g",
          "/etc/init/amp-updater.conf 100644 root:root g",
          "/etc/init/amp.conf 100644 root:root g",
          "/etc/systemd/system/amp-updater.service 100644 root:root g",
          "/etc/systemd/system/amp-updater.timer 100644 root:root g",
          "/etc/systemd/system/amp.service 100644 root:root g",
          "/opt/amp 40755 root:root ",
          "/opt/amp/bin 40755 root:root ",
          "/opt/amp/bin/amp 100755 root:root ",
          "/usr/share/doc/amp 40755 root:root ",
          "/usr/share/doc/amp/README.md 100644 root:root d",
        ]);
        const list = (await runOk("rpm", [...rpmDb(dir), "-qp", "--list", rpm])).trim().split("\n");
        assert.equal(list.length, 12);
      });

      await t.step("rpm installs into a scratch root and its scriptlets call amp", async () => {
        const root = join(dir, "rpm-root");
        await Deno.mkdir(root);
        const rpmIn = (...args: string[]) =>
          runOk("rpm", ["--root", root, "--dbpath", "/var/lib/rpm", ...args]);
        await rpmIn("--initdb");
        // Scriptlets would run chrooted in a root with no /bin/sh: run them below.
        await rpmIn("--install", "--nodeps", "--noscripts", rpm);
        const bin = join(root, "opt/amp/bin/amp");
        assert.equal((await Deno.stat(bin)).mode! & 0o7777, 0o755);
        assert.equal(
          (await rpmIn("-qf", "/etc/systemd/system/amp.service")).trim(),
          `amp-${VERSION}-1.x86_64`,
        );

        const scripts = await runOk("rpm", [...rpmDb(dir), "-qp", "--scripts", rpm]);
        assert.match(scripts, /^postinstall scriptlet \(using \/bin\/sh\):$/m);
        assert.match(scripts, /^preuninstall scriptlet \(using \/bin\/sh\):$/m);
        assert.doesNotMatch(scripts, /postuninstall|preinstall/);
        // Run each scriptlet as rpm does (sh, with $1 = packages left), acting
        // on the scratch root through the variable dpkg would set.
        const scriptlet = async (tag: string, arg: number) => {
          const path = join(dir, `${tag}.sh`);
          await Deno.writeTextFile(
            path,
            await runOk("rpm", [...rpmDb(dir), "-qp", "--qf", `%{${tag}}`, rpm]),
          );
          await runOk("sh", [path, String(arg)], { env: { DPKG_ROOT: root } });
        };
        await scriptlet("POSTIN", 1);
        assert.deepEqual(await standInCalls(log), [
          `install --binary ${bin} --root ${root} --no-start`,
        ]);
        await scriptlet("PREUN", 1); // an upgrade removing the old package
        assert.equal((await standInCalls(log)).length, 1, "%preun on upgrade does nothing");
        await scriptlet("PREUN", 0); // an erase
        assert.deepEqual((await standInCalls(log)).slice(1), [
          `disable --root ${root}`,
          `uninstall --root ${root}`,
        ]);

        await rpmIn("--erase", "--noscripts", "amp");
        assert.equal(await exists(bin), false);
        assert.equal(await exists(join(root, "usr/share/doc/amp")), false);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "packaging/build.ts ships kernel module sources for DKMS under /usr/src",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "amp-pkg-kmod-" });
    try {
      const standIn = join(dir, "amp");
      await writeStandIn(standIn, join(dir, "log"));
      const kmod = join(dir, "kmod");
      await Deno.mkdir(kmod);
      await Deno.writeTextFile(
        join(kmod, "dkms.conf"),
        'PACKAGE_NAME="ampavflt"\nPACKAGE_VERSION="0.0.0"\nBUILT_MODULE_NAME[0]="ampavflt"\n',
      );
      await Deno.writeTextFile(join(kmod, "ampavflt.c"), "/* module */\n");
      await Deno.writeTextFile(join(kmod, "Kbuild"), "obj-m := ampavflt.o\n");
      const out = join(dir, "out");
      const result = await build([
        "--binary",
        standIn,
        "--out",
        out,
        "--version",
        "2.3.4",
        "--kmod",
        kmod,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stdout, /note:/);

      const src = "/usr/src/ampavflt-2.3.4";
      const debFiles = (await runOk("dpkg-deb", ["--contents", join(out, "amp_2.3.4_amd64.deb")]))
        .split("\n").filter((line) => line.includes("/usr/src/")).map((line) => {
          const [mode, owner, , , , path] = line.split(/\s+/);
          return `${mode} ${owner} ${path}`;
        });
      assert.deepEqual(
        debFiles,
        [
          "drwxr-xr-x root/root ./usr/src/",
          `drwxr-xr-x root/root .${src}/`,
          `-rw-r--r-- root/root .${src}/Kbuild`,
          `-rw-r--r-- root/root .${src}/ampavflt.c`,
          `-rw-r--r-- root/root .${src}/dkms.conf`,
        ].sort((a, b) => a.split(" ")[2] < b.split(" ")[2] ? -1 : 1),
      );

      const extracted = join(dir, "x");
      await runOk("dpkg-deb", ["-x", join(out, "amp_2.3.4_amd64.deb"), extracted]);
      assert.match(
        await Deno.readTextFile(join(extracted, src, "dkms.conf")),
        /^PACKAGE_VERSION="2\.3\.4"$/m,
      );

      const rpmFiles =
        (await runOk("rpm", [...rpmDb(dir), "-qp", "--list", join(out, "amp-2.3.4-1.x86_64.rpm")]))
          .split("\n").filter((path) => path.startsWith("/usr/src"));
      assert.deepEqual(rpmFiles, [src, `${src}/Kbuild`, `${src}/ampavflt.c`, `${src}/dkms.conf`]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
