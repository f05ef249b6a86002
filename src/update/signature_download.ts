/**
 * amp's own signature download (`update.method: "download"`), for mirrors
 * that serve whole containers over HTTP(S):
 *
 * - What to fetch: the names listed in `<mirror>/amp-signatures.txt` (one
 *   `name.cvd` or `name.cud` a line, `#` comments) when the mirror has that
 *   file, else the standard `main.cvd`, `daily.cvd` and `bytecode.cvd`, of
 *   which a missing one (404) is skipped. A listed name that is missing is
 *   an error.
 * - Newer only: the remote 512-byte header is read first and the download
 *   abandoned unless its version is above the local one (of `name.cvd`,
 *   `.cld` or `.cud`, whichever is newest), so an hourly run that finds
 *   nothing new transfers about one header per file.
 * - Verified before it replaces anything: the header must parse, the MD5 of
 *   the body must equal the header's, and libclamav must load the file on
 *   its own (as freshclam's TestDatabases: this also refuses a `.cvd` whose
 *   digital signature is not ClamAV's, which the daemon could not load).
 * - Atomic: the file is written in a private directory inside the signature
 *   directory, synced, then renamed over the old one; a reader sees the old
 *   file or the new one, never a part. Older copies of the same database
 *   under another extension (`daily.cld` after `daily.cvd`) are removed
 *   after the rename so that libclamav does not load both.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { ClamavEngine } from "../engine/clamav/clamav_engine.ts";
import type { Logger } from "../log/logger.ts";
import { O } from "../../ffi/libc.ts";
import { bytePath } from "../sys/byte_path.ts";
import { AT, close, fsync, openat } from "../sys/libc.ts";
import { CVD_HEADER_SIZE, type CvdHeader, parseCvdHeader, readCvdHeader } from "./cvd_header.ts";
import { redactUrl } from "../support/redact.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

/** The mirror's optional list of files to fetch. */
export const MIRROR_MANIFEST = "amp-signatures.txt";

/** What is fetched when the mirror has no manifest. */
export const STANDARD_DATABASES = ["main.cvd", "daily.cvd", "bytecode.cvd"] as const;

/** What happened to one database file. */
export interface SignatureFileResult {
  name: string;
  /**
   * installed (new here), updated (replaced an older version), up-to-date,
   * missing (a standard name the mirror does not have), rejected (failed
   * verification; the local file is kept), failed (could not be fetched or
   * written).
   */
  status: "installed" | "updated" | "up-to-date" | "missing" | "rejected" | "failed";
  /** Version now in use (or offered, when rejected). */
  version?: number;
  /** Version before this run. */
  previousVersion?: number;
  /** Signatures in the file, from its header. */
  signatures?: number;
  /** Why it was rejected or failed. */
  detail?: string;
}

/** Options of {@linkcode downloadSignatures}. */
export interface DownloadSignaturesOptions {
  /** Base URL of the mirror. */
  mirror: string;
  /** The signature directory. */
  dbDir: string;
  log?: Logger;
  /** Load each new file with libclamav before installing it (default true). */
  testLoad?: boolean;
  /** Give up on a transfer that sends nothing for this long; 60 s by default. */
  idleTimeoutMs?: number;
}

