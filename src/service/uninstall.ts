/**
 * `amp uninstall`: stops and disables the service and removes what install
 * made: the executable (and /opt/amp when nothing else is in it), the init
 * files of every init system (enabled or disabled), their links and the cron
 * job. Shared system directories (/etc/init.d, /etc/cron.hourly …) stay.
 *
 * Kept unless `--purge`, because they belong to the administrator or hold
 * what cannot be made again:
 * - /etc/amp: amp.json, policy.json and the lists (a later install uses them);
 * - /var/lib/amp: events not yet uploaded, the caches, and the quarantine,
 *   whose files can still be restored (removing it destroys them);
 * - /var/log/amp: the logs, this uninstall's included.
 * `--purge` removes those too, and /run/amp.
 *
 * @module
 */

import type { ServiceReport } from "./change.ts";
import { ServiceFailedError, ServiceInputError } from "./change.ts";
import { stopCommands } from "./host_commands.ts";
import { processesRunning } from "./running.ts";
import { HostTree } from "./host_tree.ts";
import { InstallerLog } from "./installer_log.ts";
import { ALL_INIT_PATHS, BIN_PATH, INSTALLER_LOG, LOG_DIR, RUN_DIR, STATE_DIR } from "./layout.ts";
import { findProblems, type Target } from "./preflight.ts";
import {
  describeRun,
  installedInit,
  resolveContext,
  runAll,
  type ServiceOptions,
} from "./service_context.ts";

/** Options of {@linkcode uninstall}. */
export interface UninstallOptions extends ServiceOptions {
  /** Also remove configuration, policy, databases, quarantine, logs and /run/amp. */
  purge?: boolean;
}

/** What uninstall keeps without --purge, and why. */
export const KEPT: readonly { path: string; why: string }[] = [
  { path: "/etc/amp", why: "configuration, policy and lists; a later install uses them" },
  {
    path: STATE_DIR,
    why: "events, caches and the quarantine, whose files can still be restored",
  },
  { path: LOG_DIR, why: "logs" },
];

/**
 * Uninstalls amp from `options.root`.
 *
 * @throws {ServiceInputError} the root cannot be changed; nothing was
 * @throws {ServiceFailedError} a failure part-way
 * @example
 * ```ts ignore
 * import { uninstall } from "./uninstall.ts";
 * const report = await uninstall({ root: "/tmp/r", purge: true });
 * ```
 */
export async function uninstall(options: UninstallOptions = {}): Promise<ServiceReport> {
  const ctx = await resolveContext(options, "uninstall");
  const { init, reason } = await installedInit(ctx);
  const tree = new HostTree(ctx.root, { dryRun: ctx.dryRun });
  const purge = options.purge ?? false;
  const report: ServiceReport = {
    action: "uninstall",
    root: ctx.root,
    init,
    initReason: reason,
    dryRun: ctx.dryRun,
    changes: tree.changes,
    commands: [],
    notes: [],
  };

  const removable = [BIN_PATH, ...ALL_INIT_PATHS];
  const trees = purge ? [...KEPT.map((k) => k.path), RUN_DIR] : [];
  const targets: Target[] = [];
  for (const path of [...removable, ...trees, "/opt/amp/bin", "/opt/amp"]) {
    const stat = await tree.lstat(path);
    if (!stat) continue;
    targets.push({ path, kind: stat.isDirectory ? "dir" : stat.isSymlink ? "link" : "file" });
  }
  if (targets.length === 0) {
    const left = purge ? [] : await existing(tree, KEPT.map((k) => k.path));
    report.notes.push(
      left.length === 0
        ? `amp is not installed under ${ctx.root}: nothing to remove`
        : `amp is not installed under ${ctx.root}; kept ${left.join(", ")} (--purge removes them)`,
    );
    return report;
  }
  const problems = await findProblems(ctx.root, targets);
  if (problems.length > 0) {
    throw new ServiceInputError(
      `Cannot uninstall amp under ${ctx.root}:\n  ${problems.join("\n  ")}`,
    );
  }

  const installerLog = new InstallerLog(
    ctx.dryRun || !(await tree.lstat(LOG_DIR)) ? undefined : tree.real(INSTALLER_LOG),
  );
  const log = installerLog.logger;
  let logClosed = false;
  let step = "executing preuninstall";
  try {
    installerLog.open();
    log.notice(step, { root: ctx.root, init, purge });
    step = "stopping connector";
    if (ctx.onHost) {
      log.notice(step);
      const failed = await runAll(ctx, stopCommands(init), report, log);
      for (const f of failed) report.notes.push(`could not stop: ${describeRun(f)}`);
      // Removing the files under a daemon that still runs would leave it
      // with nothing to stop it by: refuse, and say what runs.
      const running = await stillRunning(tree.real(BIN_PATH));
      if (running.length > 0 && !ctx.dryRun) {
        throw new ServiceFailedError(
          `The amp daemon still runs (pid ${running.join(", ")}) after the stop commands: ` +
            "nothing was removed; stop it (kill -TERM) and run amp uninstall again",
          report,
        );
      }
    } else {
      report.notes.push(`service not stopped: ${ctx.root} is not the running host (--root)`);
    }

    step = "removing files";
    log.notice(step);
    for (const path of removable) await tree.remove(path);
    await tree.removeDirIfEmpty("/opt/amp/bin");
    await tree.removeDirIfEmpty("/opt/amp");
    if (ctx.onHost && init === "systemd") {
      await runAll(ctx, [["systemctl", "daemon-reload"]], report, log);
    }

    step = "executing postuninstall";
    for (const change of tree.changes) {
      log.info(`${change.action} ${change.path}${change.detail ? ` (${change.detail})` : ""}`);
    }
    if (!purge) {
      for (const kept of KEPT) {
        if (await tree.lstat(kept.path)) {
          tree.note("kept", kept.path, `${kept.why}; --purge removes it`);
        }
      }
    }
    log.notice(step, { purge });
    log.notice("connector uninstalled");
    await installerLog.close();
    logClosed = true;
    step = "purging";
    for (const path of trees) await tree.removeTree(path, "--purge");
    if (ctx.dryRun) report.notes.push("dry run: nothing was changed");
    return report;
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    log.error(`uninstall failed while ${step}: ${detail}`);
    throw new ServiceFailedError(`Uninstall failed while ${step}: ${detail}`, report, {
      cause: error,
    });
  } finally {
    if (!logClosed) await installerLog.close();
  }
}

async function existing(tree: HostTree, paths: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const path of paths) if (await tree.lstat(path)) found.push(path);
  return found;
}

/** Pids still running the installed executable, after a moment for SIGTERM to take effect. */
async function stillRunning(binary: string): Promise<number[]> {
  for (let i = 0; i < 50; i++) {
    const pids = processesRunning(binary);
    if (pids.length === 0) return [];
    await new Promise((r) => setTimeout(r, 100));
  }
  return processesRunning(binary);
}
