import assert from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_TTL_SECONDS, LookupCache } from "./lookup_cache.ts";

async function withCache(
  fn: (cache: LookupCache, clock: { now: number }, path: string) => void | Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  const clock = { now: 1_000_000 };
  const path = join(dir, "cloud_query.cache");
  const cache = await LookupCache.open(path, { now: () => clock.now, maxEntries: 3 });
  try {
    await fn(cache, clock, path);
  } finally {
    await cache.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);
const D = "d".repeat(64);

Deno.test("LookupCache keeps clean answers 7 days and malicious or unknown ones 1 hour", async () => {
  await withCache((cache, clock) => {
    cache.putMany([
      { sha256: A, disposition: "clean" },
      { sha256: B, disposition: "malicious", name: "Bad.Tool" },
      { sha256: C, disposition: "unknown" },
    ]);
    assert.deepEqual(cache.get(B), {
      disposition: "malicious",
      name: "Bad.Tool",
      expiresAt: clock.now + DEFAULT_TTL_SECONDS.malicious * 1000,
    });
    clock.now += 3600_000;
    assert.equal(cache.get(B), undefined);
    assert.equal(cache.get(C), undefined);
    assert.equal(cache.get(A)?.disposition, "clean");
    clock.now += 7 * 86400_000;
    assert.equal(cache.get(A), undefined);
  });
});

Deno.test("LookupCache takes the TTL from the answer when given, and replaces older answers", async () => {
  await withCache((cache, clock) => {
    cache.putMany([{ sha256: A, disposition: "clean", ttlSeconds: 10 }]);
    clock.now += 9_000;
    assert.equal(cache.get(A)?.disposition, "clean");
    cache.putMany([{ sha256: A, disposition: "malicious", name: "Now.Bad" }]);
    assert.equal(cache.get(A)?.name, "Now.Bad");
    cache.deleteMany([A]);
    assert.equal(cache.get(A), undefined);
  });
});

Deno.test("LookupCache.prune() drops expired entries, then those expiring soonest over the bound", async () => {
  await withCache(async (cache, clock, path) => {
    cache.putMany([
      { sha256: A, disposition: "unknown", ttlSeconds: 1 },
      { sha256: B, disposition: "clean", ttlSeconds: 100 },
      { sha256: C, disposition: "clean", ttlSeconds: 200 },
      { sha256: D, disposition: "clean", ttlSeconds: 300 },
    ]);
    clock.now += 2_000;
    assert.equal(cache.prune(), 1);
    assert.equal(cache.count(), 3);
    cache.putMany([{ sha256: A, disposition: "clean", ttlSeconds: 400 }]);
    assert.equal(cache.prune(), 1);
    assert.equal(cache.get(B), undefined);
    assert.equal(cache.get(A)?.disposition, "clean");
    // The answers survive reopening.
    const again = await LookupCache.open(path, { now: () => clock.now });
    assert.equal(again.get(D)?.disposition, "clean");
    await again.close();
  });
});
