/**
 * `amp update`, the hourly job, as ordered steps, each logged to
 * `/var/log/amp/ampupdater.log`:
 *
 * 1. **lock** `/var/lib/amp/update.lock` (one update at a time; a second one
 *    says who runs and does nothing),
 * 2. **config** `/etc/amp/amp.json`,
 * 3. **policy** from the cloud, when amp.json names one and the connector is
 *    registered with that cloud: the assigned policy, checked with the policy schema, replaces
 *    /etc/amp/policy.json when its id or serial differ (a running daemon's
 *    cloud link does the same at each heartbeat; this covers a stopped one),
 * 4. **signatures** from `update.mirror` into `clamav.dbDir`, through
 *    freshclam or amp's own download; the signature directory's fingerprint
 *    before and after tells whether anything changed,
 * 5. **IP lists**: the policy's DFC lists that have a `url`, downloaded into
 *    their files (see `ip_list_download.ts`),
 * 6. **reload** of the daemon, when something changed and a daemon runs (it
 *    then raises Definitions Updated for new signatures, and loads new lists).
 *
 * Without `update.mirror` nothing is downloaded: freshclam's default would be
 * ClamAV's public mirrors, which an administrator has to choose explicitly.
 *
 * @module
 */

import { type AmpConfig, loadConfig } from "../config/amp_config.ts";
import { connectDaemon } from "../cli/daemon_client.ts";
import { readSignatureSet } from "../engine/clamav/clamav_engine.ts";
import { DaemonUnavailableError } from "../ipc/ipc_errors.ts";
import { FileSink } from "../log/file_sink.ts";
import { Logger } from "../log/logger.ts";
import { CloudClient } from "../cloud/cloud_client.ts";
import { loadIdentity, readCaCerts } from "../cloud/connector_identity.ts";
import type { PolicyResponse } from "../cloud/protocol.ts";
import {
  loadPolicy,
  POLICY_PATH,
  resolveUnderRoot,
  writePolicyFile,
} from "../policy/load_policy.ts";
import { PolicySchema } from "../policy/schema.ts";
import { downloadIpLists, type IpListDownload } from "./ip_list_download.ts";
import { redactUrl } from "../support/redact.ts";
import { findExecutable, runFreshclam } from "./freshclam.ts";
import {
  describeFile,
  downloadSignatures,
  type SignatureFileResult,
} from "./signature_download.ts";
import { tryUpdateLock, UPDATE_LOCK_PATH } from "./update_lock.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

/** The updater's log file, relative to `--root`. */
export const UPDATER_LOG_PATH = "/var/log/amp/ampupdater.log";

/** freshclam's own log (UpdateLogFile), relative to `--root`. */
export const FRESHCLAM_LOG_PATH = "/var/log/amp/freshclam.log";

/** Options of {@linkcode runUpdate}. */
export interface UpdateOptions {
  /** Host root; `/` by default. */
  root?: string;
  /** Signature directory instead of amp.json's `clamav.dbDir`. */
  dbDir?: string;
  /** Where to look for freshclam (a PATH string); the environment's PATH by default. */
  searchPath?: string;
  /** freshclam download attempts per database; 3 by default. */
  freshclamMaxAttempts?: number;
  /** Load each downloaded file with libclamav before installing it (default true). */
  testLoad?: boolean;
}

/** The policy step. */
export interface PolicyStep {
  status: "no-cloud" | "not-registered" | "unavailable" | "up-to-date" | "updated" | "rejected";
  message: string;
  /** The policy in force after the step. */
  policy?: { id: number; serial: number; name: string };
}

/** The signature step. */
export interface SignatureStep {
  method: "freshclam" | "download" | "none";
  /** Whether the signature directory differs from before. */
  changed: boolean;
  dbDir: string;
  /** The mirror, credentials removed. */
  mirror?: string;
  files: SignatureFileResult[];
  message: string;
  /** Set when the step failed. */
  error?: string;
}

