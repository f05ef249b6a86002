/**
 * The web console of `amp cloud serve`, on the same port as the API, under
 * `/console/` (hooked into the API's `fallback`). Plain server-rendered
 * pages: no script, one style sheet served from here, nothing fetched from
 * anywhere else (the Content-Security-Policy says so to the browser).
 *
 * Access: the admin token, given once at the login form, opens a session
 * (see session.ts); every page but the login form and the style sheet needs
 * one. Every post must carry the session's CSRF token, and a post whose
 * Origin header names another site is refused before its form is read (the
 * site is the public URL's when the console is behind a TLS-terminating
 * proxy, `amp cloud serve --public-url`, and the request's own otherwise).
 *
 * Pages: dashboard_page.ts, computers_pages.ts, events_pages.ts,
 * policies_pages.ts (with policy_form.ts), detections_pages.ts.
 *
 * @module
 */

import type { ApiLog } from "../server/cloud_api.ts";
import type { CloudStore } from "../server/cloud_store.ts";
import {
  assignComputerPolicy,
  computerPage,
  computersPage,
  restoreQuarantined,
} from "./computers_pages.ts";
import { dashboardPage } from "./dashboard_page.ts";
import {
  addDisposition,
  deleteIpList,
  dispositionsPage,
  importDispositions,
  ipListsPage,
  removeDisposition,
  saveIpList,
} from "./detections_pages.ts";
import { eventPage, eventsPage, exportEvents } from "./events_pages.ts";
import { FormError, MAX_FORM_BYTES, readForm } from "./form.ts";
import { html } from "./html.ts";
import { CONSOLE_PREFIX, page, redirect, SECURITY_HEADERS, STYLE, STYLE_PATH } from "./layout.ts";
import { LOGIN_COOKIE, loginPage } from "./login_page.ts";
import {
  assignPolicy,
  copyPolicy,
  createPolicy,
  deletePolicy,
  newPolicyPage,
  policiesPage,
  policyPage,
  savePolicy,
} from "./policies_pages.ts";
import {
  cookie,
  csrfValid,
  parseCookies,
  type Session,
  SessionStore,
  tokensEqual,
} from "./session.ts";
import { type ConsoleContext, messageOf } from "./_context.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "amp_console";

/** Largest import form (a list of hashes or addresses). */
const MAX_IMPORT_BYTES = 16 * 1024 * 1024;

/** Options of {@linkcode consoleHandler}. */
export interface ConsoleOptions {
  store: CloudStore;
  /** The admin token: what the login form asks for. */
  adminToken: string;
  /** Browsers reach the console over HTTPS: cookies are marked Secure. */
  secure: boolean;
  /**
   * The origin browsers use (`https://cloud.example.org`) when it is not the
   * request's own (behind a TLS-terminating proxy): only posts from it pass.
   */
  origin?: string;
  /** How often connectors send a heartbeat. */
  heartbeatSeconds: number;
  log?: ApiLog;
  /** The sessions (a new store by default). */
  sessions?: SessionStore;
  /** Pause after a failed login, in ms (default 500). */
  failedLoginDelayMs?: number;
  /** The clock (ms since the epoch). */
  now?: () => number;
}

type Handler = (ctx: ConsoleContext) => Promise<Response | undefined>;
interface Route {
  method: "GET" | "POST";
  segments: string[];
  run: Handler;
}

/** The console's answer to a request, or undefined when it is not the console's. */
export type ConsoleHandler = (
  request: Request,
  url: URL,
  info?: Deno.ServeHandlerInfo,
) => Promise<Response | undefined>;

/**
 * Builds the console, to pass as the cloud API's `fallback`.
 *
 * @example
 * ```ts ignore
 * import { consoleHandler } from "./console.ts";
 * cloudApi({ store, adminToken, fallback: consoleHandler({ store, adminToken, secure: true, heartbeatSeconds: 60 }) });
 * ```
 */
