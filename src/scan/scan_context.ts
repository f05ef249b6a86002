/**
 * Everything a verdict needs, prepared once: the policy's lists, the ClamAV
 * engine (loaded lazily or at once), the verdict cache under its signature
 * version, exclusions and the pipeline over them. A command-line scan builds
 * one per run; the daemon keeps one and replaces it on reload.
 *
 * Engine lifetime: scans through {@linkcode ScanContext.scanFile} are
 * counted while in flight, and {@linkcode ScanContext.close} waits for them
 * before freeing the engine. The daemon
 * closes the old context before it loads the new one, so a reload never
 * holds two copies of the signatures.
 *
 * @module
 */

import { ClamavEngine, readSignatureSet } from "../engine/clamav/clamav_engine.ts";
import { openLibclamav } from "../engine/clamav/_native.ts";
import { type FileHasher, JsFileHasher, NativeFileHasher } from "../engine/file_hasher.ts";
import { type HashList, loadHashList } from "../engine/hash_list.ts";
import { type DescriptorScanner, type OpenFile, ScanPipeline } from "../engine/pipeline.ts";
import type { FileVerdict } from "../engine/verdict.ts";
import { compileExclusions, type ExclusionMatcher } from "../policy/exclusions.ts";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import type { Policy } from "../policy/schema.ts";
import type { VerdictCache } from "../store/verdict_cache.ts";
import { CacheVerdictMemory } from "./verdict_memory.ts";

/** libclamav's largest file size (2 GiB − 1): "no per-member limit". */
const CLAMAV_UNLIMITED_FILESIZE = 2 ** 31 - 1;

/** Default ClamAV signature directory. */
export const DEFAULT_DB_DIR = "/var/lib/clamav";

/** Options of {@linkcode ScanContext.prepare}. */
export interface ScanContextOptions {
  policy: Policy;
  /** Host root for the policy's list files. */
  root: string;
  /** ClamAV signature directory. */
  dbDir: string;
  /** The verdict cache; without it nothing is remembered across runs. */
  cache?: VerdictCache;
  /** Called with each warning worth showing a person. */
  notice: (message: string) => void;
  /** Hashes an administrator restored from quarantine: never convicted again. */
  restored?: (sha256: string) => boolean;
}

/** A policy made ready to scan with. */
export class ScanContext {
  readonly policy: Policy;
  readonly pipeline: ScanPipeline;
  readonly exclusions: ExclusionMatcher;
  readonly memory?: CacheVerdictMemory;
  /** Fingerprint of signatures, lists and limits: the verdict cache's key. */
  readonly signatureVersion: string;
  /** Aborted when the engine fails to load: scans using this context stop. */
  readonly failed: AbortSignal;
  readonly #clamav: PreparedClamav;
  readonly #lists: Lists;
  readonly #tmpDir: string;
  readonly #failed: AbortController;
  #engine?: ClamavEngine;
  #loading?: Promise<DescriptorScanner | undefined>;
  #loadError: unknown;
  #inFlight = 0;
  #drained?: () => void;
  #closed = false;

  private constructor(
    options: ScanContextOptions,
    clamav: PreparedClamav,
    lists: Lists,
    tmpDir: string,
  ) {
    const policy = options.policy;
    this.policy = policy;
    this.#clamav = clamav;
    this.#lists = lists;
    this.#tmpDir = tmpDir;
    this.#failed = new AbortController();
    this.failed = this.#failed.signal;
    this.signatureVersion = [
      clamav.fingerprint,
      lists.allow?.fingerprint ?? "-",
      lists.block?.fingerprint ?? "-",
      policy.scan.maxArchiveSize,
      policy.scan.maxRecursion,
      policy.scan.maxFiles,
      policy.scan.scanArchives,
    ].join(":");
    if (options.cache) this.memory = new CacheVerdictMemory(options.cache, this.signatureVersion);
    this.exclusions = compileExclusions(policy.exclusions);
    this.pipeline = new ScanPipeline({
      maxFileSize: policy.scan.maxFileSize,
      maxArchiveSize: policy.scan.maxArchiveSize,
      hasher: clamav.hasher,
      allowList: withRestored(lists.allow, options.restored),
      blockList: lists.block,
      scanner: () => this.#scanner(),
      memory: this.memory,
    });
  }

  /** Reads lists and fingerprints signatures (no loading yet). */
  static async prepare(options: ScanContextOptions): Promise<ScanContext> {
    const tmpDir = await Deno.makeTempDir({ prefix: "amp-clamav-", dir: extractionDir() });
    try {
      const lists = await loadLists(options.policy, options.root, options.notice);
      const clamav = await prepareClamav(options.policy, options.dbDir, tmpDir, options.notice);
      return new ScanContext(options, clamav, lists, tmpDir);
    } catch (error) {
      await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
      throw error;
    }
  }

