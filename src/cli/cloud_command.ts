/**
 * `amp cloud`: the private cloud server (`amp cloud serve`) and the
 * connector's registration with a cloud (`amp cloud register`).
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { loadConfig } from "../config/amp_config.ts";
import { CloudClient } from "../cloud/cloud_client.ts";
import {
  loadIdentity,
  readCaCerts,
  registerConnector,
  REGISTRATION_TOKEN_PATH,
} from "../cloud/connector_identity.ts";
import {
  DEFAULT_HEARTBEAT_SECONDS,
  DEFAULT_STATE_DIR,
  startCloudServer,
} from "../cloud/server/cloud_server.ts";
import { isLogLevel, Logger, type LogLevel } from "../log/logger.ts";
import { StderrSink } from "../log/stderr_sink.ts";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";
import { UsageError } from "./usage_error.ts";

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 86_400) {
    throw new InvalidArgumentError("expected whole seconds between 1 and 86400");
  }
  return n;
}

function level(value: string): LogLevel {
  if (!isLogLevel(value)) {
    throw new InvalidArgumentError("one of error, warning, notice, info, debug");
  }
  return value;
}

interface ServeOptions {
  listen: string;
  db?: string;
  state: string;
  tlsCert?: string;
  tlsKey?: string;
  plainHttp?: boolean;
  publicUrl?: string;
  heartbeat: number;
  adminTokenFile?: string;
  registrationTokenFile?: string;
  logLevel: LogLevel;
}

interface RegisterOptions {
  token?: string;
  tokenFile?: string;
  later?: boolean;
  root: string;
}

/** The token of `--token` or `--token-file` (a file, or `-` for standard input). */
async function registrationToken(opts: RegisterOptions): Promise<string> {
  if ((opts.token === undefined) === (opts.tokenFile === undefined)) {
    throw new UsageError("Give the registration token with --token or --token-file (one of them)");
  }
  if (opts.token !== undefined) return opts.token;
  const file = opts.tokenFile!;
  let text: string;
  try {
    text = file === "-"
      ? await new Response(Deno.stdin.readable).text()
      : await Deno.readTextFile(file);
  } catch (error) {
    throw new UsageError(
      `Cannot read the registration token from ${file === "-" ? "standard input" : file}: ${
        error instanceof Error ? error.message : error
      }`,
      { cause: error },
    );
  }
  const token = text.trim();
  if (!token) {
    throw new UsageError(`No registration token in ${file === "-" ? "standard input" : file}`);
  }
  return token;
}

