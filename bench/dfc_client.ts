/**
 * The DFC benchmark's TCP client (run by bench/dfc_bench.ts inside its
 * namespace): connects to HOST:PORT COUNT times, closing each connection at
 * once, as fast as it can or paced at RATE per second, with at most
 * CONCURRENCY connections open; prints one JSON line {connections, failed, ms}.
 *
 *     deno run --allow-net bench/dfc_client.ts HOST PORT COUNT [RATE] [CONCURRENCY]
 *
 * @module
 */

import { dueConnections } from "./dfc_report.ts";

async function main(): Promise<void> {
  const [hostname, port, count, rate = "0", concurrency = "1"] = Deno.args;
  const total = Number(count);
  const perSecond = Number(rate);
  const limit = Math.max(1, Number(concurrency));
  let started = 0;
  let failed = 0;
  let open = 0;
  let wake: (() => void) | undefined;
  const one = async () => {
    open++;
    try {
      const c = await Deno.connect({ hostname, port: Number(port) });
      c.close();
    } catch {
      failed++;
    } finally {
      open--;
      wake?.();
    }
  };
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  while (started < total) {
    const due = dueConnections(performance.now() - t0, perSecond, total);
    if (started < due && open < limit) {
      started++;
      if (limit === 1) await one();
      else pending.push(one());
      continue;
    }
    if (open >= limit) {
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    } else {
      await new Promise((r) => setTimeout(r, 1));
    }
  }
  await Promise.all(pending);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ connections: total, failed, ms }));
}

if (import.meta.main) await main();
