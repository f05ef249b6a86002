/**
 * `amp install`, `disable`, `enable` and `uninstall` on real files in
 * temporary roots, through their commander commands (and the service
 * functions where host commands are recorded): the exact tree for each init
 * system, idempotence, upgrades that keep the administrator's files,
 * disable/enable round trips, what uninstall keeps, bad input that changes
 * nothing, the installer log and events, `systemd-analyze verify` on the
 * units, and the sysv script run against a stand-in daemon.
 */

import assert from "node:assert/strict";
import { makeDisableCommand, makeEnableCommand } from "../src/cli/disable_command.ts";
import { makeInstallCommand } from "../src/cli/install_command.ts";
import { makeUninstallCommand } from "../src/cli/uninstall_command.ts";
import { builtinPolicy } from "../src/policy/builtin.ts";
import { cronUpdaterJob } from "../src/service/cron_job.ts";
import { detectInit } from "../src/service/detect_init.ts";
import { startCommands } from "../src/service/host_commands.ts";
import { install, runningFromSource } from "../src/service/install.ts";
import type { InitSystem } from "../src/service/layout.ts";
import {
  ampServiceUnit,
  updaterServiceUnit,
  updaterTimerUnit,
} from "../src/service/systemd_units.ts";
import { sysvInitScript } from "../src/service/sysv_script.ts";
import { disable, enable } from "../src/service/toggle.ts";
import { uninstall } from "../src/service/uninstall.ts";
import { upstartAmpJob, upstartUpdaterJob } from "../src/service/upstart_jobs.ts";
import { EventsDb } from "../src/store/events_db.ts";
import { hasCompiler, IN_CI } from "./fixtures/native.ts";
import { RecordingCommands, runCommand, snapshot, treeEntries } from "./fixtures/service_tree.ts";

const OWNER = Deno.uid() === 0 ? "0:0" : `${Deno.uid()}:${Deno.gid()}`;
const INITS: InitSystem[] = ["upstart", "systemd", "sysv"];

