/**
 * `amp update`: what the hourly job (cron, systemd timer, upstart) runs.
 * Refreshes the policy when a cloud is configured, updates ClamAV signatures
 * from amp.json's `update.mirror`, and has the daemon reload them. See
 * `src/update/run_update.ts` for the steps.
 *
 * Exit status: 0 done or nothing to do (also when another update is running,
 * so cron does not mail about it), 1 a step failed, 2 usage or amp.json error.
 *
 * @module
 */

import { Command } from "commander";
import { describeFile } from "../update/signature_download.ts";
import { runUpdate, type UpdateReport } from "../update/run_update.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";

/** Builds `amp update`. */
export function makeUpdateCommand(io: CommandIo = defaultIo): Command {
  return new Command("update")
    .summary("update signatures, IP lists and the cloud policy, then reload the daemon")
    .description(
      "What the hourly updater runs. One at a time (/var/lib/amp/update.lock); every step\n" +
        "is logged to /var/log/amp/ampupdater.log.\n\n" +
        "1. Policy: refreshed from the cloud when amp.json names one (cloud.url).\n" +
        "2. Signatures: from amp.json's update.mirror into clamav.dbDir (default\n" +
        "   /var/lib/clamav). update.method:\n" +
        "     freshclam  run freshclam with a generated config (PrivateMirror = the mirror);\n" +
        "                the mirror must serve ClamAV-signed .cvd/.cld files\n" +
        "     download   amp fetches <mirror>/amp-signatures.txt's names (else main.cvd,\n" +
        "                daily.cvd, bytecode.cvd), only when newer than the local version,\n" +
        "                checks the header, the body MD5 and that libclamav loads the file,\n" +
        "                then replaces the old one atomically\n" +
        "     auto       freshclam when it is installed, else download (the default)\n" +
        "   Without update.mirror nothing is downloaded (ClamAV's public mirrors are\n" +
        "   never contacted unless you name them).\n" +
        "3. IP lists: the policy's DFC lists that have a url are downloaded into\n" +
        "   /var/lib/amp/dfc/NAME.list, conditionally (ETag), checked\n" +
        "   (a download without a single address keeps the old list) and replaced\n" +
        "   atomically.\n" +
        "4. Reload: when the signatures or a list changed and the daemon runs, it\n" +
        "   reloads them (and records Definitions Updated for signatures).",
    )
    .option("--json", "print one JSON object: policy, signatures, ipLists, daemon, durationMs")
    .option("--root <dir>", "host root for amp's files (config, lock, log, socket)", "/")
    .option("--db-dir <dir>", "signature directory instead of amp.json's clamav.dbDir")
    .addHelpText(
      "after",
      `
amp.json:
  { "update": { "mirror": "https://mirror.example/clamav", "method": "download" } }
policy.json, a DFC list that amp update fetches:
  { "dfc": { "lists": [{ "name": "drop", "url": "https://lists.example/drop.txt" }] } }

Exit status: 0 done or nothing to do (also when another update is running),
1 a step failed (the message says which), 2 usage or amp.json error.

Examples:
  amp update
  amp update --json | jq .signatures.changed
  tail /var/log/amp/ampupdater.log`,
    )
    .action(async (opts: { json?: boolean; root: string; dbDir?: string }) => {
      const report = await runUpdate({ root: opts.root, dbDir: opts.dbDir });
      if (opts.json) {
        io.stdout(JSON.stringify(report, null, 2));
      } else {
        for (const line of formatUpdateReport(report)) io.stdout(line);
        if (report.exitCode !== 0) io.stderr(`amp: ${failureLine(report)}`);
      }
      io.exit(report.exitCode);
    });
}

/** The report for people, a few lines. */
export function formatUpdateReport(report: UpdateReport): string[] {
  if (report.status !== "done" || !report.signatures) {
    return report.status === "busy" ? [`amp update: ${report.message}; nothing done`] : [];
  }
  const lines: string[] = [];
  if (report.policy) lines.push(`Policy:     ${report.policy.message}`);
  const s = report.signatures;
  if (s.method === "none") {
    lines.push(`Signatures: ${s.message}`);
  } else {
    lines.push(`Signatures: ${s.method} from ${s.mirror} into ${s.dbDir}`);
    for (const f of s.files) lines.push(`  ${f.name}: ${describeFile(f)}`);
    lines.push(
      `            ${s.changed ? "changed" : "unchanged"}${s.error ? " (with errors)" : ""}`,
    );
  }
  const daemon = report.daemon === "reloaded" && report.daemonSignatures !== undefined
    ? `reloaded (${report.daemonSignatures} ClamAV signatures)`
    : report.daemon === "failed"
    ? `reload failed: ${report.daemonError}`
    : report.daemon;
  for (const l of report.ipLists ?? []) {
    lines.push(
      `IP list:    ${l.name}: ${l.status}${
        l.entries !== undefined ? ` (${l.entries} entries, ${l.malformed} malformed)` : ""
      }${l.detail ? `: ${l.detail}` : ""}`,
    );
  }
  if (report.ipListsError) lines.push(`IP lists:   ${report.ipListsError}`);
  lines.push(`Daemon:     ${daemon}`);
  lines.push(`Done in ${(report.durationMs / 1000).toFixed(1)} s (log: ${report.log})`);
  return lines;
}

function failureLine(report: UpdateReport): string {
  if (report.signatures?.error) return report.signatures.message;
  if (report.ipListsError) return report.ipListsError;
  const list = report.ipLists?.find((l) => l.status === "failed");
  if (list) return `IP list ${list.name}: ${list.detail}`;
  if (report.daemon === "failed") return `daemon reload failed: ${report.daemonError}`;
  return report.message ?? "update failed";
}
