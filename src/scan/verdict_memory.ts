/**
 * The pipeline's {@linkcode VerdictMemory} over the verdict cache file: each
 * file is looked up with one indexed query (memory stays flat however many
 * files a full scan meets), new verdicts are written in transactions of
 * {@linkcode FLUSH_EVERY}, and at the end verdicts of other signature
 * versions are pruned, so the file does not grow with every update.
 *
 * @module
 */

import type { VerdictMemory } from "../engine/pipeline.ts";
import type { EngineName, FileVerdict } from "../engine/verdict.ts";
import type { VerdictCache, VerdictCacheEntry } from "../store/verdict_cache.ts";
import type { FileStat } from "../sys/libc.ts";

/** New verdicts written to the cache per transaction. */
export const FLUSH_EVERY = 2000;

/** Verdicts remembered across scans, keyed by file identity and signature version. */
export class CacheVerdictMemory implements VerdictMemory {
  readonly #cache: VerdictCache;
  readonly #version: string;
  readonly #pending: VerdictCacheEntry[] = [];
  #writing: Promise<void> = Promise.resolve();

  /**
   * @param cache the open verdict cache
   * @param signatureVersion the signature set verdicts must come from
   */
  constructor(cache: VerdictCache, signatureVersion: string) {
    this.#cache = cache;
    this.#version = signatureVersion;
  }

  get(stat: FileStat): FileVerdict | undefined {
    const hit = this.#cache.get(this.#version, stat);
    if (!hit) return undefined;
    const engine = (hit.engine ?? "cache") as EngineName;
    return {
      verdict: hit.kind === "malicious"
        ? { kind: "malicious", name: hit.name ?? "Unknown", engine }
        : { kind: "clean", engine },
      sha256: hit.sha256,
    };
  }

  remember(stat: FileStat, result: FileVerdict): void {
    const v = result.verdict;
    if (v.kind !== "clean" && v.kind !== "malicious") return;
    this.#pending.push({
      dev: stat.dev,
      ino: stat.ino,
      size: stat.size,
      mtimeNs: stat.mtimeNs,
      ctimeNs: stat.ctimeNs,
      kind: v.kind,
      name: v.kind === "malicious" ? v.name : undefined,
      engine: v.engine,
      sha256: result.sha256,
    });
    if (this.#pending.length >= FLUSH_EVERY) this.#write();
  }

  #write(): void {
    const rows = this.#pending.splice(0);
    this.#writing = this.#writing.then(() => this.#cache.putMany(this.#version, rows));
  }

  /** Writes the verdicts learnt so far (the daemon calls it every few seconds). */
  async flushPending(): Promise<void> {
    if (this.#pending.length > 0) this.#write();
    await this.#writing;
  }

  /** Writes the new verdicts and drops those of older signature versions. */
  async flush(): Promise<void> {
    if (this.#pending.length > 0) this.#write();
    await this.#writing;
    await this.#cache.prune(this.#version);
  }
}
