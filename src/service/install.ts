/**
 * `amp install`: lays out amp on a host (or under `--root`), in the order the
 * reference installer logs it:
 *
 *  1. executing pre          checks: root, executable, init system, amp.json,
 *                            every path writable; bad input stops here with
 *                            nothing changed
 *  2. creating directories   /opt/amp/bin, /etc/amp (+lists), /var/lib/amp
 *                            (+quarantine), /var/log/amp; then Install Started
 *  3. installing binary      /opt/amp/bin/amp, replaced atomically
 *  4. writing configuration  amp.json (kept; only service.init and cloud.url
 *                            set), policy.json (only when missing or --policy),
 *                            the init files and the cron job
 *  5. executing post         the links that enable the service
 *  6. sending event          Install Completed
 *  7. starting connector     only on the running host and without --no-start
 *
 * A second install is an upgrade in place: config, policy, databases, logs
 * and quarantine stay; only what differs is rewritten, and a disabled
 * service is enabled again (installing means running).
 *
 * @module
 */

import { disable, isDisabled } from "./toggle.ts";
import { processesRunning } from "./running.ts";
import { basename } from "node:path";
import { z } from "zod";
import { AmpConfigSchema, parseConfigText } from "../config/amp_config.ts";
import { builtinPolicy, type BuiltinPolicyName } from "../policy/builtin.ts";
import { ConfigError, loadPolicy } from "../policy/load_policy.ts";
import type { NewEvent } from "../store/events_db.ts";
import { EventsDb } from "../store/events_db.ts";
import { VERSION } from "../version.ts";
import { ServiceFailedError, ServiceInputError, type ServiceReport } from "./change.ts";
import { detectInit } from "./detect_init.ts";
import { startCommands } from "./host_commands.ts";
import { HostTree } from "./host_tree.ts";
import { initIntegration } from "./init_files.ts";
import { InstallerLog } from "./installer_log.ts";
import {
  ALL_INIT_PATHS,
  BIN_PATH,
  CONFIG_FILE,
  DISABLED_SUFFIX,
  EVENTS_DB,
  INIT_SYSTEMS,
  type InitSystem,
  INSTALLER_LOG,
  OWNED_DIRS,
  POLICY_FILE,
} from "./layout.ts";
import { findProblems, type Target } from "./preflight.ts";
import { describeRun, resolveContext, runAll, type ServiceOptions } from "./service_context.ts";

/** Options of {@linkcode install}. */
export interface InstallOptions extends ServiceOptions {
  /** Built-in policy to write (replacing policy.json); by default audit, only when there is none. */
  policy?: BuiltinPolicyName;
  /** The cloud URL to write into amp.json. */
  cloud?: string;
  /** The init system; detected by default. */
  init?: InitSystem;
  /** The executable to install; by default the running one (required when running from source). */
  binary?: string;
  /** Start the service (on the running host only); true by default. */
  start?: boolean;
}

const POLICY_NAMES: readonly string[] = ["audit", "protect"];

/**
 * Whether amp runs from source (`deno run main.ts`) rather than as a
 * `deno compile`d executable: then the running executable is Deno itself,
 * not something to install as /opt/amp/bin/amp.
 */
export function runningFromSource(execPath: string = Deno.execPath()): boolean {
  return /^deno(\.exe)?$/.test(basename(execPath));
}

/**
 * Installs (or upgrades) amp under `options.root`.
 *
 * @throws {ServiceInputError} bad input; nothing was changed
 * @throws {ServiceFailedError} a failure part-way; its report says what was done
 * @example
 * ```ts ignore
 * import { install } from "./install.ts";
 * const report = await install({ root: "/tmp/r", init: "systemd", binary: "./amp", start: false });
 * ```
 */
