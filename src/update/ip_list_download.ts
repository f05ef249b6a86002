/**
 * The DFC lists a policy names by URL, fetched by `amp update` into
 * `/var/lib/amp/dfc/NAME.list`, and nowhere else: the policy may come from
 * the cloud, and the update runs as root, so the schema refuses a `file`
 * beside a `url` and the download refuses any file outside that directory.
 * The new list is written to a temporary file created afresh (never through
 * a link left there) and renamed over the old one (which replaces a link
 * rather than following it). Each download is
 * conditional (the last answer's ETag and Last-Modified are kept beside the
 * list in `NAME.list.meta.json`), parsed before it replaces anything, and
 * written by rename, so the daemon never reads half a list:
 *
 * - 304 Not Modified, or the same bytes → unchanged;
 * - a list with malformed lines is installed and the count reported (as when
 *   the daemon loads a file);
 * - a download with no entry at all, an HTTP error or a network error keeps
 *   the list in place and is reported as failed (a truncated or error page
 *   must not empty a blocklist).
 *
 * A list kept by the private cloud (`https://cloud/v1/ip-lists/NAME`, a URL
 * under amp.json's `cloud.url`) is fetched as the connector: with its key
 * from cloud_identity.json and through the cloud's CA bundle and proxy. The
 * key is never sent anywhere else.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import { writeFileAtomic } from "../fs/write_atomic.ts";
import { readBodyAtMost } from "../cloud/read_body.ts";
import { loadConfig } from "../config/amp_config.ts";
import { proxyOption } from "../cloud/cloud_client.ts";
import { loadIdentity, readCaCerts } from "../cloud/connector_identity.ts";
import { parseIpList } from "../dfc/ip_list_parse.ts";
import type { Logger } from "../log/logger.ts";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import { IP_LIST_DIR, type IpListSource } from "../policy/schema.ts";
import { redactUrl } from "../support/redact.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

/** Largest list accepted (bytes): FireHOL's biggest sets are a few MB. */
export const MAX_LIST_BYTES = 64 * 1024 * 1024;

/** What happened to one list. */
export interface IpListDownload {
  name: string;
  /** The URL, credentials removed. */
  url: string;
  file: string;
  status: "updated" | "unchanged" | "failed";
  entries?: number;
  malformed?: number;
  detail?: string;
}

interface Meta {
  etag?: string;
  lastModified?: string;
}

/** Options of {@linkcode downloadIpLists}. */
export interface DownloadIpListsOptions {
  root: string;
  log?: Logger;
  /** Per-request timeout (ms); default 60 s. */
  timeoutMs?: number;
  /** Largest list accepted (bytes); default {@linkcode MAX_LIST_BYTES}. */
  maxBytes?: number;
}

/** How to fetch lists kept by the connector's cloud. */
interface CloudAccess {
  /** The cloud URL (amp.json). */
  base: URL;
  key: string;
  client: Deno.HttpClient;
}

/** The cloud access of a registered connector, or undefined. */
async function cloudAccess(root: string): Promise<CloudAccess | undefined> {
  try {
    const { config } = await loadConfig({ root });
    const url = config.cloud.url;
    const identity = await loadIdentity(root);
    if (!url || identity?.url !== url) return undefined;
    const options: Deno.CreateHttpClientOptions = {};
    const caCerts = await readCaCerts(root, config.cloud.ca);
    if (caCerts.length > 0) options.caCerts = caCerts;
    if (config.cloud.proxy) options.proxy = proxyOption(config.cloud.proxy);
    return {
      base: new URL(url),
      key: identity.key,
      client: Deno.createHttpClient(options),
    };
  } catch {
    // No readable config or CA: lists under the cloud fail as any unreachable URL does.
    return undefined;
  }
}

/** Fetches every list that has a `url`; never throws (a failure is a result). */
export async function downloadIpLists(
  sources: readonly IpListSource[],
  options: DownloadIpListsOptions,
): Promise<IpListDownload[]> {
  const out: IpListDownload[] = [];
  const cloud = sources.some((s) => s.url) ? await cloudAccess(options.root) : undefined;
  try {
    for (const source of sources) {
      if (!source.url) continue;
      const r = await downloadOne(source, source.url, options, cloud);
      options.log?.[r.status === "failed" ? "error" : "notice"](
        `DFC list ${r.name}: ${r.status}${
          r.entries !== undefined ? ` (${r.entries} entries, ${r.malformed} malformed)` : ""
        }${r.detail ? `: ${r.detail}` : ""}`,
      );
      out.push(r);
    }
  } finally {
    cloud?.client.close();
  }
  return out;
}

