/**
 * The private cloud's data, on SQLite or PostgreSQL through one kysely
 * query builder: computers, policies and their assignment, registration
 * tokens, dispositions and their change log, events.
 *
 * Invariants:
 * - Credentials are stored as SHA-256 only: a registration token or a
 *   connector key is shown once, when made.
 * - Every connector call names its computer through the key it
 *   authenticated with, never through the request: one connector cannot
 *   read or write another's data.
 * - Events are unique per (computer, event key): an upload sent twice stores
 *   each event once.
 * - Disposition changes get increasing sequence numbers that become visible
 *   in order (writers take a lock on PostgreSQL; SQLite has one writer), so
 *   a connector following the change log by cursor never skips one.
 * - A policy document's `id` and `serial` are the row's; every change
 *   increments the serial, which is how a connector notices it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { type Kysely, sql, type Transaction } from "kysely";
import { z } from "zod";
import { parseIpList } from "../../dfc/ip_list_parse.ts";
import { builtinPolicy, type BuiltinPolicyName } from "../../policy/builtin.ts";
import { type Policy, PolicySchema } from "../../policy/schema.ts";
import type {
  Command,
  CommandResult,
  DispositionChangesResponse,
  EventsUploadResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  LookupResult,
  PolicyRef,
  PolicyResponse,
  QuarantineItem,
  RegisterRequest,
  RegisterResponse,
  StoredWireEvent,
  WireEvent,
} from "../protocol.ts";
import { MAX_COMMANDS, MAX_DISPOSITION_CHANGES, PROTOCOL_VERSION } from "../protocol.ts";
import type { CloudDialect } from "./cloud_migrations.ts";
import type {
  CloudDatabase,
  CommandRow,
  CommandStatus,
  ComputerRow,
  IpListRow,
  NewCloudEventRow,
  PolicyRow,
} from "./cloud_schema.ts";

/** Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters. */
const CHUNK = 500;

/** Why a {@linkcode CloudStoreError} was raised; the HTTP layer maps it to a status. */
export type CloudStoreErrorCode = "unauthorized" | "not-found" | "conflict" | "bad-request";

/** A request the store refuses. */
export class CloudStoreError extends Error {
  /** Why. */
  readonly code: CloudStoreErrorCode;

  /**
   * @param code why
   * @param message for people
   */
  constructor(code: CloudStoreErrorCode, message: string) {
    super(message);
    this.name = "CloudStoreError";
    this.code = code;
  }
}

/** SHA-256 (hex) of a credential: what the database keeps. */
export function hashCredential(credential: string): string {
  return createHash("sha256").update(credential).digest("hex");
}

