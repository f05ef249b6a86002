/**
 * The conntrack flow source's reader worker: runs {@linkcode readLoop} on
 * what it is sent (its thread may enter another network namespace), then
 * ends.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type ReaderMessage, type ReaderStart, readLoop } from "./_native.ts";

self.onmessage = (e: MessageEvent<ReaderStart>) => {
  readLoop(e.data, (message: ReaderMessage) => self.postMessage(message));
  self.close();
};
