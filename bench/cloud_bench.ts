/**
 * amp's cloud benchmark, printed as a markdown table:
 *
 * 1. lookups per second through the cloud query cache (hits), with the
 *    connector's own `CloudLookup` over a real `cloud_query.cache`;
 * 2. lookups per second through the server (misses, batched 500 per
 *    request), against a real `amp cloud serve` process over HTTPS on
 *    loopback holding 100,000 dispositions, on SQLite and on PostgreSQL;
 * 3. event ingestion rate at the server: batches of 500 realistic events
 *    (Threat Detected with path, hash, process) uploaded with the connector's
 *    client, two batches in flight, on SQLite and on PostgreSQL;
 * 4. the connector's memory with a 1,000,000-entry cache: a fresh process
 *    opens the cache file and looks up 200,000 random entries; its resident
 *    set before opening, after, and at peak.
 *
 * The server runs as its own process (the client and the server do not
 * share a JS thread). PostgreSQL rows need `AMP_TEST_POSTGRES_URL` (a role
 * that may create databases; scripts/setup.sh makes one) and are left out
 * without it. Run with `deno task bench-cloud` (see `--help`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CloudClient } from "../src/cloud/cloud_client.ts";
import { CloudLookup } from "../src/cloud/cloud_lookup.ts";
import { LookupCache } from "../src/cloud/lookup_cache.ts";
import type { WireEvent } from "../src/cloud/protocol.ts";
import { freshPostgresDb, POSTGRES_URL } from "../tests/fixtures/cloud_postgres.ts";
import { makeTestCa, type TestCa } from "../tests/fixtures/cloud_tls.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;

const USAGE = `Usage: deno task bench-cloud [options]

  --events N         events uploaded per backend (default 100000)
  --lookups N        distinct hashes looked up through the server (default 50000)
  --hits N           cache hits measured (default 500000)
  --cache-entries N  entries of the memory test's cache (default 1000000)
  --dispositions N   dispositions the server holds (default 100000)
  -h, --help         this text

PostgreSQL rows need AMP_TEST_POSTGRES_URL (scripts/setup.sh).`;

interface Row {
  measure: string;
  value: string;
  detail: string;
}

/** A deterministic hash for index i (distinct for distinct i). */
function hashOf(i: number, salt = 0): string {
  return (salt.toString(16).padStart(8, "0") + i.toString(16).padStart(56, "0"));
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function rate(n: number, ms: number): string {
  return Math.round(n / (ms / 1000)).toLocaleString("en-US");
}

function rssKib(): { rss: number; hwm: number } {
  const status = Deno.readTextFileSync("/proc/self/status");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

/** A running `amp cloud serve` process. */
interface ServerProcess {
  url: string;
  adminToken: string;
  registrationToken: string;
  stop(): Promise<void>;
}

async function startServer(
  ca: TestCa,
  db: string | undefined,
  state: string,
): Promise<ServerProcess> {
  const port = freePort();
  const args = [
    "run",
    "--allow-all",
    "--quiet",
    "--no-check",
    MAIN,
    "cloud",
    "serve",
    "--listen",
    `127.0.0.1:${port}`,
    "--state",
    state,
    "--tls-cert",
    ca.certFile,
    "--tls-key",
    ca.keyFile,
    "--log-level",
    "warning",
  ];
  if (db) args.push("--db", db);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const client = Deno.createHttpClient({ caCerts: [ca.caPem] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`https://localhost:${port}/health`, { client });
      await r.body?.cancel();
      if (r.ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error("amp cloud serve did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  client.close();
  return {
    url: `https://localhost:${port}`,
    adminToken: (await Deno.readTextFile(`${state}/admin.token`)).trim(),
    registrationToken: (await Deno.readTextFile(`${state}/registration.token`)).trim(),
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function importDispositions(server: ServerProcess, ca: TestCa, n: number): Promise<void> {
  const client = Deno.createHttpClient({ caCerts: [ca.caPem] });
  try {
    for (let start = 0; start < n; start += 20_000) {
      const lines: string[] = [];
      for (let i = start; i < Math.min(n, start + 20_000); i++) {
        lines.push(`${hashOf(i, 1)} Bench.Malware.${i % 97}`);
      }
      const r = await fetch(`${server.url}/admin/v1/dispositions/import`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${server.adminToken}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ text: lines.join("\n") }),
        client,
      });
      if (!r.ok) throw new Error(`import failed: ${r.status} ${await r.text()}`);
      await r.body?.cancel();
    }
  } finally {
    client.close();
  }
}

function benchEvent(i: number): WireEvent {
  return {
    key: `bench:${i}`,
    type: "Threat Detected",
    time: Date.now(),
    host: "bench-host",
    policy: { name: "Protect Policy for Linux", id: 2 },
    path: btoa(`/home/user/downloads/file-${i}.bin`),
    pathText: `/home/user/downloads/file-${i}.bin`,
    sha256: hashOf(i, 2),
    size: 4096 + i,
    detection: "Bench.Detection",
    engine: "clamav",
    action: "quarantine",
    pid: 1000 + (i % 5000),
    ppid: 1,
    uid: 1000,
    executable: btoa("/usr/bin/curl"),
    executableText: "/usr/bin/curl",
    commandLine: `curl -o /home/user/downloads/file-${i}.bin https://example.org/${i}`,
    details: { origin: "on-access" },
  };
}

/** Uploads `n` events in batches of 500, two in flight; returns elapsed ms. */
async function ingest(client: CloudClient, key: string, n: number): Promise<number> {
  const batches: WireEvent[][] = [];
  for (let i = 0; i < n; i += 500) {
    batches.push(Array.from({ length: Math.min(500, n - i) }, (_, j) => benchEvent(i + j)));
  }
  let next = 0;
  let stored = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < batches.length) {
      const answer = await client.uploadEvents(key, batches[next++]);
      stored += answer.stored;
    }
  };
  await Promise.all([worker(), worker()]);
  const elapsed = performance.now() - started;
  if (stored !== n) throw new Error(`stored ${stored} of ${n} events`);
  return elapsed;
}

/** Looks up `n` distinct hashes (half known to the server) through `lookup`, `window` at a time. */
async function lookups(
  lookup: CloudLookup,
  n: number,
  window: number,
  salt: (i: number) => number,
): Promise<number> {
  const started = performance.now();
  for (let start = 0; start < n; start += window) {
    const wave: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(n, start + window); i++) {
      wave.push(lookup.lookup(hashOf(i, salt(i))));
    }
    await Promise.all(wave);
  }
  return performance.now() - started;
}

async function backendRows(
  name: string,
  ca: TestCa,
  db: string | undefined,
  options: { events: number; lookups: number; dispositions: number },
  hitsRow: (lookup: CloudLookup, cacheDir: string) => Promise<void>,
): Promise<Row[]> {
  const state = await Deno.makeTempDir({ prefix: "amp-bench-cloud-" });
  const cacheDir = await Deno.makeTempDir({ prefix: "amp-bench-cache-" });
  const server = await startServer(ca, db, state);
  const client = new CloudClient({ url: server.url, caCerts: [ca.caPem], timeoutMs: 60_000 });
  const cache = await LookupCache.open(`${cacheDir}/cloud_query.cache`);
  try {
    const { key } = await client.register(server.registrationToken, {
      guid: crypto.randomUUID(),
      hostname: "bench",
      os: "Debian",
      kernel: Deno.osRelease(),
      arch: Deno.build.arch,
      version: "bench",
    });
    const rows: Row[] = [];
    const ingestMs = await ingest(client, key, options.events);
    rows.push({
      measure: `event ingestion at the server (${name})`,
      value: `${rate(options.events, ingestMs)} events/s`,
      detail: `${options.events.toLocaleString("en-US")} events in ${
        (ingestMs / 1000).toFixed(1)
      } s, batches of 500, 2 in flight`,
    });
    await importDispositions(server, ca, options.dispositions);
    const lookup = new CloudLookup({
      cache,
      transport: () => ({ lookup: async (h) => (await client.lookup(key, h, 60_000)).results }),
      maxBatch: 500,
    });
    const missMs = await lookups(lookup, options.lookups, 5_000, (i) => (i % 2 === 0 ? 1 : 3));
    const s = lookup.stats;
    if (s.cloudAnswers !== options.lookups) {
      throw new Error(
        `only ${s.cloudAnswers} of ${options.lookups} lookups answered by the server`,
      );
    }
    rows.push({
      measure: `lookups through the server, misses batched (${name})`,
      value: `${rate(options.lookups, missMs)} lookups/s`,
      detail:
        `${options.lookups.toLocaleString("en-US")} distinct hashes, ${s.requests} requests, ` +
        `5,000 in flight; server holds ${
          options.dispositions.toLocaleString("en-US")
        } dispositions`,
    });
    await hitsRow(lookup, cacheDir);
    return rows;
  } finally {
    client.close();
    await cache.close();
    await server.stop();
    await Deno.remove(state, { recursive: true }).catch(() => {});
    await Deno.remove(cacheDir, { recursive: true }).catch(() => {});
  }
}

async function memoryChild(file: string, entries: number): Promise<void> {
  const before = rssKib();
  const cache = await LookupCache.open(file);
  const lookup = new CloudLookup({ cache, transport: () => undefined });
  const n = 200_000;
  let found = 0;
  const started = performance.now();
  let seed = 12345;
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const answer = await lookup.lookup(hashOf(seed % entries, 4));
    if (answer.source === "cache") found++;
  }
  const elapsed = performance.now() - started;
  // Collect the lookups' garbage, so that "after" is what the cache keeps.
  (globalThis as { gc?: () => void }).gc?.();
  const after = rssKib();
  await cache.close();
  console.log(JSON.stringify({ before, after, found, n, elapsed }));
}

