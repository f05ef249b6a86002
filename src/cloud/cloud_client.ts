/**
 * The connector's side of the cloud protocol ({@linkcode ./protocol.ts}):
 * one HTTPS client with the configured CA bundle and proxy, each call's
 * answer validated against its schema.
 *
 * The port is the URL's: 443 for `https://cloud.example.org`, as the
 * reference connector (which speaks to its cloud on 443 only); a port is used
 * only where the URL names one. Failures come in three kinds, because the
 * caller acts differently on each: {@linkcode CloudUnavailableError} (no
 * answer, TLS failure, timeout, a 5xx: retry later with backoff),
 * {@linkcode CloudRequestError} (the cloud refused: a bad or revoked key, a bad
 * request) and {@linkcode CloudProtocolError} (an answer this build cannot
 * read).
 *
 * @module
 */

import type { z } from "zod";
import {
  ConnectorEventsResponseSchema,
  type DispositionChangesResponse,
  DispositionChangesResponseSchema,
  ErrorBodySchema,
  type EventsUploadResponse,
  EventsUploadResponseSchema,
  type HeartbeatRequest,
  type HeartbeatResponse,
  HeartbeatResponseSchema,
  type LookupResponse,
  LookupResponseSchema,
  PATHS,
  type PolicyResponse,
  PolicyResponseSchema,
  type RegisterRequest,
  type RegisterResponse,
  RegisterResponseSchema,
  type StoredWireEvent,
  type WireEvent,
} from "./protocol.ts";

/** Default time a call may take, answer included, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 15_000;

/** The cloud could not be reached, or failed (network, TLS, timeout, 5xx): retry later. */
export class CloudUnavailableError extends Error {
  /** The HTTP status, when the cloud answered with a server error. */
  readonly status?: number;

  /**
   * @param message for people
   * @param options the HTTP status and the underlying error
   */
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "CloudUnavailableError";
    if (options.status !== undefined) this.status = options.status;
  }
}

/** The cloud refused the call (4xx): a bad token or key, or a bad request. */
export class CloudRequestError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The cloud's error code (`unauthorized`, `bad-request`, …). */
  readonly code: string;

  /**
   * @param message for people
   * @param status the HTTP status
   * @param code the cloud's error code
   */
  constructor(message: string, status: number, code: string) {
    super(message);
    this.name = "CloudRequestError";
    this.status = status;
    this.code = code;
  }
}

/** The cloud answered something this build cannot read. */
export class CloudProtocolError extends Error {
  /**
   * @param message for people
   * @param options the underlying error
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CloudProtocolError";
  }
}

/** Options of {@linkcode CloudClient}. */
export interface CloudClientOptions {
  /** The cloud's URL (`https://cloud.example.org`, or with a port and a path prefix). */
  url: string;
  /** PEM certificates trusted besides the system's (amp.json `cloud.ca`). */
  caCerts?: string[];
  /** An HTTP proxy URL; credentials in it are sent as proxy basic auth. */
  proxy?: string;
  /** Time a call may take, in milliseconds. */
  timeoutMs?: number;
}

/**
 * Whether a URL's host is this machine: 127.0.0.0/8, ::1 or localhost.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./cloud_client.ts";
 * isLoopbackHost(new URL("http://[::1]:8080").hostname); // true
 * ```
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/**
 * Parses and checks a cloud URL: https (plain http only on this machine, as
 * for a cloud reached through a local tunnel: the key and the policy must not
 * cross a network in clear), no query or fragment. The path, if any, is a
 * prefix for every call.
 *
 * @example
 * ```ts
 * import { cloudUrl } from "./cloud_client.ts";
 * cloudUrl("https://cloud.example.org").port; // "" (443)
 * ```
 */
export function cloudUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new TypeError(`Invalid cloud URL ${url}: not a URL`, { cause: error });
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new TypeError(`Invalid cloud URL ${url}: expected https://`);
  }
  if (parsed.protocol === "http:" && !isLoopbackHost(parsed.hostname)) {
    throw new TypeError(
      `Invalid cloud URL ${url}: use https:// (plain http is only for this machine: ` +
        "127.0.0.0/8, ::1, localhost)",
    );
  }
  if (parsed.search || parsed.hash) {
    throw new TypeError(`Invalid cloud URL ${url}: no query or fragment allowed`);
  }
  return parsed;
}

/**
 * A client of one cloud.
 *
 * @example
 * ```ts ignore
 * import { CloudClient } from "./cloud_client.ts";
 * const client = new CloudClient({ url: "https://cloud.example.org" });
 * const { results } = await client.lookup("connector-key", ["e3b0c442…"]);
 * client.close();
 * ```
 */
export class CloudClient {
  /** The cloud's origin, for messages. */
  readonly origin: string;
  readonly #base: URL;
  readonly #client: Deno.HttpClient;
  readonly #timeoutMs: number;
  #closed = false;

