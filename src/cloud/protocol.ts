/**
 * The cloud protocol: JSON over HTTPS, every request and response described
 * once here as a zod schema that both the connector and `amp cloud serve`
 * parse with. The version is part of every path (`/v1/…`): a server that
 * changes a message incompatibly serves it under `/v2/` beside the old one.
 *
 * Calls (connector → cloud), each with `Authorization: Bearer <credential>`:
 *
 * | call | method and path | credential |
 * |---|---|---|
 * | register | `POST /v1/register` | a registration token |
 * | heartbeat (status in, policy serial and disposition cursor out) | `POST /v1/heartbeat` | the connector's key |
 * | fetch the assigned policy | `GET /v1/policy` | key |
 * | look up a batch of SHA-256 | `POST /v1/lookup` | key |
 * | upload a batch of events (idempotent by event key) | `POST /v1/events` | key |
 * | the connector's own events as the cloud holds them | `GET /v1/events` | key |
 * | disposition changes since a cursor (retrospective) | `GET /v1/dispositions?since=N` | key |
 * | an IP list kept by the cloud, for DFC (text, ETag) | `GET /v1/ip-lists/NAME` | key |
 *
 * Commands: the console queues actions for a computer (restore a quarantined
 * file); the next heartbeat answer carries those not yet reported, the
 * connector carries them out and reports each outcome in its next heartbeat
 * (sent at once after commands were carried out). A command delivered
 * twice (its result lost on the way) is carried out once: restoring a file
 * that is already restored reports success. Heartbeats also carry the
 * connector's quarantine list when it changed, which is how the console shows
 * quarantined files.
 *
 * Compatibility: these fields are optional additions to v1; a cloud of this
 * build accepts heartbeats without them.
 *
 * A failed call answers with an {@linkcode ErrorBody} and a 4xx/5xx status.
 *
 * @module
 */

import { z } from "zod";
import { EVENT_TYPES } from "../store/event.ts";

/** The protocol version this build speaks; it is the first segment of every path. */
export const PROTOCOL_VERSION = 1;

/** The path prefix of this protocol version. */
export const API_PREFIX = `/v${PROTOCOL_VERSION}`;

/** Paths of the connector calls. */
export const PATHS = {
  register: `${API_PREFIX}/register`,
  heartbeat: `${API_PREFIX}/heartbeat`,
  policy: `${API_PREFIX}/policy`,
  lookup: `${API_PREFIX}/lookup`,
  events: `${API_PREFIX}/events`,
  dispositions: `${API_PREFIX}/dispositions`,
  ipLists: `${API_PREFIX}/ip-lists`,
} as const;

/** Most quarantine records in one heartbeat (the newest). */
export const MAX_HEARTBEAT_QUARANTINE = 500;

/** Most commands in one heartbeat answer. */
export const MAX_COMMANDS = 20;

/** Most SHA-256 in one lookup request. */
export const MAX_LOOKUP_BATCH = 1000;

/** Most events in one upload. */
export const MAX_EVENT_BATCH = 1000;

/** Most disposition changes in one answer. */
export const MAX_DISPOSITION_CHANGES = 5000;

/** The latest instant a JavaScript `Date` can hold (ms since the epoch): later times are refused. */
export const MAX_TIME_MS = 8.64e15;

/** An instant sent by a connector (ms since the epoch, within the range of `Date`). */
const epochMs = z.number().int().nonnegative().max(MAX_TIME_MS);

/**
 * Text from a connector, at most `max` characters and without NUL, which
 * PostgreSQL cannot store in a text column (the insert would fail, and the
 * connector would send the same batch again and again).
 */
function text(max: number) {
  return z.string().max(max).refine(
    (s) => !s.includes("\0"),
    "Expected text without NUL characters",
  );
}

/** A lower-case hex SHA-256. */
export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, "Expected a lower-case hex SHA-256");

/** What the cloud knows about a file's content. */
export const DispositionSchema = z.enum(["clean", "malicious", "unknown"]);

/** One of {@linkcode DispositionSchema}. */
export type Disposition = z.infer<typeof DispositionSchema>;

/** A policy's identity and version. */
export const PolicyRefSchema = z.strictObject({
  id: z.number().int().positive(),
  serial: z.number().int().nonnegative(),
});

/** A policy's identity and version. */
export type PolicyRef = z.infer<typeof PolicyRefSchema>;

/** The body of every error answer. */
export const ErrorBodySchema = z.object({
  error: z.string(),
  /** A stable word for programs: `unauthorized`, `bad-request`, `not-found`, … */
  code: z.string(),
});

/** The body of every error answer. */
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** `POST /v1/register`: who the connector is. */
export const RegisterRequestSchema = z.strictObject({
  /** The connector's GUID, made once at registration and kept. */
  guid: z.uuid(),
  hostname: text(255).min(1),
  /** The distribution (`PRETTY_NAME` of os-release). */
  os: text(255),
  /** The running kernel release. */
  kernel: text(255),
  arch: text(64),
  /** amp's version. */
  version: text(64),
  /**
   * The key of the connector's registration so far: a GUID the cloud knows is
   * registered again only with it (a registration token alone does not do).
   */
  currentKey: z.string().min(32).max(256).optional(),
});

