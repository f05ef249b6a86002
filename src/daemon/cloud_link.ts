/**
 * The daemon's link to the cloud (amp.json `cloud.url`): registration,
 * heartbeat, policy updates, event upload, cloud lookups in the verdict
 * pipeline, and retrospective detection.
 *
 * One loop does the talking, ticking about once a second while connected:
 * a heartbeat every `heartbeatSeconds` (the cloud says how often), which
 * brings a changed policy (written to /etc/amp/policy.json and applied by the
 * daemon's reload, so Policy Update or Policy Update Failure follows) and the
 * newest disposition change; then the queued events, oldest first. A failed
 * call marks the link Disconnected (Cloud Connection Lost, once) and the loop
 * retries with exponential backoff and jitter; the first call that works
 * again raises Cloud Connection Restored, and the queue drains in order.
 *
 * Verdicts: {@linkcode CloudLink.check} runs after the local cache and the
 * offline engines (the reference connector's order): a file they found clean
 * and that is not allow-listed is looked up by SHA-256 (the cloud query cache
 * first, then a batched request). The cloud never blocks protection: while it
 * is unreachable the answer is "unknown" at once and the offline verdict
 * stands. Files the cloud called clean, or does not know (or could not be
 * asked about), are recorded in retrospective.db; when the cloud later calls
 * such a hash malicious, each file raises Retrospective Detection and, under a
 * quarantine policy, is quarantined if it is still there with the same
 * content. Files convicted when seen are not recorded, and a recorded file
 * convicted later (new signatures, the cloud's answer) is forgotten: its
 * conviction was dealt with then, and a second alert about it would be noise.
 *
 * Commands: a heartbeat answer may carry commands from the console (restore
 * a quarantined file). They are carried out through the quarantine at once,
 * and the next heartbeat, sent right after, reports each outcome and the new
 * quarantine list (heartbeats carry the list whenever it changed). The
 * restore is the daemon's own (as for `amp quarantine restore`: its hash is
 * not convicted again), and a command that comes again because its result
 * was lost finds the record already restored and reports success.
 *
 * Status: Offline (no cloud configured), Disconnected (configured, but not
 * registered or not reachable), Connected (the last call worked).
 *
 * @module
 */

import { O } from "../../ffi/libc.ts";
import type { AmpConfig } from "../config/amp_config.ts";
import { backoffDelay } from "../cloud/backoff.ts";
import {
  CloudClient,
  CloudProtocolError,
  CloudRequestError,
  CloudUnavailableError,
} from "../cloud/cloud_client.ts";
import { CloudLookup, type CloudLookupStats } from "../cloud/cloud_lookup.ts";
import {
  type Identity,
  loadIdentity,
  readCaCerts,
  registerConnector,
  REGISTRATION_TOKEN_PATH,
  saveIdentity,
  waitingToken,
} from "../cloud/connector_identity.ts";
import { EventUploader, isCloudRefusal } from "../cloud/event_uploader.ts";
import { LookupCache } from "../cloud/lookup_cache.ts";
import {
  type Command,
  type CommandResult,
  type DispositionChange,
  type HeartbeatRequest,
  MAX_HEARTBEAT_QUARANTINE,
  type PolicyDocumentSchema,
  type PolicyRef,
  type QuarantineItem,
} from "../cloud/protocol.ts";
import { RetrospectiveDb } from "../cloud/retrospective_db.ts";
import type { FileHasher } from "../engine/file_hasher.ts";
import { JsFileHasher } from "../engine/file_hasher.ts";
import type { OpenFile } from "../engine/pipeline.ts";
import type { FileVerdict } from "../engine/verdict.ts";
import { resolveUnderRoot, writePolicyFile } from "../policy/load_policy.ts";
import type { Policy } from "../policy/schema.ts";
import type { Quarantine } from "../protect/quarantine.ts";
import type { AmpEvent } from "../store/event.ts";
import type { EventsDb } from "../store/events_db.ts";
import { escapePath } from "../sys/byte_path.ts";
import { AT, close, fstat, openat } from "../sys/libc.ts";
import { errorMessage } from "../sys/sys_error.ts";
import type { StatusReport } from "./status_report.ts";
import type { z } from "zod";