/** A new random credential: a prefix, then 256 random bits in base64url. */
export function newCredential(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

/** Options of {@linkcode CloudStore}. */
export interface CloudStoreOptions {
  /** How often connectors send a heartbeat. */
  heartbeatSeconds: number;
  /** The clock (ms since the epoch); `Date.now` by default. */
  now?: () => number;
}

/** A computer as the admin API shows it. */
export interface ComputerView {
  id: number;
  guid: string;
  hostname: string;
  os: string;
  kernel: string;
  arch: string;
  version: string;
  policy: { id: number; name: string; serial: number };
  registeredAt: number;
  lastSeen: number;
  /** The last heartbeat (without its quarantine list), or null before the first. */
  status: HeartbeatRequest | null;
  /** The files in the computer's quarantine as last reported, or null before any report. */
  quarantine: QuarantineItem[] | null;
}

/** A command queued for a computer, as the console shows it. */
export interface CommandView {
  id: number;
  computerId: number;
  type: "restore";
  quarantineId: number;
  sha256: string;
  status: CommandStatus;
  message: string | null;
  createdAt: number;
  updatedAt: number;
}

/** An IP list kept by the cloud. */
export interface IpListView {
  name: string;
  description: string;
  entries: number;
  /** The HTTP ETag of its content. */
  etag: string;
  updatedAt: number;
}

/** Events of some types counted per UTC day. */
export interface DayCount {
  /** The day's first millisecond (UTC). */
  day: number;
  type: string;
  count: number;
}

/** A detection name and how often it was seen. */
export interface DetectionCount {
  detection: string;
  count: number;
  /** Computers that saw it. */
  computers: number;
}

/** A policy as the admin API shows it. */
export interface PolicyView {
  id: number;
  name: string;
  serial: number;
  builtin: boolean;
  createdAt: number;
  updatedAt: number;
  /** Computers it is assigned to. */
  computers: number;
  document: Policy;
}

/** A disposition as the admin API shows it. */
export interface DispositionView {
  sha256: string;
  disposition: "clean" | "malicious";
  name?: string;
  updatedAt: number;
  seq: number;
}

/** One disposition to set. */
export interface DispositionEntry {
  sha256: string;
  disposition: "clean" | "malicious";
  name?: string;
}

/** A registration token as listed (the token itself is never shown again). */
export interface RegistrationTokenView {
  id: number;
  label: string;
  policyId: number | null;
  createdAt: number;
  revokedAt: number | null;
}

/** Filters of {@linkcode CloudStore.listEvents}. */
export interface EventFilter {
  computerId?: number;
  type?: string;
  sha256?: string;
  /** Events at or after this time (ms). */
  since?: number;
  /** Events before this time (ms). */
  until?: number;
  /** Events with a smaller id (paging, newest first). */
  beforeId?: number;
  /** At most this many; 100 by default, 1000 at most. */
  limit?: number;
}

/** An event with the computer it came from. */
export type CloudEvent = StoredWireEvent & { computerId: number };

/** The cloud's data. */
export class CloudStore {
  /** The engine under the store. */
  readonly dialect: CloudDialect;
  readonly #db: Kysely<CloudDatabase>;
  readonly #options: CloudStoreOptions;
  readonly #now: () => number;

  /**
   * @param db the migrated database
   * @param dialect its engine
   * @param options heartbeat interval and clock
   */
  constructor(db: Kysely<CloudDatabase>, dialect: CloudDialect, options: CloudStoreOptions) {
    this.#db = db;
    this.dialect = dialect;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Creates what a new cloud needs: the two built-in policies ("Audit Policy
   * for Linux", "Protect Policy for Linux", with cloud lookups on) and the
   * default policy setting (Audit). Does nothing the second time.
   *
   * @returns the names of the policies created now
   */
  init(): Promise<string[]> {
    return this.#db.transaction().execute(async (trx) => {
      const { n } = await trx.selectFrom("policies").where("builtin", "=", 1)
        .select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
      if (Number(n) > 0) return [];
      const created: string[] = [];
      let auditId = 0;
      for (const which of ["audit", "protect"] as BuiltinPolicyName[]) {
        const policy = builtinPolicy(which);
        policy.engines.cloud.enabled = true;
        const row = await this.#insertPolicy(trx, policy, true);
        if (which === "audit") auditId = row.id;
        created.push(policy.name);
      }
      await trx.insertInto("settings").values({ key: "default_policy_id", value: String(auditId) })
        .onConflict((oc) => oc.column("key").doUpdateSet({ value: String(auditId) }))
        .execute();
      return created;
    });
  }

  // ---- registration tokens

  /** Makes sure `token` is a valid registration token (e.g. one read from a file). */
  async ensureRegistrationToken(token: string, label: string): Promise<void> {
    await this.#db.insertInto("registration_tokens").values({
      token_hash: hashCredential(token),
      label,
      policy_id: null,
      created_at: this.#now(),
      revoked_at: null,
    }).onConflict((oc) => oc.column("token_hash").doNothing()).execute();
  }

  /** Creates a registration token; the answer is the only time it is shown. */
  async createRegistrationToken(
    options: { label: string; policyId?: number },
  ): Promise<{ id: number; token: string }> {
    if (options.policyId !== undefined) await this.#policyRow(this.#db, options.policyId);
    const token = newCredential("ampreg");
    const row = await this.#db.insertInto("registration_tokens").values({
      token_hash: hashCredential(token),
      label: options.label,
      policy_id: options.policyId ?? null,
      created_at: this.#now(),
      revoked_at: null,
    }).returning("id").executeTakeFirstOrThrow();
    return { id: Number(row.id), token };
  }

  /** Lists registration tokens (without the tokens). */
  async listRegistrationTokens(): Promise<RegistrationTokenView[]> {
    const rows = await this.#db.selectFrom("registration_tokens").selectAll().orderBy("id")
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      label: r.label,
      policyId: r.policy_id === null ? null : Number(r.policy_id),
      createdAt: Number(r.created_at),
      revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    }));
  }

  /** Revokes a registration token: connectors registered with it keep their keys. */
  async revokeRegistrationToken(id: number): Promise<void> {
    const result = await this.#db.updateTable("registration_tokens")
      .set({ revoked_at: this.#now() }).where("id", "=", id).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) {
      throw new CloudStoreError("not-found", `No registration token #${id}`);
    }
  }

  // ---- connector calls

  /** Whether a registration token is known and not revoked (checked before a request is read). */
  async registrationTokenValid(token: string): Promise<boolean> {
    const grant = await this.#db.selectFrom("registration_tokens").select("revoked_at")
      .where("token_hash", "=", hashCredential(token)).executeTakeFirst();
    return grant !== undefined && grant.revoked_at === null;
  }

  /**
   * Registers a connector with a valid registration token. A GUID the cloud
   * knows is registered again (its key replaced) only with proof of its
   * current key: the token is shared by a fleet, and must not let one
   * computer take over another's identity.
   *
   * @throws {CloudStoreError} "unauthorized" for an unknown or revoked token;
   * "conflict" for a known GUID without its current key
   */
  register(token: string, request: RegisterRequest): Promise<RegisterResponse> {
    return this.#db.transaction().execute(async (trx) => {
      const grant = await trx.selectFrom("registration_tokens").selectAll()
        .where("token_hash", "=", hashCredential(token)).executeTakeFirst();
      if (!grant || grant.revoked_at !== null) {
        throw new CloudStoreError("unauthorized", "Unknown or revoked registration token");
      }
      const key = newCredential("ampkey");
      const now = this.#now();
      const facts = {
        hostname: request.hostname,
        os: request.os,
        kernel: request.kernel,
        arch: request.arch,
        version: request.version,
        key_hash: hashCredential(key),
        last_seen: now,
      };
      const existing = await trx.selectFrom("computers").select(["id", "policy_id", "key_hash"])
        .where("guid", "=", request.guid).executeTakeFirst();
      let id: number;
      let policyId: number;
      if (existing) {
        const proof = request.currentKey === undefined
          ? undefined
          : Buffer.from(hashCredential(request.currentKey));
        const stored = Buffer.from(existing.key_hash);
        if (!proof || proof.length !== stored.length || !timingSafeEqual(proof, stored)) {
          throw new CloudStoreError(
            "conflict",
            `Computer ${request.guid} is already registered: to register it again, remove ` +
              "the computer in the console (Computers), or register with its current key",
          );
        }
        id = Number(existing.id);
        policyId = Number(existing.policy_id);
        await trx.updateTable("computers").set(facts).where("id", "=", id).execute();
      } else {
        policyId = grant.policy_id === null
          ? await this.#defaultPolicyId(trx)
          : Number(grant.policy_id);
        const row = await trx.insertInto("computers").values({
          guid: request.guid,
          ...facts,
          policy_id: policyId,
          registered_at: now,
          status: null,
        }).returning("id").executeTakeFirstOrThrow();
        id = Number(row.id);
      }
      const policy = await this.#policyRow(trx, policyId);
      return {
        protocol: PROTOCOL_VERSION,
        computerId: id,
        key,
        policy: { id: Number(policy.id), serial: Number(policy.serial) },
        heartbeatSeconds: this.#options.heartbeatSeconds,
      };
    });
  }

  /** The computer a connector key belongs to, or undefined. */
  async authenticate(key: string): Promise<ComputerRow | undefined> {
    return await this.#db.selectFrom("computers").selectAll()
      .where("key_hash", "=", hashCredential(key)).executeTakeFirst();
  }

  /** Records a heartbeat; answers with the assigned policy (in full when it changed). */
  async heartbeat(computer: ComputerRow, request: HeartbeatRequest): Promise<HeartbeatResponse> {
    const now = this.#now();
    const { quarantine, commandResults, ...status } = request;
    if (commandResults) await this.recordCommandResults(Number(computer.id), commandResults);
    await this.#db.updateTable("computers")
      .set({
        last_seen: now,
        status: JSON.stringify(status),
        version: request.version,
        ...(quarantine === undefined ? {} : { quarantine: JSON.stringify(quarantine) }),
      })
      .where("id", "=", computer.id).execute();
    const policy = await this.#policyRow(this.#db, Number(computer.policy_id));
    const ref: PolicyRef = { id: Number(policy.id), serial: Number(policy.serial) };
    const { cursor } = await this.#db.selectFrom("disposition_changes")
      .select((eb) => eb.fn.max("seq").as("cursor")).executeTakeFirstOrThrow();
    const response: HeartbeatResponse = {
      protocol: PROTOCOL_VERSION,
      time: now,
      heartbeatSeconds: this.#options.heartbeatSeconds,
      policy: ref,
      dispositionCursor: Number(cursor ?? 0),
    };
    if (request.policy.id !== ref.id || request.policy.serial !== ref.serial) {
      response.policyDocument = JSON.parse(policy.document);
    }
    const commands = await this.#deliverCommands(Number(computer.id), now);
    if (commands.length > 0) response.commands = commands;
    return response;
  }

  /** Commands not yet reported, oldest first; those pending become sent. */
  async #deliverCommands(computerId: number, now: number): Promise<Command[]> {
    const rows = await this.#db.selectFrom("commands").selectAll()
      .where("computer_id", "=", computerId).where("status", "in", ["pending", "sent"])
      .orderBy("id").limit(MAX_COMMANDS).execute();
    const fresh = rows.filter((r) => r.status === "pending").map((r) => Number(r.id));
    if (fresh.length > 0) {
      await this.#db.updateTable("commands").set({ status: "sent", updated_at: now })
        .where("id", "in", fresh).where("status", "=", "pending").execute();
    }
    return rows.map((r) => {
      const view = commandView(r);
      return {
        id: view.id,
        type: view.type,
        quarantineId: view.quarantineId,
        sha256: view.sha256,
      };
    });
  }

  /**
   * Records what a connector did with its commands; results naming another
   * computer's command (or one already reported) are ignored.
   *
   * @returns how many results were recorded
   */
  async recordCommandResults(
    computerId: number,
    results: readonly CommandResult[],
  ): Promise<number> {
    let recorded = 0;
    for (const r of results) {
      const result = await this.#db.updateTable("commands")
        .set({ status: r.ok ? "done" : "failed", message: r.message, updated_at: this.#now() })
        .where("id", "=", r.id).where("computer_id", "=", computerId)
        .where("status", "in", ["pending", "sent"]).executeTakeFirst();
      recorded += Number(result.numUpdatedRows);
    }
    return recorded;
  }

  /**
   * Queues the restore of a file in a computer's quarantine: it travels with
   * the computer's next heartbeat answer. A restore of the same record that
   * is still waiting is not queued twice.
   */
  async queueRestore(
    computerId: number,
    quarantineId: number,
    sha256: string,
  ): Promise<CommandView> {
    const computer = await this.getComputer(computerId);
    const waiting = (await this.listCommands(computerId)).find((c) =>
      c.quarantineId === quarantineId && (c.status === "pending" || c.status === "sent")
    );
    if (waiting) return waiting;
    if (!computer.quarantine?.some((q) => q.id === quarantineId && q.sha256 === sha256)) {
      throw new CloudStoreError(
        "not-found",
        `Computer #${computerId} reported no quarantined file #${quarantineId} with that SHA-256`,
      );
    }
    const now = this.#now();
    const row = await this.#db.insertInto("commands").values({
      computer_id: computerId,
      type: "restore",
      params: JSON.stringify({ quarantineId, sha256 }),
      status: "pending",
      message: null,
      created_at: now,
      updated_at: now,
    }).returning("id").executeTakeFirstOrThrow();
    return commandView(
      await this.#db.selectFrom("commands").selectAll().where("id", "=", row.id)
        .executeTakeFirstOrThrow(),
    );
  }

  /** A computer's commands, newest first. */
  async listCommands(computerId: number, limit = 50): Promise<CommandView[]> {
    const rows = await this.#db.selectFrom("commands").selectAll()
      .where("computer_id", "=", computerId).orderBy("id", "desc").limit(limit).execute();
    return rows.map(commandView);
  }

  /** The policy assigned to a computer. */
  async policyFor(computer: ComputerRow): Promise<PolicyResponse> {
    const policy = await this.#policyRow(this.#db, Number(computer.policy_id));
    return {
      policy: { id: Number(policy.id), serial: Number(policy.serial) },
      document: JSON.parse(policy.document),
    };
  }

  /** The dispositions of a batch of SHA-256 (unknown when the cloud has none). */
  async lookup(hashes: readonly string[]): Promise<LookupResult[]> {
    const unique = [...new Set(hashes)];
    const known = new Map<string, { disposition: "clean" | "malicious"; name: string | null }>();
    for (let i = 0; i < unique.length; i += CHUNK) {
      const rows = await this.#db.selectFrom("dispositions")
        .select(["sha256", "disposition", "name"])
        .where("sha256", "in", unique.slice(i, i + CHUNK)).execute();
      for (const r of rows) known.set(r.sha256, r);
    }
    return unique.map((sha256) => {
      const k = known.get(sha256);
      if (!k) return { sha256, disposition: "unknown" };
      return k.name === null
        ? { sha256, disposition: k.disposition }
        : { sha256, disposition: k.disposition, name: k.name };
    });
  }

  /** Stores a batch of a computer's events, each once however often it is sent. */
  async storeEvents(
    computerId: number,
    events: readonly WireEvent[],
  ): Promise<EventsUploadResponse> {
    const received = this.#now();
    let stored = 0;
    for (let i = 0; i < events.length; i += CHUNK) {
      const rows: NewCloudEventRow[] = events.slice(i, i + CHUNK).map((e) => ({
        computer_id: computerId,
        event_key: e.key,
        received_at: received,
        time: e.time,
        type: e.type,
        sha256: e.sha256 ?? null,
        detection: e.detection ?? null,
        document: JSON.stringify(e),
      }));
      const result = await this.#db.insertInto("events").values(rows)
        .onConflict((oc) => oc.columns(["computer_id", "event_key"]).doNothing())
        .executeTakeFirst();
      stored += Number(result.numInsertedOrUpdatedRows ?? 0n);
    }
    return { stored, duplicates: events.length - stored };
  }

  /** Events, newest first; a connector call always passes its own computer. */
  async listEvents(filter: EventFilter = {}): Promise<CloudEvent[]> {
    let query = this.#db.selectFrom("events")
      .select(["id", "computer_id", "received_at", "document"])
      .orderBy("id", "desc")
      .limit(Math.min(Math.max(filter.limit ?? 100, 1), 1000));
    if (filter.computerId !== undefined) query = query.where("computer_id", "=", filter.computerId);
    if (filter.type !== undefined) query = query.where("type", "=", filter.type);
    if (filter.sha256 !== undefined) query = query.where("sha256", "=", filter.sha256);
    if (filter.since !== undefined) query = query.where("time", ">=", filter.since);
    if (filter.until !== undefined) query = query.where("time", "<", filter.until);
    if (filter.beforeId !== undefined) query = query.where("id", "<", filter.beforeId);
    const rows = await query.execute();
    return rows.map((r) => ({
      ...JSON.parse(r.document) as WireEvent,
      id: Number(r.id),
      received: Number(r.received_at),
      computerId: Number(r.computer_id),
    }));
  }

  /** One event, or undefined. */
  async getEvent(id: number): Promise<CloudEvent | undefined> {
    const r = await this.#db.selectFrom("events")
      .select(["id", "computer_id", "received_at", "document"]).where("id", "=", id)
      .executeTakeFirst();
    if (!r) return undefined;
    return {
      ...JSON.parse(r.document) as WireEvent,
      id: Number(r.id),
      received: Number(r.received_at),
      computerId: Number(r.computer_id),
    };
  }

  /** Events of `types` at or after `since`, counted per UTC day and type. */
  async countEventsByDay(since: number, types: readonly string[]): Promise<DayCount[]> {
    if (types.length === 0) return [];
    const day = sql<number>`(${sql.ref("time")} / 86400000) * 86400000`;
    const rows = await this.#db.selectFrom("events")
      .select((eb) => [day.as("day"), "type", eb.fn.countAll<number>().as("n")])
      .where("time", ">=", since).where("type", "in", [...types])
      .groupBy([day, "type"]).execute();
    return rows.map((r) => ({ day: Number(r.day), type: r.type, count: Number(r.n) }))
      .sort((a, b) => a.day - b.day || a.type.localeCompare(b.type));
  }

  /** The most frequent detection names of `types` at or after `since`. */
  async topDetections(
    since: number,
    types: readonly string[],
    limit = 10,
  ): Promise<DetectionCount[]> {
    if (types.length === 0) return [];
    const rows = await this.#db.selectFrom("events")
      .select((eb) => [
        "detection",
        eb.fn.countAll<number>().as("n"),
        eb.fn.count<number>("computer_id").distinct().as("computers"),
      ])
      .where("time", ">=", since).where("type", "in", [...types])
      .where("detection", "is not", null)
      .groupBy("detection").orderBy("n", "desc").orderBy("detection").limit(limit).execute();
    return rows.map((r) => ({
      detection: r.detection ?? "",
      count: Number(r.n),
      computers: Number(r.computers),
    }));
  }

  /** The number of events of `types` at or after `since`. */
  async countEventsSince(since: number, types: readonly string[]): Promise<number> {
    if (types.length === 0) return 0;
    const { n } = await this.#db.selectFrom("events")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("time", ">=", since).where("type", "in", [...types]).executeTakeFirstOrThrow();
    return Number(n);
  }

  /** The number of events held (for one computer, or all). */
  async countEvents(computerId?: number): Promise<number> {
    let query = this.#db.selectFrom("events").select((eb) => eb.fn.countAll<number>().as("n"));
    if (computerId !== undefined) query = query.where("computer_id", "=", computerId);
    return Number((await query.executeTakeFirstOrThrow()).n);
  }

  /** Disposition changes after `since`, oldest first. */
  async dispositionChanges(since: number, limit = 1000): Promise<DispositionChangesResponse> {
    const take = Math.min(Math.max(limit, 1), MAX_DISPOSITION_CHANGES);
    const rows = await this.#db.selectFrom("disposition_changes").selectAll()
      .where("seq", ">", since).orderBy("seq").limit(take + 1).execute();
    const more = rows.length > take;
    const changes = rows.slice(0, take).map((r) => {
      const change = {
        seq: Number(r.seq),
        sha256: r.sha256,
        disposition: r.disposition,
        time: Number(r.time),
      };
      return r.name === null ? change : { ...change, name: r.name };
    });
    return { changes, cursor: changes.at(-1)?.seq ?? since, more };
  }

  // ---- computers (admin)

  /** Every computer, by id. */
  async listComputers(): Promise<ComputerView[]> {
    const rows = await this.#db.selectFrom("computers").selectAll().orderBy("id").execute();
    const policies = await this.#policyNames();
    return rows.map((r) => computerView(r, policies));
  }

  /** One computer. */
  async getComputer(id: number): Promise<ComputerView> {
    const row = await this.#db.selectFrom("computers").selectAll().where("id", "=", id)
      .executeTakeFirst();
    if (!row) throw new CloudStoreError("not-found", `No computer #${id}`);
    return computerView(row, await this.#policyNames());
  }

  /** Assigns a policy to a computer: it arrives with the computer's next heartbeat. */
  async assignPolicy(computerId: number, policyId: number): Promise<void> {
    await this.#policyRow(this.#db, policyId);
    const result = await this.#db.updateTable("computers").set({ policy_id: policyId })
      .where("id", "=", computerId).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) {
      throw new CloudStoreError("not-found", `No computer #${computerId}`);
    }
  }

  /** Removes a computer and its events; its key stops working. */
  async deleteComputer(id: number): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      await trx.deleteFrom("events").where("computer_id", "=", id).execute();
      await trx.deleteFrom("commands").where("computer_id", "=", id).execute();
      const result = await trx.deleteFrom("computers").where("id", "=", id).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) {
        throw new CloudStoreError("not-found", `No computer #${id}`);
      }
    });
  }

  // ---- policies (admin)

  /** Every policy, by id. */
  async listPolicies(): Promise<PolicyView[]> {
    const rows = await this.#db.selectFrom("policies").selectAll().orderBy("id").execute();
    const counts = await this.#assignmentCounts();
    return rows.map((r) => policyView(r, counts.get(Number(r.id)) ?? 0));
  }

  /** One policy. */
  async getPolicy(id: number): Promise<PolicyView> {
    const row = await this.#policyRow(this.#db, id);
    return policyView(row, (await this.#assignmentCounts()).get(id) ?? 0);
  }

  /**
   * Creates a policy from a document (its `id` and `serial` are the cloud's to set).
   *
   * @throws {CloudStoreError} "bad-request" with the schema's message
   */
  async createPolicy(input: unknown): Promise<PolicyView> {
    const policy = parsePolicyDocument(input, 1, 1);
    const row = await this.#db.transaction().execute((trx) =>
      this.#insertPolicy(trx, policy, false)
    );
    return policyView(row, 0);
  }

  /** Replaces a policy's settings; the serial goes up by one. */
  updatePolicy(id: number, input: unknown): Promise<PolicyView> {
    return this.#db.transaction().execute(async (trx) => {
      const row = await this.#policyRow(trx, id);
      const serial = Number(row.serial) + 1;
      const policy = parsePolicyDocument(input, id, serial);
      await trx.updateTable("policies").set({
        name: policy.name,
        serial,
        document: JSON.stringify(policy),
        updated_at: this.#now(),
      }).where("id", "=", id).execute();
      const updated = await this.#policyRow(trx, id);
      const { n } = await trx.selectFrom("computers").where("policy_id", "=", id)
        .select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
      return policyView(updated, Number(n));
    });
  }

  /** Copies a policy under a new name ("Copy of …" by default). */
  async copyPolicy(id: number, name?: string): Promise<PolicyView> {
    const source = await this.getPolicy(id);
    return await this.createPolicy({ ...source.document, name: name ?? `Copy of ${source.name}` });
  }

  /** Deletes a policy that is neither built in nor in use. */
  deletePolicy(id: number): Promise<void> {
    return this.#db.transaction().execute(async (trx) => {
      const row = await this.#policyRow(trx, id);
      if (row.builtin) throw new CloudStoreError("conflict", "A built-in policy cannot be deleted");
      const { n } = await trx.selectFrom("computers").where("policy_id", "=", id)
        .select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
      if (Number(n) > 0) {
        throw new CloudStoreError("conflict", `Policy #${id} is assigned to ${n} computer(s)`);
      }
      const tokens = await trx.selectFrom("registration_tokens").select("id")
        .where("policy_id", "=", id).where("revoked_at", "is", null).execute();
      if (tokens.length > 0) {
        throw new CloudStoreError("conflict", `Policy #${id} is given by a registration token`);
      }
      await trx.deleteFrom("policies").where("id", "=", id).execute();
    });
  }

  // ---- dispositions (admin)

  /** Dispositions by SHA-256, paged. */
  async listDispositions(
    options: { after?: string; limit?: number; disposition?: "clean" | "malicious" } = {},
  ): Promise<DispositionView[]> {
    let query = this.#db.selectFrom("dispositions").selectAll().orderBy("sha256")
      .limit(Math.min(Math.max(options.limit ?? 100, 1), 10_000));
    if (options.after !== undefined) query = query.where("sha256", ">", options.after);
    if (options.disposition) query = query.where("disposition", "=", options.disposition);
    return (await query.execute()).map((r) => {
      const view: DispositionView = {
        sha256: r.sha256,
        disposition: r.disposition,
        updatedAt: Number(r.updated_at),
        seq: Number(r.seq),
      };
      if (r.name !== null) view.name = r.name;
      return view;
    });
  }

  /** The number of dispositions held. */
  async countDispositions(): Promise<number> {
    const { n } = await this.#db.selectFrom("dispositions")
      .select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    return Number(n);
  }

  /**
   * Sets dispositions (a custom detection is `malicious` with a name);
   * unchanged entries make no change record.
   *
   * @returns how many changed
   */
  setDispositions(entries: readonly DispositionEntry[]): Promise<number> {
    const bySha = new Map<string, DispositionEntry>();
    for (const e of entries) {
      // Names travel in lookup answers, limited to 255 characters by the protocol.
      const name = e.name?.slice(0, 255);
      bySha.set(e.sha256.toLowerCase(), { ...e, sha256: e.sha256.toLowerCase(), name });
    }
    const wanted = [...bySha.values()];
    return this.#changeDispositions(async (trx, now) => {
      let changed = 0;
      for (let i = 0; i < wanted.length; i += CHUNK) {
        const chunk = wanted.slice(i, i + CHUNK);
        const current = new Map(
          (await trx.selectFrom("dispositions").select(["sha256", "disposition", "name"])
            .where("sha256", "in", chunk.map((e) => e.sha256)).execute())
            .map((r) => [r.sha256, r]),
        );
        const fresh = chunk.filter((e) => {
          const c = current.get(e.sha256);
          return !c || c.disposition !== e.disposition || c.name !== (e.name ?? null);
        });
        if (fresh.length === 0) continue;
        const seqs = await trx.insertInto("disposition_changes").values(fresh.map((e) => ({
          sha256: e.sha256,
          disposition: e.disposition,
          name: e.name ?? null,
          time: now,
        }))).returning(["seq", "sha256"]).execute();
        const seqOf = new Map(seqs.map((r) => [r.sha256, Number(r.seq)]));
        await trx.insertInto("dispositions").values(fresh.map((e) => ({
          sha256: e.sha256,
          disposition: e.disposition,
          name: e.name ?? null,
          updated_at: now,
          seq: seqOf.get(e.sha256)!,
        }))).onConflict((oc) =>
          oc.column("sha256").doUpdateSet((eb) => ({
            disposition: eb.ref("excluded.disposition"),
            name: eb.ref("excluded.name"),
            updated_at: eb.ref("excluded.updated_at"),
            seq: eb.ref("excluded.seq"),
          }))
        ).execute();
        changed += fresh.length;
      }
      return changed;
    });
  }

  /**
   * Removes dispositions: those hashes become unknown again (a change record each).
   *
   * @returns how many were removed
   */
  removeDispositions(hashes: readonly string[]): Promise<number> {
    const unique = [...new Set(hashes.map((h) => h.toLowerCase()))];
    return this.#changeDispositions(async (trx, now) => {
      let removed = 0;
      for (let i = 0; i < unique.length; i += CHUNK) {
        const chunk = unique.slice(i, i + CHUNK);
        const present = await trx.deleteFrom("dispositions").where("sha256", "in", chunk)
          .returning("sha256").execute();
        if (present.length === 0) continue;
        await trx.insertInto("disposition_changes").values(present.map((r) => ({
          sha256: r.sha256,
          disposition: "unknown" as const,
          name: null,
          time: now,
        }))).execute();
        removed += present.length;
      }
      return removed;
    });
  }

  async #changeDispositions(
    work: (trx: Transaction<CloudDatabase>, now: number) => Promise<number>,
  ): Promise<number> {
    return await this.#db.transaction().execute(async (trx) => {
      if (this.dialect === "postgres") {
        // One writer at a time, so sequence numbers become visible in order
        // (plain reads are not blocked by this lock mode).
        await sql`lock table disposition_changes in exclusive mode`.execute(trx);
      }
      return await work(trx, this.#now());
    });
  }

  // ---- IP lists (admin; served to connectors)

  /** Every IP list kept by the cloud, by name (without the content). */
  async listIpLists(): Promise<IpListView[]> {
    const rows = await this.#db.selectFrom("ip_lists")
      .select(["name", "description", "entries", "etag", "updated_at"]).orderBy("name").execute();
    return rows.map(ipListView);
  }

  /** One IP list with its content, or undefined. */
  async getIpList(name: string): Promise<(IpListView & { content: string }) | undefined> {
    const row = await this.#db.selectFrom("ip_lists").selectAll().where("name", "=", name)
      .executeTakeFirst();
    return row ? { ...ipListView(row), content: row.content } : undefined;
  }

  /**
   * Creates or replaces an IP list; the caller has checked the content
   * (`entries` is the count of addresses and networks in it).
   */
  async putIpList(
    list: { name: string; description: string; content: string; entries: number },
  ): Promise<IpListView> {
    const etag = `"${createHash("sha256").update(list.content).digest("hex").slice(0, 32)}"`;
    const row = { ...list, etag, updated_at: this.#now() };
    await this.#db.insertInto("ip_lists").values(row)
      .onConflict((oc) =>
        oc.column("name").doUpdateSet({
          description: list.description,
          content: list.content,
          entries: list.entries,
          etag,
          updated_at: row.updated_at,
        })
      ).execute();
    return ipListView(row);
  }

  /** Removes an IP list. */
  async deleteIpList(name: string): Promise<void> {
    const result = await this.#db.deleteFrom("ip_lists").where("name", "=", name)
      .executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) {
      throw new CloudStoreError("not-found", `No IP list ${name}`);
    }
  }

  // ---- helpers

  async #insertPolicy(
    trx: Transaction<CloudDatabase>,
    policy: Policy,
    builtin: boolean,
  ): Promise<PolicyRow> {
    const now = this.#now();
    const { id } = await trx.insertInto("policies").values({
      name: policy.name,
      serial: 1,
      document: "{}",
      builtin: builtin ? 1 : 0,
      created_at: now,
      updated_at: now,
    }).returning("id").executeTakeFirstOrThrow();
    const document = { ...policy, id: Number(id), serial: 1 };
    await trx.updateTable("policies").set({ document: JSON.stringify(document) })
      .where("id", "=", id).execute();
    return await this.#policyRow(trx, Number(id));
  }

  async #policyRow(db: Kysely<CloudDatabase>, id: number): Promise<PolicyRow> {
    const row = await db.selectFrom("policies").selectAll().where("id", "=", id)
      .executeTakeFirst();
    if (!row) throw new CloudStoreError("not-found", `No policy #${id}`);
    return row;
  }

  async #defaultPolicyId(db: Kysely<CloudDatabase>): Promise<number> {
    const row = await db.selectFrom("settings").select("value")
      .where("key", "=", "default_policy_id").executeTakeFirst();
    if (!row) throw new CloudStoreError("conflict", "No default policy: the cloud is not set up");
    return Number(row.value);
  }

  async #policyNames(): Promise<Map<number, { name: string; serial: number }>> {
    const rows = await this.#db.selectFrom("policies").select(["id", "name", "serial"]).execute();
    return new Map(rows.map((r) => [Number(r.id), { name: r.name, serial: Number(r.serial) }]));
  }

  async #assignmentCounts(): Promise<Map<number, number>> {
    const rows = await this.#db.selectFrom("computers")
      .select((eb) => ["policy_id", eb.fn.countAll<number>().as("n")])
      .groupBy("policy_id").execute();
    return new Map(rows.map((r) => [Number(r.policy_id), Number(r.n)]));
  }
}

