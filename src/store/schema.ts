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
  /** The upload queue: 0 to send, 1 once the cloud has the event, 2 dropped (queue over its bound). */
  uploaded: Generated<number>;
}

/** The `meta` table of events.db: `instance` (a UUID made when the file was created). */
export interface EventsMetaTable {
  key: string;
  value: string;
}

/** The tables of events.db. */
export interface EventsDatabase {
  events: EventsTable;
  meta: EventsMetaTable;
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

/**
 * Where a quarantine record stands. `pending`, `restoring` and `deleting`
 * mark an operation in progress: a record left in one of them by a crash is
 * finished or undone when the quarantine is next opened.
 */
export type QuarantineState = "pending" | "quarantined" | "restoring" | "restored" | "deleting";

/**
 * The `quarantine` table of quarantine.db: one row per quarantined file. The
 * file's bytes live beside the database in `<id>.amq`, encrypted with
 * `cipher_key` and `cipher_iv`. `dev` and `ino` (unsigned in the kernel) are
 * stored as their signed 64-bit equivalent; the nanosecond times are signed
 * 64-bit already.
 */
export interface QuarantineTable {
  id: Generated<number>;
  state: QuarantineState;
  /** The original path's raw bytes. */
  path: Uint8Array;
  /** The path escaped for display (`escapePath`). */
  path_text: string;
  dev: bigint;
  ino: bigint;
  uid: number;
  gid: number;
  /** `st_mode`: file type and permission bits. */
  mode: number;
  size: number;
  atime_ns: bigint;
  mtime_ns: bigint;
  sha256: string;
  detection: string;
  engine: string;
  /** When the file was quarantined, in milliseconds since the epoch. */
  time: number;
  cipher_key: Uint8Array;
  cipher_iv: Uint8Array;
  /** Where a restore writes (`restoring`) or wrote (`restored`) the file. */
  restore_path: Uint8Array | null;
  /** When the file was restored, in milliseconds since the epoch. */
  restored_time: number | null;
}

/** The tables of quarantine.db. */
export interface QuarantineDatabase {
  quarantine: QuarantineTable;
}
