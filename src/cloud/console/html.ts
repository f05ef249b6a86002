/**
 * HTML built from tagged templates in which every interpolated value is
 * escaped unless it is already {@linkcode Html}: the console never writes a
 * string from the database, a request or a connector into a page unescaped.
 *
 * @module
 */

/** A fragment of HTML that is safe to insert as it is. */
export class Html {
  /** The markup. */
  readonly value: string;

  /** @param value markup that is known to be safe */
  constructor(value: string) {
    this.value = value;
  }

  /** The markup. */
  toString(): string {
    return this.value;
  }
}

/** What a template accepts: text (escaped), safe HTML, lists of either, or nothing. */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for an HTML element or a quoted attribute value.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./html.ts";
 * escapeHtml(`<a href="x">&</a>`); // "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** Renders one interpolated value: `false`, `null` and `undefined` render nothing. */
function render(value: HtmlValue): string {
  if (value instanceof Html) return value.value;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/**
 * A template whose interpolations are escaped.
 *
 * @example
 * ```ts
 * import { html } from "./html.ts";
 * html`<td>${"<script>"}</td>`.value; // "<td>&lt;script&gt;</td>"
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Markup written by the program itself (never data), inserted as it is. */
export function trusted(markup: string): Html {
  return new Html(markup);
}

/**
 * A URL path with query parameters, each value encoded; empty values are left out.
 *
 * @example
 * ```ts
 * import { href } from "./html.ts";
 * href("/console/events", { type: "Threat Detected", sha256: "" }); // "/console/events?type=Threat+Detected"
 * ```
 */
export function href(
  path: string,
  query: Record<string, string | number | undefined> = {},
): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== "") params.set(k, String(v));
  }
  const q = params.toString();
  return q ? `${path}?${q}` : path;
}