export function consoleHandler(options: ConsoleOptions): ConsoleHandler {
  const sessions = options.sessions ?? new SessionStore({ now: options.now });
  const now = options.now ?? Date.now;
  const routes: Route[] = [];
  const on = (method: Route["method"], path: string, run: Handler) =>
    routes.push({ method, segments: path.split("/").filter(Boolean), run });

  on("GET", "/", dashboardPage);
  on("GET", "/computers", computersPage);
  on("GET", "/computers/:id", computerPage);
  on("POST", "/computers/:id/policy", assignComputerPolicy);
  on("POST", "/computers/:id/restore", restoreQuarantined);
  on("GET", "/events", eventsPage);
  on("GET", "/events.csv", (ctx) => exportEvents(ctx, "csv"));
  on("GET", "/events.json", (ctx) => exportEvents(ctx, "json"));
  on("GET", "/events/:id", eventPage);
  on("GET", "/policies", policiesPage);
  on("GET", "/policies/new", (ctx) => newPolicyPage(ctx));
  on("POST", "/policies/new", createPolicy);
  on("GET", "/policies/:id", (ctx) => policyPage(ctx));
  on("POST", "/policies/:id", savePolicy);
  on("POST", "/policies/:id/copy", copyPolicy);
  on("POST", "/policies/:id/delete", deletePolicy);
  on("POST", "/policies/:id/assign", assignPolicy);
  on("GET", "/detections", (ctx) => dispositionsPage(ctx, "malicious"));
  on("GET", "/allow-list", (ctx) => dispositionsPage(ctx, "clean"));
  on("POST", "/dispositions/add", addDisposition);
  on("POST", "/dispositions/import", importDispositions);
  on("POST", "/dispositions/remove", removeDisposition);
  on("GET", "/ip-lists", (ctx) => ipListsPage(ctx));
  on("GET", "/ip-lists/:name", (ctx) => ipListsPage(ctx));
  on("POST", "/ip-lists", saveIpList);
  on("POST", "/ip-lists/:name/delete", deleteIpList);

  const login = async (request: Request, info?: Deno.ServeHandlerInfo): Promise<Response> => {
    const form = await readForm(request);
    const expected = parseCookies(request.headers.get("cookie")).get(LOGIN_COOKIE);
    const next = safeNext(form.get("next"));
    if (!expected || !tokensEqual(expected, form.get("csrf") ?? "")) {
      return loginPage({
        secure: options.secure,
        next,
        status: 403,
        error: "The login form expired: please try again.",
      });
    }
    if (!tokensEqual(form.get("token")?.trim() ?? "", options.adminToken)) {
      options.log?.warning(`Console: failed login from ${clientAddress(info)}`);
      await new Promise((r) => setTimeout(r, options.failedLoginDelayMs ?? 500));
      return loginPage({ secure: options.secure, next, status: 401, error: "Wrong admin token." });
    }
    const session = sessions.create();
    options.log?.info("Console: admin logged in");
    const headers = new Headers({ ...SECURITY_HEADERS, location: next });
    headers.append("set-cookie", cookie(SESSION_COOKIE, session.id, { secure: options.secure }));
    headers.append(
      "set-cookie",
      cookie(LOGIN_COOKIE, "", { secure: options.secure, maxAgeSeconds: 0 }),
    );
    return new Response(null, { status: 303, headers });
  };

  return async (request, url, info) => {
    const path = url.pathname;
    if (path === "/" && request.method === "GET") return redirect(`${CONSOLE_PREFIX}/`);
    if (path !== CONSOLE_PREFIX && !path.startsWith(`${CONSOLE_PREFIX}/`)) return undefined;
    try {
      if (path === CONSOLE_PREFIX) return redirect(`${CONSOLE_PREFIX}/`);
      if (path === STYLE_PATH && request.method === "GET") {
        return new Response(STYLE, {
          headers: {
            ...SECURITY_HEADERS,
            "content-type": "text/css; charset=utf-8",
            "cache-control": "max-age=3600",
          },
        });
      }
      if (request.method === "POST" && !sameOrigin(request, options.origin ?? url.origin)) {
        await request.body?.cancel();
        return problem(403, "Forbidden", "A form from another site was refused.");
      }
      const session = sessions.get(
        parseCookies(request.headers.get("cookie")).get(SESSION_COOKIE),
      );
      const local = path.slice(CONSOLE_PREFIX.length) || "/";
      if (local === "/login") {
        if (request.method === "POST") return await login(request, info);
        if (session) return redirect(safeNext(url.searchParams.get("next")));
        return loginPage({
          secure: options.secure,
          next: url.searchParams.get("next") ?? undefined,
        });
      }
      if (!session) {
        await request.body?.cancel();
        const next = request.method === "GET" ? path + url.search : `${CONSOLE_PREFIX}/`;
        return redirect(`${CONSOLE_PREFIX}/login?next=${encodeURIComponent(next)}`);
      }
      let form = new URLSearchParams();
      if (request.method === "POST") {
        const big = local === "/dispositions/import" || local === "/ip-lists";
        form = await readForm(request, big ? MAX_IMPORT_BYTES : MAX_FORM_BYTES);
        if (!csrfValid(session, form.get("csrf"))) {
          return problem(
            403,
            "Forbidden",
            "The form's security token is missing or stale: reload the page and try again.",
            session,
          );
        }
        if (local === "/logout") {
          sessions.destroy(session.id);
          return redirect(`${CONSOLE_PREFIX}/login`, {
            "set-cookie": cookie(SESSION_COOKIE, "", { secure: options.secure, maxAgeSeconds: 0 }),
          });
        }
      }
      const segments = local.split("/").filter(Boolean);
      let allowed = false;
      for (const route of routes) {
        const params = match(route.segments, segments);
        if (!params) continue;
        if (route.method !== request.method) {
          allowed = true;
          continue;
        }
        const ctx: ConsoleContext = {
          request,
          url,
          params,
          session,
          store: options.store,
          form,
          heartbeatSeconds: options.heartbeatSeconds,
          now: now(),
          log: options.log,
        };
        const answer = await route.run(ctx);
        if (answer) return answer;
        return problem(404, "Not found", "There is nothing here.", session);
      }
      if (allowed) return problem(405, "Method not allowed", "This page cannot do that.", session);
      return problem(404, "Not found", "There is nothing here.", session);
    } catch (error) {
      if (error instanceof FormError) return problem(error.status, "Bad request", error.message);
      options.log?.error(`Console: ${request.method} ${path} failed: ${messageOf(error)}`);
      return problem(
        500,
        "Something went wrong",
        "The console could not answer: see the cloud's log.",
      );
    }
  };
}

