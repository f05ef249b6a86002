/**
 * The cloud query cache (/var/lib/amp/cloud_query.cache): what the cloud
 * said about a SHA-256, until its time to live runs out. Clean answers live 7
 * days, malicious and unknown ones 1 hour, unless the answer gives its own
 * TTL. A disposition change learnt from the cloud replaces the entry at once.
 *
 * The table lives on disk, not in a `Map`: a connector with a million cached
 * answers keeps only SQLite's page cache in memory. Keys are the 32 raw bytes
 * of the hash (half the size of hex text) in a `WITHOUT ROWID` table, so a
 * lookup is one B-tree search. The hot paths use prepared statements on the
 * raw `DatabaseSync` and are synchronous: a hit costs microseconds and never
 * yields to other work in between.
 *
 * Bound: at most `maxEntries` rows; {@linkcode LookupCache.prune} drops the
 * expired ones and then those that expire soonest.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Kysely } from "kysely";
import { sql } from "kysely";
import type { Migrations } from "../store/migrate.ts";
import { openDatabase } from "../store/open_database.ts";
import type { Disposition } from "./protocol.ts";

/** Default times to live, in seconds, by disposition. */
export const DEFAULT_TTL_SECONDS: Readonly<Record<Disposition, number>> = {
  clean: 7 * 24 * 3600,
  malicious: 3600,
  unknown: 3600,
};

/** Default bound on the number of entries. */
export const DEFAULT_MAX_ENTRIES = 2_000_000;

/** A cached answer. */
export interface CachedLookup {
  disposition: Disposition;
  /** The detection name, for a malicious file. */
  name?: string;
  /** When the answer expires (ms since the epoch). */
  expiresAt: number;
}

/** An answer to cache. */
export interface LookupEntry {
  sha256: string;
  disposition: Disposition;
  name?: string;
  /** From the cloud's answer; the defaults apply without it. */
  ttlSeconds?: number;
}

/** Options of {@linkcode LookupCache.open}. */
export interface LookupCacheOptions {
  /** Entries kept at most. */
  maxEntries?: number;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

const migrations: Migrations = {
  "0001_lookups": {
    async up(db) {
      await db.schema.createTable("lookups")
        .addColumn("sha256", "blob", (c) => c.primaryKey())
        .addColumn(
          "disposition",
          "text",
          (c) => c.notNull().check(sql`disposition in ('clean', 'malicious', 'unknown')`),
        )
        .addColumn("name", "text")
        .addColumn("expires_at", "integer", (c) => c.notNull())
        .modifyEnd(sql`without rowid`)
        .execute();
    },
  },
};

interface LookupRow {
  disposition: Disposition;
  name: string | null;
  expires_at: number;
}

/**
 * The cloud query cache.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { LookupCache } from "./lookup_cache.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const cache = await LookupCache.open(join(dir, "cloud_query.cache"));
 * cache.putMany([{ sha256: "a".repeat(64), disposition: "malicious", name: "Bad.Tool" }]);
 * cache.get("a".repeat(64))?.disposition; // "malicious"
 * await cache.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class LookupCache {
  /** Where a corrupt cache was moved when `open` replaced it, if it did. */
  readonly recovered?: string;
  readonly #db: Kysely<unknown>;
  readonly #database: DatabaseSync;
  readonly #get: StatementSync;
  readonly #put: StatementSync;
  readonly #delete: StatementSync;
  readonly #maxEntries: number;
  readonly #now: () => number;
  #closed = false;

  private constructor(
    db: Kysely<unknown>,
    database: DatabaseSync,
    options: LookupCacheOptions,
    recovered?: string,
  ) {
    this.#db = db;
    this.#database = database;
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.#now = options.now ?? Date.now;
    if (recovered !== undefined) this.recovered = recovered;
    this.#get = database.prepare(
      "select disposition, name, expires_at from lookups where sha256 = ?",
    );
    this.#put = database.prepare(
      "insert into lookups (sha256, disposition, name, expires_at) values (?, ?, ?, ?) " +
        "on conflict (sha256) do update set disposition = excluded.disposition, " +
        "name = excluded.name, expires_at = excluded.expires_at",
    );
    this.#delete = database.prepare("delete from lookups where sha256 = ?");
  }

  /**
   * Opens (creating or migrating) the cache at `path`; a corrupt file is
   * moved aside and a new one made ({@linkcode LookupCache.recovered}).
   */
  static async open(path: string, options: LookupCacheOptions = {}): Promise<LookupCache> {
    const { db, database, recovered } = await openDatabase<unknown>(path, migrations);
    return new LookupCache(db, database, options, recovered);
  }

  /** The unexpired answer for a SHA-256, if any. */
  get(sha256: string): CachedLookup | undefined {
    const row = this.#get.get(Buffer.from(sha256, "hex")) as LookupRow | undefined;
    if (!row || row.expires_at <= this.#now()) return undefined;
    return row.name === null
      ? { disposition: row.disposition, expiresAt: row.expires_at }
      : { disposition: row.disposition, name: row.name, expiresAt: row.expires_at };
  }

  /** Stores answers (in one transaction), replacing older ones. */
  putMany(entries: readonly LookupEntry[]): void {
    if (entries.length === 0) return;
    const now = this.#now();
    this.#transaction(() => {
      for (const e of entries) {
        const ttl = e.ttlSeconds ?? DEFAULT_TTL_SECONDS[e.disposition];
        this.#put.run(
          Buffer.from(e.sha256, "hex"),
          e.disposition,
          e.name ?? null,
          now + ttl * 1000,
        );
      }
    });
  }

  /** Forgets answers (in one transaction). */
  deleteMany(hashes: readonly string[]): void {
    if (hashes.length === 0) return;
    this.#transaction(() => {
      for (const sha256 of hashes) this.#delete.run(Buffer.from(sha256, "hex"));
    });
  }

  /** The number of entries, expired ones included. */
  count(): number {
    const row = this.#database.prepare("select count(*) as n from lookups").get() as { n: number };
    return Number(row.n);
  }

  /**
   * Drops expired entries, then, over the bound, those that expire soonest.
   *
   * @returns how many were dropped
   */
  prune(): number {
    const expired = this.#database.prepare("delete from lookups where expires_at <= ?")
      .run(this.#now()).changes;
    const over = this.count() - this.#maxEntries;
    let dropped = 0;
    if (over > 0) {
      dropped = Number(
        this.#database.prepare(
          "delete from lookups where sha256 in " +
            "(select sha256 from lookups order by expires_at limit ?)",
        ).run(over).changes,
      );
    }
    return Number(expired) + dropped;
  }

  /** Closes the cache; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }

  #transaction(work: () => void): void {
    this.#database.exec("begin");
    try {
      work();
      this.#database.exec("commit");
    } catch (error) {
      this.#database.exec("rollback");
      throw error;
    }
  }
}
