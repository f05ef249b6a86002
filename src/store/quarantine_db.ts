/**
 * The quarantine database (/var/lib/amp/quarantine/quarantine.db): one record
 * per quarantined file, with what it takes to put the file back exactly
 * (path bytes, owner, mode, times) and the key of its encrypted copy. The
 * protocol that keeps records and files in step is `src/protect/quarantine.ts`;
 * this module only stores rows.
 *
 * Durability: the protocol writes a record before it touches the file, and the
 * record holds the only key to the copy, so a commit must survive a power cut
 * as well as a crash. The database therefore runs with `synchronous = FULL`
 * (the other stores use NORMAL).
 *
 * Reads go through prepared statements with `setReadBigInts`: `dev`, `ino`
 * and the nanosecond times exceed 2^53, which kysely's reads cannot return.
 *
 * @module
 */

import type { Kysely } from "kysely";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { escapePath } from "../sys/byte_path.ts";
import { openDatabase } from "./open_database.ts";
import type { QuarantineDatabase, QuarantineState } from "./schema.ts";
import { quarantineMigrations } from "./migrations/quarantine_migrations.ts";

export type { QuarantineState } from "./schema.ts";

/** One stored record. */
export interface QuarantineEntry {
  id: number;
  state: QuarantineState;
  /** The original path's bytes. */
  path: Uint8Array;
  dev: bigint;
  ino: bigint;
  uid: number;
  gid: number;
  /** `st_mode`: file type and permission bits. */
  mode: number;
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  /** Lower-case hex SHA-256 of the original bytes. */
  sha256: string;
  detection: string;
  engine: string;
  /** When the file was quarantined, in milliseconds since the epoch. */
  time: number;
  cipherKey: Uint8Array;
  cipherIv: Uint8Array;
  /** Where a restore writes (`restoring`) or wrote (`restored`) the file. */
  restorePath?: Uint8Array;
  /** When the file was restored, in milliseconds since the epoch. */
  restoredTime?: number;
}

/** A record to insert: it starts `pending`. */
export type NewQuarantineEntry = Omit<
  QuarantineEntry,
  "id" | "state" | "restorePath" | "restoredTime"
>;

/** Columns that a state change may set as well. */
export interface QuarantineChanges {
  restorePath?: Uint8Array | null;
  restoredTime?: number | null;
}

interface Row {
  id: bigint;
  state: QuarantineState;
  path: Uint8Array;
  dev: bigint;
  ino: bigint;
  uid: bigint;
  gid: bigint;
  mode: bigint;
  size: bigint;
  atime_ns: bigint;
  mtime_ns: bigint;
  sha256: string;
  detection: string;
  engine: string;
  time: bigint;
  cipher_key: Uint8Array;
  cipher_iv: Uint8Array;
  restore_path: Uint8Array | null;
  restored_time: bigint | null;
}

function fromRow(row: Row): QuarantineEntry {
  const entry: QuarantineEntry = {
    id: Number(row.id),
    state: row.state,
    path: row.path,
    dev: BigInt.asUintN(64, row.dev),
    ino: BigInt.asUintN(64, row.ino),
    uid: Number(row.uid),
    gid: Number(row.gid),
    mode: Number(row.mode),
    size: Number(row.size),
    atimeNs: row.atime_ns,
    mtimeNs: row.mtime_ns,
    sha256: row.sha256,
    detection: row.detection,
    engine: row.engine,
    time: Number(row.time),
    cipherKey: row.cipher_key,
    cipherIv: row.cipher_iv,
  };
  if (row.restore_path !== null) entry.restorePath = row.restore_path;
  if (row.restored_time !== null) entry.restoredTime = Number(row.restored_time);
  return entry;
}