interface World {
  dir: string;
  root: string;
  /** A stand-in for the amp executable (a copy of /bin/true). */
  binary: string;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-service-" });
  const w = { dir, root: `${dir}/root`, binary: `${dir}/build/amp` };
  await Deno.mkdir(w.root);
  await Deno.mkdir(`${dir}/build`);
  await Deno.copyFile("/bin/true", w.binary);
  try {
    await fn(w);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function installArgs(w: World, init: InitSystem, ...more: string[]): string[] {
  return ["--root", w.root, "--init", init, "--binary", w.binary, "--no-start", ...more];
}

/** The tree common to every init system (beside the init files). */
function commonTree(): string[] {
  return [
    `d 0755 ${OWNER} /etc`,
    `d 0755 ${OWNER} /etc/amp`,
    `f 0600 ${OWNER} /etc/amp/amp.json`,
    `d 0755 ${OWNER} /etc/amp/lists`,
    `f 0644 ${OWNER} /etc/amp/policy.json`,
    `d 0755 ${OWNER} /opt`,
    `d 0755 ${OWNER} /opt/amp`,
    `d 0755 ${OWNER} /opt/amp/bin`,
    `f 0755 ${OWNER} /opt/amp/bin/amp`,
    `d 0755 ${OWNER} /var`,
    `d 0755 ${OWNER} /var/lib`,
    `d 0700 ${OWNER} /var/lib/amp`,
    `f 0600 ${OWNER} /var/lib/amp/events.db`,
    `d 0700 ${OWNER} /var/lib/amp/quarantine`,
    `d 0755 ${OWNER} /var/log`,
    `d 0700 ${OWNER} /var/log/amp`,
    `f 0600 ${OWNER} /var/log/amp/ampinstaller.log`,
  ];
}

const CRON_TREE = [
  `d 0755 ${OWNER} /etc/cron.hourly`,
  `f 0755 ${OWNER} /etc/cron.hourly/amp-updater`,
];

const INIT_TREES: Record<InitSystem, string[]> = {
  upstart: [
    `d 0755 ${OWNER} /etc/init`,
    `f 0644 ${OWNER} /etc/init/amp-updater.conf`,
    `f 0644 ${OWNER} /etc/init/amp.conf`,
    ...CRON_TREE,
  ],
  systemd: [
    `d 0755 ${OWNER} /etc/systemd`,
    `d 0755 ${OWNER} /etc/systemd/system`,
    `f 0644 ${OWNER} /etc/systemd/system/amp-updater.service`,
    `f 0644 ${OWNER} /etc/systemd/system/amp-updater.timer`,
    `f 0644 ${OWNER} /etc/systemd/system/amp.service`,
    `d 0755 ${OWNER} /etc/systemd/system/multi-user.target.wants`,
    `l ${OWNER} /etc/systemd/system/multi-user.target.wants/amp.service -> /etc/systemd/system/amp.service`,
    `d 0755 ${OWNER} /etc/systemd/system/timers.target.wants`,
    `l ${OWNER} /etc/systemd/system/timers.target.wants/amp-updater.timer -> /etc/systemd/system/amp-updater.timer`,
  ],
  sysv: [
    `d 0755 ${OWNER} /etc/init.d`,
    `f 0755 ${OWNER} /etc/init.d/amp`,
    ...CRON_TREE,
    ...[0, 1, 6].flatMap((n) => [
      `d 0755 ${OWNER} /etc/rc${n}.d`,
      `l ${OWNER} /etc/rc${n}.d/K80amp -> ../init.d/amp`,
    ]),
    ...[2, 3, 4, 5].flatMap((n) => [
      `d 0755 ${OWNER} /etc/rc${n}.d`,
      `l ${OWNER} /etc/rc${n}.d/S20amp -> ../init.d/amp`,
    ]),
  ],
};

/** The init files' exact contents. */
const INIT_FILES: Record<InitSystem, Record<string, string>> = {
  upstart: {
    "/etc/init/amp.conf": upstartAmpJob(),
    "/etc/init/amp-updater.conf": upstartUpdaterJob(),
    "/etc/cron.hourly/amp-updater": cronUpdaterJob(),
  },
  systemd: {
    "/etc/systemd/system/amp.service": ampServiceUnit(),
    "/etc/systemd/system/amp-updater.service": updaterServiceUnit(),
    "/etc/systemd/system/amp-updater.timer": updaterTimerUnit(),
  },
  sysv: {
    "/etc/init.d/amp": sysvInitScript(),
    "/etc/cron.hourly/amp-updater": cronUpdaterJob(),
  },
};

async function read(w: World, path: string): Promise<string> {
  return await Deno.readTextFile(`${w.root}${path}`);
}

for (const init of INITS) {
  Deno.test(`amp install --init ${init} lays out exactly the expected tree and files`, async () => {
    await withWorld(async (w) => {
      const run = await runCommand(makeInstallCommand, installArgs(w, init, "--json"));
      assert.equal(run.code, 0, run.stderr);
      const report = JSON.parse(run.stdout);
      assert.equal(report.ok, true);
      assert.equal(report.init, init);
      assert.ok(report.changes.every((c: { action: string }) => c.action === "created"));
      assert.deepEqual(report.commands, [], "no host command runs under --root");
      assert.ok(report.notes.includes("connector not started: --no-start"));

      assert.deepEqual(await treeEntries(w.root), [...commonTree(), ...INIT_TREES[init]].sort());
      for (const [path, text] of Object.entries(INIT_FILES[init])) {
        assert.equal(await read(w, path), text, path);
      }
      assert.deepEqual(
        await Deno.readFile(`${w.root}/opt/amp/bin/amp`),
        await Deno.readFile(w.binary),
      );
      assert.deepEqual(JSON.parse(await read(w, "/etc/amp/amp.json")), {
        logLevel: "notice",
        service: { init },
      });
      assert.deepEqual(JSON.parse(await read(w, "/etc/amp/policy.json")), builtinPolicy("audit"));
    });
  });
}

Deno.test("init files carry the lines that make the service work", () => {
  const job = upstartAmpJob();
  for (
    const line of [
      "start on runlevel [2345]",
      "stop on runlevel [016]",
      "respawn",
      "respawn limit 10 60",
      "pre-start script",
      "    if [ ! -x /opt/amp/bin/amp ]; then",
      "    if [ ! -r /etc/amp/amp.json ]; then",
      "exec /opt/amp/bin/amp daemon",
    ]
  ) assert.ok(job.split("\n").includes(line), line);
  assert.ok(upstartUpdaterJob().split("\n").includes("task"));
  assert.ok(upstartUpdaterJob().split("\n").includes("exec /opt/amp/bin/amp update"));

  const unit = ampServiceUnit().split("\n");
  for (
    const line of [
      "Type=simple",
      "ExecStart=/opt/amp/bin/amp daemon",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "Restart=on-failure",
      "RestartSec=5s",
      "NoNewPrivileges=yes",
      "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6",
      "WantedBy=multi-user.target",
    ]
  ) assert.ok(unit.includes(line), line);
  // Options that would break quarantine anywhere, the host's paths, or /dev/ampavflt.
  for (
    const key of [
      "ProtectSystem",
      "ProtectHome",
      "PrivateTmp",
      "PrivateDevices",
      "ProtectClock",
      "MemoryDenyWriteExecute",
    ]
  ) assert.ok(!unit.some((l) => l.startsWith(`${key}=`)), key);
  assert.ok(updaterServiceUnit().split("\n").includes("Type=oneshot"));
  assert.ok(updaterServiceUnit().split("\n").includes("ExecStart=/opt/amp/bin/amp update"));
  const timer = updaterTimerUnit().split("\n");
  for (const line of ["OnCalendar=hourly", "RandomizedDelaySec=15min", "Persistent=true"]) {
    assert.ok(timer.includes(line), line);
  }

  const script = sysvInitScript().split("\n");
  for (
    const line of [
      "#!/bin/sh",
      "### BEGIN INIT INFO",
      "# Provides:          amp",
      "# Required-Start:    $local_fs $remote_fs $syslog",
      "# Default-Start:     2 3 4 5",
      "# Default-Stop:      0 1 6",
      "# Short-Description: amp endpoint protection daemon",
      "### END INIT INFO",
    ]
  ) assert.ok(script.includes(line), line);
  assert.ok(script.some((l) => l.includes("start-stop-daemon --start --quiet --background")));
  assert.ok(cronUpdaterJob().startsWith("#!/bin/sh\n"));
  assert.ok(cronUpdaterJob().includes("exec /opt/amp/bin/amp update\n"));
});

Deno.test("the shell scripts parse with sh -n", async () => {
  for (const text of [sysvInitScript(), cronUpdaterJob()]) {
    const child = new Deno.Command("sh", { args: ["-n"], stdin: "piped", stderr: "piped" })
      .spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  }
});

Deno.test("the systemd units pass systemd-analyze verify", async (t) => {
  let present = true;
  try {
    await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" }).output();
  } catch {
    present = false;
  }
  if (!present && !IN_CI) {
    console.log("service_test: skipping systemd-analyze verify: systemd-analyze is not installed");
    return;
  }
  await withWorld(async (w) => {
    // The units as written, but with ExecStart pointing at an executable that
    // exists here (verify checks it); everything else is the installed text.
    const run = await runCommand(makeInstallCommand, installArgs(w, "systemd"));
    assert.equal(run.code, 0, run.stderr);
    const bin = `${w.root}/opt/amp/bin/amp`;
    const dir = `${w.dir}/units`;
    await Deno.mkdir(dir);
    for (const name of ["amp.service", "amp-updater.service", "amp-updater.timer"]) {
      const text = await read(w, `/etc/systemd/system/${name}`);
      await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll("/opt/amp/bin/amp", bin));
    }
    assert.equal(
      await Deno.readTextFile(`${dir}/amp.service`),
      ampServiceUnit({ binary: bin }),
    );
    await t.step("verify", async () => {
      const out = await new Deno.Command("systemd-analyze", {
        args: [
          "verify",
          `${dir}/amp.service`,
          `${dir}/amp-updater.service`,
          `${dir}/amp-updater.timer`,
        ],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text);
      assert.equal(text.trim(), "", "no warnings (an unknown key is only a warning)");
    });
  });
});

Deno.test("a second install with the same inputs changes nothing; a new binary is an update", async () => {
  for (const init of INITS) {
    await withWorld(async (w) => {
      assert.equal((await runCommand(makeInstallCommand, installArgs(w, init))).code, 0);
      const before = await snapshot(w.root);
      const again = await runCommand(makeInstallCommand, installArgs(w, init, "--json"));
      assert.equal(again.code, 0, again.stderr);
      const report = JSON.parse(again.stdout);
      const changed = report.changes.filter((c: { action: string }) => c.action !== "unchanged");
      assert.deepEqual(changed, [], `${init}: ${JSON.stringify(changed)}`);
      // The log and events.db grow (Install Started/Completed); nothing else differs.
      const stable = (s: string[]) =>
        s.filter((e) => !e.includes("/var/log/amp/") && !e.includes("/events.db"));
      assert.deepEqual(stable(await snapshot(w.root)), stable(before));

      await Deno.writeTextFile(w.binary, "#!/bin/sh\nexit 0\n");
      const upgrade = await runCommand(makeInstallCommand, installArgs(w, init, "--json"));
      const changes = JSON.parse(upgrade.stdout).changes.filter((c: { action: string }) =>
        c.action !== "unchanged"
      );
      assert.deepEqual(changes.map((c: { path: string }) => c.path), ["/opt/amp/bin/amp"]);
      assert.equal(changes[0].action, "updated");
      assert.equal(await read(w, "/opt/amp/bin/amp"), "#!/bin/sh\nexit 0\n");
    });
  }
});

Deno.test("a second install keeps the edited config and policy, the databases and the quarantine", async () => {
  await withWorld(async (w) => {
    assert.equal((await runCommand(makeInstallCommand, installArgs(w, "sysv"))).code, 0);
    const config = {
      logLevel: "debug",
      clamav: { dbDir: "/srv/clamav" },
      service: { init: "sysv" },
    };
    await Deno.writeTextFile(`${w.root}/etc/amp/amp.json`, JSON.stringify(config));
    const policy = JSON.stringify({ id: 7, name: "Web servers", mode: { file: "quarantine" } });
    await Deno.writeTextFile(`${w.root}/etc/amp/policy.json`, policy);
    const planted = await EventsDb.open(`${w.root}/var/lib/amp/events.db`);
    await planted.record({ type: "Threat Detected", time: 1, detection: "Eicar-Signature" });
    await planted.close();
    await Deno.writeTextFile(`${w.root}/var/lib/amp/quarantine/q1`, "quarantined");

    const again = await runCommand(makeInstallCommand, installArgs(w, "sysv"));
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(await read(w, "/etc/amp/amp.json")), config);
    assert.equal(await read(w, "/etc/amp/policy.json"), policy);
    assert.equal(await read(w, "/var/lib/amp/quarantine/q1"), "quarantined");
    const events = await EventsDb.open(`${w.root}/var/lib/amp/events.db`);
    try {
      const threats = await events.list({ type: "Threat Detected" });
      assert.equal(threats.length, 1);
      assert.equal(threats[0].detection, "Eicar-Signature");
    } finally {
      await events.close();
    }

    // --cloud sets only cloud.url; --policy replaces the policy.
    const cloud = await runCommand(
      makeInstallCommand,
      installArgs(w, "sysv", "--cloud", "https://amp.example.org", "--policy", "protect"),
    );
    assert.equal(cloud.code, 0, cloud.stderr);
    assert.deepEqual(JSON.parse(await read(w, "/etc/amp/amp.json")), {
      ...config,
      cloud: { url: "https://amp.example.org" },
    });
    assert.deepEqual(JSON.parse(await read(w, "/etc/amp/policy.json")), builtinPolicy("protect"));
  });
});

Deno.test("amp install --dry-run prints what it would do and changes nothing", async () => {
  await withWorld(async (w) => {
    const run = await runCommand(makeInstallCommand, installArgs(w, "upstart", "--dry-run"));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^ {2}would create {3}\/opt\/amp\/bin\/amp \(0755/m);
    assert.match(run.stdout, /^ {2}would create {3}\/etc\/init\/amp\.conf/m);
    assert.match(run.stdout, /dry run: nothing was changed/);
    assert.deepEqual(await treeEntries(w.root), []);
  });
});

for (const init of INITS) {
  Deno.test(`amp disable then enable (${init}) round-trips to the identical tree`, async () => {
    await withWorld(async (w) => {
      assert.equal((await runCommand(makeInstallCommand, installArgs(w, init))).code, 0);
      const installed = await snapshot(w.root);
      const noLog = (s: string[]) => s.filter((e) => !e.includes("ampinstaller.log"));

      const off = await runCommand(makeDisableCommand, ["--root", w.root, "--json"]);
      assert.equal(off.code, 0, off.stderr);
      const changes = JSON.parse(off.stdout).changes
        .filter((c: { action: string }) => c.action !== "unchanged")
        .map((c: { action: string; path: string }) => `${c.action} ${c.path}`);
      const expected: Record<InitSystem, string[]> = {
        upstart: [
          "renamed /etc/init/amp.conf",
          "renamed /etc/init/amp-updater.conf",
          "updated /etc/cron.hourly/amp-updater",
        ],
        systemd: [
          "removed /etc/systemd/system/multi-user.target.wants/amp.service",
          "removed /etc/systemd/system/timers.target.wants/amp-updater.timer",
        ],
        sysv: [
          ...["2", "3", "4", "5"].map((n) => `removed /etc/rc${n}.d/S20amp`),
          ...["0", "1", "6"].map((n) => `removed /etc/rc${n}.d/K80amp`),
          "updated /etc/cron.hourly/amp-updater",
        ],
      };
      assert.deepEqual(changes, expected[init]);
      const disabled = await snapshot(w.root);
      if (init === "upstart") {
        assert.ok(
          disabled.some((e) => e.startsWith(`f 0644 ${OWNER} /etc/init/amp.conf.disabled `)),
        );
        assert.ok(!disabled.some((e) => e.includes(" /etc/init/amp.conf ")));
      }
      if (init !== "systemd") {
        assert.ok(
          disabled.some((e) => e.startsWith(`f 0644 ${OWNER} /etc/cron.hourly/amp-updater `)),
        );
      }

      const twice = await runCommand(makeDisableCommand, ["--root", w.root]);
      assert.equal(twice.code, 0, twice.stderr);
      assert.match(twice.stdout, /already disabled/);
      assert.match(twice.stdout, /amp is already disabled: nothing changed/);
      assert.doesNotMatch(twice.stdout, /^ {2}(removed|renamed|updated|created)/m);
      assert.deepEqual(noLog(await snapshot(w.root)), noLog(disabled));

      const on = await runCommand(makeEnableCommand, ["--root", w.root]);
      assert.equal(on.code, 0, on.stderr);
      assert.deepEqual(noLog(await snapshot(w.root)), noLog(installed));
      const onTwice = await runCommand(makeEnableCommand, ["--root", w.root]);
      assert.equal(onTwice.code, 0);
      assert.match(onTwice.stdout, /amp is already enabled: nothing changed/);
    });
  });
}

Deno.test("disable and enable run the service manager only on the running host", async () => {
  await withWorld(async (w) => {
    await install({ root: w.root, init: "upstart", binary: w.binary, start: false });
    const commands = new RecordingCommands({
      "initctl stop amp": { code: 1, stdout: "", stderr: "initctl: Unknown instance:" },
    });
    const off = await disable({ root: w.root, commands, runHostCommands: true });
    assert.deepEqual(commands.calls, ["initctl stop amp"]);
    assert.deepEqual(off.notes.filter((n) => n.startsWith("could not stop")), []);
    await enable({ root: w.root, commands, runHostCommands: true });
    assert.deepEqual(commands.calls.slice(1), [
      "initctl reload-configuration",
      "initctl start amp",
    ]);

    const quiet = new RecordingCommands();
    await disable({ root: w.root, commands: quiet });
    await enable({ root: w.root, commands: quiet });
    assert.deepEqual(quiet.calls, [], "--root other than / runs nothing");
  });
});

Deno.test("install starts the service through the init system, and restarts it after an upgrade", async () => {
  assert.deepEqual(startCommands("systemd", { restart: false }), [
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "--now", "amp.service", "amp-updater.timer"],
  ]);
  assert.deepEqual(startCommands("sysv", { restart: true }), [["/etc/init.d/amp", "restart"]]);
  await withWorld(async (w) => {
    const commands = new RecordingCommands();
    const first = await install({
      root: w.root,
      init: "systemd",
      binary: w.binary,
      commands,
      runHostCommands: true,
    });
    assert.deepEqual(commands.calls, [
      "systemctl daemon-reload",
      "systemctl enable --now amp.service amp-updater.timer",
    ]);
    assert.ok(first.notes.includes("connector started"));
    await Deno.writeTextFile(w.binary, "new build");
    await install({
      root: w.root,
      init: "systemd",
      binary: w.binary,
      commands,
      runHostCommands: true,
    });
    assert.equal(commands.calls.at(-1), "systemctl restart amp.service");

    // A start that fails is exit 1, with what was done printed.
    const failing = new RecordingCommands({
      "/etc/init.d/amp start": { code: 1, stdout: "", stderr: "no fanotify" },
    });
    await assert.rejects(
      install({
        root: w.root,
        init: "sysv",
        binary: w.binary,
        commands: failing,
        runHostCommands: true,
      }),
      (error: Error) => {
        assert.equal(error.name, "ServiceFailedError");
        assert.match(
          error.message,
          /did not start: \/etc\/init\.d\/amp start exited 1: no fanotify/,
        );
        return true;
      },
    );
    const log = await read(w, "/var/log/amp/ampinstaller.log");
    assert.match(log, /connector not started: \/etc\/init\.d\/amp start exited 1: no fanotify/);
  });
});