/** What `amp update` did (also its `--json` document). */
export interface UpdateReport {
  /** `busy`: another update holds the lock and nothing was done. */
  status: "done" | "busy" | "config-error";
  message?: string;
  /** The lock holder, when busy. */
  pid?: number;
  policy?: PolicyStep;
  signatures?: SignatureStep;
  /** The policy's DFC lists with a URL, or why they were not fetched. */
  ipLists?: IpListDownload[];
  ipListsError?: string;
  daemon?: "reloaded" | "not running" | "not needed" | "failed";
  daemonError?: string;
  /** Signatures the daemon reported after its reload. */
  daemonSignatures?: number;
  durationMs: number;
  /** 0 done or nothing to do (or busy), 1 a step failed, 2 configuration error. */
  exitCode: 0 | 1 | 2;
  log: string;
}

/**
 * Runs one update. Never throws for a failed step: the report says what
 * failed, and `exitCode` is 1.
 *
 * @example
 * ```ts
 * import { runUpdate } from "./run_update.ts";
 * const root = await Deno.makeTempDir();
 * const report = await runUpdate({ root, dbDir: `${root}/sigs` });
 * // report.signatures?.message === "no update.mirror configured in amp.json: signatures not updated"
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function runUpdate(options: UpdateOptions = {}): Promise<UpdateReport> {
  const started = performance.now();
  const root = options.root ?? "/";
  const logPath = resolveUnderRoot(root, UPDATER_LOG_PATH);
  const sink = new FileSink(logPath, { ident: "ampupdater" });
  const log = new Logger([sink], { level: "info" });
  const done = (report: Omit<UpdateReport, "durationMs" | "log">): UpdateReport => ({
    ...report,
    durationMs: Math.round(performance.now() - started),
    log: logPath,
  });
  try {
    log.notice(`Update started (pid ${Deno.pid}, root ${root})`);
    const lockPath = resolveUnderRoot(root, UPDATE_LOCK_PATH);
    const got = await tryUpdateLock(lockPath);
    if (got.kind === "busy") {
      const message = `another update is running (pid ${got.pid ?? "unknown"})`;
      log.notice(`Not updating: ${message}`);
      return done({ status: "busy", message, pid: got.pid, exitCode: 0 });
    }
    try {
      let config: AmpConfig;
      try {
        config = (await loadConfig({ root })).config;
      } catch (error) {
        log.error(message(error));
        return done({ status: "config-error", message: message(error), exitCode: 2 });
      }
      const policy = await policyStep(root, config, log);
      const signatures = await signatureStep(config, options, log);
      const lists = await ipListStep(root, log);
      const listsFailed = lists.error !== undefined ||
        lists.results.some((r) => r.status === "failed");
      // New lists or a new policy: the daemon reloads them (new signatures too, below).
      const othersChanged = lists.results.some((r) => r.status === "updated") ||
        policy.status === "updated";
      const report: Omit<UpdateReport, "durationMs" | "log"> = {
        status: "done",
        policy,
        signatures,
        ipLists: lists.results,
        daemon: "not needed",
        exitCode: signatures.error || listsFailed || policy.status === "rejected" ? 1 : 0,
      };
      if (lists.error) report.ipListsError = lists.error;
      // A reload that failed last time is owed even when nothing changed since.
      const pendingFile = resolveUnderRoot(root, RELOAD_PENDING_PATH);
      const owed = await Deno.lstat(pendingFile).then(() => true, () => false);
      if (signatures.changed || othersChanged || owed) {
        if (owed && !signatures.changed && !othersChanged) {
          log.notice("A daemon reload failed last time: retrying");
        }
        const reload = await reloadDaemon(root, log);
        report.daemon = reload.daemon;
        if (reload.error) report.daemonError = reload.error;
        if (reload.signatures !== undefined) report.daemonSignatures = reload.signatures;
        if (reload.daemon === "failed") {
          report.exitCode = 1;
          await Deno.writeTextFile(pendingFile, `${new Date().toISOString()}\n`).catch(() => {});
        } else {
          await Deno.remove(pendingFile).catch(() => {});
        }
      } else {
        log.info("Signatures, IP lists and policy unchanged: no reload needed");
      }
      log[report.exitCode === 0 ? "notice" : "error"](
        `Update finished: ${report.exitCode === 0 ? "ok" : "a step failed"}`,
      );
      return done(report);
    } finally {
      got.lock.release();
    }
  } catch (error) {
    log.error(`Update failed: ${message(error)}`);
    return done({ status: "done", message: message(error), exitCode: 1 });
  } finally {
    await log.close();
  }
}

async function ipListStep(
  root: string,
  log: Logger,
): Promise<{ results: IpListDownload[]; error?: string }> {
  let sources;
  try {
    sources = (await loadPolicy({ root })).policy.dfc.lists;
  } catch (error) {
    const text = `IP lists not updated: the policy cannot be read: ${message(error)}`;
    log.error(text);
    return { results: [], error: text };
  }
  if (!sources.some((s) => s.url)) {
    log.info("IP lists: the policy names no list URL");
    return { results: [] };
  }
  return { results: await downloadIpLists(sources, { root, log }) };
}

async function policyStep(root: string, config: AmpConfig, log: Logger): Promise<PolicyStep> {
  const step = await fetchPolicy(root, config);
  log[step.status === "rejected" ? "error" : "notice"](`Policy: ${step.message}`);
  return step;
}

async function fetchPolicy(root: string, config: AmpConfig): Promise<PolicyStep> {
  const url = config.cloud.url;
  if (!url) return { status: "no-cloud", message: "no cloud configured" };
  const identity = await loadIdentity(root);
  if (!identity) {
    return {
      status: "not-registered",
      message: `not registered with ${redactUrl(url)} yet (amp cloud register --token TOKEN)`,
    };
  }
  // The key of one cloud is never sent to another.
  if (identity.url !== url) {
    return {
      status: "not-registered",
      message: `registered with another cloud (${redactUrl(identity.url)}), not ${
        redactUrl(url)
      }: amp cloud register --token TOKEN`,
    };
  }
  let answer: PolicyResponse;
  let client: CloudClient | undefined;
  try {
    client = new CloudClient({
      url,
      caCerts: await readCaCerts(root, config.cloud.ca),
      proxy: config.cloud.proxy,
    });
    answer = await client.policy(identity.key);
  } catch (error) {
    // Offline is not a failure: the policy in force stays, the next run asks again.
    return { status: "unavailable", message: `cloud unavailable, policy kept: ${message(error)}` };
  } finally {
    client?.close();
  }
  const parsed = PolicySchema.safeParse(answer.document);
  if (!parsed.success) {
    return {
      status: "rejected",
      message: `the cloud's policy #${answer.policy.id} serial ${answer.policy.serial} is not ` +
        `valid, policy kept: ${parsed.error.issues[0]?.path.join(".")}: ${
          parsed.error.issues[0]?.message
        }`,
    };
  }
  const got = { id: parsed.data.id, serial: parsed.data.serial, name: parsed.data.name };
  const local = await loadPolicy({ root }).then((l) => l.policy, () => undefined);
  if (local && local.id === got.id && local.serial === got.serial) {
    return { status: "up-to-date", message: `policy #${got.id} serial ${got.serial}`, policy: got };
  }
  try {
    await writePolicyFile(root, answer.document);
  } catch (error) {
    // The other steps still run; this one failed.
    return {
      status: "rejected",
      message: `cannot write ${resolveUnderRoot(root, POLICY_PATH)}: ${
        message(error)
      }, policy kept`,
    };
  }
  return {
    status: "updated",
    message: `policy #${got.id} serial ${got.serial} (${got.name}) from the cloud` +
      (local ? `, was #${local.id} serial ${local.serial}` : ""),
    policy: got,
  };
}

async function signatureStep(
  config: AmpConfig,
  options: UpdateOptions,
  log: Logger,
): Promise<SignatureStep> {
  const dbDir = options.dbDir ?? config.clamav.dbDir;
  const mirror = config.update.mirror;
  if (!mirror) {
    const message = "no update.mirror configured in amp.json: signatures not updated";
    log.notice(`Signatures: ${message}`);
    return { method: "none", changed: false, dbDir, files: [], message };
  }
  const shown = redactUrl(mirror);
  let method: "freshclam" | "download";
  let freshclam: string | undefined;
  if (config.update.method === "download") {
    method = "download";
  } else {
    freshclam = await findExecutable("freshclam", options.searchPath);
    if (!freshclam && config.update.method === "freshclam") {
      const error = "freshclam is not installed (not on PATH): install clamav-freshclam, " +
        'or set update.method to "download" in amp.json';
      log.error(`Signatures: ${error}`);
      return {
        method: "freshclam",
        changed: false,
        dbDir,
        mirror: shown,
        files: [],
        message: error,
        error,
      };
    }
    method = freshclam ? "freshclam" : "download";
  }
  log.notice(`Signatures: ${method} from ${shown} into ${dbDir}`);
  const before = await readSignatureSet(dbDir);
  const step: SignatureStep = {
    method,
    changed: false,
    dbDir,
    mirror: shown,
    files: [],
    message: "",
  };
  try {
    if (freshclam && method === "freshclam") {
      const outcome = await runFreshclam({
        executable: freshclam,
        dbDir,
        mirror,
        logFile: resolveUnderRoot(options.root ?? "/", FRESHCLAM_LOG_PATH),
        maxAttempts: options.freshclamMaxAttempts,
        onLine: (line, stream) =>
          log[stream === "stderr" ? "warning" : "info"](`freshclam: ${line}`),
      });
      step.files = outcome.files.map((f) => ({
        name: f.name,
        status: f.status,
        version: f.version,
        signatures: f.signatures,
      }));
      // Some freshclam versions exit 1 for "database is up to date".
      if (outcome.code !== 0 && outcome.code !== 1) {
        step.error = `freshclam exited ${outcome.code} (${outcome.meaning})` +
          (outcome.errors.length ? `: ${outcome.errors.slice(-3).join("; ")}` : "");
      }
    } else {
      const result = await downloadSignatures({ mirror, dbDir, log, testLoad: options.testLoad });
      step.files = result.files;
      const bad = result.files.filter((f) => f.status === "rejected" || f.status === "failed");
      if (bad.length > 0) {
        step.error = bad.map((f) => `${f.name}: ${describeFile(f)}`).join("; ");
      }
    }
  } catch (error) {
    step.error = message(error);
  }
  const after = await readSignatureSet(dbDir);
  step.changed = after.fingerprint !== before.fingerprint;
  step.message = step.error
    ? `signature update failed: ${step.error}`
    : step.changed
    ? "signatures updated"
    : "signatures up to date";
  log[step.error ? "error" : "notice"](`Signatures: ${step.message}`);
  return step;
}

/** Marks a daemon reload the next update owes (the last one failed). */
export const RELOAD_PENDING_PATH = "/var/lib/amp/update.reload-pending";

async function reloadDaemon(
  root: string,
  log: Logger,
): Promise<{ daemon: "reloaded" | "not running" | "failed"; error?: string; signatures?: number }> {
  let client;
  try {
    client = await connectDaemon(root);
  } catch (error) {
    if (error instanceof DaemonUnavailableError && /not running|refused/i.test(error.message)) {
      log.notice("Daemon not running: the new signatures are used when it starts");
      return { daemon: "not running" };
    }
    log.error(`Daemon reload failed: ${message(error)}`);
    return { daemon: "failed", error: message(error) };
  }
  try {
    const status = await client.request("reload") as {
      engines?: { clamav?: { signatures?: number } };
    };
    const signatures = status?.engines?.clamav?.signatures;
    log.notice(
      `Daemon reloaded${signatures !== undefined ? ` (${signatures} ClamAV signatures)` : ""}`,
    );
    return { daemon: "reloaded", signatures };
  } catch (error) {
    log.error(`Daemon reload failed: ${message(error)}`);
    return { daemon: "failed", error: message(error) };
  } finally {
    await client.close();
  }
}