async function readMeta(file: string): Promise<Meta> {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${file}.meta.json`));
    return typeof m === "object" && m !== null ? m as Meta : {};
  } catch {
    return {};
  }
}

async function downloadOne(
  source: IpListSource,
  url: string,
  options: DownloadIpListsOptions,
  cloud: CloudAccess | undefined,
): Promise<IpListDownload> {
  const file = resolveUnderRoot(options.root, source.file);
  const result: IpListDownload = {
    name: source.name,
    url: redactUrl(url),
    file,
    status: "failed",
  };
  const dir = resolveUnderRoot(options.root, IP_LIST_DIR);
  if (dirname(file) !== dir || !basename(file).endsWith(".list")) {
    result.detail = `refusing to write ${file}: a list with a url is kept in ${dir}`;
    return result;
  }
  const present = await Deno.lstat(file).then(() => true, () => false);
  const meta = present ? await readMeta(file) : {};
  const headers = new Headers();
  if (meta.etag) headers.set("If-None-Match", meta.etag);
  if (meta.lastModified) headers.set("If-Modified-Since", meta.lastModified);
  const fromCloud = cloud !== undefined && isUnder(url, cloud.base);
  if (fromCloud) headers.set("Authorization", `Bearer ${cloud.key}`);
  let response: Response;
  try {
    response = await fetch(url, {
      headers,
      signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
      ...(fromCloud ? { client: cloud.client } : {}),
    });
  } catch (error) {
    result.detail = `cannot fetch: ${message(error)}; keeping the list in place`;
    return result;
  }
  if (response.status === 304) {
    await response.body?.cancel();
    result.status = "unchanged";
    return result;
  }
  if (!response.ok) {
    await response.body?.cancel();
    result.detail = `HTTP ${response.status}; keeping the list in place`;
    return result;
  }
  const limit = options.maxBytes ?? MAX_LIST_BYTES;
  let bytes: Uint8Array;
  try {
    const got = await readBodyAtMost(response, limit);
    if (!got) {
      result.detail = `too large (more than ${limit} bytes); keeping the list in place`;
      return result;
    }
    bytes = got;
  } catch (error) {
    result.detail = `download broke off: ${message(error)}; keeping the list in place`;
    return result;
  }
  const text = new TextDecoder().decode(bytes);
  const parsed = source.format === "csv"
    ? parseIpList(source.name, text, {
      format: "csv",
      column: source.column!,
      delimiter: source.delimiter,
    })
    : parseIpList(source.name, text);
  result.entries = parsed.size;
  result.malformed = parsed.malformed;
  if (parsed.size === 0 || parsed.malformed > parsed.size) {
    // An error page, or one with an address in it: more that is not a list than is.
    result.detail = `the download is not an address list (${parsed.size} addresses, ` +
      `${parsed.malformed} malformed lines, first: ${
        JSON.stringify(parsed.problems[0]?.text ?? "")
      }); keeping the list in place`;
    return result;
  }
  const next: Meta = {};
  const etag = response.headers.get("etag");
  const lastModified = response.headers.get("last-modified");
  if (etag) next.etag = etag;
  if (lastModified) next.lastModified = lastModified;
  try {
    const old = present ? await Deno.readFile(file) : undefined;
    const same = old !== undefined && old.length === bytes.length &&
      old.every((b, i) => b === bytes[i]);
    await Deno.mkdir(dirname(file), { recursive: true, mode: 0o755 });
    if (!same) await writeFileAtomic(file, bytes, 0o644);
    await writeFileAtomic(`${file}.meta.json`, JSON.stringify(next), 0o644);
    result.status = same ? "unchanged" : "updated";
  } catch (error) {
    result.detail = `cannot write ${file}: ${message(error)}`;
  }
  return result;
}

/** Whether `url` is on the cloud's origin, under its path. */
function isUnder(url: string, base: URL): boolean {
  try {
    const u = new URL(url);
    const prefix = base.pathname.endsWith("/") ? base.pathname : `${base.pathname}/`;
    return u.origin === base.origin && u.pathname.startsWith(prefix);
  } catch {
    return false;
  }
}

/** Writes a new file beside `file` (never through a link) and renames it over `file`. */
