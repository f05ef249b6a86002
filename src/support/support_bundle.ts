/**
 * `amp support`'s diagnostic bundle: one directory
 * `amp-support-<host>-<UTC time>/` with a file per section and an index
 * (`README.txt`), plus a `.tar.gz` of it when `tar` is available.
 *
 * Every section is written by its own function; one that throws leaves a
 * file that says the error, and the bundle goes on (the point of a bundle is
 * to be made on a sick host). Secrets never enter it: configuration files
 * go through {@linkcode redactConfigText}, and every text section through
 * {@linkcode redactUrl} (URL credentials in log lines).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { loadConfig } from "../config/amp_config.ts";
import { connectDaemon } from "../cli/daemon_client.ts";
import { eventJson } from "../cli/events_command.ts";
import { openLibclamav } from "../engine/clamav/_native.ts";
import { DaemonAccessError, DaemonUnavailableError } from "../ipc/ipc_errors.ts";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import { EventsDb } from "../store/events_db.ts";
import { readCvdHeader } from "../update/cvd_header.ts";
import { VERSION } from "../version.ts";
import { redactConfigText, redactUrl } from "./redact.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

/** Log lines kept from the end of each log file. */
export const LOG_TAIL_LINES = 1000;
/** Events kept, the newest. */
export const EVENT_LIMIT = 500;

/** Options of {@linkcode writeSupportBundle}. */
export interface SupportBundleOptions {
  /** Where the bundle directory (and archive) is written. */
  outDir: string;
  /** Host root for amp's files; `/` by default. */
  root?: string;
  /** Host name in the bundle's name; `Deno.hostname()` by default. */
  host?: string;
  /** The time in the bundle's name; now by default. */
  now?: Date;
  /** Make a .tar.gz too (default true; skipped with a note when tar is missing). */
  archive?: boolean;
}

/** One section of the bundle. */
export interface SupportSection {
  /** File name inside the bundle. */
  file: string;
  /** What it holds. */
  title: string;
  /** The error that stopped it, if any (the file then says so too). */
  error?: string;
}

/** What {@linkcode writeSupportBundle} wrote. */
export interface SupportBundle {
  dir: string;
  archive?: string;
  archiveError?: string;
  sections: SupportSection[];
}

interface SectionSpec {
  file: string;
  title: string;
  /** Text of the section, or files to write (name → text) for a folder. */
  write: (ctx: Context) => Promise<string | Record<string, string>>;
}

interface Context {
  root: string;
  under: (path: string) => string;
}

