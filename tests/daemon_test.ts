/**
 * End-to-end tests of `amp daemon` with real fanotify, real processes and
 * real databases, each in its own host root with a private watched tmpfs.
 * Root only; outside CI they skip with the reason printed.
 */

import assert from "node:assert/strict";
import { amp } from "./amp_cli.ts";
import { daemonSkip, events, startDaemon, waitFor } from "./fixtures/daemon.ts";
import { eicar, EICAR_SIGNATURE, sha256 } from "./fixtures/samples.ts";

const ignore = daemonSkip("daemon_test") !== undefined;
const PROTECT = { id: 2, name: "Protect Policy for Linux", mode: { file: "quarantine" as const } };

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "amp daemon (protect) quarantines a written sample within a second; restore gives it back",
  ignore,
  async fn() {
    const d = await startDaemon({ policy: PROTECT });
    try {
      const sample = `${d.watched}/invoice.com`;
      // Written by another user with its own mode, to check both come back.
      const write = await new Deno.Command("setpriv", {
        args: [
          "--reuid=1234",
          "--regid=1234",
          "--clear-groups",
          "sh",
          "-c",
          `umask 027; printf '%s' "$0" > ${sample}`,
          eicar(),
        ],
      }).output();
      assert.ok(write.success, new TextDecoder().decode(write.stderr));
      const written = performance.now();
      await waitFor(
        "the sample to leave",
        async () => (await exists(sample)) ? undefined : true,
        1_000,
      );
      const elapsed = performance.now() - written;
      assert.ok(elapsed < 1_000, `quarantined after ${elapsed} ms`);

      const quarantined = await waitFor(
        "Threat Quarantined",
        async () => (await events(d)).find((e) => e.type === "Threat Quarantined"),
      );
      assert.equal(quarantined.path, sample);
      assert.match(String(quarantined.detection), new RegExp(`^${EICAR_SIGNATURE}`));
      assert.equal(quarantined.sha256, sha256(eicar()));
      assert.equal(quarantined.pid !== undefined, true);

      const list = await d.amp(["quarantine", "list", "--json"]);
      assert.equal(list.code, 0, list.stderr);
      const { records } = JSON.parse(list.stdout) as {
        records: Array<{ id: number; path: string }>;
      };
      assert.equal(records.length, 1);
      assert.equal(records[0].path, sample);

      const restore = await d.amp(["quarantine", "restore", String(records[0].id)]);
      assert.equal(restore.code, 0, restore.stderr + restore.stdout);
      assert.equal(await Deno.readTextFile(sample), eicar());
      const st = await Deno.stat(sample);
      assert.equal(st.uid, 1234);
      assert.equal(st.gid, 1234);
      assert.equal(st.mode! & 0o7777, 0o640);
      // Restored by the administrator: not convicted again.
      await new Promise((r) => setTimeout(r, 1_500));
      assert.ok(await exists(sample), "the restored file was quarantined again");
      const types = (await events(d)).map((e) => e.type);
      assert.ok(types.includes("Quarantine Restored"));

      const again = await d.amp(["quarantine", "restore", String(records[0].id)]);
      assert.notEqual(again.code, 0);
    } finally {
      const { code } = await d.stop();
      assert.equal(code, 0, d.log());
    }
  },
});

Deno.test({
  name: "amp daemon (audit) records a written sample and leaves it in place",
  ignore,
  async fn() {
    const d = await startDaemon();
    try {
      const sample = `${d.watched}/left.com`;
      await Deno.writeTextFile(sample, eicar());
      const detected = await waitFor(
        "Threat Detected",
        async () =>
          (await events(d)).find((e) => e.type === "Threat Detected" && e.path === sample),
      );
      assert.equal(detected.action, "detected");
      assert.match(String(detected.detection), new RegExp(`^${EICAR_SIGNATURE}`));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await Deno.readTextFile(sample), eicar());
      const types = (await events(d)).map((e) => e.type);
      assert.ok(!types.includes("Threat Quarantined"));
      const list = await d.amp(["quarantine", "list", "--json"]);
      assert.deepEqual(JSON.parse(list.stdout).records, []);
    } finally {
      await d.stop();
    }
  },
});