Deno.test("amp uninstall keeps config, policy, state and logs; --purge leaves nothing of amp", async () => {
  for (const init of INITS) {
    await withWorld(async (w) => {
      assert.equal((await runCommand(makeInstallCommand, installArgs(w, init))).code, 0);
      await Deno.writeTextFile(`${w.root}/var/lib/amp/quarantine/q1`, "quarantined");
      await runCommand(makeDisableCommand, ["--root", w.root]); // disabled files go too

      const run = await runCommand(makeUninstallCommand, ["--root", w.root]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stdout,
        /^ {2}kept +\/var\/lib\/amp \(events, caches and the quarantine/m,
      );
      const left = await treeEntries(w.root);
      const amp = left.filter((e) => /amp/.test(e));
      assert.deepEqual(
        amp,
        [
          `d 0755 ${OWNER} /etc/amp`,
          `f 0600 ${OWNER} /etc/amp/amp.json`,
          `d 0755 ${OWNER} /etc/amp/lists`,
          `f 0644 ${OWNER} /etc/amp/policy.json`,
          `d 0700 ${OWNER} /var/lib/amp`,
          `f 0600 ${OWNER} /var/lib/amp/events.db`,
          `d 0700 ${OWNER} /var/lib/amp/quarantine`,
          `f 0644 ${OWNER} /var/lib/amp/quarantine/q1`,
          `d 0700 ${OWNER} /var/log/amp`,
          `f 0600 ${OWNER} /var/log/amp/ampinstaller.log`,
        ].sort(),
      );
      assert.match(await read(w, "/var/log/amp/ampinstaller.log"), /connector uninstalled/);

      const again = await runCommand(makeUninstallCommand, ["--root", w.root]);
      assert.equal(again.code, 0);
      assert.match(again.stdout, /amp is not installed under .*; kept/);

      const purge = await runCommand(makeUninstallCommand, ["--root", w.root, "--purge"]);
      assert.equal(purge.code, 0, purge.stderr);
      const rest = await treeEntries(w.root);
      assert.deepEqual(rest.filter((e) => /amp/.test(e)), [], `${init}: ${rest.join("\n")}`);
      assert.ok(rest.every((e) => e.startsWith("d ")), "only shared system directories remain");
    });
  }
});

Deno.test("amp uninstall --purge --dry-run lists everything and removes nothing", async () => {
  await withWorld(async (w) => {
    assert.equal((await runCommand(makeInstallCommand, installArgs(w, "systemd"))).code, 0);
    const before = await snapshot(w.root);
    const run = await runCommand(makeUninstallCommand, ["--root", w.root, "--purge", "--dry-run"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /would remove {3}\/opt\/amp \(empty\)/);
    assert.match(run.stdout, /would remove {3}\/var\/lib\/amp \(--purge\)/);
    assert.deepEqual(await snapshot(w.root), before);
  });
});

Deno.test("bad input gives a clear error, exit 2, and changes nothing", async (t) => {
  await withWorld(async (w) => {
    // An existing install, so that "changes nothing" covers an upgrade too.
    assert.equal((await runCommand(makeInstallCommand, installArgs(w, "sysv"))).code, 0);
    const before = await snapshot(w.root);
    const cases: [string, string[], RegExp][] = [
      [
        "unknown init",
        installArgs(w, "sysv").with(3, "runit"),
        /Allowed choices are upstart, systemd, sysv/,
      ],
      [
        "unknown policy",
        installArgs(w, "sysv", "--policy", "paranoid"),
        /Allowed choices are audit, protect/,
      ],
      [
        "binary missing",
        installArgs(w, "sysv").with(5, `${w.dir}/nope`),
        /--binary .*nope: no such file/,
      ],
      ["binary is a directory", installArgs(w, "sysv").with(5, w.dir), /not a regular file/],
      [
        "bad cloud URL",
        installArgs(w, "sysv", "--cloud", "ftp://x"),
        /Invalid setting for amp\.json/,
      ],
      ["root missing", installArgs(w, "sysv").with(1, `${w.dir}/none`), /does not exist/],
    ];
    for (const [name, args, message] of cases) {
      await t.step(name, async () => {
        const run = await runCommand(makeInstallCommand, args);
        assert.equal(run.code, 2, `${run.stdout}\n${run.stderr}`);
        assert.match(run.stderr, message);
        assert.deepEqual(await snapshot(w.root), before);
      });
    }
    await t.step("from source without --binary", async () => {
      assert.ok(runningFromSource(), "the tests run under deno");
      const run = await runCommand(makeInstallCommand, [
        "--root",
        w.root,
        "--init",
        "sysv",
        "--no-start",
      ]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /running from source .* --binary PATH/);
      assert.deepEqual(await snapshot(w.root), before);
    });
    await t.step("a broken amp.json is not overwritten", async () => {
      await Deno.writeTextFile(`${w.root}/etc/amp/amp.json`, '{"logLevel": "loud"}');
      const broken = await snapshot(w.root);
      const run = await runCommand(makeInstallCommand, installArgs(w, "sysv"));
      assert.equal(run.code, 2);
      assert.match(run.stderr, /Invalid config .*amp\.json[\s\S]*Fix or remove it/);
      assert.deepEqual(await snapshot(w.root), broken);
    });
  });
  await withWorld(async (w) => {
    await t.step("a file where a directory is expected", async () => {
      await Deno.mkdir(`${w.root}/etc`);
      await Deno.writeTextFile(`${w.root}/etc/amp`, "not a directory");
      const before = await snapshot(w.root);
      const run = await runCommand(makeInstallCommand, installArgs(w, "systemd"));
      assert.equal(run.code, 2);
      assert.match(run.stderr, /etc\/amp is not a directory/);
      assert.deepEqual(await snapshot(w.root), before);
    });
  });
  await withWorld(async (w) => {
    await t.step("disable when amp is not installed", async () => {
      const run = await runCommand(makeDisableCommand, ["--root", w.root]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /amp is not installed for .* run amp install first/);
      assert.deepEqual(await treeEntries(w.root), []);
    });
  });
});

Deno.test("install into a read-only root is refused before any change", async () => {
  await withWorld(async (w) => {
    const mount = await new Deno.Command("mount", {
      args: ["--bind", w.root, w.root],
      stderr: "piped",
    }).output();
    if (!mount.success) {
      if (IN_CI) assert.fail(`mount --bind failed: ${new TextDecoder().decode(mount.stderr)}`);
      console.log("service_test: skipping read-only root: cannot bind-mount here");
      return;
    }
    try {
      const ro = await new Deno.Command("mount", {
        args: ["-o", "remount,bind,ro", w.root],
      }).output();
      assert.ok(ro.success, "remount read-only");
      const run = await runCommand(makeInstallCommand, installArgs(w, "systemd"));
      assert.equal(run.code, 2, run.stdout);
      assert.match(run.stderr, /Cannot write in .*root: .*[Rr]ead-only file system/);
      assert.deepEqual(await treeEntries(w.root), []);
    } finally {
      await new Deno.Command("umount", { args: [w.root] }).output();
    }
  });
});

Deno.test("the installer log has the reference's steps in order; events.db has the install events", async () => {
  await withWorld(async (w) => {
    assert.equal((await runCommand(makeInstallCommand, installArgs(w, "systemd"))).code, 0);
    const log = await read(w, "/var/log/amp/ampinstaller.log");
    const steps = [
      "executing pre",
      "creating directories",
      "installing binary",
      "writing configuration",
      "executing post",
      "sending event",
      "starting connector",
      "connector not started: --no-start",
    ];
    let at = -1;
    for (const step of steps) {
      const next = log.indexOf(`: ${step}`, at + 1);
      assert.ok(next > at, `"${step}" after the previous step in:\n${log}`);
      at = next;
    }
    assert.match(log, /ampinstaller\[\d+\]: info: created \/opt\/amp\/bin\/amp \(0755/);
    const events = await EventsDb.open(`${w.root}/var/lib/amp/events.db`);
    try {
      const list = (await events.list()).reverse();
      assert.deepEqual(list.map((e) => e.type), ["Install Started", "Install Completed"]);
      assert.deepEqual(list[1].policy, { name: "Audit Policy for Linux", id: 1 });
      assert.equal(list[1].details?.init, "systemd");
    } finally {
      await events.close();
    }
  });
});

Deno.test("detectInit() reads a root's files: systemd, upstart, else sysv", async () => {
  await withWorld(async (w) => {
    assert.equal((await detectInit(w.root)).init, "sysv");
    await Deno.mkdir(`${w.root}/etc/init`, { recursive: true });
    assert.equal((await detectInit(w.root)).init, "upstart");
    await Deno.mkdir(`${w.root}/run/systemd/system`, { recursive: true });
    assert.equal((await detectInit(w.root)).init, "systemd");
    // Without --init, install records what it detected.
    const run = await runCommand(makeInstallCommand, [
      "--root",
      w.root,
      "--binary",
      w.binary,
      "--no-start",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /init systemd: .*run\/systemd\/system exists/);
    assert.equal(JSON.parse(await read(w, "/etc/amp/amp.json")).service.init, "systemd");
  });
});

Deno.test("the sysv script starts, reports, reloads and stops a daemon", async () => {
  if (!hasCompiler()) {
    if (IN_CI) assert.fail("cc is needed");
    console.log("service_test: skipping the sysv script run: no C compiler");
    return;
  }
  await withWorld(async (w) => {
    // A stand-in for amp: `amp daemon` waits for signals, counts SIGHUPs in a file.
    const marker = `${w.dir}/hups`;
    await Deno.writeTextFile(
      `${w.dir}/fake.c`,
      `#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static volatile sig_atomic_t hup = 0;
static void on_hup(int s) { (void)s; hup = 1; }
int main(int argc, char **argv) {
  if (argc != 2 || strcmp(argv[1], "daemon") != 0) return 2;
  signal(SIGHUP, on_hup);
  for (;;) {
    pause();
    if (hup) { FILE *f = fopen("${marker}", "a"); if (f) { fputs("hup\\n", f); fclose(f); } hup = 0; }
  }
}
`,
    );
    const daemon = `${w.dir}/amp-daemon`;
    const cc = await new Deno.Command("cc", { args: ["-o", daemon, `${w.dir}/fake.c`] }).output();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    const script = `${w.dir}/amp.init`;
    const pidFile = `${w.dir}/amp.pid`;
    await Deno.writeTextFile(script, sysvInitScript({ binary: daemon, pidFile }), { mode: 0o755 });
    const sh = async (arg: string) => {
      const out = await new Deno.Command(script, { args: [arg], stdout: "piped", stderr: "piped" })
        .output();
      const d = new TextDecoder();
      return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
    };
    try {
      assert.equal((await sh("status")).code, 3);
      assert.equal((await sh("start")).code, 0);
      let status = await sh("status");
      for (let i = 0; i < 50 && status.code !== 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = await sh("status");
      }
      assert.equal(status.code, 0, status.text);
      const pid = Number((await Deno.readTextFile(pidFile)).trim());
      assert.match(status.text, new RegExp(`amp is running \\(pid ${pid}\\)`));
      assert.match((await sh("start")).text, /already running/);
      assert.equal((await sh("reload")).code, 0);
      let hups = "";
      for (let i = 0; i < 50 && hups === ""; i++) {
        await new Promise((r) => setTimeout(r, 100));
        hups = await Deno.readTextFile(marker).catch(() => "");
      }
      assert.equal(hups, "hup\n");
      assert.equal((await sh("stop")).code, 0);
      assert.equal((await sh("status")).code, 3);
      assert.equal((await sh("bogus")).code, 2);
    } finally {
      await sh("stop");
    }
  });
});

Deno.test("uninstall stops and disables the service on the running host before removing it", async () => {
  await withWorld(async (w) => {
    await install({ root: w.root, init: "systemd", binary: w.binary, start: false });
    const commands = new RecordingCommands();
    const report = await uninstall({ root: w.root, commands, runHostCommands: true });
    assert.deepEqual(commands.calls, [
      "systemctl disable --now amp.service amp-updater.timer",
      "systemctl daemon-reload",
    ]);
    assert.ok(
      report.changes.some((c) =>
        c.action === "removed" && c.path === "/etc/systemd/system/amp.service"
      ),
    );
    assert.equal(await Deno.lstat(`${w.root}/opt/amp`).catch(() => undefined), undefined);
  });
});