/**
 * Writes the bundle and returns what is in it. Throws only when the bundle
 * directory itself cannot be created.
 *
 * @example
 * ```ts
 * import { writeSupportBundle } from "./support_bundle.ts";
 * const out = await Deno.makeTempDir();
 * const bundle = await writeSupportBundle({ outDir: out, root: out, archive: false });
 * // bundle.sections.map((s) => s.file) includes "versions.txt", "amp.json", "status.json" …
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function writeSupportBundle(options: SupportBundleOptions): Promise<SupportBundle> {
  const root = options.root ?? "/";
  const ctx: Context = { root, under: (p) => resolveUnderRoot(root, p) };
  const host = (options.host ?? safeHostname()).replace(/[^A-Za-z0-9._-]/g, "_");
  const stamp = (options.now ?? new Date()).toISOString().replace(/[-:]/g, "").replace(
    /\.\d+Z$/,
    "Z",
  );
  const name = `amp-support-${host}-${stamp}`;
  await Deno.mkdir(options.outDir, { recursive: true });
  const dir = `${options.outDir}/${name}`;
  await Deno.mkdir(dir, { mode: 0o700 });
  const sections: SupportSection[] = [];
  for (const spec of SECTIONS) {
    const section: SupportSection = { file: spec.file, title: spec.title };
    try {
      const content = await spec.write(ctx);
      if (typeof content === "string") {
        await Deno.writeTextFile(`${dir}/${spec.file}`, redactUrl(content), { mode: 0o600 });
      } else {
        await Deno.mkdir(`${dir}/${spec.file}`, { mode: 0o700 });
        for (const [file, text] of Object.entries(content)) {
          await Deno.writeTextFile(`${dir}/${spec.file}/${file}`, redactUrl(text), { mode: 0o600 });
        }
      }
    } catch (error) {
      section.error = message(error);
      if (spec.file.endsWith("/")) {
        await Deno.mkdir(`${dir}/${spec.file}`, { recursive: true, mode: 0o700 }).catch(() => {});
      }
      await Deno.writeTextFile(
        `${dir}/${spec.file}${spec.file.endsWith("/") ? "ERROR.txt" : ""}`,
        `ERROR: this section could not be collected: ${redactUrl(section.error)}\n`,
        { mode: 0o600 },
      ).catch(() => {});
    }
    sections.push(section);
  }
  await Deno.writeTextFile(`${dir}/README.txt`, readme(name, root, sections), { mode: 0o600 });
  const bundle: SupportBundle = { dir, sections };
  if (options.archive ?? true) {
    try {
      const out = await new Deno.Command("tar", {
        args: ["czf", `${name}.tar.gz`, name],
        cwd: options.outDir,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      if (out.success) {
        bundle.archive = `${options.outDir}/${name}.tar.gz`;
        // Root only, as the directory: the bundle holds logs, events and config.
        await Deno.chmod(bundle.archive, 0o600);
      } else bundle.archiveError = new TextDecoder().decode(out.stderr).trim();
    } catch (error) {
      bundle.archiveError = error instanceof Deno.errors.NotFound
        ? "tar is not installed: the directory is the bundle"
        : message(error);
    }
  }
  return bundle;
}

function readme(name: string, root: string, sections: SupportSection[]): string {
  const width = Math.max(...sections.map((s) => s.file.length));
  return [
    `amp support bundle ${name}`,
    `amp ${VERSION}, host root ${root}, written ${new Date().toISOString()}`,
    "Secrets are redacted: fields named like token, key, secret, password;",
    "credentials in URLs (https://user:pass@host -> https://REDACTED@host).",
    "",
    ...sections.map((s) =>
      `${s.file.padEnd(width)}  ${s.title}${s.error ? `  [FAILED: ${s.error}]` : ""}`
    ),
    "",
  ].join("\n");
}

const SECTIONS: SectionSpec[] = [
  { file: "versions.txt", title: "amp, Deno, libclamav, kernel, OS release", write: versions },
  {
    file: "amp.json",
    title: "local configuration /etc/amp/amp.json (redacted)",
    write: (ctx) => configFile(ctx.under("/etc/amp/amp.json")),
  },
  {
    file: "policy.json",
    title: "policy in force /etc/amp/policy.json (redacted)",
    write: (ctx) => configFile(ctx.under("/etc/amp/policy.json")),
  },
  {
    file: "logs/",
    title: `last ${LOG_TAIL_LINES} lines of each log in /var/log/amp`,
    write: logs,
  },
  { file: "status.json", title: "amp status --json (or why there is none)", write: status },
  {
    file: "events.jsonl",
    title: `the newest ${EVENT_LIMIT} events, oldest first, JSON lines`,
    write: recentEvents,
  },
  {
    file: "kernel.txt",
    title: "fanotify limits, /dev/ampavflt, mounts",
    write: kernel,
  },
  { file: "init.txt", title: "init system, amp's jobs and units, cron file", write: init },
  {
    file: "signatures.txt",
    title: "ClamAV signature directory: names, sizes, times, versions",
    write: signatures,
  },
  { file: "quarantine.txt", title: "quarantine records by state", write: quarantine },
];

async function versions(): Promise<string> {
  const lines = [`amp: ${VERSION}`, `deno: ${Deno.version.deno} (v8 ${Deno.version.v8})`];
  try {
    lines.push(`libclamav: ${openLibclamav().version}`);
  } catch (error) {
    lines.push(`libclamav: not available: ${message(error)}`);
  }
  lines.push(`kernel: ${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`);
  lines.push(`uname: ${(await readOr("/proc/version", "")).trim()}`);
  lines.push("", "/etc/os-release:", await readOr("/etc/os-release", "(not present)\n"));
  return lines.join("\n");
}

async function configFile(path: string): Promise<string> {
  try {
    return redactConfigText(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return `(${path} not present: defaults in use)\n`;
    throw error;
  }
}

async function logs(ctx: Context): Promise<Record<string, string>> {
  const dir = ctx.under("/var/log/amp");
  const out: Record<string, string> = {};
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) continue;
      try {
        out[entry.name] = await tailLines(`${dir}/${entry.name}`, LOG_TAIL_LINES);
      } catch (error) {
        out[entry.name] = `ERROR: cannot read ${dir}/${entry.name}: ${message(error)}\n`;
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    out["NONE.txt"] = `${dir} does not exist\n`;
  }
  return out;
}

/** The last `count` lines of a file, reading only its end. */
export async function tailLines(path: string, count: number): Promise<string> {
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const step = 64 * 1024;
    let start = size;
    let chunks: Uint8Array[] = [];
    let newlines = 0;
    while (start > 0 && newlines <= count) {
      const from = Math.max(0, start - step);
      const buf = new Uint8Array(start - from);
      await file.seek(from, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const n = await file.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      for (const b of buf) if (b === 0x0a) newlines++;
      chunks = [buf, ...chunks];
      start = from;
    }
    const text = new TextDecoder().decode(concat(chunks));
    const lines = text.split("\n");
    const trailing = lines.at(-1) === "" ? lines.pop() : undefined;
    const kept = lines.slice(-count);
    return kept.join("\n") + (trailing === "" ? "\n" : "");
  } finally {
    file.close();
  }
}