/** The cloud connection as `amp status` shows it. */
export type CloudStatus = "Connected" | "Disconnected" | "Offline";

/** The link's state for `amp status`. */
export interface CloudReport {
  status: CloudStatus;
  url?: string;
  registered: boolean;
  computerId?: number;
  /** When a call last worked (ms since the epoch). */
  lastContact?: number;
  /** Why the link is not connected. */
  lastError?: string;
  uploadedEvents: number;
  droppedEvents: number;
  lookups: CloudLookupStats;
  retrospectiveDetections: number;
}

/** What the link logs. */
export interface LinkLog {
  error(message: string): void;
  warning(message: string): void;
  notice(message: string): void;
  info(message: string): void;
}

/** What a heartbeat tells about the connector, besides its policy and event queue. */
export type HeartbeatFacts =
  & Omit<
    HeartbeatRequest,
    "policy" | "counts" | "quarantine" | "commandResults"
  >
  & {
    counts: Omit<HeartbeatRequest["counts"], "queuedEvents">;
  };

/** An event raised by the link (the daemon adds time, host and policy). */
export type LinkEvent = Omit<AmpEvent, "time" | "host" | "policy">;

/** Options of {@linkcode CloudLink.open}. */
export interface CloudLinkOptions {
  root: string;
  /** amp.json's `cloud` section. */
  config: AmpConfig["cloud"];
  events: EventsDb;
  log: LinkLog;
  event: (event: LinkEvent) => void;
  /** The policy in force. */
  policy: () => Policy;
  /** Re-reads /etc/amp/policy.json (the daemon's reload). */
  reload: () => Promise<void>;
  /** The daemon's state for heartbeats (see {@linkcode heartbeatFacts}). */
  facts: () => Promise<HeartbeatFacts>;
  /** The quarantine, when available. */
  quarantine: () => Quarantine | undefined;
  /**
   * Restores a quarantined file the way `amp quarantine restore` does (the
   * daemon then never convicts its hash again, and raises Quarantine
   * Restored with `details`); returns where it went.
   */
  restore: (id: number, details: Record<string, unknown>) => Promise<Uint8Array>;
  /** Hashes files for retrospective checks (the JS hasher by default). */
  hasher?: FileHasher;
  /** Loop tick while connected, in ms (default 1000). */
  tickMs?: number;
  /** First retry delay, in ms (default 1000). */
  backoffBaseMs?: number;
  /** How long a lookup request may take, in ms (default 3000). */
  lookupTimeoutMs?: number;
}

const HOUR = 3600_000;
const UNREGISTERED_POLL_MS = 10_000;

/** The connector's link to its cloud. */
export class CloudLink {
  readonly #o: CloudLinkOptions;
  readonly #url?: string;
  readonly #client?: CloudClient;
  readonly #cache?: LookupCache;
  readonly #retro?: RetrospectiveDb;
  readonly #lookup?: CloudLookup;
  readonly #uploader: EventUploader;
  readonly #hasher: FileHasher;
  #identity?: Identity;
  #status: CloudStatus;
  #lastContact?: number;
  #lastError?: string;
  /** Set while the link counts as lost (Cloud Connection Lost raised). */
  #lostAt?: number;
  #attempts = 0;
  #retryAt = 0;
  #nextHeartbeat = 0;
  #nextPrune = 0;
  #rejectedPolicy?: string;
  /** The key the cloud last refused (401). */
  #refusedKey?: string;
  #retrospective = 0;
  /** The quarantine list last sent (its JSON), so that unchanged lists are not sent again. */
  #sentQuarantine?: string;
  /** Outcomes of commands not yet reported. */
  #results: CommandResult[] = [];
  /** Send the next heartbeat at once (commands were carried out). */
  #beatAgain = false;
  #running?: Promise<void>;
  #stopping = false;
  #wake?: () => void;

