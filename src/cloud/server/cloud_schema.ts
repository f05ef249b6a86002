/**
 * The tables of the private cloud's database as kysely types, the same on
 * SQLite and PostgreSQL. `cloud_migrations.ts` creates them; these types must
 * say the same. Times are milliseconds since the epoch (64-bit integers, read
 * back as numbers on both engines).
 *
 * @module
 */

import type { Generated, Insertable, Selectable } from "kysely";

/** One registered connector. */
export interface ComputersTable {
  id: Generated<number>;
  /** The connector's GUID (unique). */
  guid: string;
  hostname: string;
  os: string;
  kernel: string;
  arch: string;
  version: string;
  /** SHA-256 (hex) of the connector's key: the key itself is never stored. */
  key_hash: string;
  /** The assigned policy. */
  policy_id: number;
  registered_at: number;
  last_seen: number;
  /** The last heartbeat's body (JSON, without its quarantine list), or null before the first. */
  status: string | null;
  /** The quarantine list of the last heartbeat that sent one (JSON), or null. */
  quarantine: string | null;
}

/** One policy; `document` is the policy JSON (its id and serial match the row). */
export interface PoliciesTable {
  id: Generated<number>;
  name: string;
  serial: number;
  document: string;
  /** 1 for the two built-in policies (which cannot be deleted). */
  builtin: number;
  created_at: number;
  updated_at: number;
}

/** A registration token (stored as its SHA-256), optionally tied to a policy. */
export interface RegistrationTokensTable {
  id: Generated<number>;
  token_hash: string;
  label: string;
  /** Policy given to connectors that register with it; null: the default policy. */
  policy_id: number | null;
  created_at: number;
  revoked_at: number | null;
}

/** The current disposition of a SHA-256 (custom detections and known-clean files). */
export interface DispositionsTable {
  sha256: string;
  disposition: "clean" | "malicious";
  name: string | null;
  updated_at: number;
  /** The change that set it. */
  seq: number;
}

/** The log of disposition changes that connectors follow by cursor. */
export interface DispositionChangesTable {
  seq: Generated<number>;
  sha256: string;
  disposition: "clean" | "malicious" | "unknown";
  name: string | null;
  time: number;
}

/** One event uploaded by a connector; `document` is its wire form (JSON). */
export interface CloudEventsTable {
  id: Generated<number>;
  computer_id: number;
  /** The connector's key of the event: unique per computer (uploads are idempotent). */
  event_key: string;
  received_at: number;
  time: number;
  type: string;
  sha256: string | null;
  /** The detection name, when the event has one. */
  detection: string | null;
  document: string;
}

/** What a command is at: queued, sent in a heartbeat answer, or reported. */
export type CommandStatus = "pending" | "sent" | "done" | "failed";

/** An action queued for a connector by the console (see protocol.ts, Commands). */
export interface CommandsTable {
  id: Generated<number>;
  computer_id: number;
  type: "restore";
  /** The command's fields besides id and type (JSON). */
  params: string;
  status: CommandStatus;
  /** The connector's report. */
  message: string | null;
  created_at: number;
  updated_at: number;
}

/** An IP list kept by the cloud and served to connectors for DFC. */
export interface IpListsTable {
  name: string;
  description: string;
  /** The list as served: one address or CIDR per line. */
  content: string;
  /** Addresses and networks in it. */
  entries: number;
  /** The content's SHA-256 (hex), quoted: the HTTP ETag. */
  etag: string;
  updated_at: number;
}

/** Server settings (`default_policy_id`). */
export interface SettingsTable {
  key: string;
  value: string;
}

/** The cloud database. */
export interface CloudDatabase {
  computers: ComputersTable;
  policies: PoliciesTable;
  registration_tokens: RegistrationTokensTable;
  dispositions: DispositionsTable;
  disposition_changes: DispositionChangesTable;
  events: CloudEventsTable;
  settings: SettingsTable;
  commands: CommandsTable;
  ip_lists: IpListsTable;
}

/** A computer as read. */
export type ComputerRow = Selectable<ComputersTable>;

/** A policy as read. */
export type PolicyRow = Selectable<PoliciesTable>;

/** An event as written. */
export type NewCloudEventRow = Insertable<CloudEventsTable>;

/** A command as read. */
export type CommandRow = Selectable<CommandsTable>;

/** An IP list as read. */
export type IpListRow = Selectable<IpListsTable>;