function problem(status: number, title: string, text: string, session?: Session): Response {
  return page({
    title,
    status,
    session,
    body: html`
      <p>${text}</p>
      <p><a href="${CONSOLE_PREFIX}/">Back to the dashboard</a></p>
    `,
  });
}

/** A redirect target after login: a console path only (no other site, no `//host`). */
export function safeNext(next: string | null | undefined): string {
  if (
    next && next.startsWith(`${CONSOLE_PREFIX}/`) && !next.startsWith("//") && !/[\\\s]/.test(next)
  ) {
    return next;
  }
  return `${CONSOLE_PREFIX}/`;
}

/**
 * A post without an Origin header (older clients) passes; one naming another
 * origin than `expected` (the console's, as browsers see it) does not.
 */
export function sameOrigin(request: Request, expected: string): boolean {
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  return origin === expected;
}

/** The client's address for the log (the proxy's, behind one). */
function clientAddress(info: Deno.ServeHandlerInfo | undefined): string {
  const addr = info?.remoteAddr;
  if (addr === undefined) return "an unknown address";
  return addr.transport === "tcp" || addr.transport === "udp" ? addr.hostname : addr.transport;
}

function match(pattern: string[], segments: string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i].startsWith(":")) {
      try {
        params[pattern[i].slice(1)] = decodeURIComponent(segments[i]);
      } catch {
        return undefined;
      }
    } else if (pattern[i] !== segments[i]) return undefined;
  }
  return params;
}
