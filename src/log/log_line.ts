/**
 * The text of a log record, shared by the file, stderr and syslog sinks.
 *
 * A line in a log file reads like a traditional syslog file line:
 *
 * ```
 * Nov 26 13:01:02 web1 amp[4242]: notice: Connector started policy="Audit Policy for Linux"
 * ```
 *
 * local time (`Mmm dd hh:mm:ss`, day padded with a space as syslog does, or
 * ISO 8601 with milliseconds and offset when asked), host, ident and pid, the
 * level, the message, then the fields as `key=value`. A record is always one
 * line: control characters in the message are escaped (`\n`, `\t`, `\xNN`),
 * and field values that are not plain words are quoted as JSON strings.
 *
 * @module
 */

import { escapePath } from "../sys/byte_path.ts";
import type { LogFields, LogRecord } from "./logger.ts";

/** How the time of a line is written. */
export type LogTimeFormat = "syslog" | "iso";

/** What a full line says besides the record. */
export interface LogLineOptions {
  /** Host name. */
  host: string;
  /** Program name, such as `amp`. */
  ident: string;
  /** Process id. */
  pid: number;
  /** `syslog` (`Nov 26 13:01:02`, the default) or `iso` (`2025-11-26T13:01:02.345+01:00`). */
  timeFormat?: LogTimeFormat;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * A full log file line, without the newline.
 *
 * @example
 * ```ts
 * import { formatLogLine } from "./log_line.ts";
 * const time = new Date(2025, 10, 26, 13, 1, 2);
 * formatLogLine({ time, level: "notice", message: "Connector started" }, {
 *   host: "web1",
 *   ident: "amp",
 *   pid: 4242,
 * }); // "Nov 26 13:01:02 web1 amp[4242]: notice: Connector started"
 * ```
 */
export function formatLogLine(record: LogRecord, options: LogLineOptions): string {
  const time = formatLogTime(record.time, options.timeFormat ?? "syslog");
  return `${time} ${options.host} ${options.ident}[${options.pid}]: ${formatLogText(record)}`;
}

/**
 * The part of a line after `ident[pid]: `: level, message and fields. This is
 * what goes to syslog, which adds its own time, host and ident.
 *
 * @example
 * ```ts
 * import { formatLogText } from "./log_line.ts";
 * formatLogText({ time: new Date(), level: "error", message: "Scan failed", fields: { path: "/a b" } });
 * // 'error: Scan failed path="/a b"'
 * ```
 */
export function formatLogText(record: LogRecord): string {
  const fields = record.fields ? formatFields(record.fields) : "";
  return `${record.level}: ${escapeText(record.message)}${fields ? ` ${fields}` : ""}`;
}

/** A time as a line shows it, in local time. */
export function formatLogTime(time: Date, format: LogTimeFormat): string {
  const hms = `${pad2(time.getHours())}:${pad2(time.getMinutes())}:${pad2(time.getSeconds())}`;
  if (format === "syslog") {
    return `${MONTHS[time.getMonth()]} ${String(time.getDate()).padStart(2, " ")} ${hms}`;
  }
  const offset = -time.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  return `${time.getFullYear()}-${pad2(time.getMonth() + 1)}-${pad2(time.getDate())}T${hms}.` +
    `${String(time.getMilliseconds()).padStart(3, "0")}${sign}${pad2(Math.floor(abs / 60))}:${
      pad2(abs % 60)
    }`;
}

/** Fields as `key=value key2="two words"`. */
export function formatFields(fields: LogFields): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${escapeText(key).replaceAll(" ", "_")}=${formatValue(value)}`);
  }
  return parts.join(" ");
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return quoteIfNeeded(value);
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (value === null) return "null";
  if (value instanceof Uint8Array) return quoteIfNeeded(escapePath(value));
  if (value instanceof Error) return quoteIfNeeded(value.message);
  if (value instanceof Date) return value.toISOString();
  let json: string | undefined;
  try {
    json = JSON.stringify(value, (_key, v) => typeof v === "bigint" ? String(v) : v);
  } catch {
    json = undefined;
  }
  return quoteIfNeeded(json ?? String(value));
}

function quoteIfNeeded(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters must be escaped
  return text === "" || /[\s"=\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text) : text;
}

/** Escapes control characters so that a message stays on one line. */
function escapeText(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
  return text.replace(/[\x00-\x1f\x7f]/g, (c) => {
    switch (c) {
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      case "\t":
        return "\\t";
    }
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** This machine's host name, or `localhost` when it cannot be read. */
export function localHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}