  /** Loads the engine now (the daemon does, so that its first verdict is quick). */
  async loadEngine(): Promise<void> {
    await this.#scanner();
    if (this.#loadError) throw this.#loadError;
  }

  /** Why the engine failed to load, if it did. */
  get loadError(): unknown {
    return this.#loadError;
  }

  /** ClamAV's version and signature count once loaded. */
  get clamav(): { version: string; signatures: number; dbDir: string } | undefined {
    const e = this.#engine;
    return e
      ? { version: e.version, signatures: e.signatures, dbDir: this.#clamav.dbDir }
      : undefined;
  }

  /** The engines that take part, described for people. */
  describeEngines(): string[] {
    const engines: string[] = [];
    const clamav = this.#clamav.describe(this.#engine);
    if (clamav) engines.push(clamav);
    if (this.#lists.block) {
      engines.push(`simple custom detections (${this.#lists.block.size} SHA-256)`);
    }
    if (this.#lists.allow) engines.push(`allow list (${this.#lists.allow.size} SHA-256)`);
    return engines;
  }

  /** Sizes of the hash lists. */
  get listSizes(): { block: number; allow: number } {
    return { block: this.#lists.block?.size ?? 0, allow: this.#lists.allow?.size ?? 0 };
  }

  /**
   * Scans one file with this context's pipeline, counted so that
   * {@linkcode ScanContext.close} waits for it. After close: an error verdict.
   */
  async scanFile(file: OpenFile): Promise<FileVerdict> {
    if (this.#closed) {
      return {
        verdict: { kind: "error", error: "Scan context closed (reload)" },
        size: file.stat.size,
      };
    }
    this.#inFlight++;
    try {
      return await this.pipeline.scanFile(file);
    } finally {
      if (--this.#inFlight === 0) this.#drained?.();
    }
  }

  /**
   * Waits for scans in flight, frees the engine and removes the extraction
   * directory. Verdicts still pending are written to the cache. Safe twice.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    await this.#loading?.catch(() => {});
    this.#engine?.close();
    this.#engine = undefined;
    await Deno.remove(this.#tmpDir, { recursive: true }).catch(() => {});
  }

  #scanner(): Promise<DescriptorScanner | undefined> {
    this.#loading ??= (this.#clamav.load?.() ?? Promise.resolve(undefined)).then(
      (engine) => {
        this.#engine = engine;
        return engine;
      },
      (error) => {
        this.#loadError = error;
        this.#failed.abort(error);
        // An engine that failed is an error verdict, never "clean".
        throw error;
      },
    );
    return this.#loading;
  }
}

interface Lists {
  allow?: HashList;
  block?: HashList;
}

function withRestored(
  allow: HashList | undefined,
  restored: ((sha256: string) => boolean) | undefined,
): HashList | undefined {
  if (!restored) return allow;
  return {
    lookup: (sha256) =>
      allow?.lookup(sha256) ?? (restored(sha256) ? "Restored from quarantine" : undefined),
    size: allow?.size ?? 0,
    problems: allow?.problems ?? [],
    fingerprint: allow?.fingerprint ?? "-",
  };
}

/**
 * Where libclamav extracts archive members: $TMPDIR when the administrator
 * set one, else /dev/shm when it is a writable tmpfs, else /tmp. Memory beats
 * disk by far here (a /usr corpus scanned 1.8x faster), and the space is
 * bounded: each file in flight extracts at most the policy's archive limit.
 */
function extractionDir(): string | undefined {
  if (Deno.env.get("TMPDIR")) return undefined;
  try {
    const shm = Deno.statSync("/dev/shm");
    if (shm.isDirectory && (shm.mode ?? 0) & 0o002) return "/dev/shm";
  } catch {
    // no /dev/shm
  }
  return undefined;
}

async function loadLists(
  policy: Policy,
  root: string,
  notice: (m: string) => void,
): Promise<Lists> {
  if (!policy.engines.hashList.enabled) return {};
  const under = (files: string[]) => files.map((f) => resolveUnderRoot(root, f));
  const allow = await loadHashList(under(policy.lists.allowFiles), "Allowed");
  const block = await loadHashList(under(policy.lists.blockFiles), "Simple.Custom.Detection");
  for (const problem of [...allow.problems, ...block.problems]) notice(`Hash list: ${problem}`);
  return { allow, block };
}

interface PreparedClamav {
  fingerprint: string;
  dbDir: string;
  hasher: FileHasher;
  load?: () => Promise<ClamavEngine>;
  describe(engine?: ClamavEngine): string | undefined;
}

async function prepareClamav(
  policy: Policy,
  dbDir: string,
  tmpDir: string,
  notice: (m: string) => void,
): Promise<PreparedClamav> {
  let version: string;
  try {
    version = openLibclamav().version;
  } catch (error) {
    notice(`ClamAV is not available: ${error instanceof Error ? error.message : error}`);
    return {
      fingerprint: "no-clamav",
      dbDir,
      hasher: new JsFileHasher(),
      describe: () => undefined,
    };
  }
  const hasher = new NativeFileHasher();
  if (!policy.engines.clamav.enabled) {
    return { fingerprint: "clamav-off", dbDir, hasher, describe: () => undefined };
  }
  const set = await readSignatureSet(dbDir);
  if (set.files.length === 0) {
    notice(
      `ClamAV has no signatures in ${dbDir}: scanning with the hash lists only. ` +
        "Install them with freshclam (Debian: apt-get install clamav-freshclam), " +
        "or point --db-dir at a directory of .cvd/.cld/.hsb/.ndb files.",
    );
    return { fingerprint: `no-signatures-${version}`, dbDir, hasher, describe: () => undefined };
  }
  const limits = {
    // libclamav skips an archive member over MAX_FILESIZE silently (clean,
    // even with the exceeds-max heuristic): give it no per-member limit and
    // let MAX_SCANSIZE bound the work, which does raise a limit alert.
    maxFileSize: CLAMAV_UNLIMITED_FILESIZE,
    maxScanSize: policy.scan.maxArchiveSize,
    maxRecursion: policy.scan.maxRecursion,
    maxFiles: policy.scan.maxFiles,
  };
  return {
    fingerprint: set.fingerprint,
    dbDir,
    hasher,
    load: () =>
      ClamavEngine.load({ dbDir, tmpDir, limits, scanArchives: policy.scan.scanArchives }),
    describe: (engine) =>
      engine
        ? `ClamAV ${engine.version} (${engine.signatures} signatures from ${dbDir})`
        : `ClamAV ${version} (${dbDir}, not needed: every file was unchanged)`,
  };
}
