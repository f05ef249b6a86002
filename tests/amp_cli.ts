/**
 * Runs the real amp CLI (`deno run main.ts`) as a child process, for the
 * end-to-end tests.
 *
 * @module
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** What one amp run printed and returned. */
export interface AmpRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of {@linkcode amp}. */
export interface AmpOptions {
  /** Run the process through this prefix (e.g. `setpriv` arguments). */
  prefix?: string[];
}

/** Runs `amp ARGS…` and returns its exit code and output. */
export async function amp(args: string[], options: AmpOptions = {}): Promise<AmpRun> {
  const argv = [Deno.execPath(), "run", "--allow-all", "--quiet", "--no-check", MAIN, ...args];
  const [cmd, ...rest] = [...(options.prefix ?? []), ...argv];
  const out = await new Deno.Command(cmd, {
    args: rest,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Runs `amp ARGS… --json` and parses its report. */
export async function ampJson(args: string[], options: AmpOptions = {}) {
  const run = await amp([...args, "--json"], options);
  let report: JsonReport;
  try {
    report = JSON.parse(run.stdout);
  } catch (cause) {
    throw new Error(`amp printed no JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`, {
      cause,
    });
  }
  return { ...run, report };
}

/** The `--json` document of `amp scan`. */
export interface JsonReport {
  kind: string;
  policy: { name: string; id: number; source: string };
  engines: string[];
  notices: string[];
  stopped: boolean;
  summary: {
    files: number;
    bytes: number;
    detections: number;
    skipped: number;
    errors: number;
    cached: number;
    elapsedMs: number;
  };
  detections: Array<{ path: string; name: string; engine: string; sha256?: string; size?: number }>;
  skipped: Array<{ path: string; reason: string; detail?: string }>;
  errors: Array<{ path: string; error: string }>;
}
