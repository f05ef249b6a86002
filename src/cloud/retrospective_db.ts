/**
 * The retrospective database (/var/lib/amp/retrospective.db): every file
 * the cloud did not call malicious when the connector saw it (clean, unknown,
 * or not asked), by SHA-256 and path (bytes), with when it was first and last
 * seen. When the cloud later calls a
 * hash malicious, these are the files to report and, under a quarantine
 * policy, to quarantine. It also keeps the cursor into the cloud's
 * disposition change log, so that no change is missed across restarts.
 *
 * Sightings arrive on the scanning path: they are buffered and written in
 * one transaction per {@linkcode RetrospectiveDb.flush} (the daemon flushes
 * every few seconds, and at stop). Bound: at most `maxFiles` rows; the files
 * seen longest ago go first.
 *
 * @module
 */

import type { Kysely } from "kysely";
import { sql } from "kysely";
import type { Migrations } from "../store/migrate.ts";
import { openDatabase } from "../store/open_database.ts";
import { type BytePath, escapePath } from "../sys/byte_path.ts";

/** Default bound on the files kept. */
export const DEFAULT_MAX_FILES = 500_000;

/** Pending sightings that trigger a write without waiting for the next flush. */
const FLUSH_AT = 1000;

/** A file seen. */
export interface SeenFile {
  sha256: string;
  path: BytePath;
  /** The path escaped for display. */
  pathText: string;
  /** ms since the epoch. */
  firstSeen: number;
  lastSeen: number;
}

interface SeenFilesTable {
  sha256: string;
  path: Uint8Array;
  path_text: string;
  first_seen: number;
  last_seen: number;
}

interface StateTable {
  key: string;
  value: string;
}

interface RetrospectiveDatabase {
  seen_files: SeenFilesTable;
  state: StateTable;
}