/** What {@linkcode downloadSignatures} did. */
export interface DownloadSignaturesResult {
  /** Where the list of names came from. */
  names: "manifest" | "standard";
  files: SignatureFileResult[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*\.(cvd|cud)$/;

/**
 * Fetches, verifies and installs the mirror's newer databases. Never throws
 * for a file: each file's outcome is in the result. Throws when the mirror's
 * manifest cannot be read (other than a 404).
 */
export async function downloadSignatures(
  options: DownloadSignaturesOptions,
): Promise<DownloadSignaturesResult> {
  const base = options.mirror.endsWith("/") ? options.mirror : `${options.mirror}/`;
  await Deno.mkdir(options.dbDir, { recursive: true, mode: 0o755 });
  await removeStaleStaging(options.dbDir, options.log);
  const listed = await readManifest(base, options);
  const names = listed ?? [...STANDARD_DATABASES];
  options.log?.info(
    listed
      ? `Mirror manifest ${MIRROR_MANIFEST} lists: ${names.join(", ")}`
      : `No ${MIRROR_MANIFEST} on the mirror: trying ${names.join(", ")}`,
  );
  const files: SignatureFileResult[] = [];
  for (const name of names) {
    const result = await fetchOne(base, name, listed !== undefined, options).catch((error) => ({
      name,
      status: "failed" as const,
      detail: message(error),
    }));
    const level = result.status === "rejected" || result.status === "failed" ? "error" : "notice";
    options.log?.[level](`${name}: ${describeFile(result)}`);
    files.push(result);
  }
  return { names: listed ? "manifest" : "standard", files };
}

/** One line about a file's outcome, for people. */
export function describeFile(f: SignatureFileResult): string {
  const sigs = f.signatures !== undefined ? ` (${f.signatures} signatures)` : "";
  switch (f.status) {
    case "installed":
      return `installed version ${f.version}${sigs}`;
    case "updated":
      return `updated ${f.previousVersion} → ${f.version}${sigs}`;
    case "up-to-date":
      return `up to date (version ${f.version})`;
    case "missing":
      return "not on the mirror";
    case "rejected":
      return `rejected${f.version !== undefined ? ` version ${f.version}` : ""}: ${f.detail}` +
        (f.previousVersion !== undefined ? `; keeping version ${f.previousVersion}` : "");
    case "failed":
      return `failed: ${f.detail}`;
  }
}

async function readManifest(
  base: string,
  options: DownloadSignaturesOptions,
): Promise<string[] | undefined> {
  const url = new URL(MIRROR_MANIFEST, base);
  const response = await fetch(url, {
    signal: AbortSignal.timeout(options.idleTimeoutMs ?? 60_000),
  })
    .catch((error) => {
      throw new Error(`Cannot reach the mirror ${redactUrl(url.href)}: ${message(error)}`, {
        cause: error,
      });
    });
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`Mirror answered ${response.status} for ${redactUrl(url.href)}`);
  }
  const names: string[] = [];
  for (const raw of (await response.text()).split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    if (!NAME.test(line)) {
      throw new Error(
        `Bad name in the mirror's ${MIRROR_MANIFEST}: ${JSON.stringify(line)} ` +
          "(expected name.cvd or name.cud)",
      );
    }
    if (!names.includes(line)) names.push(line);
  }
  return names;
}

async function localVersion(dbDir: string, name: string): Promise<number | undefined> {
  const stem = name.replace(/\.[^.]+$/, "");
  let best: number | undefined;
  for (const ext of ["cvd", "cld", "cud"]) {
    try {
      const header = await readCvdHeader(`${dbDir}/${stem}.${ext}`);
      if (header && (best === undefined || header.version > best)) best = header.version;
    } catch {
      // A damaged local file counts as absent: any remote version replaces it.
    }
  }
  return best;
}

