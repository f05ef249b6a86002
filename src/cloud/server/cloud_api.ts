/**
 * The private cloud's HTTP API over a {@linkcode CloudStore}: the connector
 * calls of the protocol (`/v1/…`, see `../protocol.ts`) and the admin API
 * (`/admin/v1/…`) that the console and scripts use.
 *
 * Authentication: connector calls carry the connector's key (registration
 * carries a registration token); the computer is always the key's, whatever
 * the request says. Admin calls carry the admin token. Both as
 * `Authorization: Bearer …`. A connector key is never an admin token.
 *
 * Admin API (JSON in and out):
 *
 * | call | |
 * |---|---|
 * | `GET /admin/v1/computers`, `GET …/computers/:id` | computers and their last heartbeat |
 * | `PUT …/computers/:id/policy` `{policyId}` | assign a policy |
 * | `DELETE …/computers/:id` | remove a computer (its key stops working) |
 * | `GET …/policies`, `GET …/policies/:id` | policies |
 * | `POST …/policies` (document), `PUT …/policies/:id` (document) | create, edit (serial + 1) |
 * | `POST …/policies/:id/copy` `{name?}`, `DELETE …/policies/:id` | copy, delete |
 * | `GET …/dispositions?after=&limit=&disposition=` | custom detections and known-clean hashes |
 * | `PUT …/dispositions/:sha256` `{disposition, name?}`, `DELETE …/dispositions/:sha256` | set, remove |
 * | `POST …/dispositions/import` `{text, disposition?}` | a list of `SHA-256 name` lines |
 * | `GET …/events?computer=&type=&sha256=&since=&until=&before=&limit=` | events, newest first |
 * | `GET …/registration-tokens`, `POST …` `{label, policyId?}`, `DELETE …/:id` | tokens |
 * | `POST …/computers/:id/restore` `{quarantineId, sha256}`, `GET …/computers/:id/commands` | restore a quarantined file (next heartbeat) |
 * | `GET …/ip-lists`, `GET …/ip-lists/:name`, `PUT …/ip-lists/:name` `{content, description?}`, `DELETE …` | IP lists served at `/v1/ip-lists/:name` |
 *
 * @module
 */

import { readBodyAtMost } from "../read_body.ts";
import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { parseHashList } from "../../engine/hash_list.ts";
import { EVENT_TYPES } from "../../store/event.ts";
import {
  type ErrorBody,
  EventsUploadRequestSchema,
  HeartbeatRequestSchema,
  IpListNameSchema,
  LookupRequestSchema,
  PATHS,
  PROTOCOL_VERSION,
  RegisterRequestSchema,
  Sha256Schema,
} from "../protocol.ts";
import { checkIpList, CloudStore, CloudStoreError } from "./cloud_store.ts";
import type { ComputerRow } from "./cloud_schema.ts";

/** The largest request body accepted, in bytes. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** The largest registration accepted, in bytes (a registration is a few short fields). */
export const MAX_REGISTER_BYTES = 8 * 1024;

/** What the API logs. */
export interface ApiLog {
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
}

/** Options of {@linkcode cloudApi}. */
export interface CloudApiOptions {
  store: CloudStore;
  /** The admin token (compared in constant time). */
  adminToken: string;
  log?: ApiLog;
  /**
   * Answers requests the API does not know (the console mounts here), given
   * the connection's facts when served; undefined falls through to 404.
   */
  fallback?: (
    request: Request,
    url: URL,
    info?: Deno.ServeHandlerInfo,
  ) => Promise<Response | undefined>;
}

/** A request handler for `Deno.serve`. */
export type CloudHandler = (request: Request, info?: Deno.ServeHandlerInfo) => Promise<Response>;

/** An error answer with its status. */
class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
  }
}

const STORE_STATUS: Record<CloudStoreError["code"], number> = {
  "unauthorized": 401,
  "not-found": 404,
  "conflict": 409,
  "bad-request": 400,
};

type Params = Record<string, string>;
type Route = {
  method: string;
  segments: string[];
  run: (request: Request, url: URL, params: Params) => Promise<unknown>;
};

/**
 * Builds the request handler of the cloud API.
 *
 * @example
 * ```ts ignore
 * import { cloudApi } from "./cloud_api.ts";
 * Deno.serve({ port: 8443, cert, key }, cloudApi({ store, adminToken }));
 * ```
 */