const migrations: Migrations = {
  "0001_retrospective": {
    async up(db) {
      await db.schema.createTable("seen_files")
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("path", "blob", (c) => c.notNull())
        .addColumn("path_text", "text", (c) => c.notNull())
        .addColumn("first_seen", "integer", (c) => c.notNull())
        .addColumn("last_seen", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("seen_files_pk", ["sha256", "path"])
        .modifyEnd(sql`without rowid`)
        .execute();
      await db.schema.createIndex("seen_files_last_seen").on("seen_files").column("last_seen")
        .execute();
      await db.schema.createTable("state")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
    },
  },
};

/** Options of {@linkcode RetrospectiveDb.open}. */
export interface RetrospectiveDbOptions {
  maxFiles?: number;
  now?: () => number;
}

/**
 * The retrospective database.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { RetrospectiveDb } from "./retrospective_db.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const retro = await RetrospectiveDb.open(join(dir, "retrospective.db"));
 * retro.record("a".repeat(64), new TextEncoder().encode("/tmp/x"));
 * await retro.flush();
 * (await retro.filesWith("a".repeat(64))).length; // 1
 * await retro.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class RetrospectiveDb {
  /** Where a corrupt database was moved when `open` replaced it, if it did. */
  readonly recovered?: string;
  readonly #db: Kysely<RetrospectiveDatabase>;
  readonly #maxFiles: number;
  readonly #now: () => number;
  readonly #pending = new Map<string, { sha256: string; path: BytePath; time: number }>();
  #writing: Promise<void> = Promise.resolve();
  /** Sightings written since the bound was last checked (counting rows is a full scan). */
  #sinceBound = Infinity;
  #closed = false;

  private constructor(
    db: Kysely<RetrospectiveDatabase>,
    options: RetrospectiveDbOptions,
    recovered?: string,
  ) {
    this.#db = db;
    this.#maxFiles = options.maxFiles ?? DEFAULT_MAX_FILES;
    this.#now = options.now ?? Date.now;
    if (recovered !== undefined) this.recovered = recovered;
  }

  /** Opens (creating or migrating) the database; a corrupt one is moved aside and recreated. */
  static async open(path: string, options: RetrospectiveDbOptions = {}): Promise<RetrospectiveDb> {
    const { db, recovered } = await openDatabase<RetrospectiveDatabase>(path, migrations);
    return new RetrospectiveDb(db, options, recovered);
  }

  /** Notes that a file with this content was seen at this path (written at the next flush). */
  record(sha256: string, path: BytePath, time = this.#now()): void {
    this.#pending.set(`${sha256}\0${escapePath(path)}`, { sha256, path, time });
    if (this.#pending.size >= FLUSH_AT) void this.flush().catch(() => {});
  }

  /** Writes the sightings buffered so far, then keeps the table within its bound. */
  flush(): Promise<void> {
    const rows = [...this.#pending.values()];
    this.#pending.clear();
    this.#writing = this.#writing.catch(() => {}).then(async () => {
      if (rows.length === 0) return;
      await this.#db.transaction().execute(async (trx) => {
        for (let i = 0; i < rows.length; i += 200) {
          await trx.insertInto("seen_files").values(
            rows.slice(i, i + 200).map((r) => ({
              sha256: r.sha256,
              path: r.path,
              path_text: escapePath(r.path),
              first_seen: r.time,
              last_seen: r.time,
            })),
          ).onConflict((oc) =>
            oc.columns(["sha256", "path"]).doUpdateSet((eb) => ({
              last_seen: eb.ref("excluded.last_seen"),
            }))
          ).execute();
        }
      });
      this.#sinceBound += rows.length;
      await this.#bound();
    });
    return this.#writing;
  }

  /** Files seen with this content, most recently seen first. */
  async filesWith(sha256: string): Promise<SeenFile[]> {
    await this.flush();
    const rows = await this.#db.selectFrom("seen_files").selectAll()
      .where("sha256", "=", sha256).orderBy("last_seen", "desc").execute();
    return rows.map((r) => ({
      sha256: r.sha256,
      path: new Uint8Array(r.path),
      pathText: r.path_text,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
    }));
  }

  /** Forgets one file (it is gone, was quarantined, or was convicted otherwise). */
  async forget(sha256: string, path: BytePath): Promise<void> {
    this.#pending.delete(`${sha256}\0${escapePath(path)}`);
    await this.#db.deleteFrom("seen_files").where("sha256", "=", sha256)
      .where("path", "=", path).execute();
  }

  /** The number of files kept. */
  async count(): Promise<number> {
    await this.flush();
    const { n } = await this.#db.selectFrom("seen_files")
      .select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    return Number(n);
  }

  /** The cursor into the cloud's disposition changes (0 before the first). */
  async cursor(cloud: string): Promise<number> {
    const row = await this.#db.selectFrom("state").select("value")
      .where("key", "=", `cursor ${cloud}`).executeTakeFirst();
    return row ? Number(row.value) : 0;
  }

  /** Saves the cursor for a cloud (by its URL). */
  async setCursor(cloud: string, cursor: number): Promise<void> {
    await this.#db.insertInto("state").values({ key: `cursor ${cloud}`, value: String(cursor) })
      .onConflict((oc) => oc.column("key").doUpdateSet({ value: String(cursor) })).execute();
  }

  /** Writes what is pending and closes; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush().catch(() => {});
    this.#closed = true;
    await this.#db.destroy();
  }

  async #bound(): Promise<void> {
    if (this.#sinceBound < Math.min(10_000, this.#maxFiles / 10)) return;
    this.#sinceBound = 0;
    const { n } = await this.#db.selectFrom("seen_files")
      .select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const over = Number(n) - this.#maxFiles;
    if (over <= 0) return;
    const oldest = await this.#db.selectFrom("seen_files").select("last_seen")
      .orderBy("last_seen").offset(over - 1).limit(1).executeTakeFirst();
    if (oldest) {
      await this.#db.deleteFrom("seen_files").where("last_seen", "<=", oldest.last_seen).execute();
    }
  }
}
