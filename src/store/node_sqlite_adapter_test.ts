import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { type Generated, Kysely, sql } from "kysely";
import { NodeSqliteDialect } from "./node_sqlite_adapter.ts";

interface TestDb {
  items: { id: Generated<number>; name: string; data: Uint8Array | null };
}

async function withDb(fn: (db: Kysely<TestDb>, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "test.db");
  const db = new Kysely<TestDb>({
    dialect: new NodeSqliteDialect({ database: () => new DatabaseSync(path) }),
  });
  try {
    await db.schema.createTable("items")
      .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("data", "blob")
      .execute();
    await fn(db, path);
  } finally {
    await db.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("NodeSqliteDialect executeQuery() returns insertId and numAffectedRows as bigints", async () => {
  await withDb(async (db) => {
    const first = await db.insertInto("items").values({ name: "a" }).executeTakeFirstOrThrow();
    const second = await db.insertInto("items").values({ name: "b" }).executeTakeFirstOrThrow();
    assert.equal(first.insertId, 1n);
    assert.equal(second.insertId, 2n);
    const updated = await db.updateTable("items").set({ name: "c" }).executeTakeFirstOrThrow();
    assert.equal(updated.numUpdatedRows, 2n);
    const rows = await db.selectFrom("items").select(["id", "name"]).orderBy("id").execute();
    assert.deepEqual(rows.map((r) => ({ ...r })), [{ id: 1, name: "c" }, { id: 2, name: "c" }]);
  });
});

Deno.test("NodeSqliteDialect executeQuery() returns rows of a write with returning", async () => {
  await withDb(async (db) => {
    const row = await db.insertInto("items").values({ name: "a" }).returning("id")
      .executeTakeFirstOrThrow();
    assert.equal(row.id, 1);
  });
});

Deno.test("NodeSqliteDialect round-trips Uint8Array parameters as BLOBs", async () => {
  await withDb(async (db) => {
    const data = new Uint8Array([0x00, 0xff, 0xfe, 0x80, 0x0a]);
    await db.insertInto("items").values({ name: "blob", data }).execute();
    const row = await db.selectFrom("items").select(["data", sql<string>`typeof(data)`.as("t")])
      .executeTakeFirstOrThrow();
    assert.equal(row.t, "blob");
    assert.ok(row.data instanceof Uint8Array);
    assert.deepEqual([...row.data], [...data]);
  });
});

Deno.test("NodeSqliteDialect commits and rolls back transactions", async () => {
  await withDb(async (db) => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("items").values({ name: "kept" }).execute();
    });
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("items").values({ name: "lost" }).execute();
        throw new Error("abort");
      }),
      /abort/,
    );
    const names = await db.selectFrom("items").select("name").execute();
    assert.deepEqual(names.map((r) => r.name), ["kept"]);
  });
});

Deno.test("NodeSqliteDialect rolls back to a savepoint", async () => {
  await withDb(async (db) => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto("items").values({ name: "kept" }).execute();
    const sp = await trx.savepoint("sp").execute();
    await sp.insertInto("items").values({ name: "lost" }).execute();
    await sp.rollbackToSavepoint("sp").execute();
    await trx.commit().execute();
    const names = await db.selectFrom("items").select("name").execute();
    assert.deepEqual(names.map((r) => r.name), ["kept"]);
  });
});

Deno.test("NodeSqliteDialect serialises concurrent transactions on its one connection", async () => {
  await withDb(async (db) => {
    const order: string[] = [];
    const run = (name: string) =>
      db.transaction().execute(async (trx) => {
        order.push(`${name} begin`);
        await trx.insertInto("items").values({ name }).execute();
        await new Promise((resolve) => setTimeout(resolve, 10));
        order.push(`${name} end`);
      });
    await Promise.all([run("a"), run("b"), db.selectFrom("items").selectAll().execute()]);
    assert.deepEqual(order, ["a begin", "a end", "b begin", "b end"]);
    assert.equal((await db.selectFrom("items").selectAll().execute()).length, 2);
  });
});

Deno.test("NodeSqliteDialect streamQuery() yields rows in chunks", async () => {
  await withDb(async (db) => {
    await db.insertInto("items").values(
      Array.from({ length: 5 }, (_, i) => ({ name: `n${i}` })),
    ).execute();
    const names: string[] = [];
    for await (const row of db.selectFrom("items").select("name").orderBy("id").stream(2)) {
      names.push(row.name);
    }
    assert.deepEqual(names, ["n0", "n1", "n2", "n3", "n4"]);
  });
});

Deno.test("NodeSqliteDialect persists to the database file and closes it on destroy", async () => {
  await withDb(async (db, path) => {
    await db.insertInto("items").values({ name: "on disk" }).execute();
    const other = new DatabaseSync(path);
    try {
      assert.deepEqual(other.prepare("select name from items").all().map((r) => r.name), [
        "on disk",
      ]);
    } finally {
      other.close();
    }
  });
});

Deno.test("NodeSqliteDialect destroy() closes the database", async () => {
  const database = new DatabaseSync(":memory:");
  const db = new Kysely<TestDb>({ dialect: new NodeSqliteDialect({ database }) });
  await sql`select 1`.execute(db);
  await db.destroy();
  assert.equal(database.isOpen, false);
});
