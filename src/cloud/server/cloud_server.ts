/**
 * `amp cloud serve`: the private cloud. Start-up is a short list of steps:
 * open and migrate the database (SQLite by default, PostgreSQL for fleets),
 * create the built-in policies on first start, read or create the admin and
 * registration tokens, then serve HTTPS: the connector API (`/v1/…`), the
 * admin API (`/admin/v1/…`) and the web console (`/console/`, see
 * ../console/console.ts) on the same port.
 *
 * State directory (`--state`, default /var/lib/amp-cloud, 0700):
 * `cloud.db` (the SQLite database, unless `--db` says otherwise),
 * `admin.token` and `registration.token` (0600; made on first start when
 * absent; a token written there by hand is used as it is).
 *
 * @module
 */

import { join } from "node:path";
import { consoleHandler } from "../console/console.ts";
import { type ApiLog, cloudApi } from "./cloud_api.ts";
import { openCloudDb, parseCloudDbSpec } from "./cloud_db.ts";
import { CloudStore, newCredential } from "./cloud_store.ts";

/** Where the cloud keeps its state by default. */
export const DEFAULT_STATE_DIR = "/var/lib/amp-cloud";

/** The default heartbeat interval given to connectors. */
export const DEFAULT_HEARTBEAT_SECONDS = 60;

/** What the server logs (the amp `Logger` fits). */
export interface ServerLog extends ApiLog {
  notice(message: string): void;
}

/** Options of {@linkcode startCloudServer}. */
export interface CloudServerOptions {
  /** `ADDR:PORT` (`0.0.0.0:443` by default; `[::1]:8443` for IPv6; port 0 picks one). */
  listen?: string;
  /** `sqlite:PATH` or `postgres://…`; `sqlite:<state>/cloud.db` by default. */
  db?: string;
  /** The state directory. */
  stateDir?: string;
  /** PEM certificate chain and key files for HTTPS. */
  tlsCert?: string;
  tlsKey?: string;
  /** Serve plain HTTP (behind a TLS-terminating proxy only). */
  plainHttp?: boolean;
  /**
   * The address browsers use for the console (`https://cloud.example.org`),
   * when it is not the server's own: behind a TLS-terminating proxy. The
   * console accepts forms from this origin only, and marks its cookies
   * Secure when it is https.
   */
  publicUrl?: string;
  heartbeatSeconds?: number;
  adminTokenFile?: string;
  registrationTokenFile?: string;
  log: ServerLog;
  /** Requests the API does not know: the web console unless something else is given. */
  fallback?: (
    request: Request,
    url: URL,
    info?: Deno.ServeHandlerInfo,
  ) => Promise<Response | undefined>;
}

/** A running cloud. */
export interface RunningCloud {
  /** The base URL connectors use (`https://host:port`). */
  url: string;
  hostname: string;
  port: number;
  store: CloudStore;
  /** Settles when the server has stopped. */
  finished: Promise<void>;
  /** Stops serving and closes the database. */
  close(): Promise<void>;
}

/**
 * Parses `ADDR:PORT`, `[IPv6]:PORT` or `:PORT`.
 *
 * @example
 * ```ts
 * import { parseListen } from "./cloud_server.ts";
 * parseListen("[::1]:8443"); // { hostname: "::1", port: 8443 }
 * ```
 */
