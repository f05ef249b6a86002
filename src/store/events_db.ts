/**
 * The event database (/var/lib/amp/events.db): every event the connector
 * raises, kept until uploaded (the `uploaded` column is the upload queue).
 * Paths are stored as raw bytes with an escaped copy for display, so a file
 * name that is not UTF-8 is neither lost nor unreadable.
 *
 * @module
 */

import type { Kysely } from "kysely";
import { escapePath } from "../sys/byte_path.ts";
import type { AmpEvent, EventType, StoredEvent } from "./event.ts";
import type { EventRow, EventsDatabase, NewEventRow } from "./schema.ts";
import { openDatabase } from "./open_database.ts";
import { eventsMigrations } from "./migrations/events_migrations.ts";

/** Options of {@linkcode EventsDb.open}. */
export interface EventsDbOptions {
  /** Host name written into events that carry none; defaults to `Deno.hostname()`. */
  host?: string;
}

/** Options of {@linkcode EventsDb.list}. */
export interface ListEventsOptions {
  /** Only events of this type. */
  type?: EventType;
  /** At most this many events; 100 by default. */
  limit?: number;
  /** Only events recorded after the one with this id. */
  sinceId?: number;
  /** Only events at or after this time (ms since the epoch). */
  sinceTime?: number;
}

/** An event to record: an {@linkcode AmpEvent} whose host may be left to the store. */
export type NewEvent = Omit<AmpEvent, "host"> & { host?: string };

const DEFAULT_LIST_LIMIT = 100;

