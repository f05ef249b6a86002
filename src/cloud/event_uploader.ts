/**
 * Delivers events.db to the cloud: the events not yet uploaded, oldest first,
 * in batches; a batch is marked sent only once the cloud has answered, so an
 * answer lost on the way means the batch is sent again, and the cloud, which
 * keys events by `<events.db instance>:<id>`, stores each once. Nothing is
 * dropped while the cloud is away, up to a bound on the queue; past it the
 * oldest queued events leave the queue (they stay in events.db), counted and
 * logged.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { StoredEvent } from "../store/event.ts";
import type { EventsDb } from "../store/events_db.ts";
import { escapePath } from "../sys/byte_path.ts";
import { CloudRequestError } from "./cloud_client.ts";
import { MAX_EVENT_BATCH, type WireEvent, WireEventSchema } from "./protocol.ts";

/** Default bound on events waiting for the cloud. */
export const DEFAULT_MAX_QUEUED = 1_000_000;

/** Default events per upload. */
export const DEFAULT_BATCH = 500;

/** Largest `details` sent, as JSON text; larger ones are replaced by a note. */
const MAX_DETAILS_CHARS = 16_384;

/**
 * An event in its wire form: byte paths as base64 with an escaped copy, the
 * key made from the store's instance and the event's id. Text is cut to the
 * protocol's limits, and an event that still does not fit is sent as its
 * type, time and host with the reason in `details`: one odd event must never
 * block the queue behind it.
 *
 * @example
 * ```ts
 * import { toWireEvent } from "./event_uploader.ts";
 * toWireEvent({ id: 7, type: "Connector Started", time: 1, host: "web1" }, "f00d").key; // "f00d:7"
 * ```
 */
export function toWireEvent(event: StoredEvent, instance: string): WireEvent {
  const wire: WireEvent = {
    key: `${instance}:${event.id}`,
    type: event.type,
    time: event.time,
    host: event.host.slice(0, 255),
  };
  if (event.policy) wire.policy = { name: event.policy.name.slice(0, 255), id: event.policy.id };
  if (event.path) {
    wire.path = Buffer.from(event.path).toString("base64");
    wire.pathText = escapePath(event.path);
  }
  if (event.sha256 && /^[0-9a-f]{64}$/.test(event.sha256)) wire.sha256 = event.sha256;
  if (event.size !== undefined) wire.size = event.size;
  if (event.detection !== undefined) wire.detection = event.detection.slice(0, 255);
  if (event.engine !== undefined) wire.engine = event.engine.slice(0, 64);
  if (event.action !== undefined) wire.action = event.action.slice(0, 64);
  if (event.pid !== undefined) wire.pid = event.pid;
  if (event.ppid !== undefined) wire.ppid = event.ppid;
  if (event.uid !== undefined) wire.uid = event.uid;
  if (event.executable) {
    wire.executable = Buffer.from(event.executable).toString("base64");
    wire.executableText = escapePath(event.executable);
  }
  if (event.commandLine !== undefined) wire.commandLine = event.commandLine.slice(0, 16_384);
  if (event.parentExecutable) {
    wire.parentExecutable = Buffer.from(event.parentExecutable).toString("base64");
    wire.parentExecutableText = escapePath(event.parentExecutable);
  }
  if (event.localAddress !== undefined) wire.localAddress = event.localAddress;
  if (event.localPort !== undefined) wire.localPort = event.localPort;
  if (event.remoteAddress !== undefined) wire.remoteAddress = event.remoteAddress;
  if (event.remotePort !== undefined) wire.remotePort = event.remotePort;
  if (event.protocol !== undefined) wire.protocol = event.protocol.slice(0, 16);
  if (event.details !== undefined) {
    const size = JSON.stringify(event.details).length;
    wire.details = size <= MAX_DETAILS_CHARS ? event.details : { truncated: true, size };
  }
  const checked = WireEventSchema.safeParse(wire);
  if (checked.success) return wire;
  return {
    key: wire.key,
    type: wire.type,
    time: wire.time,
    host: wire.host,
    details: { unsendable: checked.error.issues.map((i) => i.message).join("; ").slice(0, 1000) },
  };
}

