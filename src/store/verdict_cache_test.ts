import assert from "node:assert/strict";
import { join } from "node:path";
import {
  VerdictCache,
  type VerdictCacheEntry,
  verdictCacheKey,
  type VerdictCacheStat,
} from "./verdict_cache.ts";

async function withCache(fn: (cache: VerdictCache, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "verdict.cache");
  const cache = await VerdictCache.open(path);
  try {
    await fn(cache, path);
  } finally {
    await cache.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function stat(ino: number): VerdictCacheStat {
  return {
    dev: 2049n,
    ino: BigInt(ino),
    size: 4096 + ino,
    mtimeNs: 1_700_000_000_123_456_789n + BigInt(ino),
    ctimeNs: 1_700_000_001_987_654_321n + BigInt(ino),
  };
}

Deno.test("verdictCacheKey() joins the stat fields exactly, beyond 2^53", () => {
  assert.equal(
    verdictCacheKey({
      dev: 2n ** 64n - 1n,
      ino: 2n ** 63n + 5n,
      size: 68,
      mtimeNs: 1_700_000_000_123_456_789n,
      ctimeNs: -1n,
    }),
    "18446744073709551615:9223372036854775813:68:1700000000123456789:-1",
  );
});

Deno.test("VerdictCache.putMany() and load() round-trip verdicts of one signature version", async () => {
  await withCache(async (cache) => {
    const before = Date.now();
    await cache.putMany("v1", [
      { ...stat(1), kind: "clean", engine: "clamav", sha256: "aa".repeat(32) },
      { ...stat(2), kind: "malicious", name: "Eicar-Signature", engine: "clamav" },
    ]);
    await cache.putMany("v2", [{ ...stat(3), kind: "clean" }]);
    const v1 = await cache.load("v1");
    assert.equal(v1.size, 2);
    const clean = v1.get(verdictCacheKey(stat(1)));
    const malicious = v1.get(verdictCacheKey(stat(2)));
    assert.ok(clean && malicious);
    assert.ok(clean.scannedAt >= before && clean.scannedAt <= Date.now());
    assert.deepEqual(clean, {
      kind: "clean",
      engine: "clamav",
      sha256: "aa".repeat(32),
      scannedAt: clean.scannedAt,
    });
    assert.deepEqual(malicious, {
      kind: "malicious",
      name: "Eicar-Signature",
      engine: "clamav",
      scannedAt: malicious.scannedAt,
    });
    assert.deepEqual([...(await cache.load("v2")).keys()], [verdictCacheKey(stat(3))]);
    assert.equal((await cache.load("v3")).size, 0);
  });
});

Deno.test("VerdictCache.load() keeps 64-bit dev, ino and times exact", async () => {
  await withCache(async (cache) => {
    const huge: VerdictCacheStat = {
      dev: 2n ** 64n - 1n,
      ino: 2n ** 63n + 12345n,
      size: 2 ** 40,
      mtimeNs: 2n ** 62n + 1n,
      ctimeNs: -(10n ** 18n) - 1n,
    };
    await cache.putMany("v1", [{ ...huge, kind: "clean" }]);
    assert.deepEqual([...(await cache.load("v1")).keys()], [verdictCacheKey(huge)]);
  });
});

Deno.test("VerdictCache.putMany() replaces the verdict of a file that changed", async () => {
  await withCache(async (cache) => {
    await cache.putMany("v1", [{ ...stat(1), kind: "clean" }]);
    const changed = { ...stat(1), size: 1, ctimeNs: stat(1).ctimeNs + 1n };
    await cache.putMany("v1", [{ ...changed, kind: "malicious", name: "Eicar" }]);
    const v1 = await cache.load("v1");
    assert.deepEqual([...v1.keys()], [verdictCacheKey(changed)]);
    assert.equal(v1.get(verdictCacheKey(changed))?.kind, "malicious");
  });
});

Deno.test("VerdictCache.putMany() refuses verdicts other than clean and malicious, storing none", async () => {
  await withCache(async (cache) => {
    const entries = [
      { ...stat(1), kind: "clean" },
      { ...stat(2), kind: "error" },
    ] as unknown as VerdictCacheEntry[];
    await assert.rejects(cache.putMany("v1", entries), /CHECK constraint failed/);
    assert.equal((await cache.load("v1")).size, 0);
    await cache.putMany("v1", [{ ...stat(3), kind: "clean" }]);
    assert.equal((await cache.load("v1")).size, 1);
  });
});

Deno.test("VerdictCache.prune() deletes the verdicts of other signature versions", async () => {
  await withCache(async (cache) => {
    await cache.putMany("v1", [{ ...stat(1), kind: "clean" }, { ...stat(2), kind: "clean" }]);
    await cache.putMany("v2", [{ ...stat(1), kind: "clean" }]);
    assert.equal(await cache.prune("v2"), 2);
    assert.equal((await cache.load("v1")).size, 0);
    assert.equal((await cache.load("v2")).size, 1);
  });
});

Deno.test("VerdictCache.open() keeps verdicts across reopening and close() is safe twice", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "verdict.cache");
    const cache = await VerdictCache.open(path);
    await cache.putMany("v1", [{ ...stat(1), kind: "clean" }]);
    await cache.close();
    await cache.close();
    const reopened = await VerdictCache.open(path);
    try {
      assert.equal(reopened.recovered, undefined);
      assert.equal((await reopened.load("v1")).size, 1);
    } finally {
      await reopened.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("VerdictCache.open() moves a corrupt cache aside and recreates it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "verdict.cache");
    await Deno.writeFile(path, crypto.getRandomValues(new Uint8Array(4096)));
    const cache = await VerdictCache.open(path);
    try {
      assert.match(cache.recovered ?? "", /verdict\.cache\.corrupt-/);
      assert.equal((await cache.load("v1")).size, 0);
    } finally {
      await cache.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("VerdictCache.putMany() and load() handle 50,000 verdicts in well under a second", async () => {
  await withCache(async (cache) => {
    const entries: VerdictCacheEntry[] = Array.from(
      { length: 50_000 },
      (_, i) => ({ ...stat(i), kind: "clean", engine: "clamav", sha256: "ab".repeat(32) }),
    );
    let start = performance.now();
    await cache.putMany("v1", entries);
    const putMs = performance.now() - start;
    start = performance.now();
    const loaded = await cache.load("v1");
    const loadMs = performance.now() - start;
    assert.equal(loaded.size, 50_000);
    assert.ok(putMs < 1000, `putMany took ${putMs.toFixed(0)} ms`);
    assert.ok(loadMs < 1000, `load took ${loadMs.toFixed(0)} ms`);
  });
});

Deno.test("VerdictCache.get() finds an unchanged file and misses a changed one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cache = await VerdictCache.open(`${dir}/verdict.cache`);
    const stat = { dev: 2n ** 64n - 1n, ino: 131n, size: 68, mtimeNs: 1n, ctimeNs: 2n };
    await cache.putMany("v1", [{
      ...stat,
      kind: "malicious",
      name: "X",
      engine: "clamav",
      sha256: "ab",
    }]);
    assert.equal(cache.get("v1", stat)?.name, "X");
    assert.equal(cache.get("v1", { ...stat, ctimeNs: 3n }), undefined);
    assert.equal(cache.get("v2", stat), undefined);
    await cache.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
