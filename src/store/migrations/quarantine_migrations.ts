/**
 * Migrations of quarantine.db. Never edit one that has shipped: add the next.
 *
 * @module
 */

import { sql } from "kysely";
import type { Migrations } from "../migrate.ts";

/** Every migration of quarantine.db, by name. */
export const quarantineMigrations: Migrations = {
  "0001_quarantine": {
    async up(db) {
      await db.schema.createTable("quarantine")
        // autoincrement: an id is never reused, so `<id>.amq` never meets an older file.
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("state", "text", (c) =>
          c.notNull().check(
            sql`state in ('pending', 'quarantined', 'restoring', 'restored', 'deleting')`,
          ))
        .addColumn("path", "blob", (c) => c.notNull())
        .addColumn("path_text", "text", (c) => c.notNull())
        .addColumn("dev", "integer", (c) => c.notNull())
        .addColumn("ino", "integer", (c) => c.notNull())
        .addColumn("uid", "integer", (c) => c.notNull())
        .addColumn("gid", "integer", (c) => c.notNull())
        .addColumn("mode", "integer", (c) => c.notNull())
        .addColumn("size", "integer", (c) => c.notNull())
        .addColumn("atime_ns", "integer", (c) => c.notNull())
        .addColumn("mtime_ns", "integer", (c) => c.notNull())
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("detection", "text", (c) => c.notNull())
        .addColumn("engine", "text", (c) => c.notNull())
        .addColumn("time", "integer", (c) => c.notNull())
        .addColumn("cipher_key", "blob", (c) => c.notNull())
        .addColumn("cipher_iv", "blob", (c) => c.notNull())
        .addColumn("restore_path", "blob")
        .addColumn("restored_time", "integer")
        .execute();
      await db.schema.createIndex("quarantine_sha256").on("quarantine").column("sha256")
        .execute();
      await db.schema.createIndex("quarantine_state").on("quarantine").column("state").execute();
    },
  },
};