export function cloudApi(options: CloudApiOptions): CloudHandler {
  const { store } = options;
  const adminHash = createHash("sha256").update(options.adminToken).digest();
  const routes: Route[] = [];
  const on = (method: string, path: string, run: Route["run"]) =>
    routes.push({ method, segments: path.split("/").filter(Boolean), run });

  const computer = async (request: Request): Promise<ComputerRow> => {
    const key = bearer(request);
    const found = key === undefined ? undefined : await store.authenticate(key);
    if (!found) throw new HttpError(401, "unauthorized", "Unknown connector key");
    return found;
  };
  const admin = (request: Request): void => {
    const token = bearer(request);
    const given = createHash("sha256").update(token ?? "").digest();
    if (token === undefined || !timingSafeEqual(given, adminHash)) {
      throw new HttpError(401, "unauthorized", "Admin token required");
    }
  };

  // ---- connector calls
  on("POST", PATHS.register, async (request) => {
    // The token first: whoever has none must not get the server to read a body.
    const token = bearer(request);
    if (token === undefined || !await store.registrationTokenValid(token)) {
      await request.body?.cancel();
      throw new HttpError(
        401,
        "unauthorized",
        token === undefined
          ? "Registration token required"
          : "Unknown or revoked registration token",
      );
    }
    const body = parse(
      RegisterRequestSchema,
      await readJson(request, undefined, MAX_REGISTER_BYTES),
    );
    const answer = await store.register(token, body).catch((error) => {
      if (error instanceof CloudStoreError && error.code === "conflict") {
        options.log?.warning(
          `Registration of ${body.hostname} as ${body.guid} refused: that computer is ` +
            "registered, and the request does not carry its current key",
        );
      }
      throw error;
    });
    options.log?.info(
      `Registered ${body.hostname} (${body.guid}) as computer #${answer.computerId}`,
    );
    return answer;
  });
  on("POST", PATHS.heartbeat, async (request) => {
    const c = await computer(request);
    return await store.heartbeat(c, parse(HeartbeatRequestSchema, await readJson(request)));
  });
  on("GET", PATHS.policy, async (request) => await store.policyFor(await computer(request)));
  on("POST", PATHS.lookup, async (request) => {
    await computer(request);
    const { sha256 } = parse(LookupRequestSchema, await readJson(request));
    return { results: await store.lookup(sha256) };
  });
  on("POST", PATHS.events, async (request) => {
    const c = await computer(request);
    const { events } = parse(EventsUploadRequestSchema, await readJson(request));
    return await store.storeEvents(Number(c.id), events);
  });
  on("GET", PATHS.events, async (request, url) => {
    const c = await computer(request);
    const events = await store.listEvents({
      computerId: Number(c.id),
      limit: intParam(url, "limit") ?? 100,
      beforeId: intParam(url, "before"),
    });
    return { events: events.map(({ computerId: _, ...e }) => e) };
  });
  on("GET", PATHS.dispositions, async (request, url) => {
    await computer(request);
    return await store.dispositionChanges(intParam(url, "since") ?? 0, intParam(url, "limit"));
  });
  on("GET", `${PATHS.ipLists}/:name`, async (request, _, p) => {
    await computer(request);
    const name = parse(IpListNameSchema, p.name);
    const list = await store.getIpList(name);
    if (!list) throw new HttpError(404, "not-found", `No IP list ${name}`);
    const headers = {
      etag: list.etag,
      "last-modified": new Date(list.updatedAt).toUTCString(),
      "cache-control": "no-cache",
    };
    if (request.headers.get("if-none-match") === list.etag) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(list.content, {
      headers: { ...headers, "content-type": "text/plain; charset=utf-8" },
    });
  });

  // ---- admin API
  const A = "/admin/v1";
  on("GET", `${A}/computers`, async (r) => (admin(r), { computers: await store.listComputers() }));
  on("GET", `${A}/computers/:id`, async (r, _, p) => (admin(r), await store.getComputer(id(p))));
  on("PUT", `${A}/computers/:id/policy`, async (r, _, p) => {
    admin(r);
    const { policyId } = parse(
      z.object({ policyId: z.number().int().positive() }),
      await readJson(r),
    );
    await store.assignPolicy(id(p), policyId);
    options.log?.info(`Computer #${id(p)}: policy #${policyId} assigned`);
    return await store.getComputer(id(p));
  });
  on("POST", `${A}/computers/:id/restore`, async (r, _, p) => {
    admin(r);
    const body = parse(
      z.strictObject({ quarantineId: z.number().int().positive(), sha256: Sha256Schema }),
      await readJson(r),
    );
    return await store.queueRestore(id(p), body.quarantineId, body.sha256);
  });
  on("GET", `${A}/computers/:id/commands`, async (r, _, p) => {
    admin(r);
    await store.getComputer(id(p));
    return { commands: await store.listCommands(id(p)) };
  });
  on("GET", `${A}/ip-lists`, async (r) => (admin(r), { lists: await store.listIpLists() }));
  on("GET", `${A}/ip-lists/:name`, async (r, _, p) => {
    admin(r);
    const list = await store.getIpList(parse(IpListNameSchema, p.name));
    if (!list) throw new HttpError(404, "not-found", `No IP list ${p.name}`);
    return list;
  });
  on("PUT", `${A}/ip-lists/:name`, async (r, _, p) => {
    admin(r);
    const name = parse(IpListNameSchema, p.name);
    const body = parse(
      z.strictObject({ content: z.string(), description: z.string().max(1000).default("") }),
      await readJson(r),
    );
    return await store.putIpList({
      name,
      description: body.description,
      ...checkIpList(name, body.content),
    });
  });
  on("DELETE", `${A}/ip-lists/:name`, async (r, _, p) => {
    admin(r);
    const name = parse(IpListNameSchema, p.name);
    await store.deleteIpList(name);
    return { deleted: name };
  });
  on("DELETE", `${A}/computers/:id`, async (r, _, p) => {
    admin(r);
    await store.deleteComputer(id(p));
    return { deleted: id(p) };
  });
  on("GET", `${A}/policies`, async (r) => (admin(r), { policies: await store.listPolicies() }));
  on("GET", `${A}/policies/:id`, async (r, _, p) => (admin(r), await store.getPolicy(id(p))));
  on("POST", `${A}/policies`, async (r) => (admin(r), await store.createPolicy(await readJson(r))));
  on("PUT", `${A}/policies/:id`, async (r, _, p) => {
    admin(r);
    const policy = await store.updatePolicy(id(p), await readJson(r));
    options.log?.info(`Policy #${policy.id} (${policy.name}) is now serial ${policy.serial}`);
    return policy;
  });
  on("POST", `${A}/policies/:id/copy`, async (r, _, p) => {
    admin(r);
    const { name } = parse(
      z.object({ name: z.string().trim().min(1).optional() }),
      await readJson(r, {}),
    );
    return await store.copyPolicy(id(p), name);
  });
  on("DELETE", `${A}/policies/:id`, async (r, _, p) => {
    admin(r);
    await store.deletePolicy(id(p));
    return { deleted: id(p) };
  });
  on("GET", `${A}/dispositions`, async (r, url) => {
    admin(r);
    const disposition = url.searchParams.get("disposition");
    return {
      dispositions: await store.listDispositions({
        after: url.searchParams.get("after") ?? undefined,
        limit: intParam(url, "limit"),
        disposition: disposition === "clean" || disposition === "malicious"
          ? disposition
          : undefined,
      }),
      total: await store.countDispositions(),
    };
  });
  on("PUT", `${A}/dispositions/:sha256`, async (r, _, p) => {
    admin(r);
    const sha256 = parse(Sha256Schema, p.sha256.toLowerCase());
    const body = parse(
      z.strictObject({
        disposition: z.enum(["clean", "malicious"]),
        name: z.string().trim().min(1).max(255).optional(),
      }),
      await readJson(r),
    );
    const changed = await store.setDispositions([{ sha256, ...body }]);
    if (changed) options.log?.info(`Disposition of ${sha256}: ${body.disposition}`);
    return { sha256, ...body, changed: changed > 0 };
  });
  on("DELETE", `${A}/dispositions/:sha256`, async (r, _, p) => {
    admin(r);
    const sha256 = parse(Sha256Schema, p.sha256.toLowerCase());
    const removed = await store.removeDispositions([sha256]);
    if (!removed) throw new HttpError(404, "not-found", `No disposition for ${sha256}`);
    return { removed: sha256 };
  });
  on("POST", `${A}/dispositions/import`, async (r) => {
    admin(r);
    const body = parse(
      z.strictObject({
        text: z.string(),
        disposition: z.enum(["clean", "malicious"]).default("malicious"),
        defaultName: z.string().trim().min(1).max(255).default("Custom.Detection"),
      }),
      await readJson(r),
    );
    const map = new Map<string, string>();
    const problems = parseHashList(body.text, "import", body.defaultName, map);
    const changed = await store.setDispositions(
      [...map].map(([sha256, name]) => ({ sha256, disposition: body.disposition, name })),
    );
    options.log?.info(`Imported ${map.size} ${body.disposition} hashes (${changed} changed)`);
    return { entries: map.size, changed, problems: problems.slice(0, 20) };
  });
  on("GET", `${A}/events`, async (r, url) => {
    admin(r);
    const type = url.searchParams.get("type") ?? undefined;
    if (type !== undefined && !(EVENT_TYPES as readonly string[]).includes(type)) {
      throw new HttpError(400, "bad-request", `Unknown event type: ${type}`);
    }
    return {
      events: await store.listEvents({
        computerId: intParam(url, "computer"),
        type,
        sha256: url.searchParams.get("sha256")?.toLowerCase() ?? undefined,
        since: intParam(url, "since"),
        until: intParam(url, "until"),
        beforeId: intParam(url, "before"),
        limit: intParam(url, "limit"),
      }),
    };
  });
  on("GET", `${A}/registration-tokens`, async (r) => {
    admin(r);
    return { tokens: await store.listRegistrationTokens() };
  });
  on("POST", `${A}/registration-tokens`, async (r) => {
    admin(r);
    const body = parse(
      z.strictObject({
        label: z.string().trim().min(1).max(255),
        policyId: z.number().int().positive().optional(),
      }),
      await readJson(r),
    );
    return await store.createRegistrationToken(body);
  });
  on("DELETE", `${A}/registration-tokens/:id`, async (r, _, p) => {
    admin(r);
    await store.revokeRegistrationToken(id(p));
    return { revoked: id(p) };
  });
  on("GET", "/health", () => Promise.resolve({ ok: true, protocol: PROTOCOL_VERSION }));

  return async (request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> => {
    const url = new URL(request.url);
    const segments = url.pathname.split("/").filter(Boolean);
    let allowed = false;
    try {
      for (const route of routes) {
        const params = match(route.segments, segments);
        if (!params) continue;
        if (route.method !== request.method) {
          allowed = true;
          continue;
        }
        const answer = await route.run(request, url, params);
        return answer instanceof Response ? answer : json(200, answer);
      }
      const other = await options.fallback?.(request, url, info);
      if (other) return other;
      if (allowed) throw new HttpError(405, "method-not-allowed", `${request.method} not allowed`);
      throw new HttpError(404, "not-found", `No such call: ${url.pathname}`);
    } catch (error) {
      return errorResponse(error, request, options.log);
    }
  };
}

function match(pattern: string[], segments: string[]): Params | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(":")) params[pattern[i].slice(1)] = decodeSegment(segments[i]);
    else if (pattern[i] !== segments[i]) return undefined;
  }
  return params;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, "bad-request", `Invalid percent-encoding in the path: ${segment}`);
  }
}

