import assert from "node:assert/strict";
import { median, overheadPercent, percentile } from "./daemon_stats.ts";

Deno.test("percentile() takes the nearest rank, whatever the input order", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile(values, 100), 100);
  assert.equal(percentile(values, 0), 1);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([3, 1, 2], 50), 2);
  // p99 of 300 values is the 297th smallest.
  assert.equal(percentile(Array.from({ length: 300 }, (_, i) => i + 1), 99), 297);
});

Deno.test("percentile() gives NaN without values and rejects a percentile out of range", () => {
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile([1], 101), RangeError);
  assert.throws(() => percentile([1], Number.NaN), RangeError);
});

Deno.test("percentile() leaves its input unsorted", () => {
  const values = [3, 1, 2];
  percentile(values, 50);
  assert.deepEqual(values, [3, 1, 2]);
});

Deno.test("median() averages the two middle values of an even count", () => {
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([9, 1, 5]), 5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("overheadPercent() is the relative slow-down, NaN without a baseline", () => {
  assert.equal(overheadPercent(1000, 1050).toFixed(6), "5.000000");
  assert.equal(Math.round(overheadPercent(2000, 1900)), -5);
  assert.ok(Number.isNaN(overheadPercent(0, 10)));
  assert.ok(Number.isNaN(overheadPercent(10, Number.NaN)));
});
