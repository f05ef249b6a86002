/**
 * Opens the private cloud's database from `amp cloud serve --db`: a SQLite
 * file (`sqlite:/path/cloud.db`, or a plain path; nothing to set up) or a
 * PostgreSQL server (`postgres://user:password@host:5432/dbname`, for
 * fleets), both through kysely and migrated with the same named migrations.
 *
 * PostgreSQL is reached with the `pg` package through kysely's own
 * `PostgresDialect`: `pg` is the driver kysely's dialect is written for (it
 * only needs a pool with `connect()`), and it is pure JavaScript, so Deno
 * runs it from node_modules with nothing native to build. Its 64-bit integers
 * (`bigint`, `count(*)`) are read as numbers here, as SQLite's are: ids and
 * millisecond times stay far below 2^53.
 *
 * Unlike the connector's stores, a corrupt SQLite file is not moved aside: a
 * cloud's data belongs to its administrator, who is told and decides.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { NodeSqliteDialect } from "../../store/node_sqlite_adapter.ts";
import { migrateToLatest } from "../../store/migrate.ts";
import { BUSY_TIMEOUT_MS } from "../../store/open_database.ts";
import { type CloudDialect, cloudMigrations } from "./cloud_migrations.ts";
import type { CloudDatabase } from "./cloud_schema.ts";

/** Where the cloud keeps its data, parsed from `--db`. */
export type CloudDbSpec =
  | { dialect: "sqlite"; path: string }
  | { dialect: "postgres"; url: string };

/** An open, migrated cloud database. */
export interface OpenedCloudDb {
  db: Kysely<CloudDatabase>;
  dialect: CloudDialect;
  /** Where it is, for logs (a PostgreSQL URL without its password). */
  describe: string;
}

/** PostgreSQL type OIDs read as numbers: int8 (bigint, count) and numeric. */
const PG_INT8 = 20;

/**
 * Parses `--db`: `sqlite:PATH`, a plain absolute or relative path, or a
 * `postgres://` / `postgresql://` URL.
 *
 * @example
 * ```ts
 * import { parseCloudDbSpec } from "./cloud_db.ts";
 * parseCloudDbSpec("sqlite:/var/lib/amp-cloud/cloud.db"); // { dialect: "sqlite", path: "/var/lib/amp-cloud/cloud.db" }
 * ```
 */
export function parseCloudDbSpec(spec: string): CloudDbSpec {
  if (/^postgres(ql)?:\/\//.test(spec)) {
    try {
      new URL(spec);
    } catch (error) {
      throw new TypeError(`Invalid PostgreSQL URL: ${redact(spec)}`, { cause: error });
    }
    return { dialect: "postgres", url: spec };
  }
  const path = spec.startsWith("sqlite:") ? spec.slice("sqlite:".length) : spec;
  if (path === "" || /^[a-z]+:\/\//i.test(path)) {
    throw new TypeError(
      `Invalid --db ${redact(spec)}: expected sqlite:PATH or postgres://user:password@host/db`,
    );
  }
  return { dialect: "sqlite", path };
}

/**
 * Opens and migrates the cloud database.
 *
 * @param spec what `parseCloudDbSpec` returned
 * @param options for PostgreSQL, the connection pool's size (default 10)
 */
export async function openCloudDb(
  spec: CloudDbSpec,
  options: { poolSize?: number } = {},
): Promise<OpenedCloudDb> {
  if (spec.dialect === "sqlite") return await openSqlite(spec.path);
  const pool = new pg.Pool({
    connectionString: spec.url,
    max: options.poolSize ?? 10,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === PG_INT8
          ? (value: string) =>
            Number(value)
          : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its server emits "error" on the pool: log-worthy, never fatal.
  pool.on("error", () => {});
  const db = new Kysely<CloudDatabase>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db as Kysely<unknown>, cloudMigrations("postgres"));
  } catch (error) {
    await db.destroy();
    throw new Error(`Cannot open cloud database ${redact(spec.url)}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return { db, dialect: "postgres", describe: redact(spec.url) };
}

async function openSqlite(path: string): Promise<OpenedCloudDb> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let database: DatabaseSync;
  try {
    database = new DatabaseSync(path);
  } catch (error) {
    throw new Error(`Cannot open cloud database ${path}: ${messageOf(error)}`, { cause: error });
  }
  const db = new Kysely<CloudDatabase>({ dialect: new NodeSqliteDialect({ database }) });
  try {
    database.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    database.exec("PRAGMA journal_mode = WAL");
    database.exec("PRAGMA synchronous = NORMAL");
    database.exec("PRAGMA foreign_keys = ON");
    await migrateToLatest(db as Kysely<unknown>, cloudMigrations("sqlite"));
  } catch (error) {
    await db.destroy();
    if (database.isOpen) database.close();
    throw new Error(`Cannot open cloud database ${path}: ${messageOf(error)}`, { cause: error });
  }
  await Deno.chmod(path, 0o600).catch(() => {});
  return { db, dialect: "sqlite", describe: `sqlite:${path}` };
}

/** A database URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, "$1***@");
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