/** The statuses by which a cloud refuses the events themselves (bad, too large, unprocessable). */
const REFUSALS: readonly number[] = [400, 413, 422];

/**
 * Whether an upload failed because the cloud refused what was sent (400, 413
 * or 422), rather than because it is away or failing (5xx, timeouts): what
 * {@linkcode EventUploaderOptions.isRefusal} should say for a cloud client.
 *
 * @example
 * ```ts
 * import { CloudRequestError } from "./cloud_client.ts";
 * import { isCloudRefusal } from "./event_uploader.ts";
 * isCloudRefusal(new CloudRequestError("too large", 413, "too-large")); // true
 * ```
 */
export function isCloudRefusal(error: unknown): boolean {
  return error instanceof CloudRequestError && REFUSALS.includes(error.status);
}

/** Options of {@linkcode EventUploader}. */
export interface EventUploaderOptions {
  events: EventsDb;
  /** Events per upload (at most the protocol's limit). */
  batchSize?: number;
  /** Events kept waiting at most; the oldest beyond it are dropped from the queue. */
  maxQueued?: number;
  /** Told how many events were dropped from the queue. */
  onDrop?: (dropped: number) => void;
  /**
   * Whether an upload failed because the cloud refused the events themselves
   * (a 400, 413 or 422: say, an event type an older cloud does not know, or
   * text it cannot store; see {@linkcode isCloudRefusal}), rather than
   * because it is unreachable. Such a batch is resent one event at a time,
   * and an event refused alone is dropped from the queue (counted).
   */
  isRefusal?: (error: unknown) => boolean;
  /** Told about an event the cloud refused. */
  onRefused?: (event: WireEvent, error: unknown) => void;
}

/** Delivers queued events in order. */
export class EventUploader {
  /** Events uploaded since start. */
  sent = 0;
  /** Events dropped from the queue since start. */
  dropped = 0;
  readonly #options: EventUploaderOptions;
  #instance?: string;

  /** @param options the event store, batch size and queue bound */
  constructor(options: EventUploaderOptions) {
    this.#options = options;
  }

  /** Events waiting. */
  pending(): Promise<number> {
    return this.#options.events.countUnsent();
  }

  /**
   * Sends every queued event, oldest first, batch by batch, until none is
   * left; stops at the first failure (what was sent stays sent).
   *
   * @param send uploads one batch; resolves once the cloud has stored it
   * @returns the events sent now
   */
  async drain(send: (batch: WireEvent[]) => Promise<void>): Promise<number> {
    const o = this.#options;
    const dropped = await o.events.dropUnsent(o.maxQueued ?? DEFAULT_MAX_QUEUED);
    if (dropped > 0) {
      this.dropped += dropped;
      o.onDrop?.(dropped);
    }
    this.#instance ??= await o.events.instance();
    const size = Math.min(o.batchSize ?? DEFAULT_BATCH, MAX_EVENT_BATCH);
    let sent = 0;
    for (;;) {
      const batch = await o.events.unsent(size);
      if (batch.length === 0) return sent;
      const wire = batch.map((e) => toWireEvent(e, this.#instance!));
      try {
        await send(wire);
        await o.events.markSent(batch.map((e) => e.id));
        sent += batch.length;
        this.sent += batch.length;
      } catch (error) {
        if (!o.isRefusal?.(error)) throw error;
        sent += await this.#oneByOne(batch.map((e) => e.id), wire, send);
      }
      if (batch.length < size) return sent;
    }
  }

  async #oneByOne(
    ids: number[],
    wire: WireEvent[],
    send: (batch: WireEvent[]) => Promise<void>,
  ): Promise<number> {
    const o = this.#options;
    let sent = 0;
    for (let i = 0; i < ids.length; i++) {
      try {
        await send([wire[i]]);
        await o.events.markSent([ids[i]]);
        sent++;
        this.sent++;
      } catch (error) {
        if (!o.isRefusal?.(error)) throw error;
        await o.events.markSent([ids[i]], true);
        this.dropped++;
        o.onRefused?.(wire[i], error);
      }
    }
    return sent;
  }
}