async function blockedSleep(execute: "passive" | "active", file: "audit" | "quarantine") {
  const sleepHash = sha256(await Deno.readFile("/bin/sleep"));
  const copy = "sleepy";
  const d = await startDaemon({
    policy: { id: 9, name: "Exec test", mode: { file, execute } },
    blockList: [sleepHash],
    // Copied in before the daemon starts: under Protect it would be quarantined on access.
    prepare: async (watched) => {
      await Deno.copyFile("/bin/sleep", `${watched}/${copy}`);
      await Deno.chmod(`${watched}/${copy}`, 0o755);
      await Deno.copyFile("/bin/true", `${watched}/fine`);
      await Deno.chmod(`${watched}/fine`, 0o755);
    },
  });
  return { d, copy: `${d.watched}/${copy}` };
}

Deno.test({
  name: "amp daemon (protect, passive) kills a block-listed program it sees executed",
  ignore,
  async fn() {
    const { d, copy } = await blockedSleep("passive", "quarantine");
    try {
      const started = performance.now();
      const child = new Deno.Command(copy, { args: ["30"] }).spawn();
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      assert.ok(performance.now() - started < 10_000);
      const killed = await waitFor(
        "Process Killed",
        async () => (await events(d)).find((e) => e.type === "Process Killed"),
      );
      assert.equal(killed.pid, child.pid);
      assert.equal(killed.path, copy);
      assert.equal(killed.executable, copy);
      assert.equal(killed.detection, "Amp.Test.Blocked");
      const executed = (await events(d)).find((e) => e.type === "Executed Malware");
      assert.equal(executed?.action, "kill");
      // Under Protect the file is quarantined as well.
      await waitFor(
        "Threat Quarantined",
        async () =>
          (await events(d)).find((e) => e.type === "Threat Quarantined" && e.path === copy),
      );
      // A program that is not listed runs undisturbed.
      const ok = await new Deno.Command(`${d.watched}/fine`).output();
      assert.equal(ok.code, 0);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp daemon (protect, active) denies the execution of a block-listed program",
  ignore,
  async fn() {
    const { d, copy } = await blockedSleep("active", "quarantine");
    try {
      const out = await new Deno.Command("sh", {
        args: ["-c", `${copy} 0; echo "exit=$?"`],
        stderr: "piped",
        stdout: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.match(text, /Operation not permitted/);
      assert.match(text, /exit=126/);
      const blocked = await waitFor(
        "Executed Malware",
        async () => (await events(d)).find((e) => e.type === "Executed Malware"),
      );
      assert.equal(blocked.action, "blocked");
      assert.equal(blocked.executable, copy);
      assert.ok(!(await events(d)).some((e) => e.type === "Process Killed"));
      const ok = await new Deno.Command(`${d.watched}/fine`).output();
      assert.equal(ok.code, 0);
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(status.monitor.onExecute, "active");
      assert.equal(status.monitor.executionsBlocked, 1);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp daemon (audit) records an executed block-listed program and lets it run",
  ignore,
  async fn() {
    const { d, copy } = await blockedSleep("active", "audit");
    try {
      const out = await new Deno.Command(copy, { args: ["0"] }).output();
      assert.equal(out.code, 0);
      const executed = await waitFor(
        "Executed Malware",
        async () => (await events(d)).find((e) => e.type === "Executed Malware"),
      );
      assert.equal(executed.action, "audit");
      const types = (await events(d)).map((e) => e.type);
      assert.ok(!types.includes("Process Killed"));
      assert.ok(!types.includes("Threat Quarantined"));
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp daemon keeps the last good policy when SIGHUP brings a broken one",
  ignore,
  async fn() {
    const d = await startDaemon();
    try {
      await Deno.writeTextFile(`${d.root}/etc/amp/policy.json`, '{"id": 3, "name": "Broken", ');
      d.process.kill("SIGHUP");
      const failure = await waitFor(
        "Policy Update Failure",
        async () => (await events(d)).find((e) => e.type === "Policy Update Failure"),
      );
      assert.match(JSON.stringify(failure.details), /Invalid JSON/);
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(status.policy.name, "Audit Policy for Linux");

      await Deno.writeTextFile(`${d.root}/etc/amp/policy.json`, JSON.stringify(PROTECT));
      d.process.kill("SIGHUP");
      await waitFor(
        "Policy Update",
        async () => (await events(d)).find((e) => e.type === "Policy Update"),
      );
      const after = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(after.policy.name, "Protect Policy for Linux");
      assert.equal(after.mode.file, "quarantine");
      // The new policy is in force for real-time protection.
      await Deno.writeTextFile(`${d.watched}/late.com`, eicar());
      await waitFor(
        "Threat Quarantined",
        async () => (await events(d)).find((e) => e.type === "Threat Quarantined"),
      );
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp status answers root, refuses others, and exits 2 without a daemon",
  ignore,
  async fn() {
    const d = await startDaemon();
    try {
      const status = await d.amp(["status"]);
      assert.equal(status.code, 0, status.stderr);
      const lines = status.stdout.split("\n");
      assert.equal(lines[0], "Trying to connect...");
      assert.equal(lines[1], "Connected.");
      assert.match(status.stdout, /^Scan: +Ready for scan$/m);
      assert.match(status.stdout, /^Policy: +Audit Policy for Linux \(#1\)$/m);
      assert.match(status.stdout, /^Monitor: +fanotify \(on-access on, on-execute passive\)$/m);
      assert.match(status.stdout, /ClamAV [\d.]+ \(2 signatures\)/);

      // A second daemon on the same root is refused before it touches anything.
      const second = await amp(["daemon", "--root", d.root]);
      assert.equal(second.code, 1);
      assert.match(second.stderr, /Another amp daemon is running/);
      assert.ok(!(await events(d)).some((e) => e.type === "Connector Stopped"));

      const nobody = await amp(["status", "--root", d.root], {
        prefix: ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
      });
      assert.equal(nobody.code, 2);
      assert.match(nobody.stderr, /[Pp]ermission denied/);
    } finally {
      await d.stop();
    }
    const none = await amp(["status", "--root", d.root]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /not running/);
    const json = await amp(["status", "--json", "--root", d.root]);
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stdout).connected, false);
  },
});

Deno.test({
  name: "amp daemon convicts a sample planted among 20,000 files written in a burst",
  ignore,
  async fn() {
    const d = await startDaemon();
    try {
      const dir = `${d.watched}/storm`;
      await Deno.mkdir(dir);
      const sample = `${dir}/f10000.com`;
      const started = performance.now();
      const out = await new Deno.Command("bash", {
        args: [
          "-c",
          `cd ${dir}; for i in $(seq 1 20000); do ` +
          `if [ $i = 10000 ]; then printf '%s' "$0" > f$i.com; else echo "file $i" > f$i; fi; done`,
          eicar(),
        ],
      }).output();
      assert.ok(out.success);
      const writeMs = performance.now() - started;
      const detected = await waitFor(
        "the planted sample",
        async () =>
          (await events(d)).find((e) => e.type === "Threat Detected" && e.path === sample),
        60_000,
      );
      assert.match(String(detected.detection), new RegExp(`^${EICAR_SIGNATURE}`));
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      console.log(
        `storm: 20000 files written in ${(writeMs / 1000).toFixed(1)} s; ` +
          `scanned ${status.monitor.onAccessScanned}, overflows ${status.monitor.kernelOverflows}, ` +
          `queue full ${status.monitor.queueFull}, rescans ${status.monitor.rescans}`,
      );
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp scan goes through a running daemon and runs standalone without one",
  ignore,
  async fn() {
    const d = await startDaemon();
    try {
      await Deno.mkdir(`${d.watched}/tree`);
      await Deno.writeTextFile(`${d.watched}/tree/clean.txt`, "clean\n");
      const via = await d.amp(["scan", "--custom", `${d.watched}/tree`]);
      assert.equal(via.code, 0, via.stderr);
      assert.match(via.stdout, /scanned by the daemon/);
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(status.lastScan.kind, "custom");
      assert.equal(status.lastScan.summary.files, 1);
      const stop = await d.amp(["scan", "--stop"]);
      assert.equal(stop.code, 2);
      assert.match(stop.stderr, /No scan is running/);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp scan through the daemon pauses, resumes and stops on request",
  ignore,
  async fn() {
    // On-access off: the files are not in the verdict cache, so the scan takes a while.
    const d = await startDaemon({
      policy: { id: 1, name: "Audit Policy for Linux", monitor: { onAccess: false } },
    });
    try {
      const dir = `${d.watched}/many`;
      await Deno.mkdir(dir);
      const write = await new Deno.Command("bash", {
        args: ["-c", `cd ${dir}; for i in $(seq 1 30000); do echo "unique $i" > f$i; done`],
      }).output();
      assert.ok(write.success);
      const scan = d.amp(["scan", "--custom", dir, "--json"]);
      const running = await waitFor("the scan to start", async () => {
        const s = JSON.parse((await d.amp(["status", "--json"])).stdout);
        return s.scan ? s : undefined;
      }, 20_000);
      assert.equal(running.scan.kind, "custom");
      const pause = await d.amp(["scan", "--pause"]);
      assert.equal(pause.code, 0, pause.stderr);
      assert.match(pause.stdout, /Paused the custom scan/);
      const status = await d.amp(["status"]);
      assert.match(status.stdout, /^Scan: +Paused \(custom /m);
      const paused = JSON.parse((await d.amp(["status", "--json"])).stdout).scan.summary.files;
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(
        JSON.parse((await d.amp(["status", "--json"])).stdout).scan.summary.files,
        paused,
      );
      assert.equal((await d.amp(["scan", "--resume"])).code, 0);
      const stop = await d.amp(["scan", "--stop"]);
      assert.equal(stop.code, 0, stop.stderr);
      const done = await scan;
      assert.equal(done.code, 2, "a stopped scan exits 2");
      const report = JSON.parse(done.stdout);
      assert.equal(report.stopped, true);
      assert.ok(report.summary.files < 30000);
      const last = JSON.parse((await d.amp(["status", "--json"])).stdout).lastScan;
      assert.equal(last.stopped, true);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp daemon leaves alone the files written by an excluded process",
  ignore,
  async fn() {
    // bash is excluded, dash (sh) is not. Each writer stays alive a moment after
    // its write: a process that is gone when its event is read cannot be matched.
    const d = await startDaemon({
      policy: {
        id: 1,
        name: "Audit Policy for Linux",
        processExclusions: [{ executable: "/usr/bin/bash" }],
      },
    });
    try {
      const byBash = `${d.watched}/by-bash.com`;
      const byDash = `${d.watched}/by-dash.com`;
      for (const [shell, file] of [["bash", byBash], ["dash", byDash]]) {
        const out = await new Deno.Command(shell, {
          args: ["-c", `printf '%s' "$0" > ${file}; /bin/sleep 1; echo done`, eicar()],
        }).output();
        assert.ok(out.success);
      }
      await waitFor(
        "the dash sample",
        async () =>
          (await events(d)).find((e) => e.type === "Threat Detected" && e.path === byDash),
      );
      const detected = (await events(d)).filter((e) => e.type === "Threat Detected");
      assert.ok(
        !detected.some((e) => e.path === byBash),
        `a file written by bash was scanned: ${JSON.stringify(detected)}`,
      );
      const status = JSON.parse((await d.amp(["status", "--json"])).stdout);
      assert.equal(status.monitor.detections, 1);
    } finally {
      await d.stop();
    }
  },
});

Deno.test({
  name: "amp daemon spares an excluded writer that exits right after writing (process table)",
  ignore,
  async fn() {
    // dash is excluded. It writes and exits at once: by the time the event is
    // read it is gone from /proc, and only the proc connector's table, which
    // saw its exec 50 ms earlier, knows which program it was.
    const d = await startDaemon({
      policy: {
        id: 1,
        name: "Audit Policy for Linux",
        processExclusions: [{ executable: "/usr/bin/dash" }],
      },
    });
    try {
      const byDash = `${d.watched}/quick-dash.com`;
      const byBash = `${d.watched}/quick-bash.com`;
      for (const [shell, file] of [["dash", byDash], ["bash", byBash]]) {
        const out = await new Deno.Command(shell, {
          args: ["-c", `/bin/sleep 0.05; printf '%s' "$0" > ${file}`, eicar()],
        }).output();
        assert.ok(out.success);
      }
      await waitFor(
        "the bash sample",
        async () =>
          (await events(d)).find((e) => e.type === "Threat Detected" && e.path === byBash),
      );
      const detected = (await events(d)).filter((e) => e.type === "Threat Detected");
      assert.ok(
        !detected.some((e) => e.path === byDash),
        `the excluded, exited dash was not recognised: ${JSON.stringify(detected)}`,
      );
      assert.match(d.log(), /Process table on/);
    } finally {
      await d.stop();
    }
  },
});
