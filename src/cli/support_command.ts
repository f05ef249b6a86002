/**
 * `amp support -o DIR`: writes a diagnostic bundle for a support request
 * (see `src/support/support_bundle.ts`). Exit status 0 when the bundle was
 * written, even if some sections could not be collected (they say why); 1
 * when the bundle directory cannot be created; 2 usage.
 *
 * @module
 */

import { Command } from "commander";
import { writeSupportBundle } from "../support/support_bundle.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";

/** Builds `amp support`. */
export function makeSupportCommand(io: CommandIo = defaultIo): Command {
  return new Command("support")
    .summary("write a diagnostic bundle (versions, config, logs, status, events), secrets redacted")
    .description(
      "Collect what a support request needs into DIR/amp-support-<host>-<time>/ and a\n" +
        ".tar.gz of it (when tar is installed): versions (amp, Deno, libclamav, kernel,\n" +
        "OS), amp.json and policy.json with secrets redacted, the last 1000 lines of\n" +
        "each log in /var/log/amp, amp status (or why there is none), the newest 500\n" +
        "events, kernel facts (fanotify, /dev/ampavflt, mounts), init facts (jobs,\n" +
        "units, cron file), the signature directory and the quarantine count.\n" +
        "README.txt in the bundle lists the sections. A section that cannot be\n" +
        "collected says why; the rest of the bundle is still written.\n\n" +
        "Redacted: values of fields named like token, key, secret, password or\n" +
        "credentials, and user:password in URLs (https://REDACTED@host). Read the\n" +
        "bundle before you send it: log lines may still name files and hosts.",
    )
    .requiredOption("-o, --output <dir>", "where to write the bundle (created if missing)")
    .option("--root <dir>", "host root for amp's files", "/")
    .option("--no-archive", "write the directory only, no .tar.gz")
    .option("--json", "print the bundle's path and sections as JSON")
    .addHelpText(
      "after",
      `
Exit status: 0 bundle written (some sections may say they failed), 1 the bundle
directory could not be created, 2 usage.

Examples:
  amp support -o /tmp
  amp support -o /tmp --no-archive && less /tmp/amp-support-*/README.txt`,
    )
    .action(async (opts: { output: string; root: string; archive: boolean; json?: boolean }) => {
      let bundle;
      try {
        bundle = await writeSupportBundle({
          outDir: opts.output,
          root: opts.root,
          archive: opts.archive,
        });
      } catch (error) {
        io.stderr(
          `amp: cannot write the bundle into ${opts.output}: ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
        return io.exit(1);
      }
      if (opts.json) {
        io.stdout(JSON.stringify(bundle, null, 2));
        return io.exit(0);
      }
      for (const s of bundle.sections) {
        io.stdout(`  ${s.file.padEnd(16)} ${s.error ? `FAILED: ${s.error}` : s.title}`);
      }
      io.stdout(`Bundle: ${bundle.dir}`);
      if (bundle.archive) io.stdout(`Archive: ${bundle.archive}`);
      else if (bundle.archiveError) io.stdout(`No archive: ${bundle.archiveError}`);
      io.exit(0);
    });
}
