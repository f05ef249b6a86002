/**
 * amp's scan benchmark: builds (or reuses) a corpus copied from /usr with
 * planted samples and a synthetic 520,002-signature database, then measures
 * clamscan, clamdscan --multiscan, sha256sum and amp over it on a warm page
 * cache, and prints a markdown table with PASS/MISS per target.
 *
 * Run with `deno task bench` (see `--help`). The corpus and the database stay
 * in /var/tmp/amp-bench and are reused while their manifests match; each run's
 * scratch (clamd's configuration and log, amp's --root) is removed unless
 * `--keep`.
 *
 * @module
 */

import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ampArgs, ampDenoFlags, ampTool } from "./amp_tool.ts";
import { signalAllClamd } from "./clamd.ts";
import { clamdscanArgs, clamdscanTool } from "./clamdscan_tool.ts";
import { clamscanArgs, clamscanTool, measureDbLoad } from "./clamscan_tool.ts";
import { ensureCorpus, warmPageCache } from "./corpus.ts";
import { GNU_TIME, hasGnuTime, killActiveCommands } from "./measure.ts";
import { formatReport, summarise } from "./report.ts";
import { sha256sumScript, sha256sumTool } from "./sha256sum_tool.ts";
import { ensureSignatureDb } from "./signatures.ts";
import type { BenchTool, ToolRun } from "./tool.ts";

/** Scratch folder: the database, per-run folders, the default corpus. */
export const WORK_DIR = "/var/tmp/amp-bench";

const TOOLS: BenchTool[] = [sha256sumTool, clamscanTool, clamdscanTool, ampTool];

const USAGE = `Usage: deno task bench [options]

  --corpus DIR     corpus folder (default ${WORK_DIR}/corpus; built if missing,
                   reused while DIR.manifest.json matches)
  --size-mb N      corpus size in MB, files copied from /usr (default 1200)
  --only LIST      tools to run, comma-separated: ${TOOLS.map((t) => t.name).join(",")}
  --runs N         runs per tool; the table shows the median (default 1)
  --timeout SEC    kill a tool run after SEC seconds (default 900)
  --keep           keep each run's scratch folder (clamd conf/log, amp --root)
  -h, --help       this help

The database is built in ${WORK_DIR}/db; the corpus and database are kept
for the next run (rm -rf ${WORK_DIR} to free the space).`;

/** The run's scratch folder, removed on interruption unless --keep. */
let scratchToRemove: string | undefined;

async function main(): Promise<number> {
  const { values } = parseOptions();
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const sizeMb = positiveInt(values["size-mb"], "--size-mb");
  const runs = positiveInt(values.runs, "--runs");
  const timeoutSec = positiveInt(values.timeout, "--timeout");
  const names = values.only.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !TOOLS.some((t) => t.name === n));
  if (unknown.length > 0 || names.length === 0) {
    throw new UsageError(`Unknown tool in --only: ${unknown.join(", ") || "(none)"}`);
  }
  const tools = TOOLS.filter((t) => names.includes(t.name));
  const corpusDir = values.corpus.replace(/\/+$/, "");
  const cores = cpus().length || navigator.hardwareConcurrency;
  const repoDir = dirname(dirname(fileURLToPath(import.meta.url)));
  const log = (message: string) => console.error(`[bench] ${message}`);

  await Deno.mkdir(WORK_DIR, { recursive: true });
  const gnuTime = await hasGnuTime();
  if (!gnuTime) log(`${GNU_TIME} not found (apt-get install -y time): polling /proc for RSS`);

  log("signatures: building or reusing the database");
  const db = await ensureSignatureDb({ workDir: WORK_DIR });
  log(
    `signatures: ${db.dir} (${db.signatures} signatures, ${db.format}${
      db.reused ? ", reused" : ""
    })${db.note ? `: ${db.note}` : ""}`,
  );

  const corpus = await ensureCorpus({ dir: corpusDir, sizeMb, log });
  log("warming the page cache");
  const warmMs = await warmPageCache(corpus, cores);

  const runDir = await Deno.makeTempDir({ dir: WORK_DIR, prefix: "run-" });
  if (!values.keep) scratchToRemove = runDir;
  const results: ToolRun[] = [];
  let dbLoad: Awaited<ReturnType<typeof measureDbLoad>> | undefined;
  try {
    const probe = join(runDir, "one-clean-file.txt");
    await Deno.writeTextFile(probe, "a small clean file\n");
    dbLoad = await measureDbLoad(db.dir, probe);
    log(`DB load (clamscan on 1 file): ${(dbLoad.wallMs / 1000).toFixed(2)} s`);

    for (let run = 1; run <= runs; run++) {
      for (const tool of tools) {
        const scratchDir = join(runDir, `${tool.name}-${run}`);
        await Deno.mkdir(scratchDir, { recursive: true });
        log(`run ${run}/${runs}: ${tool.name}`);
        let rows: ToolRun[];
        try {
          rows = await tool.run({ corpus, db, cores, scratchDir, repoDir, timeoutSec, log });
        } catch (error) {
          rows = [{
            label: tool.name,
            wallMs: Number.NaN,
            peakRssKb: null,
            detections: null,
            error: error instanceof Error ? error.message : String(error),
            notes: [],
          }];
        }
        for (const row of rows) {
          log(
            `  ${row.label}: ${
              row.error ? `FAILED: ${row.error}` : `${(row.wallMs / 1000).toFixed(1)} s`
            }`,
          );
        }
        results.push(...rows);
      }
    }
  } finally {
    if (values.keep) log(`kept the run's scratch in ${runDir}`);
    else await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }

  const clamVersion = await commandText("clamscan", ["--version"]);
  const kernel = await commandText("uname", ["-r"]);
  const rows = summarise(results);
  const report = formatReport(rows, {
    corpus,
    db,
    runs,
    cores,
    warmMs,
    dbLoad,
    rssMethod: gnuTime
      ? "GNU time %M (ru_maxrss of the largest process of the tree); for clamdscan, clamd's VmHWM"
      : "VmHWM of the process tree polled every 50 ms; for clamdscan, clamd's VmHWM",
    environment: [
      `Machine: ${cores} cores, Linux ${kernel}, ${clamVersion}, Deno ${Deno.version.deno}.`,
      `Signature database recipe: ${db.recipe}`,
    ],
    commands: commandLines(tools.map((t) => t.name), {
      ampFlags: await ampDenoFlags(repoDir),
      corpus: corpus.dir,
      listFile: corpus.listFile,
      db: db.dir,
      runDir: join(WORK_DIR, "run-XXXX"),
      cores,
      repoDir,
    }),
  });
  console.log(report);
  await Deno.writeTextFile(
    join(WORK_DIR, "last-report.md"),
    report + "\n",
  );
  await Deno.writeTextFile(
    join(WORK_DIR, "last-results.json"),
    JSON.stringify({ corpus, db, warmMs, dbLoad, results }, null, 2) + "\n",
  );
  log(`report saved to ${join(WORK_DIR, "last-report.md")} and last-results.json`);
  return 0;
}

