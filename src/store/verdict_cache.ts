/**
 * The verdict cache (/var/lib/amp/verdict.cache) remembers what a signature
 * set said about a file, so that an unchanged file is not scanned again: the
 * daemon loads every row of the current signature version into a `Map` at
 * start-up and writes new verdicts back in batches.
 *
 * A file is identified by (dev, ino) and taken as unchanged while its size,
 * mtime and ctime (in nanoseconds) are the same; ctime moves on any write or
 * metadata change, and cannot be set from user space. Only "clean" and
 * "malicious" verdicts are cached: an error or a skip says nothing about the
 * file, and the table refuses any other kind.
 *
 * dev, ino and the nanosecond times exceed 2^53, so they are `bigint`s, kept
 * as 64-bit INTEGER columns (dev and ino, unsigned in the kernel, are stored as
 * their signed 64-bit equivalent). The two hot paths, `load` and `putMany`,
 * use the `DatabaseSync` directly: kysely cannot ask node:sqlite to read
 * 64-bit integers as `bigint` (`setReadBigInts`, per statement; without it a
 * large integer throws a RangeError), and one prepared statement run 50,000
 * times in a transaction is much faster than 50,000 compiled queries.
 *
 * @module
 */

import type { Kysely } from "kysely";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openDatabase } from "./open_database.ts";
import type { VerdictCacheDatabase } from "./schema.ts";
import { verdictCacheMigrations } from "./migrations/verdict_cache_migrations.ts";

/** What identifies a file's content without reading it (from `fstat`). */
export interface VerdictCacheStat {
  dev: bigint;
  ino: bigint;
  /** Size in bytes. */
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** A verdict worth caching. */
export interface CachedVerdict {
  kind: "clean" | "malicious";
  /** The detection name, for a malicious file. */
  name?: string;
  engine?: string;
  /** Lower-case hex SHA-256, when the file was hashed. */
  sha256?: string;
  /** When the verdict was cached, in milliseconds since the epoch. */
  scannedAt: number;
}

/** A verdict to cache for a file. */
export type VerdictCacheEntry = VerdictCacheStat & Omit<CachedVerdict, "scannedAt">;

/**
 * The key of a file in the `Map` that {@linkcode VerdictCache.load} returns.
 *
 * @example
 * ```ts
 * import { verdictCacheKey } from "./verdict_cache.ts";
 *
 * verdictCacheKey({ dev: 2049n, ino: 131n, size: 68, mtimeNs: 1n, ctimeNs: 2n }); // "2049:131:68:1:2"
 * ```
 */
export function verdictCacheKey(stat: VerdictCacheStat): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

interface VerdictRow {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtime_ns: bigint;
  ctime_ns: bigint;
  kind: "clean" | "malicious";
  name: string | null;
  engine: string | null;
  sha256: string | null;
  scanned_at: bigint;
}

/** The columns of a row that make its verdict. */
type VerdictFields = Pick<VerdictRow, "kind" | "name" | "engine" | "sha256"> & {
  scanned_at: bigint | number;
};

function toCachedVerdict(row: VerdictFields): CachedVerdict {
  const verdict: CachedVerdict = { kind: row.kind, scannedAt: Number(row.scanned_at) };
  if (row.name !== null) verdict.name = row.name;
  if (row.engine !== null) verdict.engine = row.engine;
  if (row.sha256 !== null) verdict.sha256 = row.sha256;
  return verdict;
}

/**
 * The verdict cache.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { VerdictCache, verdictCacheKey } from "./verdict_cache.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const cache = await VerdictCache.open(join(dir, "verdict.cache"));
 * const stat = { dev: 2049n, ino: 131n, size: 68, mtimeNs: 1n, ctimeNs: 2n };
 * await cache.putMany("clamav-27000", [{ ...stat, kind: "clean" }]);
 * const verdicts = await cache.load("clamav-27000");
 * verdicts.get(verdictCacheKey(stat))?.kind; // "clean"
 * await cache.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class VerdictCache {
  /** Where a corrupt cache was moved when `open` replaced it, if it did. */
  readonly recovered?: string;
  readonly #db: Kysely<VerdictCacheDatabase>;
  readonly #insert: StatementSync;
  readonly #select: StatementSync;
  readonly #lookup: StatementSync;
  readonly #database: DatabaseSync;
  #closed = false;

