/**
 * `amp events`: reads events.db (the daemon need not run). Oldest first, one
 * line per event for people, or JSON lines for scripts (paths escaped as
 * text, plus their raw bytes in base64 when they are not UTF-8).
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { Buffer } from "node:buffer";
import { formatTime } from "../daemon/status_report.ts";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import { EVENT_TYPES, type EventType, type StoredEvent } from "../store/event.ts";
import { EventsDb } from "../store/events_db.ts";
import { escapePath } from "../sys/byte_path.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";
import { UsageError } from "./usage_error.ts";

const UNITS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** Parses `--since`: `30m`, `2h`, `7d`, or a date/time such as `2026-11-26T10:00`. */
export function parseSince(value: string, now = Date.now()): number {
  const rel = /^(\d+)\s*([smhd])$/.exec(value.trim());
  if (rel) return now - Number(rel[1]) * UNITS[rel[2]];
  const t = Date.parse(value);
  if (Number.isNaN(t)) {
    throw new InvalidArgumentError('expected a duration such as "30m", "2h", "7d" or a date');
  }
  return t;
}

function eventType(value: string): EventType {
  const found = EVENT_TYPES.find((t) => t.toLowerCase() === value.toLowerCase());
  if (!found) {
    throw new InvalidArgumentError(`unknown event type; one of: ${EVENT_TYPES.join(", ")}`);
  }
  return found;
}

function limit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number ≥ 1");
  return n;
}

/** One event for people. */
export function eventLine(e: StoredEvent): string {
  const parts = [formatTime(e.time), e.type];
  if (e.path) parts.push(escapePath(e.path));
  if (e.detection) parts.push(e.detection);
  if (e.engine) parts.push(`[${e.engine}]`);
  if (e.action) parts.push(`action=${e.action}`);
  if (e.pid !== undefined) parts.push(`pid=${e.pid}`);
  if (e.executable) parts.push(`exe=${escapePath(e.executable)}`);
  if (e.uid !== undefined) parts.push(`uid=${e.uid}`);
  if (e.sha256) parts.push(`sha256=${e.sha256}`);
  if (e.details && Object.keys(e.details).length > 0) parts.push(JSON.stringify(e.details));
  return parts.join("  ");
}

/** One event as a JSON-safe object. */
export function eventJson(e: StoredEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(e)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Uint8Array) {
      out[key] = escapePath(value);
      const utf8 = new TextDecoder("utf-8", { fatal: false }).decode(value);
      if (new TextEncoder().encode(utf8).length !== value.length || utf8.includes("\uFFFD")) {
        out[`${key}Base64`] = Buffer.from(value).toString("base64");
      }
    } else {
      out[key] = value;
    }
  }
  out.timeIso = new Date(e.time).toISOString();
  return out;
}

/** Builds `amp events`. */
export function makeEventsCommand(io: CommandIo = defaultIo): Command {
  return new Command("events")
    .summary("list recorded events (detections, quarantines, scans, policy updates …)")
    .description(
      "Read the event database (/var/lib/amp/events.db). Works whether or not the\n" +
        "daemon runs. Oldest first; the newest --limit events are shown.",
    )
    .option(
      "--since <when>",
      "only events since a duration ago (30m, 2h, 7d) or a date",
      (v) => parseSince(v),
    )
    .option("--type <type>", 'only this event type, such as "Threat Quarantined"', eventType)
    .option("--limit <n>", "at most this many events", limit, 100)
    .option("--json", "one JSON object per line")
    .option("--root <dir>", "host root for amp's files", "/")
    .addHelpText(
      "after",
      `
Event types: ${EVENT_TYPES.join(", ")}.

Examples:
  amp events --since 1h
  amp events --type "Threat Quarantined" --json | jq -r .path`,
    )
    .action(async (opts: {
      since?: number;
      type?: EventType;
      limit: number;
      json?: boolean;
      root: string;
    }) => {
      const path = resolveUnderRoot(opts.root, "/var/lib/amp/events.db");
      try {
        await Deno.stat(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          if (!opts.json) io.stderr(`amp: no events yet (${path} does not exist)`);
          return io.exit(0);
        }
        throw new UsageError(`Cannot read ${path}: ${(error as Error).message}`);
      }
      const db = await EventsDb.open(path);
      try {
        const events = await db.list({ type: opts.type, sinceTime: opts.since, limit: opts.limit });
        events.reverse();
        for (const e of events) io.stdout(opts.json ? JSON.stringify(eventJson(e)) : eventLine(e));
        if (!opts.json && events.length === 0) io.stderr("amp: no matching events");
      } finally {
        await db.close();
      }
      io.exit(0);
    });
}
