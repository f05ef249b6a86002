/**
 * A kysely dialect over `node:sqlite`, which is built into Deno: no native
 * library to download or ship. Like kysely's own `SqliteDialect` it depends
 * only on the narrow subset of the database API it needs
 * ({@linkcode NodeSqliteDatabase}), so `DatabaseSync` fits it structurally.
 *
 * One connection serves every query. Kysely itself serialises its use: its
 * runtime driver takes a mutex around each acquire/release whenever the
 * adapter reports `supportsMultipleConnections === false`, as `SqliteAdapter`
 * does, so a transaction holds the connection until it ends.
 *
 * Unlike kysely's `SqliteAdapter`, the adapter reports transactional DDL,
 * which SQLite has: kysely's migrator then runs a batch of migrations in one
 * transaction, so a failed migration leaves no half-changed schema behind.
 *
 * @module
 */

import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";

/** A value node:sqlite can bind; a `Uint8Array` is stored as a BLOB. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/** The subset of node:sqlite's `StatementSync` that the dialect needs. */
export interface NodeSqliteStatement {
  /** Result columns; empty for statements that return no rows. */
  columns(): unknown[];
  all(...parameters: SqlValue[]): unknown[];
  run(...parameters: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  iterate(...parameters: SqlValue[]): IterableIterator<unknown>;
}

/** The subset of node:sqlite's `DatabaseSync` that the dialect needs. */
export interface NodeSqliteDatabase {
  prepare(sql: string): NodeSqliteStatement;
  close(): void;
}

/** Options of {@linkcode NodeSqliteDialect}. */
export interface NodeSqliteDialectOptions {
  /** An open database, or a function that opens it on first use. */
  database: NodeSqliteDatabase | (() => NodeSqliteDatabase | Promise<NodeSqliteDatabase>);
}

/**
 * The kysely dialect for `node:sqlite`. `Kysely.destroy()` closes the database.
 *
 * @example
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { Kysely, sql } from "kysely";
 * import { NodeSqliteDialect } from "./node_sqlite_adapter.ts";
 *
 * const db = new Kysely<unknown>({
 *   dialect: new NodeSqliteDialect({ database: new DatabaseSync(":memory:") }),
 * });
 * const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
 * await db.destroy();
 * ```
 */
export class NodeSqliteDialect implements Dialect {
  readonly #options: NodeSqliteDialectOptions;

  /** @param options the database to use */
  constructor(options: NodeSqliteDialectOptions) {
    this.#options = { ...options };
  }

  /** Creates the driver that owns the one connection. */
  createDriver(): Driver {
    return new NodeSqliteDriver(this.#options);
  }

  /** Creates kysely's SQLite query compiler. */
  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  /** Creates the adapter: kysely's SQLite adapter with transactional DDL. */
  createAdapter(): DialectAdapter {
    return new NodeSqliteAdapter();
  }

  /** Creates kysely's SQLite introspector. */
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}

class NodeSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class NodeSqliteDriver implements Driver {
  readonly #options: NodeSqliteDialectOptions;
  #database?: NodeSqliteDatabase;
  #connection?: NodeSqliteConnection;

  constructor(options: NodeSqliteDialectOptions) {
    this.#options = options;
  }

  async init(): Promise<void> {
    const { database } = this.#options;
    this.#database = typeof database === "function" ? await database() : database;
    this.#connection = new NodeSqliteConnection(this.#database);
  }

  acquireConnection(): Promise<DatabaseConnection> {
    if (this.#connection === undefined) {
      return Promise.reject(
        new Error("Cannot acquire a connection: the driver is not initialised"),
      );
    }
    return Promise.resolve(this.#connection);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin"));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteName(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to ${quoteName(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release ${quoteName(name)}`));
  }

  async releaseConnection(): Promise<void> {}

  destroy(): Promise<void> {
    this.#database?.close();
    this.#database = undefined;
    this.#connection = undefined;
    return Promise.resolve();
  }
}

class NodeSqliteConnection implements DatabaseConnection {
  readonly #database: NodeSqliteDatabase;

  constructor(database: NodeSqliteDatabase) {
    this.#database = database;
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      const statement = this.#database.prepare(query.sql);
      const parameters = query.parameters as SqlValue[];
      // node:sqlite has no `reader` flag: a statement that returns rows
      // (a select, or a write with `returning`) has result columns.
      if (statement.columns().length > 0) {
        return Promise.resolve({ rows: statement.all(...parameters) as R[] });
      }
      const { changes, lastInsertRowid } = statement.run(...parameters);
      return Promise.resolve({
        rows: [],
        numAffectedRows: BigInt(changes),
        insertId: BigInt(lastInsertRowid),
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async *streamQuery<R>(
    query: CompiledQuery,
    chunkSize: number,
  ): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(query.query)) {
      throw new Error("Cannot stream query: only select queries can be streamed");
    }
    const statement = this.#database.prepare(query.sql);
    let rows: R[] = [];
    for (const row of statement.iterate(...(query.parameters as SqlValue[]))) {
      rows.push(row as R);
      if (rows.length >= chunkSize) {
        yield { rows };
        rows = [];
      }
    }
    if (rows.length > 0) yield { rows };
  }
}

function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
