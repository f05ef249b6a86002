/**
 * `deno task compile`: builds the single amp executable with `deno compile`.
 *
 * `deno compile` needs Deno's `denort` runtime, which it downloads from Deno's
 * release host unless `DENORT_BIN` names a local copy. Where neither works (as
 * on machines that reach only npm and Debian) this stops with a message that
 * says so, instead of the download error. Nothing else depends on the binary:
 * tests and packaging run `deno run main.ts`.
 *
 * Usage: deno task compile [--output PATH] (default .build/amp)
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: { output: { type: "string", default: ".build/amp" } },
});
const output = values.output!;
const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    await Deno.stat(denort);
  } catch {
    console.error(`compile: DENORT_BIN=${denort} does not exist`);
    Deno.exit(2);
  }
}
await Deno.mkdir(output.replace(/\/[^/]*$/, "") || ".", { recursive: true });
const result = await new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    "--allow-all",
    // Keep in step with the `amp` task: a small young generation lowers peak RSS.
    "--v8-flags=--max-semi-space-size=1",
    // Worker modules are not found by following imports: name them.
    "--include",
    "src/monitor/proc_connector/_proc_reader.ts",
    "--include",
    "src/dfc/flow/_flow_reader.ts",
    "--output",
    output,
    "main.ts",
  ],
  stdout: "inherit",
  stderr: "piped",
}).output();
const stderr = new TextDecoder().decode(result.stderr);
if (!result.success) {
  if (!denort && /denort|dns error|download|error sending request/i.test(stderr)) {
    console.error(
      "compile: deno compile needs Deno's denort runtime, and it could not be downloaded here.\n" +
        "Set DENORT_BIN to a denort binary of the same Deno version (" + Deno.version.deno +
        ", from the denort-x86_64-unknown-linux-gnu.zip release asset) and run again:\n" +
        "  DENORT_BIN=/path/to/denort deno task compile\n" +
        "Everything else (tests, packaging) runs `deno run main.ts` and does not need it.",
    );
  } else {
    console.error(stderr);
  }
  Deno.exit(1);
}
console.log(`compile: wrote ${output}`);