export async function install(options: InstallOptions = {}): Promise<ServiceReport> {
  const ctx = await resolveContext(options, "install");
  const { root, dryRun } = ctx;

  // 1. Checks: everything that can refuse the install does so before any change.
  if (options.init !== undefined && !(INIT_SYSTEMS as readonly string[]).includes(options.init)) {
    throw new ServiceInputError(
      `Unknown init system: ${options.init} (one of ${INIT_SYSTEMS.join(", ")})`,
    );
  }
  if (options.policy !== undefined && !POLICY_NAMES.includes(options.policy)) {
    throw new ServiceInputError(
      `Unknown policy: ${options.policy} (the built-ins are ${POLICY_NAMES.join(", ")})`,
    );
  }
  const source = await resolveBinary(options.binary);
  const { init, reason } = options.init !== undefined
    ? { init: options.init, reason: "--init" }
    : await detectInit(root, ctx.onHost ? ctx.commands : undefined);
  const tree = new HostTree(root, { dryRun });
  const integration = initIntegration(init);
  const targets: Target[] = [
    ...OWNED_DIRS.map((d) => ({ path: d.path, kind: "dir" as const })),
    { path: BIN_PATH, kind: "file" },
    { path: CONFIG_FILE, kind: "file" },
    { path: POLICY_FILE, kind: "file" },
    { path: EVENTS_DB, kind: "file" },
    { path: INSTALLER_LOG, kind: "file" },
    ...integration.files.map((f) => ({ path: f.path, kind: "file" as const })),
    ...integration.links.map((l) => ({ path: l.path, kind: "link" as const })),
  ];
  const problems = await findProblems(root, targets);
  if (problems.length > 0) {
    throw new ServiceInputError(`Cannot install under ${root}:\n  ${problems.join("\n  ")}`);
  }
  const configText = await planConfig(tree.real(CONFIG_FILE), init, options.cloud);
  const policyExists = (await tree.lstat(POLICY_FILE)) !== undefined;
  const upgrade = (await tree.lstat(BIN_PATH)) !== undefined;
  // An upgrade (a package's post-install runs amp install) keeps amp disabled
  // when the administrator disabled it: `amp enable` is the way back.
  const keepDisabled = upgrade && await isDisabled(root, init);

  const report: ServiceReport = {
    action: "install",
    root,
    init,
    initReason: reason,
    dryRun,
    changes: tree.changes,
    commands: [],
    notes: [],
  };
  const installerLog = new InstallerLog(dryRun ? undefined : tree.real(INSTALLER_LOG));
  const log = installerLog.logger;
  let events: EventsDb | undefined;
  let step = "executing pre";
  let logged = 0;
  /** Logs the changes made since the last call. */
  const logChanges = () => {
    for (const change of tree.changes.slice(logged)) {
      if (change.action === "unchanged") continue;
      log.info(`${change.action} ${change.path}${change.detail ? ` (${change.detail})` : ""}`);
    }
    logged = tree.changes.length;
  };
  try {
    log.notice("executing pre", {
      version: VERSION,
      root,
      init,
      initReason: reason,
      binary: source,
      mode: upgrade ? "upgrade" : "new install",
    });

    step = "creating directories";
    log.notice(step);
    for (const dir of OWNED_DIRS) await tree.ensureDir(dir.path, dir.mode);
    logChanges();
    installerLog.open();
    if (!dryRun) {
      events = await EventsDb.open(tree.real(EVENTS_DB));
      // Events hold paths and command lines: root only, whatever the umask.
      await Deno.chmod(tree.real(EVENTS_DB), 0o600);
      await events.record(installEvent("Install Started", init, upgrade));
    }

    step = "installing binary";
    log.notice(step, { from: source, to: BIN_PATH });
    await tree.copyFile(BIN_PATH, source, 0o755);
    const binaryChanged = tree.changes.at(-1)?.action !== "unchanged";
    logChanges();

    step = "writing configuration";
    log.notice(step);
    // 0600: amp.json may hold proxy credentials (cloud.proxy).
    await tree.writeFile(CONFIG_FILE, configText, 0o600);
    if (options.policy !== undefined || !policyExists) {
      const policy = builtinPolicy(options.policy ?? "audit");
      await tree.writeFile(POLICY_FILE, `${JSON.stringify(policy, null, 2)}\n`, 0o644);
    } else {
      await tree.setMode(POLICY_FILE, 0o644);
    }
    for (const file of integration.files) await tree.writeFile(file.path, file.content, file.mode);
    const ours = new Set([
      ...integration.files.map((f) => f.path),
      ...integration.links.map((l) => l.path),
    ]);
    for (const path of ALL_INIT_PATHS) {
      if (ours.has(path)) continue;
      const detail = path.endsWith(DISABLED_SUFFIX)
        ? "disabled copy; install enables the service"
        : `not used with ${init}`;
      await tree.remove(path, detail);
    }

    logChanges();

    step = "executing post";
    log.notice(step);
    for (const link of integration.links) await tree.symlink(link.path, link.target);
    logChanges();

    if (keepDisabled) {
      const kept = await disable({ root, dryRun, runHostCommands: false });
      for (const change of kept.changes) {
        if (change.action !== "unchanged") tree.note(change.action, change.path, change.detail);
      }
      report.notes.push("kept disabled, as it was before the upgrade (amp enable starts it)");
      logChanges();
    }

    step = "sending event";
    log.notice(step, { type: "Install Completed" });
    if (events) {
      const event = installEvent("Install Completed", init, upgrade);
      try {
        const { policy } = await loadPolicy({ root });
        event.policy = { name: policy.name, id: policy.id };
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        log.warning(`policy.json is not valid; the daemon will use its last good policy`);
      }
      await events.record(event);
    }

    step = "starting connector";
    log.notice(step);
    let notStarted: string | undefined;
    if (options.start === false) notStarted = "--no-start";
    else if (keepDisabled) notStarted = "amp is disabled (amp enable starts it)";
    else if (!ctx.onHost) notStarted = `${root} is not the running host (--root)`;
    if (notStarted !== undefined) {
      report.notes.push(`connector not started: ${notStarted}`);
      log.notice(`connector not started: ${notStarted}`);
    } else {
      const failed = await runAll(
        ctx,
        // A package puts the new binary in place before running amp install:
        // then the copy is unchanged but the daemon still runs the old one.
        startCommands(init, {
          restart: upgrade &&
            (binaryChanged ||
              processesRunning(tree.real(BIN_PATH), { deletedOnly: true }).length > 0),
        }),
        report,
        log,
      );
      if (failed.length > 0) {
        const why = failed.map(describeRun);
        log.error(`connector not started: ${why.join("; ")}`);
        throw new ServiceFailedError(
          `Installed, but the connector did not start: ${why.join("; ")}`,
          report,
        );
      }
      if (!dryRun) {
        log.notice("connector started");
        report.notes.push("connector started");
      }
    }
    if (dryRun) report.notes.push("dry run: nothing was changed");
    return report;
  } catch (error) {
    if (error instanceof ServiceFailedError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    logChanges();
    log.error(`install failed while ${step}: ${detail}`);
    if (!dryRun) installerLog.open();
    throw new ServiceFailedError(`Install failed while ${step}: ${detail}`, report, {
      cause: error,
    });
  } finally {
    await events?.close();
    await installerLog.close();
  }
}

function installEvent(
  type: "Install Started" | "Install Completed",
  init: InitSystem,
  upgrade: boolean,
): NewEvent {
  return { type, time: Date.now(), details: { version: VERSION, init, upgrade } };
}

/** The executable to copy: `--binary`, else the running amp; checked to be a regular file. */
async function resolveBinary(binary: string | undefined): Promise<string> {
  if (binary === undefined) {
    if (runningFromSource()) {
      throw new ServiceInputError(
        `amp is running from source (${Deno.execPath()} is Deno, not amp): ` +
          "give the executable to install with --binary PATH (built with deno task compile)",
      );
    }
    return Deno.execPath();
  }
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(binary);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new ServiceInputError(`--binary ${binary}: ${why}`, { cause: error });
  }
  if (!stat.isFile) throw new ServiceInputError(`--binary ${binary}: not a regular file`);
  try {
    (await Deno.open(binary, { read: true })).close();
  } catch (error) {
    throw new ServiceInputError(`--binary ${binary}: cannot read it: ${error}`, { cause: error });
  }
  return binary;
}

