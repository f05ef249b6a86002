import assert from "node:assert/strict";
import { backoffDelay } from "./backoff.ts";

Deno.test("backoffDelay() doubles from the base up to the cap, jitter within the upper half", () => {
  const options = { baseMs: 1000, maxMs: 30_000 };
  const low = (n: number) => backoffDelay(n, { ...options, random: () => 0 });
  const high = (n: number) => backoffDelay(n, { ...options, random: () => 0.999999 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(low), [500, 1000, 2000, 4000, 8000, 15000, 15000]);
  assert.deepEqual([0, 1, 5, 100].map(high), [1000, 2000, 30000, 30000]);
});

Deno.test("backoffDelay() spreads a fleet's retries over the jitter window", () => {
  const delays = new Set<number>();
  for (let i = 0; i < 200; i++) delays.add(backoffDelay(4, { baseMs: 1000, maxMs: 60_000 }));
  assert.ok(delays.size > 100, `only ${delays.size} distinct delays`);
  for (const d of delays) assert.ok(d >= 8000 && d <= 16000, `delay ${d} out of range`);
});
