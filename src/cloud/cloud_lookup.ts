/**
 * Cloud lookups for the verdict pipeline: one SHA-256 at a time in, batches
 * out. A hash is answered from `cloud_query.cache` when it can be; otherwise
 * it waits a few milliseconds for others to join it and goes to the cloud in
 * one request of up to `maxBatch` hashes. A hash already on its way is not
 * asked twice.
 *
 * The cloud is never required: when there is no transport (not connected)
 * or a request fails, the answer is `unknown` with source `unavailable`, not
 * cached, and the offline engines' verdict stands.
 *
 * @module
 */

import { type LookupCache, type LookupEntry } from "./lookup_cache.ts";
import type { Disposition, LookupResult } from "./protocol.ts";
import { MAX_LOOKUP_BATCH } from "./protocol.ts";

/** Sends one batch to the cloud (the connector's `CloudClient` with its key). */
export interface LookupTransport {
  lookup(sha256: string[]): Promise<LookupResult[]>;
}

/** What a lookup found and where. */
export interface CloudAnswer {
  disposition: Disposition;
  name?: string;
  source: "cache" | "cloud" | "unavailable";
}

/** Options of {@linkcode CloudLookup}. */
export interface CloudLookupOptions {
  cache: LookupCache;
  /** The transport while connected, else undefined. */
  transport: () => LookupTransport | undefined;
  /** How long a hash waits for others before its batch leaves, in ms (default 5). */
  batchDelayMs?: number;
  /** Hashes per request (default 500, at most the protocol's limit). */
  maxBatch?: number;
  /** Told about a failed request (the link then reconsiders the connection). */
  onError?: (error: unknown) => void;
}

/** Counters for `amp status` and the benchmark. */
export interface CloudLookupStats {
  cacheHits: number;
  /** Hashes answered by the cloud. */
  cloudAnswers: number;
  /** Requests sent. */
  requests: number;
  /** Hashes that could not be asked (offline or a failed request). */
  unavailable: number;
}

const UNAVAILABLE: CloudAnswer = { disposition: "unknown", source: "unavailable" };

/** Batched, cached cloud lookups. */
export class CloudLookup {
  /** Counters since start. */
  readonly stats: CloudLookupStats = { cacheHits: 0, cloudAnswers: 0, requests: 0, unavailable: 0 };
  readonly #options: CloudLookupOptions;
  readonly #delay: number;
  readonly #maxBatch: number;
  readonly #waiting = new Map<string, PromiseWithResolvers<CloudAnswer>>();
  #queued: string[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  readonly #inFlight = new Set<Promise<void>>();

  /** @param options the cache, the transport and the batching */
  constructor(options: CloudLookupOptions) {
    this.#options = options;
    this.#delay = options.batchDelayMs ?? 5;
    this.#maxBatch = Math.min(options.maxBatch ?? 500, MAX_LOOKUP_BATCH);
  }

  /** The cached answer only (no request), or undefined. */
  cached(sha256: string): CloudAnswer | undefined {
    const hit = this.#options.cache.get(sha256);
    if (!hit) return undefined;
    this.stats.cacheHits++;
    return hit.name === undefined
      ? { disposition: hit.disposition, source: "cache" }
      : { disposition: hit.disposition, name: hit.name, source: "cache" };
  }

  /** What the cloud says about a SHA-256: from the cache, a batch, or unavailable. */
  lookup(sha256: string): Promise<CloudAnswer> {
    const hit = this.cached(sha256);
    if (hit) return Promise.resolve(hit);
    const waiting = this.#waiting.get(sha256);
    if (waiting) return waiting.promise;
    if (!this.#options.transport()) {
      this.stats.unavailable++;
      return Promise.resolve(UNAVAILABLE);
    }
    const wait = Promise.withResolvers<CloudAnswer>();
    this.#waiting.set(sha256, wait);
    this.#queued.push(sha256);
    if (this.#queued.length >= this.#maxBatch) this.#send();
    else this.#timer ??= setTimeout(() => this.#send(), this.#delay);
    return wait.promise;
  }

  /** Sends what is queued now and waits for every request in flight. */
  async flush(): Promise<void> {
    this.#send();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  #send(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#queued.length > 0) {
      const batch = this.#queued.splice(0, this.#maxBatch);
      const request = this.#request(batch);
      this.#inFlight.add(request);
      request.finally(() => this.#inFlight.delete(request));
    }
  }

  async #request(batch: string[]): Promise<void> {
    const transport = this.#options.transport();
    let results: LookupResult[] | undefined;
    if (transport) {
      this.stats.requests++;
      try {
        results = await transport.lookup(batch);
      } catch (error) {
        this.#options.onError?.(error);
      }
    }
    const answers = new Map<string, CloudAnswer>();
    if (results) {
      const entries: LookupEntry[] = [];
      for (const r of results) {
        if (!this.#waiting.has(r.sha256)) continue;
        const answer: CloudAnswer = { disposition: r.disposition, source: "cloud" };
        if (r.name !== undefined) answer.name = r.name;
        answers.set(r.sha256, answer);
        entries.push(r);
      }
      try {
        this.#options.cache.putMany(entries);
      } catch (error) {
        this.#options.onError?.(error);
      }
    }
    for (const sha256 of batch) {
      const answer = answers.get(sha256);
      if (answer) this.stats.cloudAnswers++;
      else this.stats.unavailable++;
      this.#waiting.get(sha256)?.resolve(answer ?? UNAVAILABLE);
      this.#waiting.delete(sha256);
    }
  }
}
