/**
 * The console's page frame (skip link, banner with navigation, one `<main>`
 * with one `<h1>`), its style sheet, the security headers of every answer,
 * and the formats shared by the pages (times in UTC, sizes, statuses).
 *
 * @module
 */

import { href, Html, html, type HtmlValue } from "./html.ts";
import type { Flash, Session } from "./session.ts";

/** Where the console lives. */
export const CONSOLE_PREFIX = "/console";

/** The style sheet's path (served by the console; nothing comes from elsewhere). */
export const STYLE_PATH = `${CONSOLE_PREFIX}/console.css`;

/** Headers of every console answer: nothing is loaded from anywhere but the console. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

const NAV: ReadonlyArray<[string, string]> = [
  ["dashboard", "Dashboard"],
  ["computers", "Computers"],
  ["events", "Events"],
  ["policies", "Policies"],
  ["detections", "Custom detections"],
  ["allow-list", "Allow list"],
  ["ip-lists", "IP lists"],
];

/** Options of {@linkcode page}. */
export interface PageOptions {
  /** The `<h1>` and the start of `<title>`. */
  title: string;
  /** The navigation entry to mark current. */
  section?: string;
  /** The logged-in session (navigation and logout), absent on the login page. */
  session?: Session;
  /** The page's content, after the `<h1>`. */
  body: HtmlValue;
  /** A message shown once above the content. */
  flash?: Flash;
  status?: number;
  headers?: Record<string, string>;
}

/** A whole page as a response. */
export function page(options: PageOptions): Response {
  const nav = options.session
    ? html`
      <nav aria-label="Main">
        <ul>${NAV.map(([key, label]) => {
          const path = key === "dashboard" ? `${CONSOLE_PREFIX}/` : `${CONSOLE_PREFIX}/${key}`;
          return html`<li><a href="${path}"${
            key === options.section
              ? html`
                aria-current="page"
              `
              : ""
          }>${label}</a></li>`;
        })}</ul>
      </nav>
      <form method="post" action="${CONSOLE_PREFIX}/logout" class="logout">
            ${csrfField(options.session)}<button type="submit">Log out</button>
          </form>
    `
    : "";
  const flash = options.flash
    ? html`<p class="flash ${options.flash.kind}" role="${
      options.flash.kind === "error" ? "alert" : "status"
    }">${options.flash.text}</p>`
    : "";
  const doc = html`
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${options.title} · amp console</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="${STYLE_PATH}">
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="banner"><a class="brand" href="${CONSOLE_PREFIX}/">amp console</a>${nav}</header>
        <main id="main" tabindex="-1">
        <h1>${options.title}</h1>
        ${flash}
        ${options.body}
            </main>
      </body>
    </html>
  `;
  return new Response(doc.value, {
    status: options.status ?? 200,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "text/html; charset=utf-8",
      ...options.headers,
    },
  });
}

/** The hidden CSRF field of a form. */
export function csrfField(session: Session): Html {
  return html`<input type="hidden" name="csrf" value="${session.csrf}">`;
}

/** A redirect after a post (303: the browser follows with GET). */
export function redirect(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, {
    status: 303,
    headers: { ...SECURITY_HEADERS, location, ...headers },
  });
}

/**
 * A time as `YYYY-MM-DD HH:MM:SS UTC`.
 *
 * @example
 * ```ts
 * import { formatTime } from "./layout.ts";
 * formatTime(0); // "1970-01-01 00:00:00 UTC"
 * ```
 */
export function formatTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "";
  const iso = isoTime(ms);
  return iso === undefined ? String(ms) : iso.replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/**
 * A time in ISO 8601, or undefined when a `Date` cannot hold it (a
 * connector's clock, or a bug, may send any number: it must not break a page).
 *
 * @example
 * ```ts
 * import { isoTime } from "./layout.ts";
 * isoTime(0); // "1970-01-01T00:00:00.000Z"
 * isoTime(9e15); // undefined
 * ```
 */
