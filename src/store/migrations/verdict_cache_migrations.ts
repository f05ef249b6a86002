/**
 * Migrations of verdict.cache. Never edit one that has shipped: add the next.
 *
 * @module
 */

import { sql } from "kysely";
import type { Migrations } from "../migrate.ts";

/** Every migration of verdict.cache, by name. */
export const verdictCacheMigrations: Migrations = {
  "0001_verdicts": {
    async up(db) {
      await db.schema.createTable("verdicts")
        .addColumn("signature_version", "text", (c) => c.notNull())
        .addColumn("dev", "integer", (c) => c.notNull())
        .addColumn("ino", "integer", (c) => c.notNull())
        .addColumn("size", "integer", (c) => c.notNull())
        .addColumn("mtime_ns", "integer", (c) => c.notNull())
        .addColumn("ctime_ns", "integer", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull().check(sql`kind in ('clean', 'malicious')`))
        .addColumn("name", "text")
        .addColumn("engine", "text")
        .addColumn("sha256", "text")
        .addColumn("scanned_at", "integer", (c) => c.notNull())
        // One row per file and signature version: a changed file replaces its row.
        .addPrimaryKeyConstraint("verdicts_pk", ["signature_version", "dev", "ino"])
        .modifyEnd(sql`without rowid`)
        .execute();
    },
  },
};