/** Builds `amp cloud`. */
export function makeCloudCommand(io: CommandIo = defaultIo): Command {
  const cloud = new Command("cloud")
    .summary("the private cloud server, and registering this connector with a cloud")
    .description(
      "The cloud answers SHA-256 lookups, serves policies, receives events and tells\n" +
        "connectors when a file's disposition changes (retrospective detection).\n" +
        "`amp cloud serve` runs a private one; `amp cloud register` registers this host.",
    );
  cloud.addCommand(
    new Command("serve")
      .summary("run the private cloud server (HTTPS, SQLite or PostgreSQL)")
      .description(
        "Serve the cloud protocol (/v1/…) for connectors, the admin API (/admin/v1/…)\n" +
          "and the web console (/console/, log in with the admin token) over HTTPS.\n" +
          "Data lives in SQLite by default (nothing to set up) or in\n" +
          "PostgreSQL for fleets (--db postgres://user:password@host/db); the same\n" +
          "migrations run on both. The two built-in policies are created on first start.\n" +
          "The admin token and a registration token are read from the state directory,\n" +
          "or created there on first start (0600).",
      )
      .option("--listen <addr:port>", "address and port to listen on", "0.0.0.0:443")
      .option("--db <spec>", "sqlite:PATH or postgres://… (default sqlite:<state>/cloud.db)")
      .option("--state <dir>", "state directory (tokens, SQLite database)", DEFAULT_STATE_DIR)
      .option("--tls-cert <file>", "PEM certificate chain")
      .option("--tls-key <file>", "PEM private key")
      .option("--plain-http", "serve plain HTTP (only behind a TLS-terminating proxy)")
      .option(
        "--public-url <url>",
        "the address browsers use for the console (https://cloud.example.org); required\n" +
          "for the console behind a TLS-terminating proxy (--plain-http): forms are\n" +
          "accepted from this origin only, and cookies are Secure when it is https",
      )
      .option(
        "--heartbeat <seconds>",
        "heartbeat interval given to connectors",
        seconds,
        DEFAULT_HEARTBEAT_SECONDS,
      )
      .option("--admin-token-file <file>", "admin token file (default <state>/admin.token)")
      .option(
        "--registration-token-file <file>",
        "registration token file (default <state>/registration.token)",
      )
      .option("--log-level <level>", "least severe level logged to stderr", level, "notice")
      .addHelpText(
        "after",
        `
Examples:
  amp cloud serve --tls-cert /etc/amp-cloud/cert.pem --tls-key /etc/amp-cloud/key.pem
  amp cloud serve --listen 127.0.0.1:8443 --db postgres://amp:secret@db/amp \\
      --tls-cert cert.pem --tls-key key.pem
  amp cloud serve --listen 127.0.0.1:8080 --plain-http --public-url https://cloud.example.org
  curl -H "Authorization: Bearer $(cat /var/lib/amp-cloud/admin.token)" \\
      https://cloud.example.org/admin/v1/computers
  The console: https://cloud.example.org/console/ (log in with the admin token)`,
      )
      .action(async (opts: ServeOptions) => {
        const log = new Logger([new StderrSink()], { level: opts.logLevel });
        let server;
        try {
          server = await startCloudServer({
            listen: opts.listen,
            db: opts.db,
            stateDir: opts.state,
            tlsCert: opts.tlsCert,
            tlsKey: opts.tlsKey,
            plainHttp: opts.plainHttp,
            publicUrl: opts.publicUrl,
            heartbeatSeconds: opts.heartbeat,
            adminTokenFile: opts.adminTokenFile,
            registrationTokenFile: opts.registrationTokenFile,
            log,
          });
        } catch (error) {
          if (error instanceof TypeError) throw new UsageError(error.message, { cause: error });
          log.error(`Cannot start the cloud: ${error instanceof Error ? error.message : error}`);
          await log.close();
          return io.exit(1);
        }
        const stop = () => void server.close();
        Deno.addSignalListener("SIGTERM", stop);
        Deno.addSignalListener("SIGINT", stop);
        await server.finished;
        await server.close();
        Deno.removeSignalListener("SIGTERM", stop);
        Deno.removeSignalListener("SIGINT", stop);
        await log.close();
        io.exit(0);
      })
      .exitOverride(),
  );
  cloud.addCommand(
    new Command("register")
      .summary("register this connector with the cloud named in amp.json")
      .description(
        "Register with the cloud of amp.json (cloud.url, cloud.ca, cloud.proxy) using a\n" +
          "registration token from its administrator (--token, or --token-file to keep it\n" +
          "off the command line). The connector's GUID and its own\n" +
          "key are kept in /var/lib/amp/cloud_identity.json (0600); a running daemon\n" +
          "picks them up by itself. With --later the token is left in\n" +
          `${REGISTRATION_TOKEN_PATH} for the daemon to use when the cloud is reachable.`,
      )
      .option("--token <token>", "the registration token (visible to other users in ps)")
      .option(
        "--token-file <file>",
        "read the registration token from FILE (- for standard input)",
      )
      .option("--later", "do not contact the cloud now: leave the token for the daemon")
      .option("--root <dir>", "host root", "/")
      .addHelpText(
        "after",
        `
Exit status: 0 registered (or token saved), 1 the cloud refused or could not be reached.

Examples:
  amp install --cloud https://cloud.example.org && amp cloud register --token ampreg_…
  amp cloud register --token-file /root/registration.token
  printf '%s' "$TOKEN" | amp cloud register --token-file -`,
      )
      .action(async (opts: RegisterOptions) => {
        const token = await registrationToken(opts);
        const { config } = await loadConfig({ root: opts.root });
        const url = config.cloud.url;
        if (!url) {
          throw new UsageError(
            "amp.json names no cloud (cloud.url): set it with amp install --cloud URL",
          );
        }
        if (opts.later) {
          const path = resolveUnderRoot(opts.root, REGISTRATION_TOKEN_PATH);
          await Deno.mkdir(resolveUnderRoot(opts.root, "/etc/amp"), { recursive: true });
          await Deno.writeTextFile(path, token + "\n", { mode: 0o600 });
          io.stdout(`Saved the registration token in ${path}: the daemon registers by itself.`);
          return io.exit(0);
        }
        const client = new CloudClient({
          url,
          caCerts: await readCaCerts(opts.root, config.cloud.ca),
          proxy: config.cloud.proxy,
        });
        try {
          const before = await loadIdentity(opts.root);
          const identity = await registerConnector(client, token, { root: opts.root, url });
          io.stdout(
            `${
              before ? "Registered again" : "Registered"
            } with ${url} as computer #${identity.computerId} ` +
              `(GUID ${identity.guid}).`,
          );
          io.exit(0);
        } catch (error) {
          io.stderr(`amp: cannot register: ${error instanceof Error ? error.message : error}`);
          io.exit(1);
        } finally {
          client.close();
        }
      })
      .exitOverride(),
  );
  return cloud;
}