export function parseListen(listen: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new TypeError(`Invalid --listen ${listen}: expected ADDR:PORT, [IPv6]:PORT or :PORT`);
  }
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/** Starts the cloud; resolves once it listens. */
export async function startCloudServer(options: CloudServerOptions): Promise<RunningCloud> {
  const log = options.log;
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const { hostname, port } = parseListen(options.listen ?? "0.0.0.0:443");
  if (!options.plainHttp && (!options.tlsCert || !options.tlsKey)) {
    throw new TypeError(
      "HTTPS needs --tls-cert and --tls-key (or --plain-http behind a TLS proxy)",
    );
  }
  const publicUrl = options.publicUrl === undefined ? undefined : parsePublicUrl(options.publicUrl);
  const tls = options.plainHttp ? undefined : {
    cert: await readText(options.tlsCert!, "TLS certificate"),
    key: await readText(options.tlsKey!, "TLS key"),
  };
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const spec = parseCloudDbSpec(options.db ?? `sqlite:${join(stateDir, "cloud.db")}`);
  const opened = await openCloudDb(spec);
  const heartbeatSeconds = options.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS;
  const store = new CloudStore(opened.db, opened.dialect, { heartbeatSeconds });
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  try {
    const created = await store.init();
    for (const name of created) log.notice(`Created built-in policy "${name}"`);
    const adminFile = options.adminTokenFile ?? join(stateDir, "admin.token");
    const adminToken = await tokenFromFile(adminFile, "ampadm", log);
    const registrationFile = options.registrationTokenFile ?? join(stateDir, "registration.token");
    const registrationToken = await tokenFromFile(registrationFile, "ampreg", log);
    await store.ensureRegistrationToken(registrationToken, `file ${registrationFile}`);

    if (!tls && !publicUrl) {
      log.warning(
        "Plain HTTP without --public-url: the console refuses forms from browsers that reach " +
          "it through an https proxy (give --public-url https://HOST)",
      );
    }
    const fallback = options.fallback ?? consoleHandler({
      store,
      adminToken,
      secure: publicUrl ? publicUrl.protocol === "https:" : tls !== undefined,
      ...(publicUrl ? { origin: publicUrl.origin } : {}),
      heartbeatSeconds,
      log,
    });
    const handler = cloudApi({ store, adminToken, log, fallback });
    const listening = Promise.withResolvers<Deno.NetAddr>();
    server = Deno.serve({
      hostname,
      port,
      ...(tls ?? {}),
      onListen: (addr) => listening.resolve(addr),
      onError: (error) => {
        log.error(`Request failed: ${error instanceof Error ? error.message : String(error)}`);
        return new Response("Internal error", { status: 500 });
      },
    }, handler);
    const addr = await listening.promise;
    const scheme = tls ? "https" : "http";
    const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
    const url = `${scheme}://${host}:${addr.port}`;
    log.notice(
      `amp cloud serving ${url} (protocol v1, database ${opened.describe}, heartbeat ${heartbeatSeconds} s)` +
        (publicUrl ? `, console at ${publicUrl.origin}/console/` : ""),
    );
    const running = server;
    let closing: Promise<void> | undefined;
    return {
      url,
      hostname: addr.hostname,
      port: addr.port,
      store,
      finished: running.finished,
      close: () => {
        closing ??= (async () => {
          await running.shutdown();
          await opened.db.destroy();
          log.notice("amp cloud stopped");
        })();
        return closing;
      },
    };
  } catch (error) {
    await server?.shutdown();
    await opened.db.destroy();
    throw error;
  }
}

/**
 * Parses `--public-url`: an http or https origin (a path is not served: the
 * console lives at `/console/`).
 *
 * @example
 * ```ts
 * import { parsePublicUrl } from "./cloud_server.ts";
 * parsePublicUrl("https://cloud.example.org/").origin; // "https://cloud.example.org"
 * ```
 */
export function parsePublicUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new TypeError(`Invalid --public-url ${value}: not a URL`, { cause: error });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new TypeError(`Invalid --public-url ${value}: expected https://HOST[:PORT]`);
  }
  if (url.pathname !== "/" || url.search || url.hash || url.username || url.password) {
    throw new TypeError(
      `Invalid --public-url ${value}: give the origin only (https://HOST[:PORT]), no path`,
    );
  }
  return url;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(
      `Cannot read ${what} ${path}: ${error instanceof Error ? error.message : error}`,
      {
        cause: error,
      },
    );
  }
}

/** Reads a token file, or creates it (0600) with a new random token. */
async function tokenFromFile(path: string, prefix: string, log: ServerLog): Promise<string> {
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token.length < 16) {
      throw new Error(`Token in ${path} is too short (16 characters at least)`);
    }
    return token;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const token = newCredential(prefix);
  await Deno.writeTextFile(path, token + "\n", { mode: 0o600, createNew: true });
  log.notice(`Wrote a new token to ${path}`);
  return token;
}
