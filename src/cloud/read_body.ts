/**
 * Reading an HTTP body with a size limit, for requests the cloud server
 * and console take and for answers the updater downloads: a declared
 * Content-Length over the limit is refused before anything is read, and
 * the bytes are counted as they stream (a chunked body declares nothing).
 *
 * @module
 */

/**
 * The whole body of `message`, or undefined once it is larger than `limit`
 * bytes (the rest is not read; the body is cancelled).
 *
 * @example
 * ```ts
 * import { readBodyAtMost } from "./read_body.ts";
 * const bytes = await readBodyAtMost(new Response("198.51.100.1\n"), 1024);
 * // bytes?.length === 13
 * ```
 */
export async function readBodyAtMost(
  message: Request | Response,
  limit: number,
): Promise<Uint8Array | undefined> {
  if (Number(message.headers.get("content-length") ?? "0") > limit) {
    await message.body?.cancel();
    return undefined;
  }
  if (!message.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of message.body) {
    size += chunk.length;
    if (size > limit) return undefined; // leaving the loop cancels the body
    chunks.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
