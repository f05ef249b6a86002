/**
 * The ClamAV engine: one libclamav engine per process, loaded from a signature
 * directory, compiled once, then shared by every scan in flight.
 *
 * Limits: amp applies its own file-size limit before ClamAV sees a file, and
 * hands ClamAV the archive limits. libclamav silently calls a file clean when
 * it stops at a limit, so the engine runs with the exceeds-max heuristic on
 * and turns its `Heuristics.Limits.Exceeded.*` alerts into `skipped` verdicts:
 * a file that was not fully scanned is never reported clean. A real detection
 * inside such a file still wins (libclamav reports it instead of the limit).
 *
 * @module
 */

import {
  CL_ENGINE,
  CL_SCAN_GENERAL,
  CL_SCAN_HEURISTIC,
  CL_SCAN_PARSE_ALL,
} from "../../../ffi/libclamav.ts";
import type { Verdict } from "../verdict.ts";
import { NativeEngine, openLibclamav, type ScanOptionBits } from "./_native.ts";

/** Limits ClamAV applies inside a file (archives, embedded objects). */
export interface ClamavLimits {
  /** Largest file (outer or extracted) ClamAV will scan. */
  maxFileSize: number;
  /** Most data ClamAV scans within one file, all members together. */
  maxScanSize: number;
  /** Deepest archive nesting. */
  maxRecursion: number;
  /** Most members scanned in one archive. */
  maxFiles: number;
}

/** Options of {@linkcode ClamavEngine.load}. */
export interface ClamavLoadOptions {
  /** Signature directory (`.cvd`, `.cld`, `.cud`, `.hsb`, `.ndb` …). */
  dbDir: string;
  /** Private directory where libclamav extracts archive members. */
  tmpDir: string;
  limits: ClamavLimits;
  /** Open archives and documents (default true). */
  scanArchives?: boolean;
}

/** The signature files of a directory and a fingerprint of their names, sizes and times. */
export interface SignatureSet {
  dbDir: string;
  files: string[];
  fingerprint: string;
}

/** File name endings libclamav loads from a database directory. */
const DB_EXTENSIONS = [
  ".cvd",
  ".cld",
  ".cud",
  ".hdb",
  ".hsb",
  ".hdu",
  ".hsu",
  ".mdb",
  ".msb",
  ".mdu",
  ".msu",
  ".ndb",
  ".ndu",
  ".ldb",
  ".ldu",
  ".idb",
  ".cdb",
  ".cbc",
  ".pdb",
  ".gdb",
  ".wdb",
  ".ftm",
  ".fp",
  ".sfp",
  ".ign",
  ".ign2",
  ".yar",
  ".yara",
  ".crb",
  ".cat",
  ".imp",
  ".info",
];

/**
 * Lists a signature directory without loading it. A directory that does not
 * exist or holds no signature files gives an empty `files` list.
 */
export async function readSignatureSet(dbDir: string): Promise<SignatureSet> {
  const files: string[] = [];
  const parts: string[] = [openLibclamavVersion()];
  try {
    for await (const entry of Deno.readDir(dbDir)) {
      if (!DB_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) continue;
      // cl_load follows symbolic links, so a linked database counts (by its target).
      if (!entry.isFile && !(entry.isSymlink && await isFile(`${dbDir}/${entry.name}`))) continue;
      files.push(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) && !(error instanceof Deno.errors.NotADirectory)) {
      throw error;
    }
  }
  files.sort();
  for (const name of files) {
    const st = await Deno.stat(`${dbDir}/${name}`);
    parts.push(`${name}:${st.size}:${st.mtime?.getTime() ?? 0}`);
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\n")));
  const fingerprint = [...new Uint8Array(digest).subarray(0, 8)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return { dbDir, files, fingerprint };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

function openLibclamavVersion(): string {
  try {
    return openLibclamav().version;
  } catch {
    return "no-libclamav";
  }
}

/** A loaded, compiled ClamAV engine. */
export class ClamavEngine {
  readonly #native: NativeEngine;
  readonly #options: ScanOptionBits;
  /** libclamav's version, such as `1.4.6`. */
  readonly version: string;
  /** Signatures loaded. */
  readonly signatures: number;
  /** Milliseconds spent in `cl_load` and `cl_engine_compile`. */
  readonly loadMs: number;

  private constructor(
    native: NativeEngine,
    options: ScanOptionBits,
    info: { version: string; signatures: number; loadMs: number },
  ) {
    this.#native = native;
    this.#options = options;
    this.version = info.version;
    this.signatures = info.signatures;
    this.loadMs = info.loadMs;
  }

  /**
   * Loads every signature file of `dbDir` and compiles the engine.
   * Throws {@linkcode ClamavError} when libclamav rejects the database.
   */
  static async load(options: ClamavLoadOptions): Promise<ClamavEngine> {
    const { version } = openLibclamav();
    const started = performance.now();
    const native = new NativeEngine();
    try {
      native.setTmpDir(options.tmpDir);
      native.setNum(CL_ENGINE.MAX_FILESIZE, options.limits.maxFileSize);
      native.setNum(CL_ENGINE.MAX_SCANSIZE, options.limits.maxScanSize);
      native.setNum(CL_ENGINE.MAX_RECURSION, options.limits.maxRecursion);
      native.setNum(CL_ENGINE.MAX_FILES, options.limits.maxFiles);
      const signatures = await native.load(options.dbDir);
      await native.compile();
      const scanArchives = options.scanArchives ?? true;
      const bits: ScanOptionBits = {
        general: CL_SCAN_GENERAL.HEURISTICS,
        // As clamscan: every parser on, plus image fuzzy hashing (0x1000).
        parse: scanArchives ? CL_SCAN_PARSE_ALL | 0x1000 : CL_SCAN_PARSE_ALL & ~0x1,
        heuristic: CL_SCAN_HEURISTIC.EXCEEDS_MAX,
        mail: 0,
        dev: 0,
      };
      return new ClamavEngine(native, bits, {
        version,
        signatures,
        loadMs: performance.now() - started,
      });
    } catch (error) {
      native.free();
      throw error;
    }
  }

  /** Scans an open descriptor (from offset 0, whatever its position). */
  async scan(fd: number): Promise<Verdict> {
    const result = await this.#native.scanDescriptor(fd, this.#options);
    if (result.kind === "clean") return { kind: "clean", engine: "clamav" };
    if (result.kind === "limit") {
      return { kind: "skipped", reason: "scan-limit", detail: result.detail };
    }
    if (result.kind === "virus") {
      if (result.virname.startsWith("Heuristics.Limits.Exceeded")) {
        return { kind: "skipped", reason: "scan-limit", detail: result.virname };
      }
      return { kind: "malicious", name: result.virname, engine: "clamav" };
    }
    return { kind: "error", error: `ClamAV: ${result.error}` };
  }

  /** Frees the engine; safe to call twice. */
  close(): void {
    this.#native.free();
  }
}