function parseOptions() {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        corpus: { type: "string", default: join(WORK_DIR, "corpus") },
        "size-mb": { type: "string", default: "1200" },
        only: { type: "string", default: TOOLS.map((t) => t.name).join(",") },
        runs: { type: "string", default: "1" },
        timeout: { type: "string", default: "900" },
        keep: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

function commandLines(
  names: string[],
  p: {
    ampFlags: string[];
    corpus: string;
    listFile: string;
    db: string;
    runDir: string;
    cores: number;
    repoDir: string;
  },
): string[] {
  const lines: string[] = [];
  if (names.includes("sha256sum")) {
    lines.push(`sh -c '${sha256sumScript(p.cores)}' sh ${p.listFile} OUT`);
  }
  if (names.includes("clamscan")) {
    lines.push(`clamscan ${clamscanArgs(p.db, `${p.runDir}/clamscan-N/tmp`, p.corpus).join(" ")}`);
  }
  if (names.includes("clamdscan")) {
    lines.push(
      `clamd --config-file=${p.runDir}/clamdscan-N/clamd.conf   # started first, waited for PONG`,
      `clamdscan ${clamdscanArgs(`${p.runDir}/clamdscan-N/clamd.conf`, p.corpus).join(" ")}`,
    );
  }
  if (names.includes("amp")) {
    lines.push(
      `cd ${p.repoDir} && ${Deno.execPath()} ${
        ampArgs(p.corpus, p.db, `${p.runDir}/amp-N/root`, p.ampFlags).join(" ")
      }   # twice`,
    );
  }
  lines.push(`(each wrapped as: timeout --kill-after=10 SEC ${GNU_TIME} -f %M -o FILE CMD...)`);
  return lines;
}

async function commandText(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return `${cmd}: unavailable`;
  }
}

class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function positiveInt(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw new UsageError(`Invalid ${option}: ${text} (a positive integer)`);
  }
  return value;
}

if (import.meta.main) {
  const interrupted = () => {
    console.error("[bench] interrupted: stopping the running tools");
    killActiveCommands();
    signalAllClamd();
    if (scratchToRemove) {
      try {
        Deno.removeSync(scratchToRemove, { recursive: true });
      } catch {
        // A tool may still be writing into it: leave it.
      }
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  Deno.addSignalListener("SIGTERM", interrupted);
  try {
    Deno.exit(await main());
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${error.message}\n\n${USAGE}`);
      Deno.exit(2);
    }
    console.error("[bench] failed:", error);
    killActiveCommands();
    signalAllClamd();
    Deno.exit(1);
  }
}
