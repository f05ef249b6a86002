/**
 * Events: the list with filters (type, computer, time, file hash), one
 * event's detail (file, process, parent, network flow), and exports of the
 * filtered events as CSV and JSON (streamed, newest first).
 *
 * @module
 */

import { EVENT_TYPES } from "../../store/event.ts";
import type { CloudEvent, EventFilter } from "../server/cloud_store.ts";
import { csvRow } from "./csv.ts";
import { href, type Html, html } from "./html.ts";
import {
  CONSOLE_PREFIX,
  eventsHref,
  formatBytes,
  isoTime,
  page,
  SECURITY_HEADERS,
  shortHash,
  timeCell,
} from "./layout.ts";
import { type ConsoleContext, idParam, takeFlash } from "./_context.ts";

/** Events on one page of the list. */
export const PAGE_SIZE = 50;

/** Most events in one export. */
export const MAX_EXPORT = 100_000;

/** The filters as typed in the form (to show them again). */
export interface EventQuery {
  type: string;
  computer: string;
  from: string;
  to: string;
  sha256: string;
}

/**
 * Reads the events page's filters. Times are `datetime-local` values read as
 * UTC (the console shows every time in UTC).
 *
 * @returns the store filter, the values as typed, and what was wrong
 */
export function parseEventQuery(
  params: URLSearchParams,
): { filter: EventFilter; query: EventQuery; errors: string[] } {
  const get = (k: string) => (params.get(k) ?? "").trim();
  const query: EventQuery = {
    type: get("type"),
    computer: get("computer"),
    from: get("from"),
    to: get("to"),
    sha256: get("sha256").toLowerCase(),
  };
  const filter: EventFilter = {};
  const errors: string[] = [];
  if (query.type) {
    if ((EVENT_TYPES as readonly string[]).includes(query.type)) filter.type = query.type;
    else errors.push(`Unknown event type: ${query.type}`);
  }
  if (query.computer) {
    const id = idParam(query.computer);
    if (id === undefined) errors.push("Invalid computer");
    else filter.computerId = id;
  }
  const time = (value: string, what: string): number | undefined => {
    if (!value) return undefined;
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
    if (Number.isNaN(ms)) errors.push(`Invalid ${what} time: ${value}`);
    return Number.isNaN(ms) ? undefined : ms;
  };
  const since = time(query.from, "from");
  const until = time(query.to, "to");
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;
  if (query.sha256) {
    if (/^[0-9a-f]{64}$/.test(query.sha256)) filter.sha256 = query.sha256;
    else errors.push("A file hash is 64 hexadecimal digits (SHA-256)");
  }
  const before = idParam(get("before"));
  if (before !== undefined) filter.beforeId = before;
  return { filter, query, errors };
}

/** The header row of event tables. */
export const EVENTS_TABLE_HEAD: Html = html`
  <thead>
    <tr>
      <th scope="col">Time</th>
      <th scope="col">Type</th>
      <th scope="col">Computer</th>
      <th scope="col">Detection</th>
      <th scope="col">File or flow</th>
      <th scope="col">SHA-256</th>
    </tr>
  </thead>
`;