/**
 * The event database.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { EventsDb } from "./events_db.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const events = await EventsDb.open(join(dir, "events.db"), { host: "web1" });
 * const id = await events.record({ type: "Connector Started", time: Date.now() });
 * const [latest] = await events.list({ limit: 1 }); // latest.id === id
 * await events.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class EventsDb {
  /** Where a corrupt database was moved when `open` replaced it, if it did. */
  readonly recovered?: string;
  readonly #db: Kysely<EventsDatabase>;
  readonly #host: string;
  #closed = false;

  private constructor(db: Kysely<EventsDatabase>, host: string, recovered?: string) {
    this.#db = db;
    this.#host = host;
    if (recovered !== undefined) this.recovered = recovered;
  }

  /**
   * Opens (creating or migrating) the event database at `path`. A corrupt
   * file is moved aside and recreated; {@linkcode EventsDb.recovered} says so.
   *
   * @param path the database file, normally /var/lib/amp/events.db
   * @param options the host name to stamp on events
   */
  static async open(path: string, options: EventsDbOptions = {}): Promise<EventsDb> {
    const host = options.host ?? Deno.hostname();
    const { db, recovered } = await openDatabase<EventsDatabase>(path, eventsMigrations);
    return new EventsDb(db, host, recovered);
  }

  /**
   * Records one event.
   *
   * @returns the event's id
   */
  async record(event: NewEvent): Promise<number> {
    const { insertId } = await this.#db.insertInto("events").values(this.#toRow(event))
      .executeTakeFirstOrThrow();
    return Number(insertId);
  }

  /**
   * Records several events in one transaction: all or none.
   *
   * @returns their ids, in order
   */
  recordMany(events: readonly NewEvent[]): Promise<number[]> {
    return this.#db.transaction().execute(async (trx) => {
      const ids: number[] = [];
      for (const event of events) {
        const { insertId } = await trx.insertInto("events").values(this.#toRow(event))
          .executeTakeFirstOrThrow();
        ids.push(Number(insertId));
      }
      return ids;
    });
  }

  /** Lists events, newest (highest id) first. */
  async list(options: ListEventsOptions = {}): Promise<StoredEvent[]> {
    let query = this.#db.selectFrom("events").selectAll()
      .orderBy("id", "desc")
      .limit(options.limit ?? DEFAULT_LIST_LIMIT);
    if (options.type !== undefined) query = query.where("type", "=", options.type);
    if (options.sinceId !== undefined) query = query.where("id", ">", options.sinceId);
    if (options.sinceTime !== undefined) query = query.where("time", ">=", options.sinceTime);
    return (await query.execute()).map(fromRow);
  }

  /** The number of events stored. */
  async count(): Promise<number> {
    const { n } = await this.#db.selectFrom("events")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return n;
  }

  /** This file's instance id: with an event's id, a key that never repeats (the upload key). */
  async instance(): Promise<string> {
    const row = await this.#db.selectFrom("meta").select("value").where("key", "=", "instance")
      .executeTakeFirstOrThrow();
    return row.value;
  }

  /** Events not yet uploaded to the cloud, oldest first. */
  async unsent(limit: number): Promise<StoredEvent[]> {
    const rows = await this.#db.selectFrom("events").selectAll().where("uploaded", "=", 0)
      .orderBy("id").limit(limit).execute();
    return rows.map(fromRow);
  }

  /** The number of events not yet uploaded. */
  async countUnsent(): Promise<number> {
    const { n } = await this.#db.selectFrom("events").where("uploaded", "=", 0)
      .select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    return n;
  }

  /** Marks events as uploaded (the cloud has them), or as dropped from the queue. */
  async markSent(ids: readonly number[], dropped = false): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      await this.#db.updateTable("events").set({ uploaded: dropped ? 2 : 1 })
        .where("id", "in", ids.slice(i, i + 500)).execute();
    }
  }

  /**
   * Drops the oldest unsent events beyond `keep` from the upload queue (they
   * stay in events.db, marked dropped).
   *
   * @returns how many were dropped
   */
  async dropUnsent(keep: number): Promise<number> {
    const over = (await this.countUnsent()) - keep;
    if (over <= 0) return 0;
    const last = await this.#db.selectFrom("events").select("id").where("uploaded", "=", 0)
      .orderBy("id").offset(over - 1).limit(1).executeTakeFirstOrThrow();
    const result = await this.#db.updateTable("events").set({ uploaded: 2 })
      .where("uploaded", "=", 0).where("id", "<=", last.id).executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Closes the database; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }

  #toRow(event: NewEvent): NewEventRow {
    return {
      time: event.time,
      type: event.type,
      host: event.host ?? this.#host,
      policy_name: event.policy?.name ?? null,
      policy_id: event.policy?.id ?? null,
      path: event.path ?? null,
      path_text: event.path === undefined ? null : escapePath(event.path),
      sha256: event.sha256 ?? null,
      size: event.size ?? null,
      detection: event.detection ?? null,
      engine: event.engine ?? null,
      action: event.action ?? null,
      pid: event.pid ?? null,
      ppid: event.ppid ?? null,
      uid: event.uid ?? null,
      executable: event.executable ?? null,
      command_line: event.commandLine ?? null,
      parent_executable: event.parentExecutable ?? null,
      local_address: event.localAddress ?? null,
      local_port: event.localPort ?? null,
      remote_address: event.remoteAddress ?? null,
      remote_port: event.remotePort ?? null,
      protocol: event.protocol ?? null,
      details: event.details === undefined ? null : JSON.stringify(event.details),
    };
  }
}

/** Turns a row back into an event, leaving out what the event did not carry. */
function fromRow(row: EventRow): StoredEvent {
  const event: StoredEvent = { id: row.id, type: row.type, time: row.time, host: row.host };
  if (row.policy_name !== null && row.policy_id !== null) {
    event.policy = { name: row.policy_name, id: row.policy_id };
  }
  if (row.path !== null) event.path = row.path;
  if (row.sha256 !== null) event.sha256 = row.sha256;
  if (row.size !== null) event.size = row.size;
  if (row.detection !== null) event.detection = row.detection;
  if (row.engine !== null) event.engine = row.engine;
  if (row.action !== null) event.action = row.action;
  if (row.pid !== null) event.pid = row.pid;
  if (row.ppid !== null) event.ppid = row.ppid;
  if (row.uid !== null) event.uid = row.uid;
  if (row.executable !== null) event.executable = row.executable;
  if (row.command_line !== null) event.commandLine = row.command_line;
  if (row.parent_executable !== null) event.parentExecutable = row.parent_executable;
  if (row.local_address !== null) event.localAddress = row.local_address;
  if (row.local_port !== null) event.localPort = row.local_port;
  if (row.remote_address !== null) event.remoteAddress = row.remote_address;
  if (row.remote_port !== null) event.remotePort = row.remote_port;
  if (row.protocol !== null) event.protocol = row.protocol;
  if (row.details !== null) event.details = JSON.parse(row.details);
  return event;
}
