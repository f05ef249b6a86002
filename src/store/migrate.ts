/**
 * Schema migrations compiled into the program: each database names its
 * migrations in code (`"0001_events"`, …) and applies them in name order when
 * it is opened. There is no migration folder to ship or to lose.
 *
 * @module
 */

import type { Kysely } from "kysely";
import { type Migration, Migrator } from "kysely/migration";

/** Named migrations, applied in ascending name order. */
export type Migrations = Record<string, Migration>;

/**
 * Applies every migration not yet applied to `db`, in name order and in one
 * transaction (`NodeSqliteDialect` reports SQLite's transactional DDL): on
 * failure none of them is kept, and the error names the migration that failed.
 *
 * @param db the database to migrate
 * @param migrations every migration of this database, keyed by name
 * @returns the names of the migrations applied now
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { Kysely } from "kysely";
 * import { NodeSqliteDialect } from "./node_sqlite_adapter.ts";
 * import { migrateToLatest } from "./migrate.ts";
 *
 * const db = new Kysely<unknown>({
 *   dialect: new NodeSqliteDialect({ database: new DatabaseSync(":memory:") }),
 * });
 * await migrateToLatest(db, {
 *   "0001_notes": { up: (db) => db.schema.createTable("notes").addColumn("text", "text").execute() },
 * });
 * await db.destroy();
 * ```
 */
export async function migrateToLatest(
  db: Kysely<unknown>,
  migrations: Migrations,
): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: () => Promise.resolve(migrations) },
  });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((result) => result.status === "Error");
    const what = failed ? `migration "${failed.migrationName}" failed` : "cannot apply migrations";
    throw new Error(`Cannot migrate database: ${what}: ${messageOf(error)}`, { cause: error });
  }
  return results.map((result) => result.migrationName);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
