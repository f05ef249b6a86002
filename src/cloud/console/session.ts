/**
 * Console sessions and CSRF tokens.
 *
 * A session is made when the admin token is given at the login form; the
 * browser holds only its random id, in a cookie that is HttpOnly,
 * SameSite=Strict, Path=/console and Secure when the cloud serves HTTPS.
 * Sessions live in the server's memory: a restart logs everyone out, which
 * for a single admin token is the safe default. A session ends after
 * {@linkcode SessionOptions.idleMs} without a request, after
 * {@linkcode SessionOptions.maxAgeMs} in any case, and at logout.
 *
 * CSRF: every form that posts carries the session's own token in a hidden
 * field, compared in constant time (the synchronizer-token pattern); the
 * login form, before there is a session, uses a double-submit cookie.
 *
 * @module
 */

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A message shown once on the next page. */
export interface Flash {
  kind: "ok" | "error";
  text: string;
}

/** One logged-in browser. */
export interface Session {
  /** The cookie's value. */
  readonly id: string;
  /** The token every form of this session carries. */
  readonly csrf: string;
  readonly created: number;
  lastUsed: number;
  /** A message for the next page. */
  flash?: Flash;
}

/** Options of {@linkcode SessionStore}. */
export interface SessionOptions {
  /** A session unused this long ends (default 8 hours). */
  idleMs?: number;
  /** A session ends this long after login whatever happens (default 24 hours). */
  maxAgeMs?: number;
  /** Most sessions kept; the least recently used go first (default 1000). */
  maxSessions?: number;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

/**
 * A new random token: 256 bits, base64url.
 *
 * @example
 * ```ts
 * import { newToken } from "./session.ts";
 * newToken().length; // 43
 * ```
 */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Compares two secrets in constant time (of their SHA-256, so lengths leak nothing).
 *
 * @example
 * ```ts
 * import { tokensEqual } from "./session.ts";
 * tokensEqual("abc", "abc"); // true
 * ```
 */
export function tokensEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

/** The console's sessions, in memory. */
export class SessionStore {
  readonly #sessions = new Map<string, Session>();
  readonly #idleMs: number;
  readonly #maxAgeMs: number;
  readonly #max: number;
  readonly #now: () => number;

  /** @param options lifetimes, size and clock */
  constructor(options: SessionOptions = {}) {
    this.#idleMs = options.idleMs ?? 8 * 3600_000;
    this.#maxAgeMs = options.maxAgeMs ?? 24 * 3600_000;
    this.#max = options.maxSessions ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Sessions held now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Starts a session (after a successful login). */
  create(): Session {
    const now = this.#now();
    while (this.#sessions.size >= this.#max) {
      // Map order is insertion order, refreshed on use: the first is the least recently used.
      this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    const session: Session = { id: newToken(), csrf: newToken(), created: now, lastUsed: now };
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id (its idle time starts again), or undefined. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.#sessions.get(id);
    if (!session) return undefined;
    const now = this.#now();
    if (now - session.lastUsed > this.#idleMs || now - session.created > this.#maxAgeMs) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.lastUsed = now;
    this.#sessions.delete(id);
    this.#sessions.set(id, session);
    return session;
  }

  /** Ends a session (logout). */
  destroy(id: string): void {
    this.#sessions.delete(id);
  }
}

/** Whether a form's CSRF token is the session's. */
export function csrfValid(session: Session, given: string | null): boolean {
  return given !== null && given !== "" && tokensEqual(session.csrf, given);
}

/**
 * Parses a Cookie header.
 *
 * @example
 * ```ts
 * import { parseCookies } from "./session.ts";
 * parseCookies("a=1; amp_console=xyz").get("amp_console"); // "xyz"
 * ```
 */
export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at < 1) continue;
    const name = part.slice(0, at).trim();
    if (!out.has(name)) out.set(name, part.slice(at + 1).trim());
  }
  return out;
}

/** Options of {@linkcode cookie}. */
export interface CookieOptions {
  /** Add `Secure` (the cloud serves HTTPS). */
  secure: boolean;
  path?: string;
  /** Lifetime in seconds; 0 deletes the cookie; absent: a browser-session cookie. */
  maxAgeSeconds?: number;
}

/**
 * A Set-Cookie value: HttpOnly and SameSite=Strict always, Secure under TLS.
 *
 * @example
 * ```ts
 * import { cookie } from "./session.ts";
 * cookie("amp_console", "abc", { secure: true });
 * // "amp_console=abc; Path=/console; HttpOnly; SameSite=Strict; Secure"
 * ```
 */
export function cookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${options.path ?? "/console"}`, "HttpOnly"];
  parts.push("SameSite=Strict");
  if (options.maxAgeSeconds !== undefined) parts.push(`Max-Age=${options.maxAgeSeconds}`);
  if (options.secure) parts.push("Secure");
  return parts.join("; ");
}
