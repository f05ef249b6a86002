/**
 * `clamscan -r`: a fresh process that loads the database, then scans the
 * corpus on one thread.
 *
 * @module
 */

import { join } from "node:path";
import { CLAMSCAN_LIMIT_ARGS } from "./limits.ts";
import { measure } from "./measure.ts";
import { type BenchTool, parseFoundLines, tail, type ToolContext, type ToolRun } from "./tool.ts";

/** The clamscan arguments used for the corpus scan. */
export function clamscanArgs(dbDir: string, tempDir: string, target: string): string[] {
  return ["-r", "-i", "-d", dbDir, ...CLAMSCAN_LIMIT_ARGS, `--tempdir=${tempDir}`, target];
}

/** clamscan over the whole corpus. */
export const clamscanTool: BenchTool = {
  name: "clamscan",
  async run(context: ToolContext): Promise<ToolRun[]> {
    const tempDir = join(context.scratchDir, "tmp");
    await Deno.mkdir(tempDir, { recursive: true });
    const args = clamscanArgs(context.db.dir, tempDir, context.corpus.dir);
    context.log(`$ clamscan ${args.join(" ")}`);
    const m = await measure("clamscan", args, { timeoutSec: context.timeoutSec });
    const scanned = m.stdout.match(/^Scanned files: (\d+)/m);
    const run: ToolRun = {
      label: "clamscan -r",
      wallMs: m.wallMs,
      peakRssKb: m.peakRssKb,
      filesReported: scanned ? Number(scanned[1]) : undefined,
      detections: parseFoundLines(m.stdout).map((f) => f.path),
      exitCode: m.code,
      notes: [],
    };
    if (m.timedOut) run.error = `timed out after ${context.timeoutSec} s`;
    else if (m.code !== 0 && m.code !== 1) {
      run.notes.push(`clamscan exited ${m.code}: ${tail(m.stderr, 300)}`);
    }
    return [run];
  },
};

/**
 * Wall time of `clamscan` on one small file: about the database load time
 * (plus process start), which the corpus scans also pay once.
 *
 * @param dbDir the database folder
 * @param file a small clean file
 */
export async function measureDbLoad(dbDir: string, file: string): Promise<{
  wallMs: number;
  peakRssKb: number | null;
  signatures?: number;
}> {
  const m = await measure("clamscan", ["-d", dbDir, ...CLAMSCAN_LIMIT_ARGS, file]);
  const known = m.stdout.match(/^Known viruses: (\d+)/m);
  return {
    wallMs: m.wallMs,
    peakRssKb: m.peakRssKb,
    signatures: known ? Number(known[1]) : undefined,
  };
}
