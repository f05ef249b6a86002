/**
 * The policy schema: the single source of the {@linkcode Policy} type.
 *
 * Every section has defaults, so a policy file only needs `id` and `name`;
 * every object is strict, so a misspelt field is an error rather than a
 * silently ignored setting. Sizes take bytes or strings with binary units
 * (`k` = 2^10, `M`/`MB`/`MiB` = 2^20, `G` = 2^30), as ClamAV's config does.
 *
 * @module
 */
import { z } from "zod";

const KIB = 1024;
const MIB = 1024 * KIB;

const UNITS: Record<string, number> = { "": 1, k: KIB, m: MIB, g: 1024 * MIB };
const SIZE_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$/i;

/**
 * Parses a size: a positive whole number of bytes, or a string such as
 * `"5MB"`, `"5 MiB"`, `"50M"`, `"512k"` or `"4096"`. Units are binary and
 * case-insensitive: `k`/`KB`/`KiB` = 1024, `M`/`MB`/`MiB` = 2^20,
 * `G`/`GB`/`GiB` = 2^30. Returns `undefined` when the input is not a positive
 * size.
 *
 * @example
 * ```ts
 * import { parseSize } from "./schema.ts";
 * parseSize("5MB"); // 5242880
 * ```
 */
export function parseSize(input: number | string): number | undefined {
  let bytes: number;
  if (typeof input === "number") {
    bytes = input;
  } else {
    const m = SIZE_PATTERN.exec(input);
    if (!m) return undefined;
    bytes = Math.round(Number(m[1]) * UNITS[m[2].toLowerCase()]);
  }
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

const size = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes !== undefined) return bytes;
  ctx.addIssue({
    code: "custom",
    input: value,
    message: `Invalid size ${
      JSON.stringify(value)
    }: expected a positive number of bytes or a string such as "5MB" (M = 2^20 bytes)`,
  });
  return z.NEVER;
});

const absolutePath = z.string().startsWith("/", "Expected an absolute path (starting with /)");