/** `POST /v1/register`: who the connector is. */
export type RegisterRequest = z.infer<typeof RegisterRequestSchema>;

/** The answer to a registration: the connector's own key, shown once. */
export const RegisterResponseSchema = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  computerId: z.number().int().positive(),
  /** The connector's key for every later call. */
  key: z.string().min(32),
  /** The assigned policy. */
  policy: PolicyRefSchema,
  /** How often the connector should send a heartbeat. */
  heartbeatSeconds: z.number().int().positive(),
});

/** The answer to a registration. */
export type RegisterResponse = z.infer<typeof RegisterResponseSchema>;

/** A quarantined file as the connector reports it to the cloud. */
export const QuarantineItemSchema = z.strictObject({
  /** The record's id in the connector's quarantine. */
  id: z.number().int().positive(),
  /** The original path, escaped for display. */
  pathText: text(16_384),
  sha256: Sha256Schema,
  size: z.number().int().nonnegative(),
  detection: text(255),
  engine: text(64),
  /** When it was quarantined (ms since the epoch). */
  time: epochMs,
});

/** A quarantined file as the connector reports it. */
export type QuarantineItem = z.infer<typeof QuarantineItemSchema>;

/** The outcome of one command. */
export const CommandResultSchema = z.strictObject({
  id: z.number().int().positive(),
  ok: z.boolean(),
  /** What happened, for the console (the error when not ok). */
  message: text(1000),
});

/** The outcome of one command. */
export type CommandResult = z.infer<typeof CommandResultSchema>;

/** `POST /v1/heartbeat`: the connector's state. */
export const HeartbeatRequestSchema = z.strictObject({
  /** The policy in force (id and serial). */
  policy: PolicyRefSchema,
  /** What `amp status` shows as faults. */
  faults: z.array(text(1000)).max(100),
  /** amp's version (it may change with an update). */
  version: text(64),
  /** Real-time monitor backend (`fanotify`, `off`, …). */
  monitor: text(64),
  /** A description of the signatures in use (ClamAV version and count). */
  signatures: text(255).optional(),
  counts: z.strictObject({
    /** Events recorded and not yet uploaded. */
    queuedEvents: z.number().int().nonnegative(),
    quarantined: z.number().int().nonnegative(),
    detections: z.number().int().nonnegative(),
    cacheEntries: z.number().int().nonnegative(),
  }),
  /**
   * The files in quarantine now (the newest {@linkcode MAX_HEARTBEAT_QUARANTINE}),
   * sent when the list changed since the connector last sent it; absent: unchanged.
   */
  quarantine: z.array(QuarantineItemSchema).max(MAX_HEARTBEAT_QUARANTINE).optional(),
  /** What became of commands an earlier answer brought, not yet reported. */
  commandResults: z.array(CommandResultSchema).max(MAX_COMMANDS).optional(),
});

/** `POST /v1/heartbeat`: the connector's state. */
export type HeartbeatRequest = z.infer<typeof HeartbeatRequestSchema>;

/** A policy document as the cloud sends it; the connector validates it with its policy schema. */
export const PolicyDocumentSchema = z.record(z.string(), z.unknown());

/** An action the console asked a connector to carry out. */
export const CommandSchema = z.strictObject({
  /** The cloud's id of the command (results name it). */
  id: z.number().int().positive(),
  /** Put a quarantined file back where it was. */
  type: z.literal("restore"),
  /** The quarantine record's id on the connector. */
  quarantineId: z.number().int().positive(),
  /** The SHA-256 the console saw: a record with another hash is not restored. */
  sha256: Sha256Schema,
});

/** An action the console asked a connector to carry out. */
export type Command = z.infer<typeof CommandSchema>;

/** The answer to a heartbeat. */
export const HeartbeatResponseSchema = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  /** The server's clock (ms since the epoch). */
  time: z.number().int(),
  heartbeatSeconds: z.number().int().positive(),
  /** The policy assigned now. */
  policy: PolicyRefSchema,
  /** The assigned policy in full, when it is not the one the heartbeat reported. */
  policyDocument: PolicyDocumentSchema.optional(),
  /** The newest disposition change: fetch `/v1/dispositions` when beyond the connector's cursor. */
  dispositionCursor: z.number().int().nonnegative(),
  /** Commands to carry out, oldest first (at most {@linkcode MAX_COMMANDS}). */
  commands: z.array(CommandSchema).max(MAX_COMMANDS).optional(),
});

/** The answer to a heartbeat. */
export type HeartbeatResponse = z.infer<typeof HeartbeatResponseSchema>;

/** `GET /v1/policy`. */
export const PolicyResponseSchema = z.strictObject({
  policy: PolicyRefSchema,
  document: PolicyDocumentSchema,
});

/** `GET /v1/policy`. */
export type PolicyResponse = z.infer<typeof PolicyResponseSchema>;