  private constructor(
    options: CloudLinkOptions,
    parts: {
      url?: string;
      client?: CloudClient;
      cache?: LookupCache;
      retro?: RetrospectiveDb;
      identity?: Identity;
    },
  ) {
    this.#o = options;
    this.#url = parts.url;
    this.#client = parts.client;
    this.#cache = parts.cache;
    this.#retro = parts.retro;
    this.#identity = parts.identity;
    this.#hasher = options.hasher ?? new JsFileHasher();
    this.#status = parts.url ? "Disconnected" : "Offline";
    this.#uploader = new EventUploader({
      events: options.events,
      onDrop: (n) =>
        options.log.warning(`Event upload queue over its bound: ${n} oldest events dropped`),
      isRefusal: isCloudRefusal,
      onRefused: (e, error) =>
        options.log.error(
          `The cloud refused event ${e.key} (${e.type}): ${
            errorMessage(error)
          }; dropped from the queue`,
        ),
    });
    if (parts.cache) {
      this.#lookup = new CloudLookup({
        cache: parts.cache,
        transport: () => this.#transport(),
        onError: (error) => this.#lookupFailed(error),
      });
    }
  }

  /**
   * Opens the link's stores (cloud_query.cache, retrospective.db) and its
   * identity; no network yet. Without a cloud URL the link is Offline.
   */
  static async open(options: CloudLinkOptions): Promise<CloudLink> {
    const url = options.config.url;
    if (!url) return new CloudLink(options, {});
    const dir = resolveUnderRoot(options.root, "/var/lib/amp");
    const client = new CloudClient({
      url,
      caCerts: await readCaCerts(options.root, options.config.ca),
      proxy: options.config.proxy,
    });
    let cache: LookupCache | undefined;
    try {
      cache = await LookupCache.open(`${dir}/cloud_query.cache`);
      if (cache.recovered) {
        options.log.warning(`cloud_query.cache was corrupt: moved to ${cache.recovered}`);
      }
      const retro = await RetrospectiveDb.open(`${dir}/retrospective.db`);
      if (retro.recovered) {
        options.log.warning(`retrospective.db was corrupt: moved to ${retro.recovered}`);
      }
      const identity = await loadIdentity(options.root);
      return new CloudLink(options, {
        url,
        client,
        cache,
        retro,
        identity: identity?.url === url ? identity : undefined,
      });
    } catch (error) {
      client.close();
      await cache?.close();
      throw error;
    }
  }

  /** Starts the loop (nothing to do when Offline). */
  start(): void {
    if (!this.#url || this.#running) return;
    this.#running = this.#loop();
  }

  /** The connection state. */
  get status(): CloudStatus {
    return this.#status;
  }

  /** The link's state for `amp status`. */
  report(): CloudReport {
    const report: CloudReport = {
      status: this.#status,
      registered: this.#identity !== undefined,
      uploadedEvents: this.#uploader.sent,
      droppedEvents: this.#uploader.dropped,
      lookups: { ...(this.#lookup?.stats ?? emptyStats()) },
      retrospectiveDetections: this.#retrospective,
    };
    if (this.#url) report.url = this.#url;
    if (this.#identity) report.computerId = this.#identity.computerId;
    if (this.#lastContact !== undefined) report.lastContact = this.#lastContact;
    if (this.#lastError !== undefined && this.#status !== "Connected") {
      report.lastError = this.#lastError;
    }
    return report;
  }

  /**
   * The cloud step of the verdict pipeline, after the local cache and the
   * offline engines: a clean file that is not allow-listed is looked up; a
   * malicious answer convicts it (engine "cloud"). Never throws.
   */
  async check(file: OpenFile, result: FileVerdict): Promise<FileVerdict> {
    const v = result.verdict;
    const sha256 = result.sha256;
    if (!this.#retro || !sha256) return result;
    try {
      // Convicted here and now: a later disposition change must not alert about it again.
      if (v.kind === "malicious") await this.#retro.forget(sha256, file.path);
      if (!this.#lookup || !this.#o.policy().engines.cloud.enabled) return result;
      if (v.kind !== "clean" || v.engine === "allowlist") return result;
      const answer = await this.#lookup.lookup(sha256);
      if (answer.disposition === "malicious") {
        await this.#retro.forget(sha256, file.path);
        return {
          ...result,
          verdict: { kind: "malicious", name: answer.name ?? "Cloud.Malicious", engine: "cloud" },
          cached: false,
        };
      }
      // Clean or unknown now: followed, so that a change to malicious is detected.
      this.#retro.record(sha256, file.path);
      return result;
    } catch (error) {
      this.#o.log.warning(`Cloud lookup failed: ${errorMessage(error)}`);
      return result;
    }
  }

  /** Stops the loop and closes the stores; safe to call twice. */
  async close(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
    await this.#lookup?.flush().catch(() => {});
    this.#client?.close();
    await this.#retro?.close();
    await this.#cache?.close();
  }

  // ---- the loop

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      let wait: number;
      try {
        wait = await this.#tick();
      } catch (error) {
        wait = this.#failed(error);
      }
      if (this.#stopping) break;
      await this.#sleep(wait);
    }
  }

  /** One round; returns how long to wait before the next. */
  async #tick(): Promise<number> {
    const now = Date.now();
    if (now < this.#retryAt) return this.#retryAt - now;
    await this.#retro?.flush();
    if (now >= this.#nextPrune) {
      this.#nextPrune = now + HOUR;
      const pruned = this.#cache?.prune() ?? 0;
      if (pruned > 0) this.#o.log.info(`Cloud query cache: ${pruned} expired entries dropped`);
    }
    const identity = this.#identity ?? await this.#register();
    if (!identity) {
      this.#status = "Disconnected";
      this.#lastError =
        `not registered: run amp cloud register --token TOKEN (or put it in ${REGISTRATION_TOKEN_PATH})`;
      return UNREGISTERED_POLL_MS;
    }
    if (now >= this.#nextHeartbeat || this.#status !== "Connected") {
      await this.#heartbeat(identity);
      this.#nextHeartbeat = this.#beatAgain
        ? Date.now()
        : Date.now() + identity.heartbeatSeconds * 1000;
      this.#beatAgain = false;
    }
    await this.#uploader.drain(async (batch) => {
      await this.#client!.uploadEvents(identity.key, batch);
      this.#contact();
    });
    this.#attempts = 0;
    return Math.max(0, Math.min(this.#o.tickMs ?? 1000, this.#nextHeartbeat - Date.now()));
  }

  async #register(): Promise<Identity | undefined> {
    // `amp cloud register` may have written an identity since the daemon started.
    const saved = await loadIdentity(this.#o.root);
    // A key the cloud refused is not tried again: a waiting token may register anew.
    if (saved && saved.url === this.#url && saved.key !== this.#refusedKey) {
      return (this.#identity = saved);
    }
    const token = await waitingToken(this.#o.root);
    if (!token) return undefined;
    const identity = await registerConnector(this.#client!, token, {
      root: this.#o.root,
      url: this.#url!,
    });
    this.#identity = identity;
    await Deno.remove(resolveUnderRoot(this.#o.root, REGISTRATION_TOKEN_PATH)).catch(() => {});
    this.#o.log.notice(
      `Registered with the cloud ${this.#url} as computer #${identity.computerId}`,
    );
    return identity;
  }

  async #heartbeat(identity: Identity): Promise<void> {
    const policy = this.#o.policy();
    const facts = await this.#o.facts();
    const request: HeartbeatRequest = {
      ...facts,
      policy: { id: policy.id, serial: policy.serial },
      counts: { ...facts.counts, queuedEvents: await this.#uploader.pending() },
    };
    const quarantine = await this.#quarantineList();
    const quarantineJson = quarantine && JSON.stringify(quarantine);
    if (quarantine && quarantineJson !== this.#sentQuarantine) request.quarantine = quarantine;
    const results = this.#results.slice(0, 20);
    if (results.length > 0) request.commandResults = results;
    const answer = await this.#client!.heartbeat(identity.key, request);
    this.#contact();
    if (request.quarantine) this.#sentQuarantine = quarantineJson;
    this.#results = this.#results.slice(results.length);
    if (this.#results.length > 0) this.#beatAgain = true;
    if (answer.commands && answer.commands.length > 0) await this.#run(answer.commands);
    if (answer.heartbeatSeconds !== identity.heartbeatSeconds) {
      identity.heartbeatSeconds = answer.heartbeatSeconds;
      await saveIdentity(this.#o.root, identity).catch(() => {});
    }
    if (answer.policyDocument) await this.#applyPolicy(answer.policy, answer.policyDocument);
    let cursor = await this.#retro!.cursor(this.#url!);
    if (answer.dispositionCursor < cursor) {
      // The cloud's change log is behind what this connector read: its database was made anew.
      this.#o.log.warning(
        `The cloud's disposition changes end at ${answer.dispositionCursor}, before this ` +
          `connector's cursor ${cursor} (a new cloud database?): following them from the start`,
      );
      cursor = 0;
      await this.#retro!.setCursor(this.#url!, cursor);
    }
    if (answer.dispositionCursor > cursor) await this.#followDispositions(identity, cursor);
  }

  /** A call worked: Connected (and Cloud Connection Restored after a loss). */
  #contact(): void {
    this.#lastContact = Date.now();
    if (this.#status === "Connected") return;
    this.#status = "Connected";
    this.#lastError = undefined;
    if (this.#lostAt !== undefined) {
      const offlineMs = Date.now() - this.#lostAt;
      this.#lostAt = undefined;
      this.#o.event({ type: "Cloud Connection Restored", details: { url: this.#url, offlineMs } });
      this.#o.log.notice(`Cloud connection restored (${this.#url}) after ${offlineMs} ms`);
    } else {
      this.#o.log.notice(`Connected to the cloud ${this.#url}`);
    }
  }

  /** A round failed: decide what it means and when to try again. */
  #failed(error: unknown): number {
    const message = errorMessage(error);
    this.#lastError = message;
    if (error instanceof CloudUnavailableError || error instanceof CloudProtocolError) {
      this.#lost(message);
    } else if (error instanceof CloudRequestError && error.status === 401) {
      this.#lost(message);
      this.#o.log.error(
        `The cloud refused this connector's credentials (${message}); ` +
          "register again with amp cloud register --token TOKEN",
      );
      // A token waiting in the registration file is tried at the next round.
      this.#refusedKey = this.#identity?.key;
      this.#identity = undefined;
    } else {
      this.#o.log.error(`Cloud link: ${message}`);
    }
    const heartbeatMs = (this.#identity?.heartbeatSeconds ?? 60) * 1000;
    const delay = backoffDelay(this.#attempts++, {
      baseMs: this.#o.backoffBaseMs ?? 1000,
      maxMs: Math.min(300_000, Math.max(5_000, 5 * heartbeatMs)),
    });
    this.#retryAt = Date.now() + delay;
    return delay;
  }

  #lost(reason: string): void {
    if (this.#status === "Connected" || this.#lostAt === undefined) {
      if (this.#lostAt === undefined) {
        this.#lostAt = Date.now();
        this.#o.event({ type: "Cloud Connection Lost", details: { url: this.#url, reason } });
        this.#o.log.warning(`Cloud connection lost (${this.#url}): ${reason}`);
      }
    }
    this.#status = "Disconnected";
  }

  #lookupFailed(error: unknown): void {
    if (error instanceof CloudUnavailableError || error instanceof CloudRequestError) {
      this.#lastError = errorMessage(error);
      this.#lost(this.#lastError);
      this.#retryAt = Date.now() +
        backoffDelay(0, { baseMs: this.#o.backoffBaseMs ?? 1000, maxMs: 5_000 });
      this.#wake?.();
    } else {
      this.#o.log.warning(`Cloud lookup failed: ${errorMessage(error)}`);
    }
  }

  #transport() {
    const identity = this.#identity;
    if (this.#status !== "Connected" || !identity || !this.#client) return undefined;
    const client = this.#client;
    return {
      lookup: async (hashes: string[]) => {
        const { results } = await client.lookup(
          identity.key,
          hashes,
          this.#o.lookupTimeoutMs ?? 3000,
        );
        this.#lastContact = Date.now();
        return results;
      },
    };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  // ---- policy

  async #applyPolicy(
    ref: PolicyRef,
    document: z.infer<typeof PolicyDocumentSchema>,
  ): Promise<void> {
    const key = `${ref.id}:${ref.serial}`;
    if (this.#rejectedPolicy === key) return;
    await writePolicyFile(this.#o.root, document);
    this.#o.log.notice(`Policy #${ref.id} serial ${ref.serial} received from the cloud`);
    await this.#o.reload();
    const now = this.#o.policy();
    if (now.id !== ref.id || now.serial !== ref.serial) {
      this.#rejectedPolicy = key;
      this.#o.log.warning(
        `The cloud's policy #${ref.id} serial ${ref.serial} was not applied (see Policy Update Failure)`,
      );
    }
  }

  // ---- commands from the console

  /** The files in quarantine now, newest first, as heartbeats report them. */
  async #quarantineList(): Promise<QuarantineItem[] | undefined> {
    const quarantine = this.#o.quarantine();
    if (!quarantine) return undefined;
    try {
      return (await quarantine.list()).filter((r) => r.state === "quarantined")
        .sort((a, b) => b.time - a.time || b.id - a.id)
        .slice(0, MAX_HEARTBEAT_QUARANTINE)
        .map((r) => ({
          id: r.id,
          pathText: wireText(r.pathText, 16_384),
          sha256: r.sha256,
          size: r.size,
          detection: wireText(r.detection, 255),
          engine: wireText(r.engine, 64),
          time: r.time,
        }));
    } catch (error) {
      this.#o.log.warning(`Cannot list the quarantine for the cloud: ${errorMessage(error)}`);
      return undefined;
    }
  }

  /** Carries out commands; their outcomes go with the next heartbeat, sent at once. */
  async #run(commands: Command[]): Promise<void> {
    for (const command of commands) {
      if (this.#results.some((r) => r.id === command.id)) continue;
      const outcome = await this.#restore(command);
      this.#results.push({ id: command.id, ...outcome, message: wireText(outcome.message, 1000) });
      this.#o.log[outcome.ok ? "notice" : "warning"](
        `Cloud command #${command.id} (restore quarantined file #${command.quarantineId}): ${outcome.message}`,
      );
    }
    this.#beatAgain = true;
  }

  async #restore(command: Command): Promise<{ ok: boolean; message: string }> {
    const quarantine = this.#o.quarantine();
    if (!quarantine) return { ok: false, message: "The quarantine is not available" };
    try {
      const record = await quarantine.get(command.quarantineId);
      if (!record || record.sha256 !== command.sha256) {
        return {
          ok: false,
          message: `No quarantined file #${command.quarantineId} with that SHA-256`,
        };
      }
      if (record.state === "restored") {
        return {
          ok: true,
          message: `Already restored to ${record.restoredPathText ?? record.pathText}`,
        };
      }
      const path = await this.#o.restore(record.id, { origin: "cloud", commandId: command.id });
      return { ok: true, message: `Restored to ${escapePath(path)}` };
    } catch (error) {
      return { ok: false, message: errorMessage(error) };
    }
  }

  // ---- dispositions and retrospective detection

  async #followDispositions(identity: Identity, from: number): Promise<void> {
    let cursor = from;
    for (;;) {
      const page = await this.#client!.dispositions(identity.key, cursor);
      await this.#applyChanges(page.changes);
      if (page.cursor <= cursor) {
        // "More" without moving on would ask for the same page for ever.
        if (page.more) {
          this.#o.log.warning(
            `The cloud announced more disposition changes after ${cursor} without moving its ` +
              "cursor: asking again at the next heartbeat",
          );
        }
        return;
      }
      cursor = page.cursor;
      await this.#retro!.setCursor(this.#url!, cursor);
      if (!page.more) return;
    }
  }

  async #applyChanges(changes: DispositionChange[]): Promise<void> {
    const cache = this.#cache!;
    cache.deleteMany(changes.filter((c) => c.disposition === "unknown").map((c) => c.sha256));
    cache.putMany(changes.filter((c) => c.disposition !== "unknown"));
    for (const change of changes) {
      if (change.disposition === "malicious") await this.#retrospect(change);
    }
  }

  async #retrospect(change: DispositionChange): Promise<void> {
    const files = await this.#retro!.filesWith(change.sha256);
    const detection = change.name ?? "Cloud.Malicious";
    for (const seen of files) {
      this.#retrospective++;
      const quarantine = this.#o.policy().mode.file === "quarantine";
      const outcome = quarantine
        ? await this.#quarantine(seen.path, change.sha256, detection)
        : { action: "detected" };
      const details: Record<string, unknown> = {
        origin: "retrospective",
        firstSeen: seen.firstSeen,
        lastSeen: seen.lastSeen,
        dispositionSeq: change.seq,
      };
      if (outcome.quarantineId !== undefined) details.quarantineId = outcome.quarantineId;
      if (outcome.error !== undefined) details.error = outcome.error;
      this.#o.event({
        type: "Retrospective Detection",
        path: seen.path,
        sha256: change.sha256,
        detection,
        engine: "cloud",
        action: outcome.action,
        details,
      });
      if (outcome.action === "quarantined") {
        this.#o.event({
          type: "Threat Quarantined",
          path: seen.path,
          sha256: change.sha256,
          size: outcome.size,
          detection,
          engine: "cloud",
          action: "quarantined",
          details: { origin: "retrospective", quarantineId: outcome.quarantineId },
        });
      } else if (outcome.action === "quarantine-failed") {
        this.#o.event({
          type: "Quarantine Failure",
          path: seen.path,
          sha256: change.sha256,
          detection,
          engine: "cloud",
          action: "quarantine-failed",
          details: { origin: "retrospective", error: outcome.error },
        });
      }
      if (outcome.action !== "detected" && outcome.action !== "quarantine-failed") {
        await this.#retro!.forget(change.sha256, seen.path);
      }
      this.#o.log.notice(
        `Retrospective detection: ${seen.pathText}: ${detection} (${outcome.action})`,
      );
    }
  }

  /** Quarantines a file seen earlier, if it is still there with the convicted content. */
  async #quarantine(
    path: Uint8Array,
    sha256: string,
    detection: string,
  ): Promise<{ action: string; quarantineId?: number; size?: number; error?: string }> {
    const quarantine = this.#o.quarantine();
    if (!quarantine) {
      return { action: "quarantine-failed", error: "the quarantine is not available" };
    }
    let fd: number;
    try {
      fd = openat(AT.FDCWD, path, O.RDONLY | O.CLOEXEC | O.NOFOLLOW | O.NONBLOCK);
    } catch {
      return { action: "gone" };
    }
    try {
      const stat = fstat(fd);
      if (await this.#hasher.sha256(fd) !== sha256) return { action: "changed" };
      const record = await quarantine.quarantine({ fd, path, stat }, {
        name: detection,
        engine: "cloud",
        sha256,
      });
      return { action: "quarantined", quarantineId: record.id, size: stat.size };
    } catch (error) {
      this.#o.log.warning(`Quarantine failed: ${escapePath(path)}: ${errorMessage(error)}`);
      return { action: "quarantine-failed", error: errorMessage(error) };
    } finally {
      close(fd);
    }
  }
}

/** The heartbeat's facts from the daemon's status. */
export function heartbeatFacts(s: StatusReport): HeartbeatFacts {
  const facts: HeartbeatFacts = {
    faults: s.faults.slice(0, 100).map((f) => wireText(f, 1000)),
    version: s.version,
    monitor: s.monitor.backend,
    counts: {
      quarantined: s.quarantine.files,
      detections: s.monitor.detections,
      cacheEntries: s.cache.entries,
    },
  };
  const c = s.engines.clamav;
  if (c) facts.signatures = `ClamAV ${c.version} (${c.signatures} signatures)`;
  return facts;
}

/** Text as the protocol takes it: NUL (which the cloud refuses) replaced, cut to `max`. */
function wireText(text: string, max: number): string {
  return text.replaceAll("\0", "\uFFFD").slice(0, max);
}

function emptyStats(): CloudLookupStats {
  return { cacheHits: 0, cloudAnswers: 0, requests: 0, unavailable: 0 };
}
