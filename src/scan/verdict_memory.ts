/**
 * The pipeline's {@linkcode VerdictMemory} over the verdict cache file: all
 * verdicts of the current signature version are read into memory at start
 * (one query), new ones are written in one transaction at the end. Verdicts
 * of other signature versions are pruned then, so the file does not grow
 * with every signature update.
 *
 * @module
 */

import type { VerdictMemory } from "../engine/pipeline.ts";
import type { EngineName, FileVerdict } from "../engine/verdict.ts";
import {
  type CachedVerdict,
  type VerdictCache,
  type VerdictCacheEntry,
  verdictCacheKey,
} from "../store/verdict_cache.ts";
import type { FileStat } from "../sys/libc.ts";

/** Verdicts remembered across scans, keyed by file identity and signature version. */
export class CacheVerdictMemory implements VerdictMemory {
  readonly #cache: VerdictCache;
  readonly #version: string;
  readonly #known: Map<string, CachedVerdict>;
  readonly #pending: VerdictCacheEntry[] = [];

  private constructor(cache: VerdictCache, version: string, known: Map<string, CachedVerdict>) {
    this.#cache = cache;
    this.#version = version;
    this.#known = known;
  }

  /** Reads the verdicts of `signatureVersion` from `cache`. */
  static async open(cache: VerdictCache, signatureVersion: string): Promise<CacheVerdictMemory> {
    return new CacheVerdictMemory(cache, signatureVersion, await cache.load(signatureVersion));
  }

  get(stat: FileStat): FileVerdict | undefined {
    const hit = this.#known.get(verdictCacheKey(stat));
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
  }

  /** Writes the new verdicts and drops those of older signature versions. */
  async flush(): Promise<void> {
    if (this.#pending.length > 0) {
      await this.#cache.putMany(this.#version, this.#pending.splice(0));
    }
    await this.#cache.prune(this.#version);
  }
}
