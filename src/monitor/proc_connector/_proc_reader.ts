/**
 * The proc connector's reader worker: runs {@linkcode readLoop} on the
 * descriptors it is sent, then ends.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type ReaderMessage, type ReaderStart, readLoop } from "./_native.ts";

self.onmessage = (e: MessageEvent<ReaderStart>) => {
  readLoop(e.data, (message: ReaderMessage) => self.postMessage(message));
  self.close();
};