export function isoTime(ms: number): string | undefined {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** A `<time>` element with the machine-readable instant (the raw number if it is no date). */
export function timeCell(ms: number | undefined): Html {
  if (ms === undefined) return html``;
  const iso = isoTime(ms);
  if (iso === undefined) return html`${String(ms)}`;
  return html`<time datetime="${iso}">${formatTime(ms)}</time>`;
}

/**
 * A byte count with a binary unit.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./layout.ts";
 * formatBytes(5 * 1024 * 1024); // "5 MiB"
 * ```
 */
export function formatBytes(n: number | undefined): string {
  if (n === undefined) return "";
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

/** A SHA-256 shortened for tables, the whole in its title. */
export function shortHash(sha256: string | undefined): Html {
  if (!sha256) return html``;
  return html`<code title="${sha256}">${sha256.slice(0, 12)}…</code>`;
}

/** A link to the events page with filters. */
export function eventsHref(query: Record<string, string | number | undefined>): string {
  return href(`${CONSOLE_PREFIX}/events`, query);
}

/** The console's style sheet. */
export const STYLE = `
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa;
  --accent: #0a4fa3; --ok: #1a7f37; --bad: #b3261e; --warn: #8a5a00; font-size: 100%; }
* { box-sizing: border-box; }
body { margin: 0; font: 0.95rem/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible,
textarea:focus-visible, main:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
.skip:focus { left: .5rem; z-index: 10; }
.banner { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .6rem 1.2rem;
  background: #102a43; color: #fff; }
.banner a { color: #fff; }
.brand { font-weight: 700; text-decoration: none; margin-right: 1rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .2rem 1rem; list-style: none; margin: 0; padding: 0; }
nav a { text-decoration: none; padding: .2rem .1rem; }
nav a[aria-current="page"] { border-bottom: 3px solid #f0a500; font-weight: 600; }
.logout { margin-left: auto; }
main { max-width: 78rem; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
h1 { font-size: 1.5rem; margin: .6rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .6rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88em;
  overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.flash { padding: .6rem .8rem; border-radius: 4px; border: 1px solid; }
.flash.ok { border-color: var(--ok); background: #e8f5ec; }
.flash.error { border-color: var(--bad); background: #fdecea; }
.status-connected { color: var(--ok); font-weight: 600; }
.status-disconnected { color: var(--bad); font-weight: 600; }
.status-registered { color: var(--warn); font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(16rem, 1fr)); gap: 1rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .4rem 1rem 1rem; }
.card h2 { margin-top: .6rem; }
.big { font-size: 2rem; font-weight: 700; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
form.inline { display: inline; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 1rem; padding: .6rem 1rem; }
legend { font-weight: 600; padding: 0 .3rem; }
.field { margin: .5rem 0; }
.field label, .field .label { display: block; font-weight: 600; margin-bottom: .15rem; }
.field .hint { color: var(--muted); font-size: .85rem; display: block; }
.field label.inline-label { display: inline; font-weight: 400; }
input[type=text], input[type=password], input[type=number], input[type=datetime-local], select,
textarea { font: inherit; padding: .3rem .4rem; border: 1px solid #8c959f; border-radius: 4px;
  max-width: 100%; }
textarea { width: 100%; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
input[aria-invalid=true], textarea[aria-invalid=true], select[aria-invalid=true] {
  border: 2px solid var(--bad); }
.error-text { color: var(--bad); font-weight: 600; margin: .15rem 0; }
.errors { border: 2px solid var(--bad); border-radius: 6px; padding: .4rem 1rem; background: #fdecea; }
button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid #1b4f8a;
  background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
.banner button { background: transparent; border-color: #fff; }
.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: flex-end; }
.filters .field { margin: 0; }
.row { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: flex-end; }
.chart { max-width: 100%; height: auto; }
.chart text { font: 11px system-ui, sans-serif; fill: var(--fg); }
.legend { display: flex; gap: 1rem; list-style: none; padding: 0; margin: .2rem 0; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
  vertical-align: middle; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
pre { background: var(--soft); padding: .6rem; overflow: auto; }
`;