/**
 * The text amp.json will have: an existing file is kept as it is unless
 * service.init or cloud.url must change, and then only those are set (the
 * administrator's other settings, and their absence, stay as they were).
 */
async function planConfig(
  file: string,
  init: InitSystem,
  cloud: string | undefined,
): Promise<string> {
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new ServiceInputError(`Cannot read ${file}: ${error}`, { cause: error });
    }
  }
  let raw: Record<string, unknown> = { logLevel: "notice" };
  if (text !== undefined) {
    try {
      parseConfigText(text, file);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new ServiceInputError(`${detail}\nFix or remove it, then run amp install again.`, {
        cause: error,
      });
    }
    raw = JSON.parse(text.replace(/^\uFEFF/, ""));
  }
  const service = (raw.service ?? {}) as Record<string, unknown>;
  const cloudSection = (raw.cloud ?? {}) as Record<string, unknown>;
  if (
    text !== undefined && service.init === init &&
    (cloud === undefined || cloudSection.url === cloud)
  ) {
    return text;
  }
  const next: Record<string, unknown> = { ...raw };
  if (cloud !== undefined) next.cloud = { ...cloudSection, url: cloud };
  next.service = { ...service, init };
  const checked = AmpConfigSchema.safeParse(next);
  if (!checked.success) {
    throw new ServiceInputError(`Invalid setting for amp.json:\n${z.prettifyError(checked.error)}`);
  }
  return `${JSON.stringify(next, null, 2)}\n`;
}
