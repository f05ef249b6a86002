import assert from "node:assert/strict";
import { BatchQueue } from "./batch_queue.ts";

Deno.test("BatchQueue hands batches in order and wakes a waiting consumer", async () => {
  const q = new BatchQueue<number>(10, () => -1);
  const waiting = q.next();
  q.push([1, 2]);
  q.push([3]);
  assert.deepEqual(await waiting, [1, 2]);
  assert.deepEqual(await q.next(), [3]);
});

Deno.test("BatchQueue replaces waiting batches with one overflow record when full", async () => {
  const q = new BatchQueue<number>(2, () => -1);
  assert.equal(q.push([1]), false);
  assert.equal(q.push([2]), false);
  assert.equal(q.push([3]), true);
  assert.deepEqual(await q.next(), [-1]);
  assert.deepEqual(await q.next(), [3]);
});

Deno.test("BatchQueue throws a failure once, then ends; close returns [] at once", async () => {
  const q = new BatchQueue<number>(4, () => -1);
  q.push([1]);
  q.fail(new Error("reader failed"));
  q.end();
  assert.deepEqual(await q.next(), [1]);
  await assert.rejects(q.next(), /reader failed/);
  assert.deepEqual(await q.next(), []);
  assert.ok(q.ended);
  const open = new BatchQueue<number>(4, () => -1);
  const waiting = open.next();
  open.close();
  assert.deepEqual(await waiting, []);
  assert.ok(open.closed);
});