/** `POST /v1/lookup`. */
export const LookupRequestSchema = z.strictObject({
  sha256: z.array(Sha256Schema).min(1).max(MAX_LOOKUP_BATCH),
});

/** `POST /v1/lookup`. */
export type LookupRequest = z.infer<typeof LookupRequestSchema>;

/** One answer of a lookup. */
export const LookupResultSchema = z.strictObject({
  sha256: Sha256Schema,
  disposition: DispositionSchema,
  /** The detection name, for a malicious file. */
  name: z.string().max(255).optional(),
  /** How long the answer may be cached; the connector's defaults apply without it. */
  ttlSeconds: z.number().int().nonnegative().optional(),
});

/** One answer of a lookup. */
export type LookupResult = z.infer<typeof LookupResultSchema>;

/** The answer to a lookup: one result per SHA-256 asked, in any order. */
export const LookupResponseSchema = z.strictObject({
  results: z.array(LookupResultSchema),
});

/** The answer to a lookup. */
export type LookupResponse = z.infer<typeof LookupResponseSchema>;

const base64 = z.string().max(16_384).regex(/^[A-Za-z0-9+/]*={0,2}$/, "Expected base64");

/**
 * An event on the wire. Byte paths travel as base64 beside an escaped copy for
 * display; `key` identifies the event for ever (the connector's event-store
 * instance and the event's id there), so a batch sent twice is stored once.
 */
export const WireEventSchema = z.strictObject({
  key: text(100).min(1),
  type: z.enum(EVENT_TYPES),
  time: epochMs,
  host: text(255),
  policy: z.strictObject({ name: text(255), id: z.number().int() }).optional(),
  path: base64.optional(),
  pathText: text(16_384).optional(),
  sha256: Sha256Schema.optional(),
  size: z.number().int().nonnegative().optional(),
  detection: text(255).optional(),
  engine: text(64).optional(),
  action: text(64).optional(),
  pid: z.number().int().optional(),
  ppid: z.number().int().optional(),
  uid: z.number().int().optional(),
  executable: base64.optional(),
  executableText: text(16_384).optional(),
  commandLine: text(16_384).optional(),
  parentExecutable: base64.optional(),
  parentExecutableText: text(16_384).optional(),
  localAddress: text(64).optional(),
  localPort: z.number().int().min(0).max(65535).optional(),
  remoteAddress: text(64).optional(),
  remotePort: z.number().int().min(0).max(65535).optional(),
  protocol: text(16).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** An event on the wire. */
export type WireEvent = z.infer<typeof WireEventSchema>;

/** `POST /v1/events`. */
export const EventsUploadRequestSchema = z.strictObject({
  events: z.array(WireEventSchema).min(1).max(MAX_EVENT_BATCH),
});

/** `POST /v1/events`. */
export type EventsUploadRequest = z.infer<typeof EventsUploadRequestSchema>;

/** The answer to an upload: every event is stored once, whatever was sent before. */
export const EventsUploadResponseSchema = z.strictObject({
  /** Events stored now. */
  stored: z.number().int().nonnegative(),
  /** Events the cloud already had (a batch resent after a lost answer). */
  duplicates: z.number().int().nonnegative(),
});

/** The answer to an upload. */
export type EventsUploadResponse = z.infer<typeof EventsUploadResponseSchema>;

/** An event as the cloud holds it. */
export const StoredWireEventSchema = WireEventSchema.extend({
  /** The cloud's id of the event. */
  id: z.number().int().positive(),
  /** When the cloud received it. */
  received: z.number().int(),
});

/** An event as the cloud holds it. */
export type StoredWireEvent = z.infer<typeof StoredWireEventSchema>;

/** `GET /v1/events`: the calling connector's events, newest first. */
export const ConnectorEventsResponseSchema = z.strictObject({
  events: z.array(StoredWireEventSchema),
});

/** One disposition change. */
export const DispositionChangeSchema = z.strictObject({
  /** The change's position in the cloud's change log (the cursor). */
  seq: z.number().int().positive(),
  sha256: Sha256Schema,
  disposition: DispositionSchema,
  name: z.string().max(255).optional(),
  time: z.number().int(),
});

/** One disposition change. */
export type DispositionChange = z.infer<typeof DispositionChangeSchema>;

/** `GET /v1/dispositions?since=N&limit=M`: changes after `since`, oldest first. */
export const DispositionChangesResponseSchema = z.strictObject({
  changes: z.array(DispositionChangeSchema),
  /** The cursor to ask from next time. */
  cursor: z.number().int().nonnegative(),
  /** More changes wait after this page. */
  more: z.boolean(),
});

/** `GET /v1/dispositions`. */
export type DispositionChangesResponse = z.infer<typeof DispositionChangesResponseSchema>;

/** A name of an IP list kept by the cloud (the same rule as a policy's DFC list names). */
export const IpListNameSchema = z.string().regex(
  /^[\w.-]{1,64}$/,
  "Use 1 to 64 letters, digits, dots, dashes or underscores",
);
