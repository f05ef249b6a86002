/**
 * amp's DFC benchmark: a real `amp daemon` (tests/fixtures/daemon.ts) watching
 * the flows of a network namespace this benchmark creates (A: 198.51.100.1),
 * with a listener in a second one (B: 198.51.100.3 unlisted, 198.51.100.10 and
 * up listed), measured in one run and printed as a markdown table with
 * PASS/MISS per target and the raw numbers:
 *
 * 1. detection latency: N short-lived bash clients in A, each its own process,
 *    connect through /dev/tcp to a listed address (a different one each, so
 *    the per-process-and-address rate limit holds nothing back even when the
 *    daemon cannot attribute the flow); latency = the event's time minus
 *    bash's $EPOCHREALTIME just before connect();
 * 2. flows missed: one fast Deno client in A (bench/dfc_client.ts) connects
 *    to the unlisted address and closes, 10,000 times; status.dfc.flows
 *    before and after (and status.dfc.lost);
 * 3. daemon CPU (utime + stime of /proc/PID/stat) while the client paces
 *    2,000 new connections per second for 5 s, and idle for comparison;
 * 4. list load time and lookup rate for a one-million-entry list
 *    (bench/ip_list_bench.ts, run as a subprocess; its rows are included).
 *
 * Nothing is sent unless `ip route get` in A shows the target going out
 * through the benchmark's own veth. The namespaces are removed at the end and
 * on SIGINT/SIGTERM. Root only. Run with `deno task bench-dfc` (see `--help`).
 *
 * @module
 */

import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { connectDaemon } from "../src/cli/daemon_client.ts";
import type { IpcClient } from "../src/ipc/ipc_client.ts";
import type { StatusReport } from "../src/daemon/status_report.ts";
import { events, startDaemon, type TestDaemon } from "../tests/fixtures/daemon.ts";
import { clockTicksPerSecond, readCpuTicks } from "./daemon_proc.ts";
import {
  type ClientConnection,
  type DfcBenchResults,
  type DfcEventLike,
  formatDfcReport,
  LATENCY_P99_TARGET_MS,
  matchLatencies,
  missedFlows,
} from "./dfc_report.ts";
import { deleteNamespaces, vethPair } from "../tests/fixtures/netns.ts";

const DENO = Deno.execPath();
const CLIENT = new URL("./dfc_client.ts", import.meta.url).pathname;
const IP_LIST_BENCH = new URL("./ip_list_bench.ts", import.meta.url).pathname;
const WORK_DIR = "/var/tmp/amp-bench";
const NS_A = `ampdfcbA${Deno.pid}`;
const NS_B = `ampdfcbB${Deno.pid}`;
const PORT = 18444;
const UNLISTED = "198.51.100.3";
/** Listed addresses: 198.51.100.10 … .249. */
const LISTED_FIRST = 10;
const LISTED_MAX = 240;

const USAGE = `Usage: deno task bench-dfc [options]

Starts a real amp daemon (root only) watching a network namespace of its own
and measures DFC: detection latency, flows missed, CPU at a connection rate,
and a 1M-entry list's load time and lookup rate (bench/ip_list_bench.ts).
Prints a markdown table with PASS/MISS and saves it in ${WORK_DIR}/dfc-last-report.md.

  --latency N      connections for the latency measure, each its own process (default 200)
  --flows N        connections for the missed-flows measure (default 10000)
  --rate N         connections per second for the CPU measure (default 2000)
  --cpu-sec N      length of the CPU measure (default 5)
  --skip-list      do not run bench/ip_list_bench.ts
  --no-connect-audit  run the daemon with dfc.connectAudit off (sock_diag attribution only),
                   to compare the cost and the attribution rate
  -h, --help       this help`;

const log = (message: string) => console.error(`[bench-dfc] ${message}`);
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups = new Set<() => Promise<void>>();

async function run(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

function listed(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `198.51.100.${LISTED_FIRST + i}`);
}

/** Creates A and B joined by a veth, B's addresses, and the listener; checks routes. */
async function setUpNetwork(): Promise<Deno.ChildProcess> {
  cleanups.add(tearDownNetwork);
  await vethPair({
    a: NS_A,
    b: NS_B,
    devA: "vda",
    devB: "vdb",
    addressesA: ["198.51.100.1/24"],
    addressesB: [UNLISTED, ...listed(LISTED_MAX)].map((a) => `${a}/24`),
  });
  const listener = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      NS_B,
      DENO,
      "eval",
      `const l = Deno.listen({ hostname: "0.0.0.0", port: ${PORT} });
       console.log("ready");
       for await (const c of l) { try { c.close(); } catch { /* reset */ } }`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      listener.kill("SIGKILL");
    } catch {
      // gone
    }
    await listener.status;
  };
  cleanups.add(stop);
  const reader = listener.stdout.getReader();
  const { value } = await reader.read();
  if (!new TextDecoder().decode(value).includes("ready")) throw new Error("listener did not start");
  reader.releaseLock();
  listener.stdout.cancel().catch(() => {});
  return listener;
}

