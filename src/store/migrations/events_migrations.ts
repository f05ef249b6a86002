/**
 * Migrations of events.db. Never edit one that has shipped: add the next.
 *
 * @module
 */

import { sql } from "kysely";
import type { Migrations } from "../migrate.ts";

/** Every migration of events.db, by name. */
export const eventsMigrations: Migrations = {
  "0001_events": {
    async up(db) {
      await db.schema.createTable("events")
        .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
        .addColumn("time", "integer", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("host", "text", (c) => c.notNull())
        .addColumn("policy_name", "text")
        .addColumn("policy_id", "integer")
        .addColumn("path", "blob")
        .addColumn("path_text", "text")
        .addColumn("sha256", "text")
        .addColumn("size", "integer")
        .addColumn("detection", "text")
        .addColumn("engine", "text")
        .addColumn("action", "text")
        .addColumn("pid", "integer")
        .addColumn("ppid", "integer")
        .addColumn("uid", "integer")
        .addColumn("executable", "blob")
        .addColumn("command_line", "text")
        .addColumn("parent_executable", "blob")
        .addColumn("local_address", "text")
        .addColumn("local_port", "integer")
        .addColumn("remote_address", "text")
        .addColumn("remote_port", "integer")
        .addColumn("protocol", "text")
        .addColumn("details", "text")
        .addColumn("uploaded", "integer", (c) => c.notNull().defaultTo(sql`0`))
        .execute();
      await db.schema.createIndex("events_time").on("events").column("time").execute();
      await db.schema.createIndex("events_type").on("events").column("type").execute();
      await db.schema.createIndex("events_sha256").on("events").column("sha256").execute();
    },
  },
  // The cloud upload queue: a partial index over the events still to send,
  // and this file's instance id (new whenever events.db is created, so that
  // event keys `<instance>:<id>` never repeat after a corrupt file is replaced).
  "0002_upload_queue": {
    async up(db) {
      await db.schema.createIndex("events_unsent").on("events").column("id")
        .where(sql.ref("uploaded"), "=", 0).execute();
      await db.schema.createTable("meta")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
      await db.insertInto("meta").values({ key: "instance", value: crypto.randomUUID() })
        .execute();
    },
  },
};
