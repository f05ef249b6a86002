/**
 * `deno task demo`: the README's first command.
 *
 * 1. A scan: creates a sample folder with the EICAR test file (plain,
 *    zipped, in a tar.gz) and a hash-signature sample, a small ClamAV
 *    signature directory for them (no official ClamAV signatures can be
 *    downloaded here), runs a real `amp scan` on the built-in Audit policy
 *    and checks that it found every planted sample.
 * 2. Protection: starts a real `amp daemon` on the built-in Protect policy
 *    watching one demo folder, shows `amp status`, drops the EICAR file
 *    into the folder, waits until the daemon has quarantined it, lists the
 *    quarantine and the events, and stops the daemon.
 *
 * Everything lives under /var/tmp/amp-demo (or `--dir DIR`); amp's own files
 * go to DIR/root through `--root`, so the host's /etc/amp and /var/lib/amp
 * are left alone. The daemon part needs root (fanotify).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { eicar, writeSamples, writeSignatures } from "../tests/fixtures/samples.ts";
import { builtinPolicy } from "../src/policy/builtin.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { dir: { type: "string", default: "/var/tmp/amp-demo" } },
});
const dir = values.dir!;
const root = `${dir}/root`;
const main = new URL("../main.ts", import.meta.url).pathname;
await Deno.remove(dir, { recursive: true }).catch(() => {});
await Deno.mkdir(root, { recursive: true });
await writeSignatures(`${dir}/signatures`);
await writeSamples(`${dir}/samples`);

function fail(message: string): never {
  console.error(`demo: ${message}`);
  Deno.exit(1);
}

async function amp(args: string[], show = true): Promise<{ code: number; stdout: string }> {
  if (show) console.log(`\n$ amp ${args.join(" ")}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", main, ...args],
    stdout: "piped",
    stderr: show ? "inherit" : "null",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (show) Deno.stdout.writeSync(out.stdout);
  return { code: out.code, stdout };
}

// 1. A scan. amp exits 1 when it finds something, as clamscan does: here that is success.
const scan = await amp([
  "scan",
  "--custom",
  `${dir}/samples`,
  "--db-dir",
  `${dir}/signatures`,
  "--root",
  root,
  "--standalone",
]);
if (scan.code !== 1) fail(`expected amp scan to report detections (exit 1), got ${scan.code}`);

// 2. Real-time protection.
if (Deno.uid() !== 0) {
  console.log("\ndemo: skipping the daemon part: it needs root (fanotify)");
  Deno.exit(0);
}
const watched = `${dir}/watched`;
await Deno.mkdir(watched);
await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
await Deno.writeTextFile(
  `${root}/etc/amp/amp.json`,
  JSON.stringify({ clamav: { dbDir: `${dir}/signatures` }, monitor: { paths: [watched] } }),
);
await Deno.writeTextFile(
  `${root}/etc/amp/policy.json`,
  JSON.stringify(builtinPolicy("protect"), null, 2),
);
console.log(`\n$ amp daemon --root ${root} &`);
const daemon = new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-all", "--quiet", main, "daemon", "--root", root],
  stdout: "null",
  stderr: "null",
}).spawn();
try {
  const deadline = Date.now() + 30_000;
  while ((await amp(["status", "--root", root], false)).code !== 0) {
    if (Date.now() > deadline) {
      fail(`the daemon did not start; see ${root}/var/log/amp/ampdaemon.log`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await amp(["status", "--root", root]);

  const sample = `${watched}/invoice.pdf.exe`;
  console.log(`\n$ printf '<EICAR test string>' > ${sample}`);
  await Deno.writeTextFile(sample, eicar());
  const written = performance.now();
  for (;;) {
    try {
      await Deno.lstat(sample);
    } catch {
      break;
    }
    if (performance.now() - written > 5_000) fail("the daemon did not quarantine the sample");
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`(gone after ${Math.round(performance.now() - written)} ms)`);
  await amp(["quarantine", "list", "--root", root]);
  await amp(["events", "--root", root]);
} finally {
  daemon.kill("SIGTERM");
  await daemon.status;
}
console.log(
  `\ndemo: amp found the planted samples and quarantined the dropped one; its log is ` +
    `${root}/var/log/amp/ampdaemon.log`,
);
