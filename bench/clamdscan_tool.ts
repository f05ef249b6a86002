/**
 * `clamdscan --multiscan --fdpass` against a clamd started for this run only.
 * The timed part is the clamdscan run: clamd's database load is excluded, and
 * clamd's engine is fresh (its cache of clean files is empty). The peak RSS is
 * clamd's own VmHWM after the scan (clamdscan itself is a few MB).
 *
 * @module
 */

import { startClamd } from "./clamd.ts";
import { measure } from "./measure.ts";
import { type BenchTool, parseFoundLines, tail, type ToolContext, type ToolRun } from "./tool.ts";

/** The clamdscan arguments used for the corpus scan. */
export function clamdscanArgs(configFile: string, target: string): string[] {
  return ["--multiscan", "--fdpass", "--infected", `--config-file=${configFile}`, target];
}

/** clamdscan --multiscan --fdpass with a fresh clamd. */
export const clamdscanTool: BenchTool = {
  name: "clamdscan",
  async run(context: ToolContext): Promise<ToolRun[]> {
    const label = `clamdscan --multiscan --fdpass (fresh clamd, MaxThreads ${context.cores})`;
    context.log(`clamd: starting with MaxThreads ${context.cores} in ${context.scratchDir}`);
    const clamd = await startClamd({
      dir: context.scratchDir,
      dbDir: context.db.dir,
      threads: context.cores,
    });
    try {
      const loadRssKb = await clamd.peakRssKb();
      context.log(`clamd: ready in ${(clamd.loadMs / 1000).toFixed(1)} s (pid ${clamd.pid})`);
      const args = clamdscanArgs(clamd.configFile, context.corpus.dir);
      context.log(`$ clamdscan ${args.join(" ")}`);
      const m = await measure("clamdscan", args, { timeoutSec: context.timeoutSec });
      const clamdRssKb = await clamd.peakRssKb();
      const run: ToolRun = {
        label,
        wallMs: m.wallMs,
        peakRssKb: clamdRssKb,
        detections: parseFoundLines(m.stdout).map((f) => f.path),
        exitCode: m.code,
        notes: [
          `clamd load ${
            (clamd.loadMs / 1000).toFixed(1)
          } s excluded from wall; RSS is clamd's VmHWM ` +
          `(${kbToMb(loadRssKb)} MB after load), clamdscan itself ${kbToMb(m.peakRssKb)} MB`,
        ],
      };
      if (m.timedOut) run.error = `timed out after ${context.timeoutSec} s`;
      else if (m.code !== 0 && m.code !== 1) {
        run.notes.push(`clamdscan exited ${m.code}: ${tail(m.stdout + m.stderr, 300)}`);
      }
      return [run];
    } finally {
      await clamd.stop();
    }
  },
};

function kbToMb(kb: number | null): string {
  return kb === null ? "?" : (kb / 1024).toFixed(0);
}
