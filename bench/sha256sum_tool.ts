/**
 * `sha256sum` over every corpus file, one process per batch, as many in
 * parallel as there are cores: the floor set by reading and hashing the bytes.
 *
 * @module
 */

import { join } from "node:path";
import { measure } from "./measure.ts";
import { type BenchTool, tail, type ToolContext, type ToolRun } from "./tool.ts";

/** The shell command line used (`$1` is the NUL-separated list, `$2` the output). */
export function sha256sumScript(cores: number): string {
  return `xargs -0 -a "$1" -P ${cores} -n 64 sha256sum > "$2"`;
}

/** sha256sum as the I/O + hashing floor. */
export const sha256sumTool: BenchTool = {
  name: "sha256sum",
  async run(context: ToolContext): Promise<ToolRun[]> {
    const output = join(context.scratchDir, "sha256sums.txt");
    const script = sha256sumScript(context.cores);
    context.log(`$ sh -c '${script}' sh ${context.corpus.listFile} ${output}`);
    const m = await measure("sh", ["-c", script, "sh", context.corpus.listFile, output], {
      timeoutSec: context.timeoutSec,
    });
    const text = await Deno.readTextFile(output).catch(() => "");
    const run: ToolRun = {
      label: `sha256sum (xargs -P ${context.cores})`,
      wallMs: m.wallMs,
      peakRssKb: m.peakRssKb,
      filesReported: text.split("\n").filter((l) => l.length > 0).length,
      detections: null,
      exitCode: m.code,
      notes: [],
    };
    if (m.timedOut) run.error = `timed out after ${context.timeoutSec} s`;
    else if (m.code !== 0) run.error = `exited ${m.code}: ${tail(m.stderr, 300)}`;
    await Deno.remove(output).catch(() => {});
    return [run];
  },
};