async function fetchOne(
  base: string,
  name: string,
  listed: boolean,
  options: DownloadSignaturesOptions,
): Promise<SignatureFileResult> {
  const url = new URL(name, base);
  const previousVersion = await localVersion(options.dbDir, name);
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const abort = new AbortController();
  let idle = setTimeout(() => abort.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => abort.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  try {
    options.log?.info(`Fetching ${redactUrl(url.href)}`);
    const response = await fetch(url, { signal: abort.signal });
    if (response.status === 404) {
      await response.body?.cancel();
      if (listed) return { name, status: "failed", detail: "listed in the manifest, not found" };
      return { name, status: "missing" };
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      return { name, status: "failed", detail: `HTTP ${response.status}` };
    }
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let have = 0;
    while (have < CVD_HEADER_SIZE) {
      const { value, done } = await reader.read();
      if (done) break;
      touch();
      chunks.push(value);
      have += value.length;
    }
    const head = concat(chunks, have);
    let header: CvdHeader;
    try {
      header = parseCvdHeader(head);
    } catch (error) {
      await reader.cancel().catch(() => {});
      return { name, status: "rejected", previousVersion, detail: message(error) };
    }
    const found = { name, version: header.version, signatures: header.signatures };
    if (previousVersion !== undefined && header.version <= previousVersion) {
      await reader.cancel().catch(() => {});
      return { ...found, status: "up-to-date", version: previousVersion };
    }
    return await install(found, header, head, reader, touch, previousVersion, options);
  } finally {
    clearTimeout(idle);
  }
}

async function install(
  found: { name: string; version: number; signatures: number },
  header: CvdHeader,
  head: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  touch: () => void,
  previousVersion: number | undefined,
  options: DownloadSignaturesOptions,
): Promise<SignatureFileResult> {
  const { name } = found;
  const staging = await Deno.makeTempDir({ dir: options.dbDir, prefix: ".amp-update." });
  try {
    const staged = `${staging}/${name}`;
    const md5 = createHash("md5");
    const file = await Deno.open(staged, { write: true, createNew: true, mode: 0o644 });
    try {
      await writeAll(file, head);
      md5.update(head.subarray(CVD_HEADER_SIZE));
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        touch();
        await writeAll(file, value);
        md5.update(value);
      }
      await file.sync();
    } finally {
      file.close();
    }
    const body = md5.digest("hex");
    const rejected = (detail: string): SignatureFileResult => ({
      ...found,
      status: "rejected",
      previousVersion,
      detail,
    });
    if (body !== header.md5) {
      return rejected(`MD5 mismatch: header says ${header.md5}, body is ${body}`);
    }
    if (options.testLoad ?? true) {
      const loaded = await testLoad(staging);
      if (typeof loaded === "string") return rejected(`libclamav cannot load it: ${loaded}`);
      options.log?.info(`${name}: libclamav loads it (${loaded} signatures)`);
    }
    await Deno.rename(staged, `${options.dbDir}/${name}`);
    const stem = name.replace(/\.[^.]+$/, "");
    for (const ext of ["cvd", "cld", "cud"]) {
      const other = `${stem}.${ext}`;
      if (other === name) continue;
      try {
        await Deno.remove(`${options.dbDir}/${other}`);
        options.log?.notice(`Removed ${other}: replaced by ${name}`);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    syncDirectory(options.dbDir);
    return {
      ...found,
      status: previousVersion === undefined ? "installed" : "updated",
      previousVersion,
    };
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
}

/** Loads a directory with libclamav; the signature count, or the error text. */
async function testLoad(dir: string): Promise<number | string> {
  const tmpDir = await Deno.makeTempDir({ prefix: "amp-update-load-" });
  try {
    const engine = await ClamavEngine.load({
      dbDir: dir,
      tmpDir,
      limits: { maxFileSize: 1 << 20, maxScanSize: 1 << 20, maxRecursion: 4, maxFiles: 100 },
    });
    const signatures = engine.signatures;
    engine.close();
    return signatures;
  } catch (error) {
    return message(error);
  } finally {
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  }
}

async function removeStaleStaging(dbDir: string, log?: Logger): Promise<void> {
  // Only one update runs at a time (the lock), so any staging directory left
  // here is from a run that died.
  for await (const entry of Deno.readDir(dbDir)) {
    if (entry.isDirectory && entry.name.startsWith(".amp-update.")) {
      await Deno.remove(`${dbDir}/${entry.name}`, { recursive: true }).catch(() => {});
      log?.info(`Removed ${entry.name}, left by an interrupted update`);
    }
  }
}

function syncDirectory(dir: string): void {
  const fd = openat(AT.FDCWD, bytePath(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC);
  try {
    fsync(fd);
  } finally {
    close(fd);
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