/**
 * Validates a policy document for the cloud, with the connector's own schema;
 * the cloud sets `id` and `serial`.
 *
 * @throws {CloudStoreError} "bad-request" with zod's message
 */
export function parsePolicyDocument(input: unknown, id: number, serial: number): Policy {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw new CloudStoreError("bad-request", "Invalid policy: expected a JSON object");
  }
  const result = PolicySchema.safeParse({ ...input, id, serial });
  if (!result.success) {
    throw new CloudStoreError("bad-request", `Invalid policy:\n${z.prettifyError(result.error)}`);
  }
  return result.data;
}

/**
 * Checks the text of an IP list kept by the cloud: one address or CIDR per
 * line, `#` and `;` comments (what connectors parse). A list with a malformed
 * line is refused, so that a typo never silently shrinks a blocklist.
 *
 * @returns the list with normalized line endings and its entry count
 * @throws {CloudStoreError} "bad-request" naming the first malformed lines
 */
export function checkIpList(name: string, text: string): { content: string; entries: number } {
  const content = text.replace(/\r\n?/g, "\n").trim() + "\n";
  const parsed = parseIpList(name, content);
  if (parsed.malformed > 0) {
    const lines = parsed.problems.slice(0, 5).map((p) => `line ${p.line}: ${p.reason}: ${p.text}`);
    throw new CloudStoreError(
      "bad-request",
      `Invalid IP list ${name}: ${parsed.malformed} malformed line(s): ${lines.join("; ")}`,
    );
  }
  if (parsed.size === 0) {
    throw new CloudStoreError("bad-request", `Invalid IP list ${name}: no address or network`);
  }
  return { content, entries: parsed.size };
}

