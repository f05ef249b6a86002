import assert from "node:assert/strict";
import { FileQueue } from "./file_queue.ts";

Deno.test("FileQueue replaces a waiting file's event in its place and keeps arrival order", () => {
  const q = new FileQueue<string>(10);
  const replaced: string[] = [];
  assert.equal(q.push("1:10", "a"), "queued");
  assert.equal(q.push("1:11", "b"), "queued");
  assert.equal(q.push("1:10", "a renamed", (old) => replaced.push(old)), "replaced");
  assert.deepEqual(replaced, ["a"]);
  assert.equal(q.size, 2);
  assert.equal(q.shift(), "a renamed");
  assert.equal(q.push("1:10", "a later"), "queued");
  assert.equal(q.shift(), "b");
  assert.equal(q.shift(), "a later");
  assert.equal(q.shift(), undefined);
});

Deno.test("FileQueue refuses items beyond its limit and drains the rest", () => {
  const q = new FileQueue<number>(2);
  assert.equal(q.push("a", 1), "queued");
  assert.equal(q.push("b", 2), "queued");
  assert.equal(q.push("c", 3), "full");
  const drained: number[] = [];
  q.drain((n) => drained.push(n));
  assert.deepEqual(drained, [1, 2]);
  assert.equal(q.size, 0);
});
