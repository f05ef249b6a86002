/**
 * The conntrack flow source's sock_diag worker: enters the source's network
 * namespace (its thread only), opens a `NETLINK_SOCK_DIAG` socket there and
 * answers `SOCK_DESTROY` requests one by one. A thread of its own, because
 * the reader's is blocked in `poll`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type DestroyResult, destroySocket, enterNetns, lib, openDiagSocket } from "./_native.ts";
import type { DiagTuple } from "./sock_diag.ts";

/** What the worker is sent: its namespace first, then tuples to destroy, then "close". */
export type DiagWorkerRequest =
  | { type: "start"; netns?: string }
  | { type: "destroy"; id: number; tuple: DiagTuple }
  | { type: "close" };

/** What it answers: one per "destroy" (same id), or why it could not start. */
export type DiagWorkerAnswer = { id: number; result: DestroyResult };

let sock = -1;
let startError: string | undefined;

self.onmessage = (e: MessageEvent<DiagWorkerRequest>) => {
  const m = e.data;
  if (m.type === "start") {
    try {
      if (m.netns !== undefined) enterNetns(m.netns);
      sock = openDiagSocket();
    } catch (error) {
      startError = error instanceof Error ? error.message : String(error);
    }
  } else if (m.type === "destroy") {
    let result: DestroyResult;
    if (sock < 0) result = { ok: false, error: `No sock_diag socket: ${startError}` };
    else {
      try {
        result = destroySocket(sock, m.tuple);
      } catch (error) {
        result = { ok: false, error: error instanceof Error ? error.message : String(error) };
      }
    }
    self.postMessage({ id: m.id, result } satisfies DiagWorkerAnswer);
  } else {
    if (sock >= 0) lib().close(sock);
    sock = -1;
    self.close();
  }
};
