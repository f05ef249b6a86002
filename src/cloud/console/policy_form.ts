/**
 * The policy editor's form, as pure functions: a policy to form values, and
 * posted values to a policy document checked by the connector's own zod
 * schema ({@linkcode PolicySchema}), whose messages are placed beside the
 * field they concern. Every field of the schema has a form field:
 *
 * | schema | form field |
 * |---|---|
 * | `name`, `description` | text, textarea |
 * | `mode.file` / `.execute` / `.network` | selects |
 * | `scan.maxFileSize`, `.maxArchiveSize` | text ("5MB") |
 * | `scan.maxRecursion`, `.maxFiles`, `monitor.permissionTimeoutMs` | numbers |
 * | booleans (`scan.scanArchives`, `engines.*.enabled`, `monitor.onAccess`/`onExecute`) | checkboxes |
 * | `lists.blockFiles`, `lists.allowFiles` | one path per line |
 * | `exclusions` | three textareas: paths, wildcards, extensions (one per line) |
 * | `processExclusions` | one per line: `EXECUTABLE [user=NAME|UID] [children]` |
 * | `dfc.lists` | a table of rows: name, url, file, format, column, delimiter |
 * | `monitor.timeoutAnswer` | select |
 *
 * @module
 */

import { z } from "zod";
import { type Policy, PolicySchema } from "../../policy/schema.ts";

/** Messages by form field name; `_form` holds those that concern no one field. */
export type FieldErrors = Map<string, string[]>;

/** Blank DFC rows offered below the policy's own. */
export const SPARE_DFC_ROWS = 2;

/** The checkboxes of the form, by field name. */
export const CHECKBOXES = [
  "scan.scanArchives",
  "engines.clamav",
  "engines.hashList",
  "engines.cloud",
  "monitor.onAccess",
  "monitor.onExecute",
] as const;

/** The DFC list columns of each row (`dfc.N.<column>`). */
export const DFC_COLUMNS = ["name", "url", "file", "format", "column", "delimiter"] as const;

const MIB = 1024 * 1024;

/**
 * A byte count as the form shows it: `5MB`, `512k` or bytes.
 *
 * @example
 * ```ts
 * import { formatSize } from "./policy_form.ts";
 * formatSize(5 * 1024 * 1024); // "5MB"
 * ```
 */
export function formatSize(bytes: number): string {
  if (bytes % MIB === 0) return `${bytes / MIB}MB`;
  if (bytes % 1024 === 0) return `${bytes / 1024}k`;
  return String(bytes);
}

/** The form values that show `policy`. */
export function policyToForm(policy: Policy): URLSearchParams {
  const f = new URLSearchParams();
  f.set("name", policy.name);
  f.set("description", policy.description ?? "");
  f.set("mode.file", policy.mode.file);
  f.set("mode.execute", policy.mode.execute);
  f.set("mode.network", policy.mode.network);
  f.set("scan.maxFileSize", formatSize(policy.scan.maxFileSize));
  f.set("scan.maxArchiveSize", formatSize(policy.scan.maxArchiveSize));
  f.set("scan.maxRecursion", String(policy.scan.maxRecursion));
  f.set("scan.maxFiles", String(policy.scan.maxFiles));
  const on: Record<(typeof CHECKBOXES)[number], boolean> = {
    "scan.scanArchives": policy.scan.scanArchives,
    "engines.clamav": policy.engines.clamav.enabled,
    "engines.hashList": policy.engines.hashList.enabled,
    "engines.cloud": policy.engines.cloud.enabled,
    "monitor.onAccess": policy.monitor.onAccess,
    "monitor.onExecute": policy.monitor.onExecute,
  };
  for (const name of CHECKBOXES) if (on[name]) f.set(name, "on");
  f.set("lists.blockFiles", policy.lists.blockFiles.join("\n"));
  f.set("lists.allowFiles", policy.lists.allowFiles.join("\n"));
  const ex = policy.exclusions;
  f.set("exclusions.path", ex.flatMap((e) => e.type === "path" ? [e.path] : []).join("\n"));
  f.set(
    "exclusions.wildcard",
    ex.flatMap((e) => e.type === "wildcard" ? [e.pattern] : []).join("\n"),
  );
  f.set(
    "exclusions.extension",
    ex.flatMap((e) => e.type === "extension" ? [e.extension] : []).join("\n"),
  );
  f.set(
    "processExclusions",
    policy.processExclusions.map((p) =>
      [p.executable, p.user !== undefined ? `user=${p.user}` : "", p.children ? "children" : ""]
        .filter(Boolean).join(" ")
    ).join("\n"),
  );
  policy.dfc.lists.forEach((l, i) => {
    f.set(`dfc.${i}.name`, l.name);
    f.set(`dfc.${i}.url`, l.url ?? "");
    // A url list's file is always the schema's (a url list names none): show it empty.
    f.set(`dfc.${i}.file`, l.url && l.file === `/var/lib/amp/dfc/${l.name}.list` ? "" : l.file);
    f.set(`dfc.${i}.format`, l.format);
    f.set(`dfc.${i}.column`, l.column === undefined ? "" : String(l.column));
    f.set(`dfc.${i}.delimiter`, l.delimiter ?? "");
  });
  f.set("dfc.rows", String(policy.dfc.lists.length + SPARE_DFC_ROWS));
  f.set("monitor.permissionTimeoutMs", String(policy.monitor.permissionTimeoutMs));
  f.set("monitor.timeoutAnswer", policy.monitor.timeoutAnswer);
  return f;
}

