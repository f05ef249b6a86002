/**
 * `amp scan` end to end: the real CLI, real libclamav with a signature
 * database built by the test, real SQLite files under a temporary --root.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { amp, ampJson } from "./amp_cli.ts";
import {
  eicar,
  EICAR_SIGNATURE,
  HASH_SAMPLE,
  HASH_SIGNATURE,
  run,
  sha256,
  writeSamples,
  writeSignatures,
} from "./fixtures/samples.ts";

interface World {
  dir: string;
  root: string;
  sigs: string;
  samples: string;
}

async function world(): Promise<World> {
  const dir = await Deno.makeTempDir({ prefix: "amp-e2e-" });
  const w = { dir, root: `${dir}/root`, sigs: `${dir}/sigs`, samples: `${dir}/samples` };
  await Deno.mkdir(w.root);
  await writeSignatures(w.sigs);
  await writeSamples(w.samples);
  return w;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const w = await world();
  try {
    await fn(w);
  } finally {
    await Deno.remove(w.dir, { recursive: true });
  }
}

async function writePolicy(w: World, policy: Record<string, unknown>): Promise<void> {
  await Deno.mkdir(`${w.root}/etc/amp`, { recursive: true });
  await Deno.writeTextFile(
    `${w.root}/etc/amp/policy.json`,
    JSON.stringify({ id: 7, name: "Test Policy", ...policy }),
  );
}

function names(detections: Array<{ path: string; name: string }>, base: string) {
  return detections.map((d) => `${d.path.slice(base.length + 1)} ${d.name}`).sort();
}

Deno.test("amp scan finds plain, zipped and tar.gz-nested EICAR and a ClamAV hash signature", async () => {
  await withWorld(async (w) => {
    const { code, report } = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.equal(code, 1);
    assert.deepEqual(names(report.detections, w.samples), [
      `eicar.com ${EICAR_SIGNATURE}.UNOFFICIAL`,
      `eicar.zip ${EICAR_SIGNATURE}.UNOFFICIAL`,
      `hash-sample.txt ${HASH_SIGNATURE}.UNOFFICIAL`,
      `nested.tar.gz ${EICAR_SIGNATURE}.UNOFFICIAL`,
    ]);
    assert.ok(report.detections.every((d) => d.engine === "clamav"));
    const plain = report.detections.find((d) => d.path.endsWith("/eicar.com"));
    assert.equal(plain?.sha256, sha256(eicar()));
    assert.equal(report.summary.files, 5);
    assert.equal(report.summary.errors, 0);
    assert.equal(report.policy.name, "Audit Policy for Linux");
  });
});

Deno.test("amp scan prints one line per detection and a summary, exit 1", async () => {
  await withWorld(async (w) => {
    const { code, stdout } = await amp([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.equal(code, 1);
    assert.match(
      stdout,
      new RegExp(`${w.samples}/eicar.com: ${EICAR_SIGNATURE}\\.UNOFFICIAL FOUND \\(clamav\\)`),
    );
    assert.match(stdout, /Scanned files: 5\n/);
    assert.match(stdout, /Detections: 4\n/);
    assert.match(stdout, /Errors: 0\n/);
    assert.match(stdout, /Time: [\d.]+ s \([\d.]+ MB\/s\)/);
  });
});

Deno.test("amp scan exits 0 on a clean folder", async () => {
  await withWorld(async (w) => {
    await Deno.mkdir(`${w.dir}/clean`);
    await Deno.writeTextFile(`${w.dir}/clean/a.txt`, "fine\n");
    const { code, report } = await ampJson([
      "scan",
      "--custom",
      `${w.dir}/clean`,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.equal(code, 0);
    assert.equal(report.summary.files, 1);
    assert.equal(report.summary.detections, 0);
  });
});

Deno.test("amp scan convicts from the simple custom detections list and clears from the allow list", async () => {
  await withWorld(async (w) => {
    await Deno.mkdir(`${w.root}/etc/amp/lists`, { recursive: true });
    await Deno.writeTextFile(
      `${w.root}/etc/amp/lists/simple_custom_detections.txt`,
      `# custom\n${sha256("nothing to see here\n").toUpperCase()} Custom.Clean.Looking\n`,
    );
    await Deno.writeTextFile(`${w.root}/etc/amp/lists/allow_list.txt`, `${sha256(eicar())}\n`);
    const { code, report } = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.equal(code, 1);
    const byPath = Object.fromEntries(
      report.detections.map((d) => [d.path.slice(w.samples.length + 1), d]),
    );
    assert.equal(byPath["clean.txt"]?.name, "Custom.Clean.Looking");
    assert.equal(byPath["clean.txt"]?.engine, "hashlist");
    assert.equal(byPath["eicar.com"], undefined, "allow-listed EICAR must not be a detection");
    assert.ok(byPath["eicar.zip"], "the zip's own hash is not allow-listed");
  });
});

Deno.test("amp scan reports a file over the size limit as skipped, never clean", async () => {
  await withWorld(async (w) => {
    await writePolicy(w, { scan: { maxFileSize: "1k", maxArchiveSize: "4k" } });
    await Deno.mkdir(`${w.dir}/big`);
    await Deno.writeTextFile(`${w.dir}/big/padded.com`, eicar() + " ".repeat(2048));
    const { code, report } = await ampJson([
      "scan",
      "--custom",
      `${w.dir}/big`,
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.equal(report.summary.files + report.summary.skipped, 6);
    const skipped = report.skipped.find((s) => s.path.endsWith("/padded.com"));
    assert.equal(skipped?.reason, "too-large");
    assert.ok(!report.detections.some((d) => d.path.endsWith("/padded.com")));
    // Archives within the archive limit are still scanned inside.
    assert.ok(report.detections.some((d) => d.path.endsWith("/eicar.zip")));
    assert.equal(code, 1);
  });
});

Deno.test("amp scan finds a sample whose name is not UTF-8 and records it as bytes", async () => {
  await withWorld(async (w) => {
    await run(
      "sh",
      ["-c", `printf '%s' "$1" > "$(printf 'bad\\377\\376.com')"`, "sh", eicar()],
      w.samples,
    );
    const { code, report } = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.equal(code, 1);
    assert.ok(report.detections.some((d) => d.path === `${w.samples}/bad\\xff\\xfe.com`));
    const db = new DatabaseSync(`${w.root}/var/lib/amp/events.db`);
    try {
      const row = db.prepare("SELECT path, path_text FROM events WHERE path_text LIKE '%bad%'")
        .get() as {
          path: Uint8Array;
          path_text: string;
        };
      assert.deepEqual(
        [...row.path.slice(-7)],
        [0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x63, 0x6f, 0x6d].slice(-7),
      );
      assert.equal(row.path_text, `${w.samples}/bad\\xff\\xfe.com`);
    } finally {
      db.close();
    }
  });
});

Deno.test("amp scan reports an unreadable file as an error and goes on (exit 1 with detections)", async () => {
  await withWorld(async (w) => {
    await Deno.writeTextFile(`${w.samples}/secret.bin`, "private\n");
    await Deno.chmod(`${w.samples}/secret.bin`, 0o000);
    await Deno.mkdir(`${w.samples}/locked`);
    await Deno.writeTextFile(`${w.samples}/locked/inside.com`, eicar());
    await Deno.chmod(`${w.samples}/locked`, 0o000);
    // Root reads everything: take away its override so the open really fails.
    const prefix = Deno.uid() === 0
      ? ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]
      : [];
    const { code, report } = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ], { prefix });
    const error = report.errors.find((e) => e.path.endsWith("/secret.bin"));
    assert.match(error?.error ?? "", /EACCES/);
    const dirError = report.errors.find((e) => e.path.endsWith("/locked"));
    assert.match(dirError?.error ?? "", /EACCES/, "an unreadable directory is an error too");
    assert.equal(report.summary.detections, 4);
    assert.equal(code, 1);
    await Deno.remove(`${w.samples}/eicar.com`);
    await Deno.remove(`${w.samples}/eicar.zip`);
    await Deno.remove(`${w.samples}/nested.tar.gz`);
    await Deno.remove(`${w.samples}/hash-sample.txt`);
    const only = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ], {
      prefix,
    });
    assert.equal(only.code, 2, "errors without detections exit 2");
    await Deno.chmod(`${w.samples}/locked`, 0o700);
  });
});

Deno.test("amp scan applies path, wildcard and extension exclusions", async () => {
  await withWorld(async (w) => {
    await Deno.mkdir(`${w.samples}/skipme`);
    await Deno.writeTextFile(`${w.samples}/skipme/x.com`, eicar());
    await writePolicy(w, {
      exclusions: [
        { type: "path", path: `${w.samples}/skipme` },
        { type: "wildcard", pattern: `${w.samples}/*.zip` },
        { type: "extension", extension: ".GZ" },
      ],
    });
    const { report } = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.deepEqual(names(report.detections, w.samples), [
      `eicar.com ${EICAR_SIGNATURE}.UNOFFICIAL`,
      `hash-sample.txt ${HASH_SIGNATURE}.UNOFFICIAL`,
    ]);
    const excluded = report.skipped.filter((s) => s.reason === "excluded").map((s) => s.path)
      .sort();
    assert.deepEqual(excluded, [
      `${w.samples}/eicar.zip`,
      `${w.samples}/nested.tar.gz`,
      `${w.samples}/skipme`,
    ]);
  });
});

Deno.test("amp scan rejects a broken policy with the field named and no stack trace", async () => {
  await withWorld(async (w) => {
    await writePolicy(w, { mode: { file: "delete" } });
    const bad = await amp(["scan", "--custom", w.samples, "--db-dir", w.sigs, "--root", w.root]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Invalid policy .*policy\.json/);
    assert.match(bad.stderr, /mode\.file/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, "no stack trace");
    await Deno.writeTextFile(`${w.root}/etc/amp/policy.json`, "{ not json");
    const json = await amp(["scan", "--custom", w.samples, "--db-dir", w.sigs, "--root", w.root]);
    assert.equal(json.code, 2);
    assert.match(json.stderr, /Invalid JSON in policy/);
  });
});

Deno.test("amp scan usage errors exit 2", async () => {
  const none = await amp(["scan"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /exactly one of --custom/);
  const both = await amp(["scan", "--flash", "--full"]);
  assert.equal(both.code, 2);
  const unknown = await amp(["scan", "--bogus"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option/);
  const help = await amp(["scan", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Exit status: 0 nothing found, 1 detections, 2 errors/);
});

Deno.test("amp scan writes Scan Started, Threat Detected and Scan Completed events to events.db", async () => {
  await withWorld(async (w) => {
    await ampJson(["scan", "--custom", w.samples, "--db-dir", w.sigs, "--root", w.root]);
    await Deno.mkdir(`${w.dir}/clean`);
    await ampJson(["scan", "--custom", `${w.dir}/clean`, "--db-dir", w.sigs, "--root", w.root]);
    const db = new DatabaseSync(`${w.root}/var/lib/amp/events.db`);
    try {
      const rows = db.prepare("SELECT type, detection, sha256, policy_name FROM events ORDER BY id")
        .all() as Array<{
          type: string;
          detection: string | null;
          sha256: string | null;
          policy_name: string;
        }>;
      assert.deepEqual(rows.map((r) => r.type), [
        "Scan Started",
        "Threat Detected",
        "Threat Detected",
        "Threat Detected",
        "Threat Detected",
        "Scan Completed With Detections",
        "Scan Started",
        "Scan Completed No Detections",
      ]);
      const threat = rows.find((r) => r.sha256 === sha256(eicar()));
      assert.equal(threat?.detection, `${EICAR_SIGNATURE}.UNOFFICIAL`);
      assert.ok(rows.every((r) => r.policy_name === "Audit Policy for Linux"));
    } finally {
      db.close();
    }
  });
});

Deno.test("amp scan without ClamAV signatures says so and still uses the hash lists", async () => {
  await withWorld(async (w) => {
    await Deno.mkdir(`${w.dir}/empty-sigs`);
    await Deno.mkdir(`${w.root}/etc/amp/lists`, { recursive: true });
    await Deno.writeTextFile(
      `${w.root}/etc/amp/lists/simple_custom_detections.txt`,
      `${sha256(HASH_SAMPLE)} Custom.Hash\n`,
    );
    const { code, report, stderr } = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      `${w.dir}/empty-sigs`,
      "--root",
      w.root,
    ]);
    assert.match(stderr, /ClamAV has no signatures in .*empty-sigs.*freshclam/);
    assert.deepEqual(names(report.detections, w.samples), ["hash-sample.txt Custom.Hash"]);
    assert.equal(code, 1);
  });
});

Deno.test("amp scan answers an unchanged tree from the verdict cache and rescans what changed", async () => {
  await withWorld(async (w) => {
    const args = ["scan", "--custom", w.samples, "--db-dir", w.sigs, "--root", w.root];
    const first = await ampJson(args);
    assert.equal(first.report.summary.cached, 0);
    const second = await ampJson(args);
    assert.equal(second.report.summary.cached, 5);
    assert.deepEqual(
      second.report.detections.map((d) => d.name).sort(),
      first.report.detections.map((d) => d.name).sort(),
    );
    await Deno.writeTextFile(`${w.samples}/clean.txt`, eicar());
    const third = await ampJson(args);
    assert.equal(third.report.summary.cached, 4);
    assert.ok(third.report.detections.some((d) => d.path.endsWith("/clean.txt")));
    // New signatures invalidate every cached verdict.
    await Deno.writeTextFile(
      `${w.sigs}/more.ndb`,
      "Amp.Test.Other:0:*:6e6f7468696e67206c696b652074686973\n",
    );
    const fourth = await ampJson(args);
    assert.equal(fourth.report.summary.cached, 0);
  });
});

Deno.test("amp scan skips FIFOs without opening them and does not follow symlinks", async () => {
  await withWorld(async (w) => {
    await run("mkfifo", [`${w.samples}/pipe`]);
    await Deno.symlink(`${w.samples}/eicar.com`, `${w.samples}/link.com`);
    const { report } = await ampJson([
      "scan",
      "--custom",
      w.samples,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    const fifo = report.skipped.find((s) => s.path.endsWith("/pipe"));
    assert.equal(fifo?.reason, "not-regular");
    assert.ok(!report.detections.some((d) => d.path.endsWith("/link.com")));
  });
});

Deno.test("amp scan --flash finds a running program from the block list", async () => {
  await withWorld(async (w) => {
    const exe = `${w.dir}/amp-flash-sleeper`;
    await Deno.copyFile("/bin/sleep", exe);
    await Deno.chmod(exe, 0o755);
    const digest = sha256(await Deno.readFile(exe));
    await Deno.mkdir(`${w.root}/etc/amp/lists`, { recursive: true });
    await Deno.writeTextFile(
      `${w.root}/etc/amp/lists/simple_custom_detections.txt`,
      `${digest} Flash.Test\n`,
    );
    const child = new Deno.Command(exe, { args: ["30"], stdout: "null", stderr: "null" }).spawn();
    try {
      await Deno.remove(exe); // a deleted running binary is still found through /proc/PID/exe
      const { report } = await ampJson([
        "scan",
        "--flash",
        "--db-dir",
        `${w.dir}/no-sigs`,
        "--root",
        w.root,
      ]);
      const hit = report.detections.find((d) => d.path === `${exe} (deleted)`);
      assert.equal(hit?.name, "Flash.Test", "the running, deleted program is detected");
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  });
});

Deno.test("amp scan --full --root walks the whole image", async () => {
  await withWorld(async (w) => {
    const { code, report } = await ampJson(["scan", "--full", "--db-dir", w.sigs, "--root", w.dir]);
    assert.equal(code, 1);
    assert.ok(report.detections.some((d) => d.path === `${w.samples}/eicar.com`));
  });
});

Deno.test("amp scan reports an archive whose member exceeds the archive limit as skipped, not clean", async () => {
  await withWorld(async (w) => {
    await writePolicy(w, { scan: { maxArchiveSize: "4k" } });
    await Deno.mkdir(`${w.dir}/bomb`);
    await Deno.writeTextFile(`${w.dir}/bomb/padded.com`, eicar() + " ".repeat(10_000));
    await run("zip", ["-q", "padded.zip", "padded.com"], `${w.dir}/bomb`);
    await Deno.remove(`${w.dir}/bomb/padded.com`);
    const { code, report } = await ampJson([
      "scan",
      "--custom",
      `${w.dir}/bomb`,
      "--db-dir",
      w.sigs,
      "--root",
      w.root,
    ]);
    assert.equal(report.summary.files, 0, "not counted as scanned clean");
    const skipped = report.skipped.find((s) => s.path.endsWith("/padded.zip"));
    assert.equal(skipped?.reason, "scan-limit");
    assert.match(skipped?.detail ?? "", /Heuristics\.Limits\.Exceeded/);
    assert.equal(code, 0);
  });
});
