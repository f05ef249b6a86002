/**
 * `amp disable` and `amp enable`: the RHEL 6 procedure, automated and made
 * symmetric. Disable stops the service, then
 *
 * - upstart: renames /etc/init/amp.conf and amp-updater.conf to `.disabled`
 *   (upstart only reads `*.conf`) and takes the execute bit off
 *   /etc/cron.hourly/amp-updater (run-parts skips it);
 * - systemd: `systemctl disable --now amp.service amp-updater.timer`, and
 *   removes the `wants` links install made (so the same works under --root);
 * - sysv: removes the rc links and takes the execute bit off the cron job.
 *
 * Enable puts back exactly those, then starts the service. Each step looks at
 * the tree first, so a second run changes nothing and says "already disabled".
 * Host commands run only on the running host (root `/`).
 *
 * @module
 */

import type { Change, ServiceReport } from "./change.ts";
import { changedAnything, ServiceFailedError, ServiceInputError } from "./change.ts";
import { startCommands, stopCommands } from "./host_commands.ts";
import { processesRunning } from "./running.ts";
import { HostTree } from "./host_tree.ts";
import { initIntegration } from "./init_files.ts";
import { InstallerLog } from "./installer_log.ts";
import {
  BIN_PATH,
  CRON_UPDATER,
  DISABLED_SUFFIX,
  type InitSystem,
  INSTALLER_LOG,
  UPSTART_JOB,
  UPSTART_UPDATER_JOB,
} from "./layout.ts";
import { findProblems, type Target } from "./preflight.ts";
import {
  describeRun,
  installedInit,
  resolveContext,
  runAll,
  type ServiceOptions,
} from "./service_context.ts";

/** Options of {@linkcode disable} and {@linkcode enable}. */
export type ToggleOptions = ServiceOptions;

/**
 * Disables amp: stops it and keeps it from starting at boot or updating hourly.
 *
 * @throws {ServiceInputError} amp is not installed under the root, or it cannot be written
 * @throws {ServiceFailedError} a failure part-way
 * @example
 * ```ts ignore
 * import { disable } from "./toggle.ts";
 * const report = await disable({ root: "/tmp/r" });
 * ```
 */
export function disable(options: ToggleOptions = {}): Promise<ServiceReport> {
  return toggle(options, "disable");
}

/**
 * Enables amp again after {@linkcode disable}, and starts it on the running host.
 *
 * @throws {ServiceInputError} amp is not installed under the root, or it cannot be written
 * @throws {ServiceFailedError} a failure part-way
 */
export function enable(options: ToggleOptions = {}): Promise<ServiceReport> {
  return toggle(options, "enable");
}

/** A file that disable renames or makes non-executable, or a link it removes. */
type Step =
  | { kind: "rename"; path: string }
  | { kind: "exec"; path: string }
  | { kind: "link"; path: string; target: string };

/**
 * True when amp is installed for `init` under `root` and disabled (by
 * `amp disable`): an upgrade keeps it so rather than re-enabling it.
 */
export async function isDisabled(root: string, init: InitSystem): Promise<boolean> {
  const tree = new HostTree(root, { dryRun: true });
  const { marker } = initIntegration(init);
  const plan = steps(init);
  if (init === "upstart") {
    return (await tree.lstat(marker)) === undefined &&
      (await tree.lstat(marker + DISABLED_SUFFIX)) !== undefined;
  }
  if ((await tree.lstat(marker)) === undefined) return false;
  const link = plan.find((s) => s.kind === "link");
  return link !== undefined && (await tree.lstat(link.path)) === undefined;
}

function steps(init: InitSystem): Step[] {
  const { links } = initIntegration(init);
  switch (init) {
    case "upstart":
      return [
        { kind: "rename", path: UPSTART_JOB },
        { kind: "rename", path: UPSTART_UPDATER_JOB },
        { kind: "exec", path: CRON_UPDATER },
      ];
    case "systemd":
      return links.map((l) => ({ kind: "link", path: l.path, target: l.target }));
    case "sysv":
      return [
        ...links.map((l): Step => ({ kind: "link", path: l.path, target: l.target })),
        { kind: "exec", path: CRON_UPDATER },
      ];
  }
}