/** The result of {@linkcode readPolicyForm}. */
export type PolicyFormResult =
  | { ok: true; policy: Policy; input: Record<string, unknown> }
  | { ok: false; errors: FieldErrors };

/** Where an array element of the input came from in the form. */
interface Origin {
  field: string;
  line?: number;
}

function text(f: URLSearchParams, name: string): string {
  return (f.get(name) ?? "").trim();
}

function lineList(f: URLSearchParams, name: string): Array<{ text: string; line: number }> {
  return (f.get(name) ?? "").split(/\r?\n/).map((t, i) => ({ text: t.trim(), line: i + 1 }))
    .filter((l) => l.text !== "");
}

/** A whole number as a number; anything else as typed, for the schema to judge. */
function numberOrText(value: string): number | string | undefined {
  if (value === "") return undefined;
  return /^-?\d+$/.test(value) ? Number(value) : value;
}

/**
 * Reads the posted form into a policy document and checks it with
 * {@linkcode PolicySchema}; `id` and `serial` are the cloud's.
 */
export function readPolicyForm(
  f: URLSearchParams,
  ids: { id: number; serial: number },
): PolicyFormResult {
  const errors: FieldErrors = new Map();
  const add = (field: string, message: string) =>
    errors.set(field, [...(errors.get(field) ?? []), message]);

  const exclusions: unknown[] = [];
  const exclusionOrigin: Origin[] = [];
  for (const l of lineList(f, "exclusions.path")) {
    exclusions.push({ type: "path", path: l.text });
    exclusionOrigin.push({ field: "exclusions.path", line: l.line });
  }
  for (const l of lineList(f, "exclusions.wildcard")) {
    exclusions.push({ type: "wildcard", pattern: l.text });
    exclusionOrigin.push({ field: "exclusions.wildcard", line: l.line });
  }
  for (const l of lineList(f, "exclusions.extension")) {
    exclusions.push({ type: "extension", extension: l.text });
    exclusionOrigin.push({ field: "exclusions.extension", line: l.line });
  }

  const processExclusions: unknown[] = [];
  const processLines: number[] = [];
  for (const l of lineList(f, "processExclusions")) {
    const words = l.text.split(/\s+/);
    const entry: Record<string, unknown> = { children: false };
    while (words.length > 1) {
      const last = words[words.length - 1];
      if (last === "children") entry.children = true;
      else if (last.startsWith("user=")) {
        const user = last.slice("user=".length);
        entry.user = /^\d+$/.test(user) ? Number(user) : user;
      } else break;
      words.pop();
    }
    entry.executable = words.join(" ");
    processExclusions.push(entry);
    processLines.push(l.line);
  }

  const dfcLists: unknown[] = [];
  const dfcRows: number[] = [];
  const rows = Math.min(Number(text(f, "dfc.rows")) || 0, 200);
  for (let i = 0; i < rows; i++) {
    const v = Object.fromEntries(DFC_COLUMNS.map((c) => [c, text(f, `dfc.${i}.${c}`)]));
    if (!v.name && !v.url && !v.file && !v.column && !v.delimiter) continue;
    const list: Record<string, unknown> = { name: v.name, format: v.format || "lines" };
    if (v.url) list.url = v.url;
    if (v.file) list.file = v.file;
    if (v.column) list.column = /^\d+$/.test(v.column) ? Number(v.column) : v.column;
    if (v.delimiter) list.delimiter = v.delimiter;
    dfcLists.push(list);
    dfcRows.push(i);
  }

  const input: Record<string, unknown> = {
    id: ids.id,
    name: text(f, "name"),
    serial: ids.serial,
    mode: {
      file: text(f, "mode.file"),
      execute: text(f, "mode.execute"),
      network: text(f, "mode.network"),
    },
    scan: {
      maxFileSize: numberOrText(text(f, "scan.maxFileSize")),
      maxArchiveSize: numberOrText(text(f, "scan.maxArchiveSize")),
      maxRecursion: numberOrText(text(f, "scan.maxRecursion")),
      maxFiles: numberOrText(text(f, "scan.maxFiles")),
      scanArchives: f.has("scan.scanArchives"),
    },
    engines: {
      clamav: { enabled: f.has("engines.clamav") },
      hashList: { enabled: f.has("engines.hashList") },
      cloud: { enabled: f.has("engines.cloud") },
    },
    lists: {
      blockFiles: lineList(f, "lists.blockFiles").map((l) => l.text),
      allowFiles: lineList(f, "lists.allowFiles").map((l) => l.text),
    },
    exclusions,
    processExclusions,
    dfc: { lists: dfcLists },
    monitor: {
      onAccess: f.has("monitor.onAccess"),
      onExecute: f.has("monitor.onExecute"),
      permissionTimeoutMs: numberOrText(text(f, "monitor.permissionTimeoutMs")),
      timeoutAnswer: text(f, "monitor.timeoutAnswer"),
    },
  };
  const description = text(f, "description");
  if (description) input.description = description;
  dropUndefined(input);

  const parsed = PolicySchema.safeParse(input);
  if (parsed.success) return { ok: true, policy: parsed.data, input };
  for (const issue of parsed.error.issues) {
    const [field, line] = fieldOf(issue, { exclusionOrigin, processLines, dfcRows });
    add(field, line === undefined ? issue.message : `Line ${line}: ${issue.message}`);
  }
  return { ok: false, errors };
}

