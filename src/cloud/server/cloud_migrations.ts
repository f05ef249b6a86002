/**
 * Migrations of the private cloud's database: the same named migrations on
 * SQLite and PostgreSQL. The only difference is how an id is generated
 * (`integer primary key autoincrement` against a 64-bit identity column);
 * every other column type means the same on both. Never edit one that has
 * shipped: add the next.
 *
 * @module
 */

import { type ColumnDefinitionBuilder, type Kysely, sql } from "kysely";
import type { Migrations } from "../../store/migrate.ts";

/** The database engines the cloud runs on. */
export type CloudDialect = "sqlite" | "postgres";

/**
 * Every migration of the cloud database, by name, for one engine.
 *
 * @param dialect the engine the migrations run on
 */
export function cloudMigrations(dialect: CloudDialect): Migrations {
  const idType = dialect === "sqlite" ? "integer" : "bigint";
  const id = (c: ColumnDefinitionBuilder) =>
    dialect === "sqlite"
      ? c.primaryKey().autoIncrement()
      : c.primaryKey().generatedByDefaultAsIdentity();
  return {
    "0001_cloud": {
      async up(db: Kysely<unknown>) {
        await db.schema.createTable("policies")
          .addColumn("id", idType, id)
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("serial", "bigint", (c) => c.notNull())
          .addColumn("document", "text", (c) => c.notNull())
          .addColumn("builtin", "integer", (c) => c.notNull())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("updated_at", "bigint", (c) => c.notNull())
          .execute();
        await db.schema.createTable("computers")
          .addColumn("id", idType, id)
          .addColumn("guid", "text", (c) => c.notNull().unique())
          .addColumn("hostname", "text", (c) => c.notNull())
          .addColumn("os", "text", (c) => c.notNull())
          .addColumn("kernel", "text", (c) => c.notNull())
          .addColumn("arch", "text", (c) => c.notNull())
          .addColumn("version", "text", (c) => c.notNull())
          .addColumn("key_hash", "text", (c) => c.notNull().unique())
          .addColumn("policy_id", "bigint", (c) => c.notNull().references("policies.id"))
          .addColumn("registered_at", "bigint", (c) => c.notNull())
          .addColumn("last_seen", "bigint", (c) => c.notNull())
          .addColumn("status", "text")
          .execute();
        await db.schema.createTable("registration_tokens")
          .addColumn("id", idType, id)
          .addColumn("token_hash", "text", (c) => c.notNull().unique())
          .addColumn("label", "text", (c) => c.notNull())
          .addColumn("policy_id", "bigint", (c) => c.references("policies.id"))
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("revoked_at", "bigint")
          .execute();
        await db.schema.createTable("disposition_changes")
          .addColumn("seq", idType, id)
          .addColumn("sha256", "text", (c) => c.notNull())
          .addColumn("disposition", "text", (c) => c.notNull())
          .addColumn("name", "text")
          .addColumn("time", "bigint", (c) => c.notNull())
          .execute();
        await db.schema.createTable("dispositions")
          .addColumn("sha256", "text", (c) => c.primaryKey())
          .addColumn("disposition", "text", (c) => c.notNull())
          .addColumn("name", "text")
          .addColumn("updated_at", "bigint", (c) => c.notNull())
          .addColumn("seq", "bigint", (c) => c.notNull())
          .execute();
        await db.schema.createTable("events")
          .addColumn("id", idType, id)
          .addColumn("computer_id", "bigint", (c) => c.notNull())
          .addColumn("event_key", "text", (c) => c.notNull())
          .addColumn("received_at", "bigint", (c) => c.notNull())
          .addColumn("time", "bigint", (c) => c.notNull())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("sha256", "text")
          .addColumn("document", "text", (c) => c.notNull())
          .execute();
        await db.schema.createIndex("events_computer_key").unique().on("events")
          .columns(["computer_id", "event_key"]).execute();
        await db.schema.createIndex("events_computer_id").on("events")
          .columns(["computer_id", "id"]).execute();
        await db.schema.createIndex("events_type").on("events").columns(["type", "id"]).execute();
        await db.schema.createIndex("events_sha256").on("events").column("sha256").execute();
        await db.schema.createIndex("events_time").on("events").column("time").execute();
        await db.schema.createTable("settings")
          .addColumn("key", "text", (c) => c.primaryKey())
          .addColumn("value", "text", (c) => c.notNull())
          .execute();
      },
    },
    // The console: quarantine lists from heartbeats, commands for connectors,
    // IP lists served to connectors, and detection names as a column (top detections).
    "0002_console": {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable("computers").addColumn("quarantine", "text").execute();
        await db.schema.alterTable("events").addColumn("detection", "text").execute();
        await (dialect === "sqlite"
          ? sql`update events set detection = json_extract(document, '$.detection')`
          : sql`update events set detection = (document::json)->>'detection'`).execute(db);
        await db.schema.createIndex("events_type_time").on("events").columns(["type", "time"])
          .execute();
        await db.schema.createTable("commands")
          .addColumn("id", idType, id)
          .addColumn("computer_id", "bigint", (c) => c.notNull())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("params", "text", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("message", "text")
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("updated_at", "bigint", (c) => c.notNull())
          .execute();
        await db.schema.createIndex("commands_computer_status").on("commands")
          .columns(["computer_id", "status", "id"]).execute();
        await db.schema.createTable("ip_lists")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("description", "text", (c) => c.notNull())
          .addColumn("content", "text", (c) => c.notNull())
          .addColumn("entries", "integer", (c) => c.notNull())
          .addColumn("etag", "text", (c) => c.notNull())
          .addColumn("updated_at", "bigint", (c) => c.notNull())
          .execute();
      },
    },
  };
}
