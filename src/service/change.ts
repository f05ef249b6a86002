/**
 * What a service command changed (or, in a dry run, would change), one entry
 * per file, directory, link or host command, and the errors the commands
 * raise. Commands print these lines; `--json` prints the report as it is.
 *
 * @module
 */

import type { InitSystem } from "./layout.ts";

/** What happened to one path. */
export type ChangeAction =
  | "created"
  | "updated"
  | "unchanged"
  | "renamed"
  | "removed"
  | "kept";

/** One change, by host path (as on the host, not joined under `--root`). */
export interface Change {
  action: ChangeAction;
  path: string;
  /** Why, or what exactly: `mode 0755 → 0644`, `already disabled`, `→ /etc/init/amp.conf.disabled`. */
  detail?: string;
}

/** A host command that was run, and how it ended. */
export interface CommandRun {
  argv: string[];
  code: number;
  /** Its stderr (or stdout when stderr is empty), trimmed. */
  output: string;
}

/** What install, uninstall, disable or enable did. */
export interface ServiceReport {
  action: "install" | "uninstall" | "disable" | "enable";
  /** The host root the command worked on. */
  root: string;
  init: InitSystem;
  /** How the init system was chosen. */
  initReason: string;
  dryRun: boolean;
  changes: Change[];
  /** Host commands run (only when acting on the running host). */
  commands: CommandRun[];
  /** Things to know: why the service was not started, what failed to stop … */
  notes: string[];
}

const DRY_VERBS: Record<ChangeAction, string> = {
  created: "would create",
  updated: "would update",
  unchanged: "unchanged",
  renamed: "would rename",
  removed: "would remove",
  kept: "would keep",
};

/**
 * One line for a change: `created    /etc/amp/amp.json (0644 root:root)`.
 *
 * @param change the change
 * @param dryRun whether it was only planned
 * @example
 * ```ts
 * import { formatChange } from "./change.ts";
 * formatChange({ action: "removed", path: "/etc/rc2.d/S20amp" }, true);
 * // "would remove   /etc/rc2.d/S20amp"
 * ```
 */
export function formatChange(change: Change, dryRun: boolean): string {
  const verb = dryRun ? DRY_VERBS[change.action] : change.action;
  const detail = change.detail === undefined ? "" : ` (${change.detail})`;
  return `${verb.padEnd(14)} ${change.path}${detail}`;
}

/** Whether a report changed anything (or would, in a dry run). */
export function changedAnything(report: ServiceReport): boolean {
  return report.changes.some((c) => c.action !== "unchanged" && c.action !== "kept");
}

/** Bad input: nothing was changed. Commands exit 2. */
export class ServiceInputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServiceInputError";
  }
}

/** A failure part-way: `report` says what was done before it. Commands exit 1. */
export class ServiceFailedError extends Error {
  /** What was done before the failure. */
  readonly report: ServiceReport;

  constructor(message: string, report: ServiceReport, options?: ErrorOptions) {
    super(message, options);
    this.name = "ServiceFailedError";
    this.report = report;
  }
}

/**
 * The report for people: a heading, one line per change, then the notes.
 *
 * @example
 * ```ts
 * import { formatReport } from "./change.ts";
 * formatReport({
 *   action: "disable", root: "/", init: "sysv", initReason: "--init", dryRun: false,
 *   changes: [], commands: [], notes: ["amp is already disabled: nothing changed"],
 * })[0]; // "amp disable: / (init sysv: --init)"
 * ```
 */
export function formatReport(report: ServiceReport): string[] {
  const lines = [
    `amp ${report.action}${report.dryRun ? " (dry run)" : ""}: ${report.root} ` +
    `(init ${report.init}: ${report.initReason})`,
  ];
  for (const change of report.changes) lines.push(`  ${formatChange(change, report.dryRun)}`);
  for (const run of report.commands) {
    lines.push(
      `  ran            ${run.argv.join(" ")}${run.code === 0 ? "" : ` (exit ${run.code})`}`,
    );
  }
  for (const note of report.notes) lines.push(note);
  return lines;
}