async function memoryRow(entries: number): Promise<Row[]> {
  const dir = await Deno.makeTempDir({ prefix: "amp-bench-mem-" });
  const file = `${dir}/cloud_query.cache`;
  try {
    const cache = await LookupCache.open(file);
    const fillStart = performance.now();
    for (let start = 0; start < entries; start += 20_000) {
      cache.putMany(Array.from({ length: Math.min(20_000, entries - start) }, (_, j) => ({
        sha256: hashOf(start + j, 4),
        disposition: (start + j) % 10 === 0 ? "malicious" as const : "clean" as const,
        name: (start + j) % 10 === 0 ? "Bench.Malware" : undefined,
      })));
    }
    const fillMs = performance.now() - fillStart;
    const count = cache.count();
    await cache.close();
    const size = (await Deno.stat(file)).size;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        "--no-check",
        "--v8-flags=--expose-gc",
        SELF,
        "--memory-child",
        file,
        "--cache-entries",
        String(entries),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      before: { rss: number };
      after: { rss: number; hwm: number };
      found: number;
      n: number;
      elapsed: number;
    };
    if (r.found !== r.n) throw new Error(`only ${r.found} of ${r.n} lookups hit the cache`);
    const mb = (kib: number) => (kib / 1024).toFixed(0);
    return [
      {
        measure: `connector memory with a ${count.toLocaleString("en-US")}-entry cache`,
        value: `${mb(r.after.rss)} MB RSS (peak ${mb(r.after.hwm)} MB)`,
        detail:
          `${mb(r.before.rss)} MB before opening the cache; +${
            mb(r.after.rss - r.before.rss)
          } MB ` +
          `after ${r.n.toLocaleString("en-US")} random lookups; file ${(size / 1e6).toFixed(0)} MB`,
      },
      {
        measure: `lookups through a ${
          count.toLocaleString("en-US")
        }-entry cache (hits, fresh process)`,
        value: `${rate(r.n, r.elapsed)} lookups/s`,
        detail: `cold page cache of the process; filling the cache took ${
          (fillMs / 1000).toFixed(1)
        } s`,
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      events: { type: "string", default: "100000" },
      lookups: { type: "string", default: "50000" },
      hits: { type: "string", default: "500000" },
      "cache-entries": { type: "string", default: "1000000" },
      dispositions: { type: "string", default: "100000" },
      "memory-child": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const entries = Number(values["cache-entries"]);
  if (values["memory-child"]) return await memoryChild(values["memory-child"], entries);
  const options = {
    events: Number(values.events),
    lookups: Number(values.lookups),
    dispositions: Number(values.dispositions),
  };
  const hits = Number(values.hits);
  const ca = await makeTestCa();
  const rows: Row[] = [];
  try {
    let hitsDone = false;
    const hitsRow = async (lookup: CloudLookup) => {
      if (hitsDone) return;
      hitsDone = true;
      const before = lookup.stats.cacheHits;
      let seed = 7;
      const started = performance.now();
      for (let i = 0; i < hits; i++) {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        const k = seed % options.lookups;
        await lookup.lookup(hashOf(k, k % 2 === 0 ? 1 : 3));
      }
      const elapsed = performance.now() - started;
      if (lookup.stats.cacheHits - before !== hits) throw new Error("a hit missed the cache");
      rows.push({
        measure: "lookups through the cache (hits)",
        value: `${rate(hits, elapsed)} lookups/s`,
        detail: `${hits.toLocaleString("en-US")} random lookups over ${
          options.lookups.toLocaleString("en-US")
        } cached answers (CloudLookup.lookup, awaited one by one)`,
      });
    };
    console.error("bench-cloud: SQLite cloud …");
    rows.push(...await backendRows("SQLite", ca, undefined, options, hitsRow));
    if (POSTGRES_URL) {
      console.error("bench-cloud: PostgreSQL cloud …");
      const pg = await freshPostgresDb();
      try {
        rows.push(...await backendRows("PostgreSQL", ca, pg.url, options, hitsRow));
      } finally {
        await pg.drop();
      }
    } else {
      console.error("bench-cloud: AMP_TEST_POSTGRES_URL is not set: no PostgreSQL rows");
    }
    console.error(`bench-cloud: ${entries.toLocaleString("en-US")}-entry cache …`);
    rows.push(...await memoryRow(entries));
  } finally {
    await ca.remove();
  }
  const order = (r: Row) =>
    r.measure.startsWith("lookups through the cache")
      ? 0
      : r.measure.startsWith("lookups through the server")
      ? 1
      : r.measure.startsWith("event")
      ? 2
      : 3;
  rows.sort((a, b) => order(a) - order(b));
  console.log(
    `\namp cloud benchmark (${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno})\n`,
  );
  console.log("| measure | result | detail |\n|---|---|---|");
  for (const r of rows) console.log(`| ${r.measure} | ${r.value} | ${r.detail} |`);
}

if (import.meta.main) await main();
