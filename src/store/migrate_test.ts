import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { Kysely, sql } from "kysely";
import { NodeSqliteDialect } from "./node_sqlite_adapter.ts";
import { migrateToLatest, type Migrations } from "./migrate.ts";

const migrations: Migrations = {
  "0001_notes": {
    up: (db) => db.schema.createTable("notes").addColumn("text", "text").execute(),
  },
  "0002_notes_time": {
    up: (db) => db.schema.alterTable("notes").addColumn("time", "integer").execute(),
  },
};

async function withDb(fn: (open: () => Kysely<unknown>) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const open = () =>
    new Kysely<unknown>({
      dialect: new NodeSqliteDialect({ database: new DatabaseSync(join(dir, "test.db")) }),
    });
  try {
    await fn(open);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("migrateToLatest() applies pending migrations once, in name order", async () => {
  await withDb(async (open) => {
    const db = open();
    try {
      assert.deepEqual(await migrateToLatest(db, { "0001_notes": migrations["0001_notes"] }), [
        "0001_notes",
      ]);
      assert.deepEqual(await migrateToLatest(db, migrations), ["0002_notes_time"]);
      assert.deepEqual(await migrateToLatest(db, migrations), []);
      await sql`insert into notes (text, time) values ('a', 1)`.execute(db);
    } finally {
      await db.destroy();
    }
    const reopened = open();
    try {
      assert.deepEqual(await migrateToLatest(reopened, migrations), []);
    } finally {
      await reopened.destroy();
    }
  });
});

Deno.test("migrateToLatest() names the failed migration and keeps none of the batch", async () => {
  await withDb(async (open) => {
    const db = open();
    try {
      const broken: Migrations = {
        ...migrations,
        "0003_broken": {
          up: async (db) => {
            await db.schema.createTable("half").addColumn("x", "text").execute();
            await sql`select * from no_such_table`.execute(db);
          },
        },
      };
      const error = await migrateToLatest(db, broken).then(() => undefined, (e: Error) => e);
      assert.ok(error instanceof Error);
      assert.match(error.message, /migration "0003_broken" failed: no such table: no_such_table/);
      assert.ok(error.cause instanceof Error);
      const tables = await sql<{ name: string }>`select name from sqlite_master where name = 'half'`
        .execute(db);
      assert.deepEqual(tables.rows, []);
      assert.deepEqual(await migrateToLatest(db, migrations), ["0001_notes", "0002_notes_time"]);
    } finally {
      await db.destroy();
    }
  });
});

Deno.test("migrateToLatest() rejects a database migrated by a newer program", async () => {
  await withDb(async (open) => {
    const db = open();
    try {
      await migrateToLatest(db, migrations);
      await assert.rejects(
        migrateToLatest(db, { "0001_notes": migrations["0001_notes"] }),
        /Cannot migrate database: cannot apply migrations: .*0002_notes_time/,
      );
    } finally {
      await db.destroy();
    }
  });
});