function dropUndefined(value: unknown): void {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return;
  const record = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(record)) {
    if (v === undefined) delete record[k];
    else dropUndefined(v);
  }
}

/** The form field (and line) a schema issue concerns. */
function fieldOf(
  issue: z.core.$ZodIssue,
  at: { exclusionOrigin: Origin[]; processLines: number[]; dfcRows: number[] },
): [string, number | undefined] {
  const p = issue.path.map((s) => typeof s === "symbol" ? String(s) : s);
  const [top, second, third, fourth] = p;
  switch (top) {
    case "name":
    case "description":
      return [top, undefined];
    case "mode":
    case "scan":
    case "monitor":
      return second === undefined ? ["_form", undefined] : [`${top}.${second}`, undefined];
    case "engines":
      return second === undefined ? ["_form", undefined] : [`engines.${second}`, undefined];
    case "lists":
      return [
        `lists.${second}`,
        typeof third === "number" ? third + 1 : undefined,
      ];
    case "exclusions": {
      const o = typeof second === "number" ? at.exclusionOrigin[second] : undefined;
      return o ? [o.field, o.line] : ["exclusions.path", undefined];
    }
    case "processExclusions":
      return [
        "processExclusions",
        typeof second === "number" ? at.processLines[second] : undefined,
      ];
    case "dfc": {
      const row = typeof third === "number" ? at.dfcRows[third] : undefined;
      if (row === undefined) return ["_form", undefined];
      const column = typeof fourth === "string" &&
          (DFC_COLUMNS as readonly string[]).includes(fourth)
        ? fourth
        : "name";
      return [`dfc.${row}.${column}`, undefined];
    }
    default:
      return ["_form", undefined];
  }
}
