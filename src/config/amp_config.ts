/**
 * The local configuration, `/etc/amp/amp.json`: what belongs to this host
 * rather than to the policy (which a console may push): log level and files,
 * the ClamAV signature directory, the monitor backend and what it watches.
 * Every field has a default, so the file is optional; unknown fields are
 * errors, as in the policy.
 *
 * @module
 */
import { z } from "zod";
import { cloudUrl } from "../cloud/cloud_client.ts";
import { ConfigError, resolveUnderRoot } from "../policy/load_policy.ts";
import { errorMessage } from "../sys/sys_error.ts";

/** Where the local configuration lives, relative to `--root`. */
export const CONFIG_PATH = "/etc/amp/amp.json";

const absolutePath = z.string().startsWith("/", "Expected an absolute path (starting with /)");

/** The schema of `/etc/amp/amp.json`. */
export const AmpConfigSchema = z.strictObject({
  /** Least severe level written to the log and syslog. */
  logLevel: z.enum(["error", "warning", "notice", "info", "debug"]).default("notice"),
  log: z.strictObject({
    /** The daemon's log file. */
    file: absolutePath.default("/var/log/amp/ampdaemon.log"),
    /** Rotate when the file would grow past this many bytes. */
    maxBytes: z.number().int().min(4096).default(10 * 1024 * 1024),
    /** Rotated files kept (ampdaemon.log.1 … .N). */
    keep: z.number().int().min(1).max(50).default(5),
    /** Also send records to syslog (facility daemon, ident "amp"). */
    syslog: z.boolean().default(true),
  }).prefault({}),
  clamav: z.strictObject({
    /** ClamAV signature directory. */
    dbDir: absolutePath.default("/var/lib/clamav"),
  }).prefault({}),
  monitor: z.strictObject({
    /**
     * auto: the ampavflt kernel module when /dev/ampavflt exists (and can be
     * opened), else fanotify; fanotify or avflt: that one only; off: no
     * real-time protection.
     */
    backend: z.enum(["auto", "fanotify", "avflt", "off"]).default("auto"),
    /**
     * Directories watched. Empty (the default): every local file system
     * (pseudo and network file systems are left out). Otherwise the file
     * systems holding these paths are marked and only events under them count.
     */
    paths: z.array(absolutePath).default([]),
    /** Files waiting to be scanned before the queue counts as overflowing (then: rescan). */
    queueLimit: z.number().int().min(16).default(10_000),
  }).prefault({}),
  /** The IPC socket. */
  socket: absolutePath.default("/run/amp/ampd.sock"),
  /** The cloud (a later part of amp); `amp install --cloud URL` writes the URL. */
  cloud: z.strictObject({
    /** https (plain http only for a cloud on this machine: see `cloudUrl`). */
    url: z.url({ protocol: /^https?$/ }).superRefine((url, ctx) => {
      try {
        cloudUrl(url);
      } catch (error) {
        ctx.addIssue({ code: "custom", input: url, message: errorMessage(error) });
      }
    }).optional(),
    /** A CA bundle for the cloud's certificate. */
    ca: absolutePath.optional(),
    /** An HTTP proxy for the cloud. */
    proxy: z.url({ protocol: /^https?$/ }).optional(),
  }).prefault({}),
  /** `amp update` (the hourly updater). */
  update: z.strictObject({
    /** Where ClamAV signatures come from (a mirror serving .cvd/.cld/.cdiff files). */
    mirror: z.url({ protocol: /^https?$/ }).optional(),
    /** freshclam with a generated config, amp's own download, or auto (freshclam when installed). */
    method: z.enum(["auto", "freshclam", "download"]).default("auto"),
  }).prefault({}),
  /** Device Flow Correlation (the lists and the action are in the policy). */
  dfc: z.strictObject({
    /** Watch flows in this network namespace (an `ip netns` name or a path); default the daemon's. */
    netns: z.string().min(1).optional(),
    /**
     * Make the kernel track flows (conntrack) with a verdict-free nftables
     * rule (`table inet amp_flow`) while the daemon runs: without it a host
     * whose firewall does not use conntrack reports no flows.
     */
    trackFlows: z.boolean().default(true),
    /**
     * Name the process of a connection that closed before its flow was read
     * (a one-shot client) from audit records of connect(): two audit rules
     * keyed `amp-dfc` while the daemon runs (with auditd they also land in
     * its log). auto: only where kernel audit is already on (auditd hosts);
     * on: also turn audit on while amp runs (every syscall of new processes
     * then costs a little more); off: such flows are reported without a
     * process.
     */
    connectAudit: z.enum(["auto", "on", "off"]).default("auto"),
  }).prefault({}),
  /** What `amp install` set up, so that disable, enable and uninstall undo exactly that. */
  service: z.strictObject({
    init: z.enum(["upstart", "systemd", "sysv"]).optional(),
  }).prefault({}),
});

/** The parsed local configuration, defaults filled in. */
export type AmpConfig = z.infer<typeof AmpConfigSchema>;

/** What `amp.json` may contain. */
export type AmpConfigInput = z.input<typeof AmpConfigSchema>;

/**
 * Reads `<root>/etc/amp/amp.json` (or `file`); a missing file gives the
 * defaults. Throws {@linkcode ConfigError} for bad JSON or fields.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./amp_config.ts";
 * const { config } = await loadConfig({ root: "/nonexistent" });
 * // config.logLevel === "notice"
 * ```
 */
export async function loadConfig(
  options: { root?: string; file?: string } = {},
): Promise<{ config: AmpConfig; source: string }> {
  const file = options.file ?? resolveUnderRoot(options.root ?? "/", CONFIG_PATH);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    if (options.file === undefined && error instanceof Deno.errors.NotFound) {
      return { config: AmpConfigSchema.parse({}), source: "defaults" };
    }
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`Cannot read config ${file}: ${reason}`, { file, cause: error });
  }
  return { config: parseConfigText(text, file), source: file };
}

/** Validates the text of amp.json; throws {@linkcode ConfigError}. */
export function parseConfigText(text: string, file: string): AmpConfig {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`Invalid JSON in config ${file}: ${detail}`, { file, cause: error });
  }
  const result = AmpConfigSchema.safeParse(json);
  if (result.success) return result.data;
  throw new ConfigError(`Invalid config ${file}:\n${z.prettifyError(result.error)}`, {
    file,
    issues: result.error.issues,
    cause: result.error,
  });
}
