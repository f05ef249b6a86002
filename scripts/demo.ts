/**
 * `deno task demo`: the README's first command. Creates a sample folder with
 * the EICAR test file (plain, zipped, in a tar.gz) and a hash-signature
 * sample, a small ClamAV signature directory for them (no official ClamAV
 * signatures can be downloaded here), then runs a real `amp scan` on the
 * built-in Audit policy and checks that it found every planted sample.
 *
 * Everything lives under /var/tmp/amp-demo (or `--dir DIR`); amp's own files
 * (events.db, verdict.cache) go to DIR/root through `--root`, so the host's
 * /var/lib/amp is left alone.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeSamples, writeSignatures } from "../tests/fixtures/samples.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { dir: { type: "string", default: "/var/tmp/amp-demo" } },
});
const dir = values.dir!;
await Deno.remove(dir, { recursive: true }).catch(() => {});
await Deno.mkdir(`${dir}/root`, { recursive: true });
await writeSignatures(`${dir}/signatures`);
await writeSamples(`${dir}/samples`);

const args = [
  "scan",
  "--custom",
  `${dir}/samples`,
  "--db-dir",
  `${dir}/signatures`,
  "--root",
  `${dir}/root`,
];
console.log(`$ amp ${args.join(" ")}`);
const main = new URL("../main.ts", import.meta.url).pathname;
const { code } = await new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-all", "--quiet", main, ...args],
  stdout: "inherit",
  stderr: "inherit",
}).output();
// amp exits 1 when it finds something, as clamscan does: here that is success.
if (code !== 1) {
  console.error(`demo: expected amp to report detections (exit 1), got exit ${code}`);
  Deno.exit(1);
}
console.log(
  `\ndemo: amp found the planted samples; events are in ${dir}/root/var/lib/amp/events.db`,
);
