/**
 * Opens one of amp's SQLite files the same way for every store: parent
 * directories created private (0700), WAL journal, `synchronous=NORMAL` (a
 * power cut may lose the last commits but never corrupts), a busy timeout,
 * then the store's migrations.
 *
 * Bad input never stops the daemon: a file that SQLite reports as "not a
 * database" or "malformed" is moved aside as `<name>.corrupt-<time>` (with its
 * `-wal` and `-shm` files) and a new, empty database is created in its place.
 * The caller learns the moved file's path and raises an event about it.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { Kysely } from "kysely";
import { NodeSqliteDialect } from "./node_sqlite_adapter.ts";
import { migrateToLatest, type Migrations } from "./migrate.ts";

/** How long a statement waits for another process's lock, in milliseconds. */
export const BUSY_TIMEOUT_MS = 5000;

/** A database opened by {@linkcode openDatabase}. */
export interface OpenedDatabase<DB> {
  /** The query builder; `db.destroy()` closes the database. */
  db: Kysely<DB>;
  /** The raw connection, for hot paths (see `VerdictCache`); use it inside `db.connection()`. */
  database: DatabaseSync;
  /** Where a corrupt database was moved before this one was created, if it was. */
  recovered?: string;
}

/**
 * Opens (creating if needed) the SQLite file at `path` and migrates it; a
 * corrupt file is moved aside and replaced by a new database.
 *
 * @param path the database file
 * @param migrations the store's migrations
 * @throws {Error} when the file cannot be opened or migrated for another reason
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { openDatabase } from "./open_database.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const { db, recovered } = await openDatabase(join(dir, "notes.db"), {});
 * await db.destroy();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openDatabase<DB>(
  path: string,
  migrations: Migrations,
): Promise<OpenedDatabase<DB>> {
  try {
    await Deno.mkdir(dirname(path), { recursive: true, mode: 0o700 });
    return await openAndMigrate<DB>(path, migrations);
  } catch (error) {
    if (!isCorruptionError(error)) {
      throw new Error(`Cannot open database ${path}: ${messageOf(error)}`, { cause: error });
    }
  }
  try {
    const recovered = await moveAside(path);
    return { ...await openAndMigrate<DB>(path, migrations), recovered };
  } catch (error) {
    throw new Error(`Cannot recreate database ${path}: ${messageOf(error)}`, { cause: error });
  }
}

async function openAndMigrate<DB>(
  path: string,
  migrations: Migrations,
): Promise<OpenedDatabase<DB>> {
  const database = new DatabaseSync(path);
  const db = new Kysely<DB>({ dialect: new NodeSqliteDialect({ database }) });
  try {
    // busy_timeout first, so that switching to WAL waits for other processes.
    database.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    database.exec("PRAGMA journal_mode = WAL");
    database.exec("PRAGMA synchronous = NORMAL");
    await migrateToLatest(db as Kysely<unknown>, migrations);
    return { db, database };
  } catch (error) {
    // destroy() closes the database only once kysely has used it.
    await db.destroy();
    if (database.isOpen) database.close();
    throw error;
  }
}

/**
 * Whether SQLite said the file is not a usable database. Deno's node:sqlite
 * errors carry only `code: "ERR_SQLITE_ERROR"` (no `errcode`), so the
 * message is what tells SQLITE_NOTADB and SQLITE_CORRUPT apart.
 */
function isCorruptionError(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (/file is not a database|database disk image is malformed/.test(e.message)) return true;
  }
  return false;
}

async function moveAside(path: string): Promise<string> {
  const stamp = new Date().toISOString().replaceAll(/[-:]/g, "");
  const target = `${path}.corrupt-${stamp}`;
  await Deno.rename(path, target);
  // SQLite pairs a database with "<name>-wal" and "<name>-shm": keep them together.
  for (const suffix of ["-wal", "-shm"]) {
    try {
      await Deno.rename(path + suffix, target + suffix);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return target;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
