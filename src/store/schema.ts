/**
 * The tables of amp's SQLite files as kysely types. The migrations in
 * `migrations/` create them; these types must say the same.
 *
 * @module
 */

import type { Generated, Insertable, Selectable } from "kysely";
import type { EventType } from "./event.ts";

/** The `events` table of events.db: one row per {@linkcode AmpEvent}. */
export interface EventsTable {
  id: Generated<number>;
  /** Milliseconds since the epoch. */
  time: number;
  type: EventType;
  host: string;
  policy_name: string | null;
  policy_id: number | null;
  /** The path's raw bytes. */
  path: Uint8Array | null;
  /** The path escaped for display (`escapePath`). */
  path_text: string | null;
  sha256: string | null;
  size: number | null;
  detection: string | null;
  engine: string | null;
  action: string | null;
  pid: number | null;
  ppid: number | null;
  uid: number | null;
  executable: Uint8Array | null;
  command_line: string | null;
  parent_executable: Uint8Array | null;
  local_address: string | null;
  local_port: number | null;
  remote_address: string | null;
  remote_port: number | null;
  protocol: string | null;
  /** `AmpEvent.details` as JSON text. */
  details: string | null;
  /** 1 once the cloud has the event (the upload queue). */
  uploaded: Generated<number>;
}

/** The tables of events.db. */
export interface EventsDatabase {
  events: EventsTable;
}

/** An `events` row as read. */
export type EventRow = Selectable<EventsTable>;

/** An `events` row as written. */
export type NewEventRow = Insertable<EventsTable>;

/**
 * The `verdicts` table of verdict.cache: one row per file (dev, ino) and
 * signature version. The 64-bit `dev` and `ino` are unsigned in the kernel and
 * stored as signed INTEGER (`BigInt.asIntN(64, …)`); the nanosecond times are
 * signed 64-bit already.
 */
export interface VerdictsTable {
  signature_version: string;
  dev: bigint;
  ino: bigint;
  size: number;
  mtime_ns: bigint;
  ctime_ns: bigint;
  kind: "clean" | "malicious";
  name: string | null;
  engine: string | null;
  sha256: string | null;
  /** Milliseconds since the epoch. */
  scanned_at: number;
}

/** The tables of verdict.cache. */
export interface VerdictCacheDatabase {
  verdicts: VerdictsTable;
}
