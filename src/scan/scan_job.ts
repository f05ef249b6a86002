/**
 * One scan from start to end: policy, lists, signatures, verdict cache,
 * events, the walk and the pipeline. The CLI (and later the daemon) call
 * {@linkcode runScanJob} and only present what it returns.
 *
 * Start-up order is chosen so that a scan answered from the verdict cache
 * never loads ClamAV: the signature set is fingerprinted (names, sizes,
 * times: no loading), and the engine is loaded (off the JS thread) at the
 * first file the cache cannot answer.
 *
 * @module
 */

import { ClamavEngine, readSignatureSet } from "../engine/clamav/clamav_engine.ts";
import { openLibclamav } from "../engine/clamav/_native.ts";
import { type FileHasher, JsFileHasher, NativeFileHasher } from "../engine/file_hasher.ts";
import { type HashList, loadHashList } from "../engine/hash_list.ts";
import { type DescriptorScanner, ScanPipeline } from "../engine/pipeline.ts";
import { walk } from "../fs/walk.ts";
import { compileExclusions } from "../policy/exclusions.ts";
import { loadPolicy, resolveUnderRoot } from "../policy/load_policy.ts";
import type { Policy } from "../policy/schema.ts";
import type { AmpEvent } from "../store/event.ts";
import { EventsDb } from "../store/events_db.ts";
import { VerdictCache } from "../store/verdict_cache.ts";
import { runScan, type RunScanOptions, type ScanReport } from "./scan_run.ts";
import { customTargets, flashTargets, fullTargets, type ScanTargets } from "./scan_targets.ts";
import { CacheVerdictMemory } from "./verdict_memory.ts";

/** Which scan. */
export type ScanKind = "custom" | "flash" | "full";

/** Options of {@linkcode runScanJob}. */
export interface ScanJobOptions
  extends Pick<RunScanOptions, "onDetection" | "onProgress" | "signal"> {
  kind: ScanKind;
  /** Paths of a custom scan. */
  paths?: string[];
  /** Host root for amp's own files (policy, lists, databases). Default "/". */
  root?: string;
  /** ClamAV signature directory. Default /var/lib/clamav. */
  dbDir?: string;
  /** A policy file to use instead of `<root>/etc/amp/policy.json`. */
  policyFile?: string;
  /** Files in flight at once. Default: {@linkcode defaultConcurrency}. */
  concurrency?: number;
  /** Called with each warning worth showing a person (no signatures, no state dir …). */
  onNotice?: (message: string) => void;
}

/** What a finished scan job returns. */
export interface ScanJobResult {
  report: ScanReport;
  policy: { name: string; id: number; source: string };
  /** Engines that took part, such as `ClamAV 1.4.6 (520002 signatures)`. */
  engines: string[];
}

/** libclamav's largest file size (2 GiB − 1): "no per-member limit". */
const CLAMAV_UNLIMITED_FILESIZE = 2 ** 31 - 1;

/** Default ClamAV signature directory. */
export const DEFAULT_DB_DIR = "/var/lib/clamav";

/**
 * Files in flight by default: one per core plus one, so that a core is not
 * idle while the JS thread walks, opens and hands the next file over
 * (measured on 2 cores, 1.2 GB: 31.7 s with 2 in flight, 28.3 s with 3).
 */
export function defaultConcurrency(): number {
  return (navigator.hardwareConcurrency || 1) + 1;
}