/** Table rows of events (each linking to its detail). */
export function eventRows(events: readonly CloudEvent[], hosts: Map<number, string>): Html[] {
  return events.map((e) =>
    html`
      <tr>
        <td><a href="${CONSOLE_PREFIX}/events/${e.id}" aria-label="Event ${e.id}: ${e
          .type}">${timeCell(e.time)}</a></td>
        <td>${e.type}</td>
        <td><a href="${CONSOLE_PREFIX}/computers/${e.computerId}">${hosts.get(e.computerId) ??
          `#${e.computerId}`}</a></td>
        <td>${e.detection ?? ""}</td>
        <td>${e.pathText
          ? html`<code>${e.pathText}</code>`
          : e.remoteAddress
          ? html`<code>${flow(e)}</code>`
          : ""}</td>
        <td>${e.sha256
          ? html`<a href="${eventsHref({ sha256: e.sha256 })}">${shortHash(e.sha256)}</a>`
          : ""}</td>
      </tr>
    `
  );
}

function flow(e: CloudEvent): string {
  const local = e.localAddress ? `${e.localAddress}:${e.localPort ?? ""}` : "";
  return `${e.protocol ?? ""} ${local} → ${e.remoteAddress}:${e.remotePort ?? ""}`.trim();
}

async function hostnames(ctx: ConsoleContext): Promise<Map<number, string>> {
  return new Map((await ctx.store.listComputers()).map((c) => [c.id, c.hostname]));
}

/** GET /console/events */
export async function eventsPage(ctx: ConsoleContext): Promise<Response> {
  const { filter, query, errors } = parseEventQuery(ctx.url.searchParams);
  const computers = await ctx.store.listComputers();
  const hosts = new Map(computers.map((c) => [c.id, c.hostname]));
  const events = errors.length > 0
    ? []
    : await ctx.store.listEvents({ ...filter, limit: PAGE_SIZE + 1 });
  const more = events.length > PAGE_SIZE;
  const shown = events.slice(0, PAGE_SIZE);
  const filters = { ...query };
  const form = html`
    <form method="get" action="${CONSOLE_PREFIX}/events" class="filters" role="search"
      aria-label="Filter events">
      <div class="field"><label for="f-type">Type</label><select id="f-type" name="type">
    <option value="">Any type</option>${EVENT_TYPES.map((t) =>
      html`<option${
        t === query.type
          ? html`
            selected
          `
          : ""
      }>${t}</option>`
    )}</select></div>
      <div
        class="field"><label for="f-computer">Computer</label><select id="f-computer" name="computer">
    <option value="">Any computer</option>${computers.map((c) =>
      html`
        <option value="${c.id}" ${String(c.id) === query.computer
          ? html`
            selected
          `
          : ""}>${c.hostname}</option>
      `
    )}</select></div>
      <div
        class="field"><label for="f-from">From (UTC)</label><input type="datetime-local" id="f-from" name="from" value="${query
          .from}"></div>
      <div
        class="field"><label for="f-to">Before (UTC)</label><input type="datetime-local" id="f-to" name="to" value="${query
          .to}"></div>
      <div
        class="field"><label for="f-sha">File SHA-256</label><input type="text" id="f-sha" name="sha256" size="40" value="${query
          .sha256}" spellcheck="false" autocomplete="off"></div>
      <button type="submit">Filter</button>
      <a href="${CONSOLE_PREFIX}/events">Clear</a>
    </form>
  `;
  const exports = html`<p>Export these events (up to ${MAX_EXPORT.toLocaleString("en")}):
<a href="${href(`${CONSOLE_PREFIX}/events.csv`, { ...filters })}">CSV</a> ·
<a href="${href(`${CONSOLE_PREFIX}/events.json`, { ...filters })}">JSON</a></p>`;
  const body = html`${form}
${
    errors.length > 0
      ? html`
        <div class="errors" role="alert">
          <ul>${errors.map((e) => html`<li>${e}</li>`)}</ul>
        </div>
      `
      : ""
  }
${exports}
${
    shown.length === 0
      ? html`<p>No event matches.</p>`
      : html`<table><caption>Events, newest first</caption>${EVENTS_TABLE_HEAD}<tbody>${
        eventRows(shown, hosts)
      }</tbody></table>`
  }