async function status(ctx: Context): Promise<string> {
  let client;
  try {
    client = await connectDaemon(ctx.root);
  } catch (error) {
    if (error instanceof DaemonUnavailableError || error instanceof DaemonAccessError) {
      return JSON.stringify(
        { connected: false, daemon: "not running", error: error.message },
        null,
        2,
      ) +
        "\n";
    }
    throw error;
  }
  try {
    const report = await client.request("status");
    return JSON.stringify({ connected: true, ...(report as object) }, null, 2) + "\n";
  } finally {
    await client.close();
  }
}

async function recentEvents(ctx: Context): Promise<string> {
  const path = ctx.under("/var/lib/amp/events.db");
  try {
    await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
  const db = await EventsDb.open(path);
  try {
    const newest = await db.list({ limit: EVENT_LIMIT });
    return newest.reverse().map((e) => JSON.stringify(eventJson(e)) + "\n").join("");
  } finally {
    await db.close();
  }
}

async function kernel(): Promise<string> {
  const lines = [`release: ${Deno.osRelease()}`, "", "fanotify (/proc/sys/fs/fanotify):"];
  try {
    const names = [...Deno.readDirSync("/proc/sys/fs/fanotify")].map((e) => e.name).sort();
    for (const name of names) {
      lines.push(`  ${name} = ${(await readOr(`/proc/sys/fs/fanotify/${name}`, "?")).trim()}`);
    }
  } catch (error) {
    lines.push(`  not available: ${message(error)}`);
  }
  lines.push("", `/dev/ampavflt: ${await describePath("/dev/ampavflt")}`);
  lines.push(
    `ampavflt module: ${
      (await readOr("/proc/modules", "")).split("\n").find((l) => l.startsWith("ampavflt ")) ??
        "not loaded"
    }`,
  );
  lines.push(
    "",
    "mounts (/proc/self/mounts):",
    await readOr("/proc/self/mounts", "(not readable)\n"),
  );
  return lines.join("\n");
}

const INIT_FILES = [
  "/etc/init/amp.conf",
  "/etc/init/amp.conf.disabled",
  "/etc/init/amp-updater.conf",
  "/etc/init/amp-updater.conf.disabled",
  "/etc/systemd/system/amp.service",
  "/etc/systemd/system/amp-updater.service",
  "/etc/systemd/system/amp-updater.timer",
  "/etc/systemd/system/multi-user.target.wants/amp.service",
  "/etc/systemd/system/timers.target.wants/amp-updater.timer",
  "/etc/init.d/amp",
  "/etc/cron.hourly/amp-updater",
  "/opt/amp/bin/amp",
];

async function init(ctx: Context): Promise<string> {
  const pid1 = (await readOr("/proc/1/comm", "?")).trim();
  const systemd = await exists("/run/systemd/system");
  const upstart = await exists("/sbin/initctl");
  const lines = [
    `pid 1: ${pid1}`,
    `running init: ${
      systemd ? "systemd" : upstart ? "upstart (initctl present)" : "sysv or other"
    }`,
    "",
    `amp's init files (under ${ctx.root}):`,
  ];
  for (const file of INIT_FILES) lines.push(`  ${file}: ${await describePath(ctx.under(file))}`);
  const cron = ctx.under("/etc/cron.hourly/amp-updater");
  try {
    const mode = (await Deno.lstat(cron)).mode ?? 0;
    lines.push(
      "",
      `cron: ${cron} mode ${(mode & 0o7777).toString(8)} (${
        mode & 0o111 ? "runs hourly" : "disabled: not executable"
      })`,
    );
  } catch {
    lines.push("", `cron: ${cron} not present`);
  }
  const rc = [];
  for (const level of ["0", "1", "2", "3", "4", "5", "6", "S"]) {
    try {
      for (const e of Deno.readDirSync(ctx.under(`/etc/rc${level}.d`))) {
        if (/^[SK]\d\damp$/.test(e.name)) rc.push(`rc${level}.d/${e.name}`);
      }
    } catch {
      // no such runlevel directory
    }
  }
  lines.push(`sysv rc links: ${rc.length ? rc.join(" ") : "none"}`);
  if (ctx.root === "/" && systemd) {
    for (const unit of ["amp.service", "amp-updater.timer"]) {
      const out = await new Deno.Command("systemctl", {
        args: ["is-enabled", unit],
        stdout: "piped",
        stderr: "piped",
      }).output().catch(() => undefined);
      const enabled = out ? new TextDecoder().decode(out.stdout).trim() : "systemctl not runnable";
      const active = await new Deno.Command("systemctl", {
        args: ["is-active", unit],
        stdout: "piped",
        stderr: "null",
      }).output().catch(() => undefined);
      lines.push(
        `systemctl ${unit}: ${enabled || "unknown"}, ${
          active ? new TextDecoder().decode(active.stdout).trim() : "?"
        }`,
      );
    }
  }
  return lines.join("\n") + "\n";
}

async function signatures(ctx: Context): Promise<string> {
  let dbDir = "/var/lib/clamav";
  let note = "";
  try {
    dbDir = (await loadConfig({ root: ctx.root })).config.clamav.dbDir;
  } catch (error) {
    note = `(amp.json unreadable, default directory shown: ${message(error)})\n`;
  }
  const lines = [`${note}directory: ${dbDir}`];
  const entries = [];
  for await (const entry of Deno.readDir(dbDir)) entries.push(entry.name);
  entries.sort();
  for (const name of entries) {
    try {
      const st = await Deno.lstat(`${dbDir}/${name}`);
      let version = "";
      if (/\.c[lvu]d$/.test(name)) {
        const header = await readCvdHeader(`${dbDir}/${name}`).catch((e) => message(e));
        version = typeof header === "string"
          ? `  header: ${header}`
          : header
          ? `  version ${header.version}, ${header.signatures} signatures, built ${header.buildTime}`
          : "";
      }
      const kind = st.isDirectory ? "dir " : st.isSymlink ? "link" : "file";
      lines.push(
        `${kind} ${String(st.size).padStart(12)}  ${
          st.mtime?.toISOString() ?? "?"
        }  ${name}${version}`,
      );
    } catch (error) {
      lines.push(`?    ${name}: ${message(error)}`);
    }
  }
  if (entries.length === 0) lines.push("(empty)");
  return lines.join("\n") + "\n";
}

async function quarantine(ctx: Context): Promise<string> {
  const path = ctx.under("/var/lib/amp/quarantine/quarantine.db");
  if (!(await exists(path))) return `no quarantine database (${path})\ntotal: 0\n`;
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const rows = db.prepare(
      "SELECT state, count(*) AS n FROM quarantine GROUP BY state ORDER BY state",
    )
      .all() as Array<{ state: string; n: number }>;
    const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
    return [`database: ${path}`, ...rows.map((r) => `${r.state}: ${r.n}`), `total: ${total}`, ""]
      .join("\n");
  } finally {
    db.close();
  }
}

async function describePath(path: string): Promise<string> {
  try {
    const st = await Deno.lstat(path);
    const kind = st.isFile
      ? "file"
      : st.isDirectory
      ? "directory"
      : st.isSymlink
      ? `symlink -> ${await Deno.readLink(path).catch(() => "?")}`
      : "special file";
    return `present (${kind}, mode ${((st.mode ?? 0) & 0o7777).toString(8)}, ${st.size} bytes)`;
  } catch (error) {
    return error instanceof Deno.errors.NotFound ? "absent" : `unreadable: ${message(error)}`;
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

function safeHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown-host";
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