function tearDownNetwork(): Promise<void> {
  return deleteNamespaces(NS_A, NS_B);
}

async function status(client: IpcClient): Promise<StatusReport> {
  return await client.request("status") as StatusReport;
}

async function waitStable(client: IpcClient, ms = 1_000, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let since = Date.now();
  for (;;) {
    const s = await status(client);
    const key = JSON.stringify([s.dfc.flows, s.dfc.matches, s.dfc.events, s.dfc.lost]);
    if (key !== last) {
      last = key;
      since = Date.now();
    } else if (Date.now() - since >= ms || Date.now() > deadline) {
      return s;
    }
    await delay(100);
  }
}

/** One bash in A connecting to `address`: its pid and the time just before connect(). */
async function bashConnect(address: string): Promise<ClientConnection> {
  const out = await run(
    "ip",
    "netns",
    "exec",
    NS_A,
    "bash",
    "-c",
    `echo $$ $EPOCHREALTIME; exec 3<>/dev/tcp/${address}/${PORT}; exec 3>&-`,
  );
  const [pid, t] = out.trim().split(/\s+/);
  return { pid: Number(pid), address, connectMs: Number(t) * 1000 };
}

/** Runs bench/dfc_client.ts in A. */
async function client(
  host: string,
  count: number,
  rate: number,
  concurrency: number,
): Promise<{ connections: number; failed: number; ms: number }> {
  const out = await run(
    "ip",
    "netns",
    "exec",
    NS_A,
    DENO,
    "run",
    "--allow-net",
    "--no-check",
    "--quiet",
    CLIENT,
    host,
    String(PORT),
    String(count),
    String(rate),
    String(concurrency),
  );
  return JSON.parse(out.trim().split("\n").pop()!);
}

async function runIpListBench(): Promise<NonNullable<DfcBenchResults["ipList"]>> {
  const out = await run(DENO, "run", "--allow-all", "--quiet", IP_LIST_BENCH);
  const lines = out.split("\n");
  const rows = lines.filter((l) => l.startsWith("| ") && !l.startsWith("| measure"));
  const preamble = lines.filter((l) => l.trim() && !l.startsWith("|"));
  return { rows, preamble };
}

