import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { sql } from "kysely";
import { BUSY_TIMEOUT_MS, openDatabase } from "./open_database.ts";
import type { Migrations } from "./migrate.ts";

const migrations: Migrations = {
  "0001_notes": {
    up: (db) => db.schema.createTable("notes").addColumn("text", "text").execute(),
  },
};

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function pragma(database: DatabaseSync, name: string): unknown {
  return Object.values(database.prepare(`PRAGMA ${name}`).get() ?? {})[0];
}

Deno.test("openDatabase() creates private parent directories, WAL mode and the schema", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "var", "lib", "amp", "notes.db");
    const { db, database, recovered } = await openDatabase(path, migrations);
    try {
      assert.equal(recovered, undefined);
      assert.equal((await Deno.stat(join(dir, "var", "lib", "amp"))).mode! & 0o777, 0o700);
      assert.equal((await Deno.stat(join(dir, "var"))).mode! & 0o777, 0o700);
      assert.equal(pragma(database, "journal_mode"), "wal");
      assert.equal(pragma(database, "synchronous"), 1); // NORMAL
      assert.equal(pragma(database, "busy_timeout"), BUSY_TIMEOUT_MS);
      await sql`insert into notes (text) values ('kept')`.execute(db);
    } finally {
      await db.destroy();
    }
    const again = await openDatabase(path, migrations);
    try {
      const { rows } = await sql<{ text: string }>`select text from notes`.execute(again.db);
      assert.deepEqual(rows.map((r) => r.text), ["kept"]);
    } finally {
      await again.db.destroy();
    }
  });
});

Deno.test("openDatabase() moves a file of random bytes aside and recreates the database", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "notes.db");
    const garbage = crypto.getRandomValues(new Uint8Array(16384));
    await Deno.writeFile(path, garbage);
    const { db, recovered } = await openDatabase(path, migrations);
    try {
      assert.ok(recovered !== undefined);
      assert.match(recovered, /notes\.db\.corrupt-\d{8}T\d{6}\.\d{3}Z$/);
      assert.deepEqual(await Deno.readFile(recovered), garbage);
      await sql`insert into notes (text) values ('new')`.execute(db);
    } finally {
      await db.destroy();
    }
  });
});

Deno.test("openDatabase() moves a malformed database aside and recreates it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "notes.db");
    const old = new DatabaseSync(path);
    old.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('old')");
    old.close();
    // Keep the 100-byte header, overwrite the schema b-tree on page 1.
    const bytes = await Deno.readFile(path);
    bytes.fill(0xa5, 100, 4096);
    await Deno.writeFile(path, bytes);
    const { db, recovered } = await openDatabase(path, migrations);
    try {
      assert.ok(recovered !== undefined);
      const { rows } = await sql`select text from notes`.execute(db);
      assert.deepEqual(rows, []);
    } finally {
      await db.destroy();
    }
  });
});

Deno.test("openDatabase() throws for a path it cannot open and moves nothing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "is_a_directory");
    await Deno.mkdir(path);
    await assert.rejects(openDatabase(path, migrations), (error: Error) => {
      assert.match(error.message, /^Cannot open database .*is_a_directory: /);
      assert.ok(error.cause instanceof Error);
      return true;
    });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["is_a_directory"]);
  });
});