/** One exclusion: a path prefix, a wildcard over the whole path, or a file extension. */
export const ExclusionSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("path"), path: absolutePath }),
  z.strictObject({
    type: z.literal("wildcard"),
    pattern: z.string().regex(
      /^[/*]/,
      "Expected a pattern for an absolute path (starting with / or *)",
    ),
  }),
  z.strictObject({
    type: z.literal("extension"),
    extension: z.string().regex(/^\.?[^/.][^/]*$/, 'Expected an extension such as ".log" or "log"'),
  }),
]);

/** Exclusions for a Linux server: pseudo file systems and amp's own quarantine. */
export const DEFAULT_EXCLUSIONS: readonly z.input<typeof ExclusionSchema>[] = [
  { type: "path", path: "/proc" },
  { type: "path", path: "/sys" },
  { type: "path", path: "/run/amp" },
  { type: "path", path: "/var/lib/amp/quarantine" },
];

/**
 * A process whose file activity amp leaves alone: its executable path, only
 * when run by `user` (a name or uid) if given, and its descendants too when
 * `children` is true. Applies to on-access and on-execute monitoring.
 */
export const ProcessExclusionSchema = z.strictObject({
  executable: absolutePath,
  user: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
  children: z.boolean().default(false),
});

/**
 * One named IP list for DFC: a file of addresses and CIDRs (one per line,
 * `#`/`;` comments, as Spamhaus DROP and FireHOL netsets) or a CSV column.
 */
export const IpListSourceSchema = z.strictObject({
  name: z.string().trim().min(1).regex(/^[\w.-]+$/, "Use letters, digits, dot, dash, underscore"),
  /**
   * The list's file, for a list kept on the host. A `url` list names none: `amp update`
   * keeps it in /var/lib/amp/dfc/NAME.list (a policy from the cloud must not choose
   * where root writes).
   */
  file: absolutePath.optional(),
  /** Where `amp update` downloads the list from (http or https). */
  url: z.url({ protocol: /^https?$/ }).optional(),
  format: z.enum(["lines", "csv"]).default("lines"),
  /** CSV only: the column (zero-based index or header name). */
  column: z.union([z.number().int().nonnegative(), z.string().min(1)]).optional(),
  /** CSV only: the delimiter (default ","). */
  delimiter: z.string().length(1).optional(),
}).refine((l) => l.format !== "csv" || l.column !== undefined, {
  message: "A csv list needs a column (index or header name)",
  path: ["column"],
}).refine((l) => l.file !== undefined || l.url !== undefined, {
  message: "A list needs a file or a url",
  path: ["file"],
}).superRefine((l, ctx) => {
  if (l.file === undefined || l.url === undefined) return;
  ctx.addIssue({
    code: "custom",
    input: l.file,
    path: ["file"],
    message: `A list with a url is kept in ${IP_LIST_DIR}/${l.name}.list; ` +
      "give a file or a url, not both",
  });
}).transform((l) => ({ ...l, file: l.file ?? `${IP_LIST_DIR}/${l.name}.list` }));

/** Where `amp update` keeps downloaded DFC lists (`NAME.list`). */
export const IP_LIST_DIR = "/var/lib/amp/dfc";

/** A connector policy, as found in `/etc/amp/policy.json` or fetched from the cloud. */
export const PolicySchema = z.strictObject({
  id: z.number().int().positive(),
  name: z.string().trim().min(1),
  serial: z.number().int().nonnegative().default(0),
  description: z.string().optional(),
  mode: z.strictObject({
    /** What a file conviction does: record only, or move the file to quarantine. */
    file: z.enum(["audit", "quarantine"]).default("audit"),
    /** On execute: allow while scanning and kill if malicious, or block until a verdict. */
    execute: z.enum(["passive", "active"]).default("passive"),
    /** DFC: record the flow, or also cut it. */
    network: z.enum(["audit", "block"]).default("audit"),
  }).prefault({}),
  scan: z.strictObject({
    maxFileSize: size.default(5 * MIB),
    maxArchiveSize: size.default(50 * MIB),
    maxRecursion: z.number().int().positive().default(16),
    maxFiles: z.number().int().positive().default(10_000),
    scanArchives: z.boolean().default(true),
  }).prefault({}),
  engines: z.strictObject({
    clamav: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
    hashList: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
    cloud: z.strictObject({ enabled: z.boolean().default(false) }).prefault({}),
  }).prefault({}),
  /** SHA-256 list files; absolute paths, read under `--root`. */
  lists: z.strictObject({
    blockFiles: z.array(absolutePath).prefault(["/etc/amp/lists/simple_custom_detections.txt"]),
    allowFiles: z.array(absolutePath).prefault(["/etc/amp/lists/allow_list.txt"]),
  }).prefault({}),
  exclusions: z.array(ExclusionSchema).prefault(() => DEFAULT_EXCLUSIONS.map((e) => ({ ...e }))),
  processExclusions: z.array(ProcessExclusionSchema).default([]),
  /** Device Flow Correlation: IP reputation lists (the action is `mode.network`). */
  dfc: z.strictObject({
    lists: z.array(IpListSourceSchema).default([]),
  }).prefault({}),
  /** Real-time protection (`amp daemon`). */
  monitor: z.strictObject({
    /** Scan files closed after writing and files moved into watched file systems. */
    onAccess: z.boolean().default(true),
    /** Scan executed files (passive: kill if malicious; active: hold the exec, see mode.execute). */
    onExecute: z.boolean().default(true),
    /** Active mode: an exec whose verdict takes longer than this is answered by `timeoutAnswer`. */
    permissionTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Fail-open (allow, the default) or fail-closed (deny) when the timeout passes. */
    timeoutAnswer: z.enum(["allow", "deny"]).default("allow"),
  }).prefault({}),
});

/** A parsed policy, every default filled in (sizes in bytes). */
export type Policy = z.infer<typeof PolicySchema>;

/** What a policy file may contain (defaults not yet applied, sizes as strings allowed). */
export type PolicyInput = z.input<typeof PolicySchema>;

/** One parsed exclusion. */
export type Exclusion = z.infer<typeof ExclusionSchema>;

/** One parsed process exclusion. */
export type ProcessExclusion = z.infer<typeof ProcessExclusionSchema>;

/** One parsed DFC list source. */
export type IpListSource = z.infer<typeof IpListSourceSchema>;
