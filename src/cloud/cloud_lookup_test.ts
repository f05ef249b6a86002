import assert from "node:assert/strict";
import { join } from "node:path";
import { CloudLookup, type LookupTransport } from "./cloud_lookup.ts";
import { LookupCache } from "./lookup_cache.ts";
import type { LookupResult } from "./protocol.ts";

/** A cloud that knows one malicious hash and records the batches it is sent. */
class RecordingCloud implements LookupTransport {
  readonly batches: string[][] = [];
  fail = false;
  constructor(readonly malicious: string) {}
  lookup(sha256: string[]): Promise<LookupResult[]> {
    this.batches.push(sha256);
    if (this.fail) return Promise.reject(new Error("cloud down"));
    return Promise.resolve(
      sha256.map((h) =>
        h === this.malicious
          ? { sha256: h, disposition: "malicious" as const, name: "Cloud.Bad" }
          : { sha256: h, disposition: "unknown" as const }
      ),
    );
  }
}

const hash = (i: number) => i.toString(16).padStart(64, "0");

async function withLookup(
  fn: (
    lookup: CloudLookup,
    cloud: RecordingCloud,
    state: { online: boolean; errors: unknown[] },
  ) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  const cache = await LookupCache.open(join(dir, "cloud_query.cache"));
  const cloud = new RecordingCloud(hash(7));
  const state = { online: true, errors: [] as unknown[] };
  const lookup = new CloudLookup({
    cache,
    transport: () => (state.online ? cloud : undefined),
    maxBatch: 100,
    onError: (e) => state.errors.push(e),
  });
  try {
    await fn(lookup, cloud, state);
  } finally {
    await cache.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("CloudLookup batches concurrent misses, asks each hash once, answers later ones from the cache", async () => {
  await withLookup(async (lookup, cloud) => {
    const hashes = Array.from({ length: 250 }, (_, i) => hash(i));
    const answers = await Promise.all([...hashes, hash(7), hash(7)].map((h) => lookup.lookup(h)));
    assert.deepEqual(cloud.batches.map((b) => b.length), [100, 100, 50]);
    assert.equal(answers[7].disposition, "malicious");
    assert.equal(answers[7].name, "Cloud.Bad");
    assert.equal(answers[250].disposition, "malicious", "a hash asked twice shares one answer");
    assert.equal(answers[0].source, "cloud");
    const again = await lookup.lookup(hash(7));
    assert.deepEqual(again, { disposition: "malicious", name: "Cloud.Bad", source: "cache" });
    assert.equal(cloud.batches.length, 3);
    assert.equal(lookup.stats.cacheHits, 1);
    assert.equal(lookup.stats.cloudAnswers, 250);
  });
});

Deno.test("CloudLookup answers unavailable at once when offline, and after a failed request, caching nothing", async () => {
  await withLookup(async (lookup, cloud, state) => {
    state.online = false;
    assert.deepEqual(await lookup.lookup(hash(7)), {
      disposition: "unknown",
      source: "unavailable",
    });
    assert.equal(cloud.batches.length, 0);
    state.online = true;
    cloud.fail = true;
    assert.equal((await lookup.lookup(hash(7))).source, "unavailable");
    assert.equal(state.errors.length, 1);
    cloud.fail = false;
    assert.equal((await lookup.lookup(hash(7))).disposition, "malicious");
  });
});
