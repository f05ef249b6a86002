/**
 * Quarantine records over the IPC socket: JSON has no bytes or bigints, so
 * paths travel as base64 and times in nanoseconds as decimal strings; a
 * {@linkcode QuarantineError} travels as the error code `quarantine-<reason>`
 * and is rebuilt on the client, so a command behaves the same whether it
 * worked on the quarantine directly or through the daemon.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  QuarantineError,
  type QuarantineErrorReason,
  type QuarantineRecord,
} from "../protect/quarantine.ts";

/** A record as JSON. */
export type WireRecord =
  & Omit<QuarantineRecord, "path" | "restoredPath" | "atimeNs" | "mtimeNs">
  & { path: string; restoredPath?: string; atimeNs: string; mtimeNs: string };

/** A record for the wire. */
export function toWire(r: QuarantineRecord): WireRecord {
  return {
    ...r,
    path: Buffer.from(r.path).toString("base64"),
    restoredPath: r.restoredPath ? Buffer.from(r.restoredPath).toString("base64") : undefined,
    atimeNs: String(r.atimeNs),
    mtimeNs: String(r.mtimeNs),
  };
}

/** A record from the wire. */
export function fromWire(w: WireRecord): QuarantineRecord {
  const { restoredPath, ...rest } = w;
  const record: QuarantineRecord = {
    ...rest,
    path: new Uint8Array(Buffer.from(w.path, "base64")),
    atimeNs: BigInt(w.atimeNs),
    mtimeNs: BigInt(w.mtimeNs),
  };
  if (restoredPath) record.restoredPath = new Uint8Array(Buffer.from(restoredPath, "base64"));
  return record;
}

const PREFIX = "quarantine-";

/** An error the IPC server sends with its code. */
export function toWireError(error: unknown): unknown {
  if (error instanceof QuarantineError) {
    return Object.assign(new Error(error.message), { code: `${PREFIX}${error.reason}` });
  }
  return error;
}

/** Rebuilds a {@linkcode QuarantineError} from a daemon error code, or returns the error. */
export function fromWireError(error: unknown): unknown {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === "string" && code.startsWith(PREFIX) && error instanceof Error) {
    return new QuarantineError(code.slice(PREFIX.length) as QuarantineErrorReason, error.message);
  }
  return error;
}