/** Runs one scan. Throws `ConfigError` for a bad policy and `ClamavError` for bad signatures. */
export async function runScanJob(options: ScanJobOptions): Promise<ScanJobResult> {
  const root = options.root ?? "/";
  const notice = options.onNotice ?? (() => {});
  const { policy, source } = await loadPolicy({ root, file: options.policyFile });
  const policyRef = { name: policy.name, id: policy.id };

  const stateDir = resolveUnderRoot(root, "/var/lib/amp");
  const state = await openState(stateDir, notice);
  const host = Deno.hostname();
  const events: AmpEvent[] = [];
  const event = (e: Omit<AmpEvent, "time" | "host" | "policy">) =>
    events.push({ time: Date.now(), host, policy: policyRef, ...e });

  const tmpDir = await Deno.makeTempDir({ prefix: "amp-clamav-", dir: extractionDir() });
  let engine: ClamavEngine | undefined;
  try {
    const lists = await loadLists(policy, root, notice);
    const clamav = await prepareClamav(policy, options.dbDir ?? DEFAULT_DB_DIR, tmpDir, notice);
    const signatureVersion = [
      clamav.fingerprint,
      lists.allow?.fingerprint ?? "-",
      lists.block?.fingerprint ?? "-",
      policy.scan.maxArchiveSize,
      policy.scan.maxRecursion,
      policy.scan.maxFiles,
      policy.scan.scanArchives,
    ].join(":");
    const memory = state.cache ? new CacheVerdictMemory(state.cache, signatureVersion) : undefined;

    const abort = new AbortController();
    options.signal?.addEventListener("abort", () => abort.abort(), { once: true });
    let loadError: unknown;
    let loading: Promise<DescriptorScanner | undefined> | undefined;
    const scanner = () => {
      loading ??= clamav.load?.().then((e) => (engine = e), (error) => {
        loadError = error;
        abort.abort();
        return undefined;
      }) ?? Promise.resolve(undefined);
      return loading;
    };

    const pipeline = new ScanPipeline({
      maxFileSize: policy.scan.maxFileSize,
      maxArchiveSize: policy.scan.maxArchiveSize,
      hasher: clamav.hasher,
      allowList: lists.allow,
      blockList: lists.block,
      scanner,
      memory,
    });
    const targets = scanTargets(options, root);
    const exclusions = compileExclusions(policy.exclusions);
    const exclude = (path: Uint8Array) => {
      const hit = exclusions.match(path);
      return hit ? describeExclusion(hit) : undefined;
    };

    event({ type: "Scan Started", details: { kind: options.kind, paths: options.paths } });
    const report = await runScan(walk(targets.roots, { ...targets.walk, exclude }), pipeline, {
      concurrency: options.concurrency ?? defaultConcurrency(),
      onDetection: (d) => {
        event({
          type: "Threat Detected",
          path: d.rawPath,
          sha256: d.sha256,
          size: d.size,
          detection: d.name,
          engine: d.engine,
          action: "detected",
          details: { scan: options.kind },
        });
        options.onDetection?.(d);
      },
      onProgress: options.onProgress,
      signal: abort.signal,
    });
    if (loadError) throw loadError;
    await memory?.flush();

    const engines = describeEngines(clamav.describe(engine), lists);
    event({
      type: report.summary.detections > 0
        ? "Scan Completed With Detections"
        : "Scan Completed No Detections",
      details: { kind: options.kind, ...report.summary, stopped: report.stopped },
    });
    return { report, policy: { ...policyRef, source }, engines };
  } catch (error) {
    event({
      type: "Scan Failed",
      details: {
        kind: options.kind,
        error: error instanceof Error ? error.message : String(error),
      },
    });
    throw error;
  } finally {
    engine?.close();
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
    await state.events?.recordMany(events).catch((error) =>
      notice(`Events not recorded: ${error instanceof Error ? error.message : error}`)
    );
    await state.events?.close();
    await state.cache?.close();
  }
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

interface State {
  events?: EventsDb;
  cache?: VerdictCache;
}

async function openState(dir: string, notice: (m: string) => void): Promise<State> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    notice(
      `Cannot use ${dir} (${error instanceof Error ? error.message : error}): ` +
        "events and the verdict cache are not kept (run as root, or pass --root)",
    );
    return {};
  }
  const state: State = {};
  try {
    state.events = await EventsDb.open(`${dir}/events.db`);
    if (state.events.recovered) {
      notice(`events.db was corrupt: moved aside to ${state.events.recovered} and recreated`);
    }
  } catch (error) {
    notice(`Events not recorded: ${error instanceof Error ? error.message : error}`);
  }
  try {
    state.cache = await VerdictCache.open(`${dir}/verdict.cache`);
  } catch (error) {
    notice(`Verdict cache unavailable: ${error instanceof Error ? error.message : error}`);
  }
  return state;
}

async function loadLists(
  policy: Policy,
  root: string,
  notice: (m: string) => void,
): Promise<{ allow?: HashList; block?: HashList }> {
  if (!policy.engines.hashList.enabled) return {};
  const under = (files: string[]) => files.map((f) => resolveUnderRoot(root, f));
  const allow = await loadHashList(under(policy.lists.allowFiles), "Allowed");
  const block = await loadHashList(under(policy.lists.blockFiles), "Simple.Custom.Detection");
  for (const problem of [...allow.problems, ...block.problems]) notice(`Hash list: ${problem}`);
  return { allow, block };
}

interface PreparedClamav {
  fingerprint: string;
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
    return { fingerprint: "no-clamav", hasher: new JsFileHasher(), describe: () => undefined };
  }
  const hasher = new NativeFileHasher();
  if (!policy.engines.clamav.enabled) {
    return { fingerprint: "clamav-off", hasher, describe: () => undefined };
  }
  const set = await readSignatureSet(dbDir);
  if (set.files.length === 0) {
    notice(
      `ClamAV has no signatures in ${dbDir}: scanning with the hash lists only. ` +
        "Install them with freshclam (Debian: apt-get install clamav-freshclam), " +
        "or point --db-dir at a directory of .cvd/.cld/.hsb/.ndb files.",
    );
    return { fingerprint: `no-signatures-${version}`, hasher, describe: () => undefined };
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
    hasher,
    load: () =>
      ClamavEngine.load({ dbDir, tmpDir, limits, scanArchives: policy.scan.scanArchives }),
    describe: (engine) =>
      engine
        ? `ClamAV ${engine.version} (${engine.signatures} signatures from ${dbDir})`
        : `ClamAV ${version} (${dbDir}, not needed: every file was unchanged)`,
  };
}

function describeEngines(
  clamav: string | undefined,
  lists: { allow?: HashList; block?: HashList },
) {
  const engines: string[] = [];
  if (clamav) engines.push(clamav);
  if (lists.block) engines.push(`simple custom detections (${lists.block.size} SHA-256)`);
  if (lists.allow) engines.push(`allow list (${lists.allow.size} SHA-256)`);
  return engines;
}

function describeExclusion(e: { type: string } & Record<string, unknown>): string {
  const value = e.path ?? e.pattern ?? e.extension;
  return `${e.type} exclusion ${String(value)}`;
}

function scanTargets(options: ScanJobOptions, root: string): ScanTargets {
  switch (options.kind) {
    case "custom":
      return customTargets(options.paths ?? []);
    case "full":
      return fullTargets(root);
    case "flash":
      return flashTargets(root);
  }
}