  private constructor(
    db: Kysely<VerdictCacheDatabase>,
    database: DatabaseSync,
    recovered?: string,
  ) {
    this.#db = db;
    this.#database = database;
    this.#insert = database.prepare(
      `INSERT OR REPLACE INTO verdicts
         (signature_version, dev, ino, size, mtime_ns, ctime_ns, kind, name, engine, sha256, scanned_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#select = database.prepare(
      `SELECT dev, ino, size, mtime_ns, ctime_ns, kind, name, engine, sha256, scanned_at
       FROM verdicts WHERE signature_version = ?`,
    );
    this.#select.setReadBigInts(true);
    this.#lookup = database.prepare(
      `SELECT kind, name, engine, sha256, scanned_at FROM verdicts
       WHERE signature_version = ? AND dev = ? AND ino = ? AND size = ?
         AND mtime_ns = ? AND ctime_ns = ?`,
    );
    if (recovered !== undefined) this.recovered = recovered;
  }

  /**
   * Opens (creating or migrating) the cache at `path`. A corrupt file is
   * moved aside and recreated; {@linkcode VerdictCache.recovered} says so.
   *
   * @param path the cache file, normally /var/lib/amp/verdict.cache
   */
  static async open(path: string): Promise<VerdictCache> {
    const { db, database, recovered } = await openDatabase<VerdictCacheDatabase>(
      path,
      verdictCacheMigrations,
    );
    return new VerdictCache(db, database, recovered);
  }

  /**
   * Every cached verdict of one signature version.
   *
   * @param signatureVersion the signature set the verdicts must come from
   * @returns the verdicts keyed by {@linkcode verdictCacheKey}
   */
  load(signatureVersion: string): Promise<Map<string, CachedVerdict>> {
    return this.#db.connection().execute(() => {
      const verdicts = new Map<string, CachedVerdict>();
      for (const row of this.#select.all(signatureVersion) as unknown as VerdictRow[]) {
        const key = verdictCacheKey({
          dev: BigInt.asUintN(64, row.dev),
          ino: BigInt.asUintN(64, row.ino),
          size: Number(row.size),
          mtimeNs: row.mtime_ns,
          ctimeNs: row.ctime_ns,
        });
        verdicts.set(key, toCachedVerdict(row));
      }
      return Promise.resolve(verdicts);
    });
  }

  /**
   * The cached verdict of one unchanged file, or undefined. One indexed
   * query (a few microseconds), so a scan needs no memory per cached file.
   *
   * @param signatureVersion the signature set the verdict must come from
   * @param stat the file's identity now
   */
  get(signatureVersion: string, stat: VerdictCacheStat): CachedVerdict | undefined {
    const row = this.#lookup.get(
      signatureVersion,
      BigInt.asIntN(64, stat.dev),
      BigInt.asIntN(64, stat.ino),
      stat.size,
      stat.mtimeNs,
      stat.ctimeNs,
    ) as VerdictFields | undefined;
    return row ? toCachedVerdict(row) : undefined;
  }

  /**
   * Caches verdicts of one signature version in one transaction, replacing
   * what was cached for the same files.
   *
   * @param signatureVersion the signature set that produced the verdicts
   * @param entries the files and their verdicts
   */
  putMany(signatureVersion: string, entries: readonly VerdictCacheEntry[]): Promise<void> {
    // Holding kysely's connection keeps these raw statements out of any kysely transaction.
    return this.#db.connection().execute(() => {
      const scannedAt = Date.now();
      this.#database.exec("BEGIN");
      try {
        for (const e of entries) {
          this.#insert.run(
            signatureVersion,
            BigInt.asIntN(64, e.dev),
            BigInt.asIntN(64, e.ino),
            e.size,
            e.mtimeNs,
            e.ctimeNs,
            e.kind,
            e.name ?? null,
            e.engine ?? null,
            e.sha256 ?? null,
            scannedAt,
          );
        }
        this.#database.exec("COMMIT");
      } catch (error) {
        // SQLite may have rolled back already (e.g. on a full disk).
        if (this.#database.isTransaction) this.#database.exec("ROLLBACK");
        return Promise.reject(error);
      }
      return Promise.resolve();
    });
  }

  /**
   * Deletes the verdicts of every signature version but one.
   *
   * @param keepVersion the signature version whose verdicts stay
   * @returns the number of verdicts deleted
   */
  async prune(keepVersion: string): Promise<number> {
    const { numDeletedRows } = await this.#db.deleteFrom("verdicts")
      .where("signature_version", "!=", keepVersion)
      .executeTakeFirstOrThrow();
    return Number(numDeletedRows);
  }

  /** The number of verdicts cached (all signature versions). */
  async count(): Promise<number> {
    const { n } = await this.#db.selectFrom("verdicts")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  /** Closes the cache; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.destroy();
  }
}