${
    more
      ? html`<p><a href="${
        eventsHref({ ...filters, before: shown[shown.length - 1].id })
      }">Older events</a></p>`
      : ""
  }`;
  return page({
    title: "Events",
    section: "events",
    session: ctx.session,
    flash: takeFlash(ctx.session),
    body,
  });
}

function row(label: string, value: Html | string | number | undefined) {
  if (value === undefined || value === "") return html``;
  return html`
    <dt>${label}</dt>
    <dd>${value}</dd>
  `;
}

/** GET /console/events/:id */
export async function eventPage(ctx: ConsoleContext): Promise<Response | undefined> {
  const id = idParam(ctx.params.id);
  if (id === undefined) return undefined;
  const e = await ctx.store.getEvent(id);
  if (!e) return undefined;
  const host = (await hostnames(ctx)).get(e.computerId) ?? `#${e.computerId}`;
  const section = (title: string, rows: Html[]) =>
    rows.some((r) => r.value !== "")
      ? html`
        <h2>${title}</h2>
        <dl class="facts">${rows}</dl>
      `
      : html``;
  const file = section("File", [
    row("Path", e.pathText ? html`<code>${e.pathText}</code>` : undefined),
    row(
      "SHA-256",
      e.sha256
        ? html`<code>${e.sha256}</code> (<a href="${
          eventsHref({ sha256: e.sha256 })
        }">events with this file</a>)`
        : undefined,
    ),
    row("Size", e.size === undefined ? undefined : formatBytes(e.size)),
    row("Detection", e.detection),
    row("Engine", e.engine),
    row("Action", e.action),
  ]);
  const process = section("Process", [
    row("PID", e.pid),
    row("User (uid)", e.uid),
    row("Executable", e.executableText ? html`<code>${e.executableText}</code>` : undefined),
    row("Command line", e.commandLine ? html`<code>${e.commandLine}</code>` : undefined),
  ]);
  const parent = section("Parent process", [
    row("PID", e.ppid),
    row(
      "Executable",
      e.parentExecutableText ? html`<code>${e.parentExecutableText}</code>` : undefined,
    ),
  ]);
  const network = section("Network flow", [
    row("Protocol", e.protocol),
    row("Local", e.localAddress ? `${e.localAddress} port ${e.localPort ?? "?"}` : undefined),
    row("Remote", e.remoteAddress ? `${e.remoteAddress} port ${e.remotePort ?? "?"}` : undefined),
  ]);
  const details = e.details && Object.keys(e.details).length > 0
    ? html`
      <h2>Details</h2>
      <pre>${JSON.stringify(e.details, null, 2)}</pre>
    `
    : html``;
  return page({
    title: `${e.type}`,
    section: "events",
    session: ctx.session,
    body: html`<p><a href="${eventsHref({ computer: e.computerId })}">Events of ${host}</a> ·
<a href="${CONSOLE_PREFIX}/events">All events</a></p>
<h2>Event</h2><dl class="facts">
${row("Type", e.type)}
${row("Time", timeCell(e.time))}
${row("Received", timeCell(e.received))}
${row("Computer", html`<a href="${CONSOLE_PREFIX}/computers/${e.computerId}">${host}</a>`)}
${row("Host name (as sent)", e.host)}
${row("Policy", e.policy ? `${e.policy.name} (#${e.policy.id})` : undefined)}
${row("Event key", html`<code>${e.key}</code>`)}
</dl>
${file}${process}${parent}${network}${details}`,
  });
}

/** The columns of the CSV export. */
export const CSV_COLUMNS = [
  "id",
  "time",
  "received",
  "computer_id",
  "hostname",
  "type",
  "detection",
  "engine",
  "action",
  "path",
  "sha256",
  "size",
  "pid",
  "ppid",
  "uid",
  "executable",
  "command_line",
  "parent_executable",
  "local_address",
  "local_port",
  "remote_address",
  "remote_port",
  "protocol",
  "policy",
  "details",
] as const;

/** One event as a CSV record (columns of {@linkcode CSV_COLUMNS}). */
export function eventCsvRow(e: CloudEvent, hostname: string | undefined): string {
  return csvRow([
    e.id,
    isoTime(e.time) ?? e.time,
    isoTime(e.received) ?? e.received,
    e.computerId,
    hostname,
    e.type,
    e.detection,
    e.engine,
    e.action,
    e.pathText,
    e.sha256,
    e.size,
    e.pid,
    e.ppid,
    e.uid,
    e.executableText,
    e.commandLine,
    e.parentExecutableText,
    e.localAddress,
    e.localPort,
    e.remoteAddress,
    e.remotePort,
    e.protocol,
    e.policy ? `${e.policy.name} (#${e.policy.id})` : undefined,
    e.details ? JSON.stringify(e.details) : undefined,
  ]);
}

/** GET /console/events.csv and /console/events.json: the filtered events, streamed. */
export async function exportEvents(
  ctx: ConsoleContext,
  format: "csv" | "json",
): Promise<Response> {
  const { filter, errors } = parseEventQuery(ctx.url.searchParams);
  if (errors.length > 0) {
    return new Response(errors.join("\n") + "\n", {
      status: 400,
      headers: { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8" },
    });
  }
  const hosts = await hostnames(ctx);
  const store = ctx.store;
  const encoder = new TextEncoder();
  let beforeId = filter.beforeId;
  let sent = 0;
  let started = false;
  let done = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) return controller.close();
      let chunk = "";
      if (!started) {
        started = true;
        chunk += format === "csv" ? csvRow(CSV_COLUMNS) : "[";
      }
      const take = Math.min(1000, MAX_EXPORT - sent);
      const batch = take > 0 ? await store.listEvents({ ...filter, beforeId, limit: take }) : [];
      for (const e of batch) {
        chunk += format === "csv"
          ? eventCsvRow(e, hosts.get(e.computerId))
          : `${sent > 0 ? "," : ""}\n${
            JSON.stringify({ ...e, hostname: hosts.get(e.computerId) ?? null })
          }`;
        sent++;
      }
      if (batch.length < take || batch.length === 0) {
        done = true;
        if (format === "json") chunk += "\n]\n";
      } else {
        beforeId = batch[batch.length - 1].id;
      }
      controller.enqueue(encoder.encode(chunk));
    },
  });
  const stamp = new Date(ctx.now).toISOString().slice(0, 19).replace(/[:T]/g, "-");
  return new Response(stream, {
    headers: {
      ...SECURITY_HEADERS,
      "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/json",
      "content-disposition": `attachment; filename="amp-events-${stamp}.${format}"`,
    },
  });
}