function positiveInt(text: string | undefined, option: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${option}: not a positive integer`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      latency: { type: "string", default: "200" },
      flows: { type: "string", default: "10000" },
      rate: { type: "string", default: "2000" },
      "cpu-sec": { type: "string", default: "5" },
      "skip-list": { type: "boolean", default: false },
      "no-connect-audit": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (Deno.uid() !== 0) {
    console.error("bench-dfc: needs root (network namespaces, the daemon)");
    return 2;
  }
  const nLatency = positiveInt(values.latency, "latency");
  const nFlows = positiveInt(values.flows, "flows");
  const rate = positiveInt(values.rate, "rate");
  const cpuSec = positiveInt(values["cpu-sec"], "cpu-sec");
  const ticks = await clockTicksPerSecond();
  const addresses = Math.min(nLatency, LISTED_MAX);
  const results: DfcBenchResults = {
    environment: [
      `${new Date().toISOString()}, kernel ${Deno.osRelease()}, ${cpus().length} CPUs (${
        cpus()[0]?.model ?? "?"
      }), Deno ${Deno.version.deno}`,
      `daemon watches netns ${NS_A} (198.51.100.1) → ${NS_B} (${UNLISTED} unlisted, ` +
      `198.51.100.${LISTED_FIRST}–.${LISTED_FIRST + addresses - 1} listed), port ${PORT}, ` +
      `connect audit ${values["no-connect-audit"] ? "off" : "on"}`,
    ],
    failures: [],
  };

  log("setting up the namespaces");
  await setUpNetwork();
  log("starting the daemon");
  const d: TestDaemon = await startDaemon({
    config: {
      dfc: {
        netns: NS_A,
        trackFlows: true,
        connectAudit: values["no-connect-audit"] ? "off" : "on",
      },
    },
    policy: {
      id: 1,
      name: "Audit Policy for Linux",
      dfc: { lists: [{ name: "bench-drop", file: "/etc/amp/lists/drop.txt" }] },
    },
    prepare: async () => {},
  });
  const stopDaemon = async () => {
    await d.stop();
  };
  cleanups.add(stopDaemon);
  const ipc = await connectDaemon(d.root);
  const closeIpc = () => ipc.close();
  cleanups.add(closeIpc);
  await Deno.writeTextFile(`${d.root}/etc/amp/lists/drop.txt`, listed(addresses).join("\n") + "\n");
  d.process.kill("SIGHUP");
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await status(ipc);
    if (s.dfc.on && s.dfc.lists[0]?.entries === addresses) break;
    if (Date.now() > deadline) throw new Error(`DFC did not come on:\n${d.log()}`);
    await delay(100);
  }
  const pid = d.process.pid;
  results.environment.push(`daemon pid ${pid}, list bench-drop ${addresses} entries`);

  // 1. Detection latency.
  log(`latency: ${nLatency} connections, each from its own bash`);
  const before = await waitStable(ipc, 500);
  const conns: ClientConnection[] = [];
  for (let i = 0; i < nLatency; i++) {
    conns.push(await bashConnect(`198.51.100.${LISTED_FIRST + (i % addresses)}`));
    await delay(10);
  }
  const want = before.dfc.events + nLatency;
  const waitUntil = Date.now() + 10_000;
  while ((await status(ipc)).dfc.events < want && Date.now() < waitUntil) await delay(100);
  await delay(300);
  const dfcEvents = (await events(d))
    .filter((e) => e.type === "DFC Threat Detected")
    .map((e) => ({
      time: Number(e.time),
      remoteAddress: e.remoteAddress as string | undefined,
      pid: typeof e.pid === "number" ? e.pid : undefined,
    } as DfcEventLike));
  results.latency = {
    connections: nLatency,
    addresses,
    ...matchLatencies(conns, dfcEvents),
  };
  if (results.latency.unmatched > 0) {
    results.failures.push(`latency: ${results.latency.unmatched} connections raised no event`);
  }

  // 2. Flows missed.
  log(`missed flows: ${nFlows} connections from one fast client`);
  const s0 = await waitStable(ipc);
  const fast = await client(UNLISTED, nFlows, 0, 1);
  const s1 = await waitStable(ipc, 2_000);
  results.missed = {
    connections: nFlows,
    failed: fast.failed,
    flowsBefore: s0.dfc.flows,
    flowsAfter: s1.dfc.flows,
    lostBefore: s0.dfc.lost,
    lostAfter: s1.dfc.lost,
    clientMs: fast.ms,
  };
  if (missedFlows(results.missed) > 0) {
    results.failures.push(`missed ${missedFlows(results.missed)} flows`);
  }

  // 3. CPU at a connection rate, and idle.
  log(`cpu: ${rate} connections/s for ${cpuSec} s`);
  const idleCpu0 = await readCpuTicks(pid);
  const idleT0 = performance.now();
  await delay(cpuSec * 1000);
  const idleCpu1 = await readCpuTicks(pid);
  const idleT1 = performance.now();
  const c0 = await readCpuTicks(pid);
  const f0 = (await status(ipc)).dfc.flows;
  const t0 = performance.now();
  const paced = await client(UNLISTED, rate * cpuSec, rate, 64);
  // Until the daemon has counted the flows (or 10 s): its backlog is part of the cost.
  const seen = f0 + paced.connections - paced.failed;
  const drainUntil = Date.now() + 10_000;
  while ((await status(ipc)).dfc.flows < seen && Date.now() < drainUntil) await delay(20);
  const c1 = await readCpuTicks(pid);
  const t1 = performance.now();
  const f1 = (await waitStable(ipc)).dfc.flows;
  if (idleCpu0 === null || idleCpu1 === null || c0 === null || c1 === null) {
    throw new Error(`The daemon exited:\n${d.log()}`);
  }
  results.cpu = {
    connections: paced.connections,
    failed: paced.failed,
    rate,
    // From the client's start to the daemon having counted its flows.
    wallMs: t1 - t0,
    clientMs: paced.ms,
    cpuSeconds: (c1 - c0) / ticks,
    flows: f1 - f0,
    idleCpuSeconds: (idleCpu1 - idleCpu0) / ticks,
    idleWallMs: idleT1 - idleT0,
  };
  results.environment.push(
    `CPU window: ${(t1 - t0).toFixed(0)} ms from the client's start (Deno start-up included) ` +
      `until the daemon counted its flows; ${paced.ms.toFixed(0)} ms of connections`,
  );

  cleanups.delete(closeIpc);
  await ipc.close();
  cleanups.delete(stopDaemon);
  const { code } = await d.stop();
  if (code !== 0) log(`daemon exited with status ${code}`);
  await cleanUp();

  // 4. The list.
  if (!values["skip-list"]) {
    log("ip list: bench/ip_list_bench.ts (1,000,000 entries)");
    results.ipList = await runIpListBench();
  }

  const report = formatDfcReport(results);
  console.log(report);
  await Deno.mkdir(WORK_DIR, { recursive: true });
  await Deno.writeTextFile(`${WORK_DIR}/dfc-last-report.md`, report);
  await Deno.writeTextFile(`${WORK_DIR}/dfc-last-results.json`, JSON.stringify(results, null, 2));
  log(`report saved to ${WORK_DIR}/dfc-last-report.md (target p99 < ${LATENCY_P99_TARGET_MS} ms)`);
  return results.failures.length > 0 ? 1 : 0;
}

async function cleanUp(): Promise<void> {
  for (const undo of [...cleanups].reverse()) await undo().catch(() => {});
  cleanups.clear();
}

if (import.meta.main) {
  const interrupted = async () => {
    console.error("[bench-dfc] interrupted: stopping the daemon, removing the namespaces");
    await cleanUp();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error("[bench-dfc] failed:", error);
    await cleanUp();
    Deno.exit(1);
  }
}