function bearer(request: Request): string | undefined {
  const header = request.headers.get("authorization");
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1] : undefined;
}

function id(params: Params): number {
  const n = Number(params.id);
  if (!Number.isSafeInteger(n) || n < 1) throw new HttpError(400, "bad-request", "Invalid id");
  return n;
}

function intParam(url: URL, name: string): number | undefined {
  const value = url.searchParams.get(name);
  if (value === null || value === "") return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new HttpError(400, "bad-request", `Invalid ${name}: expected a whole number`);
  }
  return n;
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new HttpError(400, "bad-request", `Invalid request:\n${z.prettifyError(result.error)}`);
}

async function readJson(
  request: Request,
  empty?: unknown,
  max = MAX_BODY_BYTES,
): Promise<unknown> {
  const bytes = await readBodyAtMost(request, max);
  if (!bytes) throw new HttpError(413, "too-large", `Request body over ${max} bytes`);
  if (bytes.length === 0 && empty !== undefined) return empty;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new HttpError(400, "bad-request", "Invalid JSON in the request body");
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

function errorResponse(error: unknown, request: Request, log?: ApiLog): Response {
  let status = 500;
  let body: ErrorBody = { error: "Internal error", code: "internal" };
  if (error instanceof HttpError) {
    status = error.status;
    body = { error: error.message, code: error.code };
  } else if (error instanceof CloudStoreError) {
    status = STORE_STATUS[error.code];
    body = { error: error.message, code: error.code };
  } else {
    const message = error instanceof Error ? error.message : String(error);
    log?.error(`${request.method} ${new URL(request.url).pathname} failed: ${message}`);
  }
  if (status === 401) {
    log?.warning(`${request.method} ${new URL(request.url).pathname}: ${body.error}`);
  }
  return json(status, body);
}
