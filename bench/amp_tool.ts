/**
 * amp's custom scan, run as `deno run FLAGS main.ts scan --custom CORPUS --json`
 * (FLAGS from the `amp` task of deno.json) twice with the same fresh `--root`: the first scan starts with an empty
 * verdict cache, the rescan finds every file in it. The wall time includes
 * Deno's start-up and amp's database load (unlike clamdscan's), so amp's own
 * `summary.elapsedMs` is shown beside it.
 *
 * @module
 */

import { join } from "node:path";
import { measure } from "./measure.ts";
import { type BenchTool, tail, type ToolContext, type ToolRun } from "./tool.ts";

/** The part of `amp scan --json` output the benchmark reads. */
export interface AmpScanReport {
  /** Totals. */
  summary: {
    files: number;
    bytes: number;
    detections: number;
    skipped: number;
    errors: number;
    elapsedMs: number;
  };
  /** One entry per detection. */
  detections: { path: string; name: string; engine: string; sha256?: string }[];
  /** Files not scanned (over the limits, …). */
  skipped?: unknown[];
  /** Files that could not be scanned. */
  errors?: unknown[];
}

/** Deno flags used when deno.json has no usable `amp` task. */
export const DEFAULT_DENO_FLAGS = ["--allow-all", "--quiet"];

/**
 * The Deno flags of the repository's `amp` task (`deno run FLAGS main.ts`), so
 * that amp is measured the way it is run (e.g. with its V8 heap flags).
 *
 * @param repoDir the repository
 */
export async function ampDenoFlags(repoDir: string): Promise<string[]> {
  try {
    const config = JSON.parse(await Deno.readTextFile(join(repoDir, "deno.json")));
    const task: unknown = config?.tasks?.amp;
    const match = typeof task === "string" ? task.match(/^deno run (.*?)\s*main\.ts$/) : null;
    if (match) {
      const flags = match[1].split(/\s+/).filter(Boolean);
      if (flags.every((f) => f.startsWith("-") && !/["'$`\\]/.test(f))) return flags;
    }
  } catch {
    // No deno.json or not JSON: use the defaults.
  }
  return DEFAULT_DENO_FLAGS;
}

/** The amp arguments after `deno`. */
export function ampArgs(
  corpus: string,
  dbDir: string,
  root: string,
  denoFlags: string[] = DEFAULT_DENO_FLAGS,
): string[] {
  return [
    "run",
    ...denoFlags,
    "main.ts",
    "scan",
    "--custom",
    corpus,
    "--db-dir",
    dbDir,
    "--json",
    "--root",
    root,
  ];
}

/**
 * Parses amp's JSON report (the whole standard output, or failing that its last
 * line that parses).
 *
 * @param stdout amp's standard output
 */
export function parseAmpReport(stdout: string): AmpScanReport | undefined {
  const candidates = [stdout.trim(), ...stdout.trim().split("\n").reverse()];
  for (const text of candidates) {
    try {
      const value = JSON.parse(text);
      if (value && typeof value === "object" && value.summary) return value as AmpScanReport;
    } catch {
      // Not this one.
    }
  }
  return undefined;
}

/** amp scan, first scan and rescan. */
export const ampTool: BenchTool = {
  name: "amp",
  async run(context: ToolContext): Promise<ToolRun[]> {
    const labels = ["amp scan (first, cold verdict cache)", "amp rescan (warm verdict cache)"];
    const mainTs = join(context.repoDir, "main.ts");
    if (!await Deno.stat(mainTs).then(() => true, () => false)) {
      return labels.map((label) => failed(label, `${mainTs} does not exist yet`));
    }
    const root = join(context.scratchDir, "root");
    await Deno.mkdir(root, { recursive: true });
    const deno = Deno.execPath();
    const args = ampArgs(
      context.corpus.dir,
      context.db.dir,
      root,
      await ampDenoFlags(context.repoDir),
    );
    const runs: ToolRun[] = [];
    for (const label of labels) {
      context.log(`$ (cd ${context.repoDir} && ${deno} ${args.join(" ")})`);
      const m = await measure(deno, args, { cwd: context.repoDir, timeoutSec: context.timeoutSec });
      if (m.timedOut) {
        runs.push(failed(label, `timed out after ${context.timeoutSec} s`));
        continue;
      }
      const report = parseAmpReport(m.stdout);
      if (!report || (m.code !== 0 && m.code !== 1 && m.code !== 2)) {
        runs.push(
          failed(label, `exited ${m.code}: ${tail(m.stderr || m.stdout, 400)}`, m.wallMs),
        );
        continue;
      }
      const s = report.summary;
      const run: ToolRun = {
        label,
        wallMs: m.wallMs,
        peakRssKb: m.peakRssKb,
        filesReported: s.files,
        detections: (report.detections ?? []).map((d) => d.path),
        exitCode: m.code,
        notes: [
          `amp summary: ${s.files} files, ${
            (s.bytes / 1e6).toFixed(0)
          } MB, ${s.skipped} skipped, ` +
          `${s.errors} errors, elapsedMs ${Math.round(s.elapsedMs)} (start-up and DB load: ${
            ((m.wallMs - s.elapsedMs) / 1000).toFixed(1)
          } s)`,
        ],
      };
      if (m.code === 2) run.notes.push(`exit 2 (errors): ${tail(m.stderr, 300)}`);
      runs.push(run);
    }
    return runs;
  },
};

function failed(label: string, error: string, wallMs = Number.NaN): ToolRun {
  return { label, wallMs, peakRssKb: null, detections: null, error, notes: [] };
}
