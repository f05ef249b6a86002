import assert from "node:assert/strict";
import { readBodyAtMost } from "./read_body.ts";

function chunked(chunks: number, size: number): ReadableStream<Uint8Array> {
  let n = 0;
  return new ReadableStream({
    pull(c) {
      if (n++ === chunks) c.close();
      else c.enqueue(new Uint8Array(size).fill(65));
    },
  });
}

Deno.test("readBodyAtMost reads a body up to the limit, counting a chunked one as it streams", async () => {
  assert.deepEqual(await readBodyAtMost(new Response("abc"), 3), new TextEncoder().encode("abc"));
  assert.deepEqual(await readBodyAtMost(new Response(null), 3), new Uint8Array());
  assert.equal((await readBodyAtMost(new Response(chunked(10, 100)), 1000))?.length, 1000);
  assert.equal(await readBodyAtMost(new Response(chunked(11, 100)), 1000), undefined);
});

Deno.test("readBodyAtMost refuses a declared length over the limit without reading", async () => {
  let pulls = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      pulls++;
      c.enqueue(new Uint8Array(10));
      c.close();
    },
  }, { highWaterMark: 0 });
  const response = new Response(body, { headers: { "content-length": "10" } });
  assert.equal(await readBodyAtMost(response, 9), undefined);
  assert.equal(pulls, 0, "nothing was read");
});