function computerView(
  r: ComputerRow,
  policies: Map<number, { name: string; serial: number }>,
): ComputerView {
  const policy = policies.get(Number(r.policy_id));
  return {
    id: Number(r.id),
    guid: r.guid,
    hostname: r.hostname,
    os: r.os,
    kernel: r.kernel,
    arch: r.arch,
    version: r.version,
    policy: {
      id: Number(r.policy_id),
      name: policy?.name ?? "(deleted)",
      serial: policy?.serial ?? 0,
    },
    registeredAt: Number(r.registered_at),
    lastSeen: Number(r.last_seen),
    status: r.status === null ? null : JSON.parse(r.status),
    quarantine: r.quarantine === null ? null : JSON.parse(r.quarantine),
  };
}

function commandView(r: CommandRow): CommandView {
  const params = JSON.parse(r.params) as { quarantineId: number; sha256: string };
  return {
    id: Number(r.id),
    computerId: Number(r.computer_id),
    type: r.type,
    quarantineId: params.quarantineId,
    sha256: params.sha256,
    status: r.status,
    message: r.message,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function ipListView(r: Omit<IpListRow, "content">): IpListView {
  return {
    name: r.name,
    description: r.description,
    entries: Number(r.entries),
    etag: r.etag,
    updatedAt: Number(r.updated_at),
  };
}

function policyView(r: PolicyRow, computers: number): PolicyView {
  return {
    id: Number(r.id),
    name: r.name,
    serial: Number(r.serial),
    builtin: Number(r.builtin) === 1,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    computers,
    document: JSON.parse(r.document),
  };
}
