/**
 * What a console page handler is given, and small helpers shared by the page
 * modules (imported only from this folder).
 *
 * @module
 */

import type { ApiLog } from "../server/cloud_api.ts";
import type { CloudStore, ComputerView } from "../server/cloud_store.ts";
import type { Flash, Session } from "./session.ts";

/** A request to a console page, after login (and, for a post, after the CSRF check). */
export interface ConsoleContext {
  request: Request;
  url: URL;
  /** Path parameters (`:id`, `:name`). */
  params: Record<string, string>;
  session: Session;
  store: CloudStore;
  /** The posted form (posts only). */
  form: URLSearchParams;
  /** How often connectors send a heartbeat (what "connected" is measured against). */
  heartbeatSeconds: number;
  /** The clock (ms since the epoch). */
  now: number;
  log?: ApiLog;
}

/** A console page handler. */
export type PageHandler = (ctx: ConsoleContext) => Promise<Response>;

/** The flash message waiting for this page, taken (shown once). */
export function takeFlash(session: Session): Flash | undefined {
  const flash = session.flash;
  session.flash = undefined;
  return flash;
}

/** A computer's connection as the console shows it. */
export type ComputerStatus = "Connected" | "Disconnected" | "Registered";

/**
 * Connected when its last call is within about two heartbeats (and a few
 * seconds); Registered when it never sent a heartbeat.
 */
export function computerStatus(
  c: ComputerView,
  now: number,
  heartbeatSeconds: number,
): ComputerStatus {
  if (c.status === null) return "Registered";
  return now - c.lastSeen <= heartbeatSeconds * 2500 + 5000 ? "Connected" : "Disconnected";
}

/** A page parameter as a positive id, or undefined. */
export function idParam(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  const n = Number(value);
  return n > 0 ? n : undefined;
}

/** The message of an error, for a flash or a log. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