async function toggle(
  options: ToggleOptions,
  action: "disable" | "enable",
): Promise<ServiceReport> {
  const ctx = await resolveContext(options, action);
  const { init, reason } = await installedInit(ctx);
  const tree = new HostTree(ctx.root, { dryRun: ctx.dryRun });
  const { marker } = initIntegration(init);
  const markerThere = (await tree.lstat(marker)) ?? (await tree.lstat(marker + DISABLED_SUFFIX));
  if (!markerThere) {
    throw new ServiceInputError(
      `amp is not installed for ${init} under ${ctx.root} (no ${marker}); run amp install first`,
    );
  }
  const plan = steps(init);
  const targets: Target[] = plan.map((s) => ({
    path: s.path,
    kind: s.kind === "link" ? "link" : "file",
  }));
  const problems = await findProblems(ctx.root, targets);
  if (problems.length > 0) {
    throw new ServiceInputError(
      `Cannot ${action} amp under ${ctx.root}:\n  ${problems.join("\n  ")}`,
    );
  }

  const report: ServiceReport = {
    action,
    root: ctx.root,
    init,
    initReason: reason,
    dryRun: ctx.dryRun,
    changes: tree.changes,
    commands: [],
    notes: [],
  };
  const installerLog = new InstallerLog(ctx.dryRun ? undefined : tree.real(INSTALLER_LOG));
  const log = installerLog.logger;
  try {
    log.notice(`${action === "disable" ? "disabling" : "enabling"} connector`, {
      root: ctx.root,
      init,
    });
    installerLog.open();
    const stop = async () => {
      if (action !== "disable" || !ctx.onHost) return;
      log.notice("stopping connector");
      const failed = await runAll(ctx, stopCommands(init), report, log);
      for (const f of failed) report.notes.push(`could not stop: ${describeRun(f)}`);
    };
    // upstart and sysv must be told to stop while their job is still known;
    // systemctl disable would remove the links itself, so on systemd the
    // links go first and the report shows them.
    if (init !== "systemd") await stop();
    for (const step of plan) {
      if (action === "disable") await disableStep(tree, step);
      else await enableStep(tree, step, report);
    }
    if (init === "systemd") await stop();
    for (const change of tree.changes) log.info(describe(change));
    if (action === "disable" && ctx.onHost && !ctx.dryRun) {
      // Disabled but still running is not what an administrator asked for.
      const running = processesRunning(tree.real(BIN_PATH));
      if (running.length > 0) {
        log.error(`connector still running (pid ${running.join(", ")}) after the stop commands`);
        throw new ServiceFailedError(
          `Disabled at boot, but the amp daemon still runs (pid ${running.join(", ")}): ` +
            "stop it with kill -TERM",
          report,
        );
      }
    }
    if (action === "enable" && ctx.onHost) {
      log.notice("starting connector");
      const failed = await runAll(ctx, startCommands(init, { restart: false }), report, log);
      if (failed.length > 0) {
        const why = failed.map(describeRun);
        log.error(`connector not started: ${why.join("; ")}`);
        throw new ServiceFailedError(
          `Enabled, but the connector did not start: ${why.join("; ")}`,
          report,
        );
      }
      if (!ctx.dryRun) log.notice("connector started");
    }
    if (!changedAnything(report)) {
      report.notes.push(`amp is already ${action}d: nothing changed`);
      log.notice(`already ${action}d`);
    } else if (!ctx.dryRun) {
      log.notice(`connector ${action}d`);
    }
    if (!ctx.onHost) {
      report.notes.push(
        `service not ${
          action === "disable" ? "stopped" : "started"
        }: ${ctx.root} is not the running host (--root)`,
      );
    }
    if (ctx.dryRun) report.notes.push("dry run: nothing was changed");
    return report;
  } catch (error) {
    if (error instanceof ServiceFailedError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    log.error(`${action} failed: ${detail}`);
    throw new ServiceFailedError(`${action} failed: ${detail}`, report, { cause: error });
  } finally {
    await installerLog.close();
  }
}

async function disableStep(tree: HostTree, step: Step): Promise<void> {
  const stat = await tree.lstat(step.path);
  switch (step.kind) {
    case "rename": {
      const disabled = step.path + DISABLED_SUFFIX;
      if (stat) await tree.rename(step.path, disabled);
      else if (await tree.lstat(disabled)) {
        tree.note("unchanged", step.path, `already disabled: ${disabled}`);
      } else tree.note("unchanged", step.path, "missing: run amp install");
      return;
    }
    case "exec": {
      if (!stat) return tree.note("unchanged", step.path, "missing: run amp install");
      const mode = (stat.mode ?? 0) & 0o7777;
      if ((mode & 0o111) === 0) {
        return tree.note("unchanged", step.path, "already disabled: not executable");
      }
      return await tree.setMode(step.path, mode & ~0o111);
    }
    case "link":
      if (!(await tree.remove(step.path, `was → ${step.target}`))) {
        tree.note("unchanged", step.path, "already disabled: no link");
      }
      return;
  }
}

async function enableStep(tree: HostTree, step: Step, report: ServiceReport): Promise<void> {
  const stat = await tree.lstat(step.path);
  switch (step.kind) {
    case "rename": {
      const disabled = step.path + DISABLED_SUFFIX;
      if (await tree.lstat(disabled)) {
        if (stat) {
          report.notes.push(
            `${step.path} existed beside ${disabled}: replaced by the disabled copy`,
          );
        }
        await tree.rename(disabled, step.path, `→ ${step.path}`);
      } else if (stat) tree.note("unchanged", step.path, "already enabled");
      else {
        tree.note("unchanged", step.path, "missing: run amp install");
        report.notes.push(`${step.path} is missing: run amp install to write it again`);
      }
      return;
    }
    case "exec": {
      if (!stat) {
        tree.note("unchanged", step.path, "missing: run amp install");
        report.notes.push(`${step.path} is missing: run amp install to write it again`);
        return;
      }
      const mode = (stat.mode ?? 0) & 0o7777;
      if ((mode & 0o111) === 0o111) return tree.note("unchanged", step.path, "already enabled");
      return await tree.setMode(step.path, mode | ((mode & 0o444) >> 2));
    }
    case "link": {
      if (stat?.isSymlink && await Deno.readLink(tree.real(step.path)) === step.target) {
        return tree.note("unchanged", step.path, "already enabled");
      }
      return await tree.symlink(step.path, step.target);
    }
  }
}

function describe(change: Change): string {
  return `${change.action} ${change.path}${change.detail ? ` (${change.detail})` : ""}`;
}