/**
 * The quarantine database.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { QuarantineDb } from "./quarantine_db.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const db = await QuarantineDb.open(join(dir, "quarantine.db"));
 * const id = await db.insertPending({
 *   path: new TextEncoder().encode("/tmp/x"), dev: 1n, ino: 2n, uid: 0, gid: 0,
 *   mode: 0o100644, size: 3, atimeNs: 0n, mtimeNs: 0n, sha256: "ab".repeat(32),
 *   detection: "Eicar", engine: "clamav", time: Date.now(),
 *   cipherKey: new Uint8Array(32), cipherIv: new Uint8Array(16),
 * });
 * await db.transition(id, "pending", "quarantined");
 * (await db.get(id))?.state; // "quarantined"
 * await db.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class QuarantineDb {
  /** Where a corrupt database was moved when `open` replaced it, if it did. */
  readonly recovered?: string;
  readonly #db: Kysely<QuarantineDatabase>;
  readonly #byId: StatementSync;
  readonly #all: StatementSync;
  readonly #restored: StatementSync;
  #closed = false;

  private constructor(db: Kysely<QuarantineDatabase>, database: DatabaseSync, recovered?: string) {
    this.#db = db;
    this.#byId = database.prepare("SELECT * FROM quarantine WHERE id = ?");
    this.#byId.setReadBigInts(true);
    this.#all = database.prepare("SELECT * FROM quarantine ORDER BY id");
    this.#all.setReadBigInts(true);
    this.#restored = database.prepare(
      "SELECT 1 FROM quarantine WHERE sha256 = ? AND state = 'restored' LIMIT 1",
    );
    if (recovered !== undefined) this.recovered = recovered;
  }

  /**
   * Opens (creating or migrating) the database at `path`. A corrupt file is
   * moved aside and recreated; {@linkcode QuarantineDb.recovered} says so.
   *
   * @param path the database file, normally /var/lib/amp/quarantine/quarantine.db
   */
  static async open(path: string): Promise<QuarantineDb> {
    const { db, database, recovered } = await openDatabase<QuarantineDatabase>(
      path,
      quarantineMigrations,
    );
    try {
      database.exec("PRAGMA synchronous = FULL");
      return new QuarantineDb(db, database, recovered);
    } catch (error) {
      await db.destroy();
      throw error;
    }
  }

  /**
   * Inserts a record in state `pending` and commits it.
   *
   * @returns the record's id
   */
  async insertPending(entry: NewQuarantineEntry): Promise<number> {
    const { insertId } = await this.#db.insertInto("quarantine").values({
      state: "pending",
      path: entry.path,
      path_text: escapePath(entry.path),
      dev: BigInt.asIntN(64, entry.dev),
      ino: BigInt.asIntN(64, entry.ino),
      uid: entry.uid,
      gid: entry.gid,
      mode: entry.mode,
      size: entry.size,
      atime_ns: entry.atimeNs,
      mtime_ns: entry.mtimeNs,
      sha256: entry.sha256,
      detection: entry.detection,
      engine: entry.engine,
      time: entry.time,
      cipher_key: entry.cipherKey,
      cipher_iv: entry.cipherIv,
      restore_path: null,
      restored_time: null,
    }).executeTakeFirstOrThrow();
    return Number(insertId);
  }

  /**
   * Moves a record from state `from` to state `to` (and sets `changes`), and
   * commits.
   *
   * @returns false when the record is not in state `from` (nothing changed)
   */
  async transition(
    id: number,
    from: QuarantineState,
    to: QuarantineState,
    changes: QuarantineChanges = {},
  ): Promise<boolean> {
    const { numUpdatedRows } = await this.#db.updateTable("quarantine")
      .set({
        state: to,
        ...(changes.restorePath !== undefined ? { restore_path: changes.restorePath } : {}),
        ...(changes.restoredTime !== undefined ? { restored_time: changes.restoredTime } : {}),
      })
      .where("id", "=", id)
      .where("state", "=", from)
      .executeTakeFirstOrThrow();
    return numUpdatedRows === 1n;
  }

  /** One record, or undefined. */
  get(id: number): Promise<QuarantineEntry | undefined> {
    return this.#db.connection().execute(() => {
      const row = this.#byId.get(id) as Row | undefined;
      return Promise.resolve(row ? fromRow(row) : undefined);
    });
  }

  /** Every record, oldest first. */
  list(): Promise<QuarantineEntry[]> {
    return this.#db.connection().execute(() =>
      Promise.resolve((this.#all.all() as unknown as Row[]).map(fromRow))
    );
  }

  /** The number of records, of one state if given. */
  async count(state?: QuarantineState): Promise<number> {
    let query = this.#db.selectFrom("quarantine")
      .select((eb) => eb.fn.countAll<number>().as("n"));
    if (state !== undefined) query = query.where("state", "=", state);
    return (await query.executeTakeFirstOrThrow()).n;
  }

  /** Whether a record of state `restored` has this SHA-256. */
  hasRestored(sha256: string): Promise<boolean> {
    return this.#db.connection().execute(() =>
      Promise.resolve(this.#restored.get(sha256.toLowerCase()) !== undefined)
    );
  }

  /**
   * Deletes a record and commits.
   *
   * @returns false when there was no such record
   */
  async delete(id: number): Promise<boolean> {
    const { numDeletedRows } = await this.#db.deleteFrom("quarantine").where("id", "=", id)
      .executeTakeFirstOrThrow();
    return numDeletedRows === 1n;
  }

  /** Closes the database; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }
}