  /** @param options where the cloud is and how to reach it */
  constructor(options: CloudClientOptions) {
    this.#base = cloudUrl(options.url);
    this.origin = this.#base.origin;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const httpOptions: Deno.CreateHttpClientOptions = { poolIdleTimeout: 60_000 };
    if (options.caCerts && options.caCerts.length > 0) httpOptions.caCerts = options.caCerts;
    if (options.proxy) httpOptions.proxy = proxyOption(options.proxy);
    this.#client = Deno.createHttpClient(httpOptions);
  }

  /** Registers a connector with a registration token; the answer holds its own key. */
  register(token: string, request: RegisterRequest): Promise<RegisterResponse> {
    return this.#call("POST", PATHS.register, token, request, RegisterResponseSchema);
  }

  /** Sends the connector's state; learns the policy serial and disposition cursor. */
  heartbeat(key: string, request: HeartbeatRequest): Promise<HeartbeatResponse> {
    return this.#call("POST", PATHS.heartbeat, key, request, HeartbeatResponseSchema);
  }

  /** Fetches the assigned policy. */
  policy(key: string): Promise<PolicyResponse> {
    return this.#call("GET", PATHS.policy, key, undefined, PolicyResponseSchema);
  }

  /** Looks up a batch of SHA-256 (at most `MAX_LOOKUP_BATCH`). */
  lookup(key: string, sha256: string[], timeoutMs?: number): Promise<LookupResponse> {
    return this.#call("POST", PATHS.lookup, key, { sha256 }, LookupResponseSchema, timeoutMs);
  }

  /** Uploads a batch of events (at most `MAX_EVENT_BATCH`); resending one is harmless. */
  uploadEvents(key: string, events: WireEvent[]): Promise<EventsUploadResponse> {
    return this.#call("POST", PATHS.events, key, { events }, EventsUploadResponseSchema);
  }

  /** The connector's own events as the cloud holds them, newest first. */
  async events(key: string, limit = 100): Promise<StoredWireEvent[]> {
    const path = `${PATHS.events}?limit=${limit}`;
    return (await this.#call("GET", path, key, undefined, ConnectorEventsResponseSchema)).events;
  }

  /** Disposition changes after `since`, oldest first. */
  dispositions(key: string, since: number, limit?: number): Promise<DispositionChangesResponse> {
    const query = `since=${since}${limit === undefined ? "" : `&limit=${limit}`}`;
    return this.#call(
      "GET",
      `${PATHS.dispositions}?${query}`,
      key,
      undefined,
      DispositionChangesResponseSchema,
    );
  }

  /** Closes the connection pool; safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.close();
  }

  async #call<T>(
    method: "GET" | "POST",
    path: string,
    credential: string,
    body: unknown,
    schema: z.ZodType<T>,
    timeoutMs = this.#timeoutMs,
  ): Promise<T> {
    const prefix = this.#base.pathname.replace(/\/+$/, "");
    const url = new URL(prefix + path, this.#base.origin);
    const name = `${method} ${url.pathname}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${credential}`,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        client: this.#client,
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      const reason = error instanceof DOMException && error.name === "TimeoutError"
        ? `no answer within ${timeoutMs} ms`
        : describeFetchError(error);
      throw new CloudUnavailableError(`Cannot reach the cloud at ${this.origin}: ${reason}`, {
        cause: error,
      });
    }
    if (!response.ok) {
      const detail = errorDetail(text);
      const message = `Cloud refused ${name}: ${response.status} ${detail.error}`;
      if (response.status >= 500 || response.status === 408 || response.status === 429) {
        throw new CloudUnavailableError(message, { status: response.status });
      }
      throw new CloudRequestError(message, response.status, detail.code);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new CloudProtocolError(`Cloud answered ${name} with invalid JSON`, { cause: error });
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new CloudProtocolError(
        `Cloud answered ${name} with an unexpected document: ${parsed.error.issues[0]?.message}`,
        { cause: parsed.error },
      );
    }
    return parsed.data;
  }
}

/** An HTTP proxy URL as Deno wants it: credentials in it become proxy basic auth. */
export function proxyOption(proxy: string): Deno.Proxy {
  const url = new URL(proxy);
  const basicAuth = url.username
    ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
    : undefined;
  url.username = "";
  url.password = "";
  return basicAuth ? { url: url.href, basicAuth } : { url: url.href };
}

function errorDetail(text: string): { error: string; code: string } {
  try {
    const parsed = ErrorBodySchema.safeParse(JSON.parse(text));
    if (parsed.success) return parsed.data;
  } catch {
    // not JSON: fall through
  }
  return { error: text.slice(0, 200) || "(no message)", code: "unknown" };
}

function describeFetchError(error: unknown): string {
  // fetch wraps the transport error: the cause says what happened (refused, TLS, DNS).
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error && parts.length < 4; e = e.cause) {
    if (!parts.some((p) => p.includes(e instanceof Error ? e.message : ""))) parts.push(e.message);
  }
  return parts.join(": ") || String(error);
}
