/**
 * Signatures through `freshclam`, driven by a configuration amp writes for
 * each run: the signature directory, the configured mirror as a
 * `PrivateMirror` (so freshclam neither asks DNS for versions nor falls back
 * to ClamAV's public mirrors), foreground, root-owned files, and its own log
 * into amp's log directory. freshclam verifies each database's digital
 * signature, so a mirror must serve files signed by ClamAV (a copy of the
 * official databases): unsigned containers are refused with exit 54 or 7.
 *
 * freshclam exits 0 both when it updated and when everything was up to date;
 * amp tells them apart from its output and from the signature directory's
 * fingerprint before and after.
 *
 * @module
 */

/** Options of {@linkcode freshclamConfig}. */
export interface FreshclamConfigOptions {
  /** Signature directory (DatabaseDirectory). */
  dbDir: string;
  /** The mirror URL (PrivateMirror). */
  mirror: string;
  /** freshclam's own log file (UpdateLogFile). */
  logFile: string;
  /** Download attempts per database (MaxAttempts); 3 by default. */
  maxAttempts?: number;
}

/**
 * The text of a freshclam.conf for one run.
 *
 * @example
 * ```ts
 * import { freshclamConfig } from "./freshclam.ts";
 * freshclamConfig({
 *   dbDir: "/var/lib/clamav",
 *   mirror: "https://mirror.example/clamav",
 *   logFile: "/var/log/amp/freshclam.log",
 * }).includes("PrivateMirror https://mirror.example/clamav"); // true
 * ```
 */
export function freshclamConfig(options: FreshclamConfigOptions): string {
  for (const [what, value] of Object.entries(options)) {
    if (typeof value === "string" && /[\r\n]/.test(value)) {
      throw new TypeError(`freshclam ${what} must be one line: ${JSON.stringify(value)}`);
    }
  }
  return [
    "# Written by amp update for one freshclam run; not used otherwise.",
    `DatabaseDirectory ${options.dbDir}`,
    // PrivateMirror: no DNS version lookups, no ClamAV public mirrors, .cld
    // then .cvd from this URL. It overrides DatabaseMirror and ScriptedUpdates.
    `PrivateMirror ${options.mirror}`,
    "DNSDatabaseInfo no",
    "ScriptedUpdates no",
    "Foreground yes",
    "LogTime yes",
    "LogVerbose no",
    "DatabaseOwner root",
    `UpdateLogFile ${options.logFile}`,
    `MaxAttempts ${options.maxAttempts ?? 3}`,
    "TestDatabases yes",
    "Bytecode yes",
    "",
  ].join("\n");
}

/** What freshclam said about one database. */
export interface FreshclamFile {
  /** File name, such as `daily.cld`. */
  name: string;
  status: "updated" | "up-to-date";
  version?: number;
  signatures?: number;
}

/** What one freshclam run did. */
export interface FreshclamOutcome {
  /** Exit code (0 updated or up to date). */
  code: number;
  files: FreshclamFile[];
  /** `ERROR:` lines, without the prefix and time. */
  errors: string[];
  /** What the exit code means (from `man freshclam`). */
  meaning: string;
}

const EXIT_MEANINGS: Record<number, string> = {
  0: "database up to date or updated",
  1: "database up to date",
  40: "unknown option",
  50: "cannot change directory",
  51: "cannot check MD5 sum",
  52: "connection (network) problem",
  53: "cannot unlink file",
  54: "MD5 or digital signature verification error",
  55: "error reading file",
  56: "config file error",
  57: "cannot create new file",
  58: "cannot read database from remote server",
  59: "mirrors are not fully synchronized (try again later)",
  60: "cannot get information about the user from /etc/passwd",
  61: "cannot drop privileges",
  62: "cannot initialize logger",
};

/** What a freshclam exit code means. */
export function freshclamExitMeaning(code: number): string {
  // 7 is not in the manual: freshclam 1.x returns it when a downloaded
  // database fails verification ("Invalid or corrupted CVD/CLD database").
  if (code === 7) return "invalid or corrupted database (verification failed)";
  return EXIT_MEANINGS[code] ?? `exit status ${code}`;
}

/**
 * Reads freshclam's output: `daily.cld updated (version: 27000, sigs: …)`,
 * `main.cvd database is up-to-date (version: 62, sigs: …)` and `ERROR:` lines.
 */
export function parseFreshclamOutput(code: number, output: string): FreshclamOutcome {
  const files = new Map<string, FreshclamFile>();
  const errors: string[] = [];
  for (const raw of output.split("\n")) {
    const line = raw.replace(/^(ERROR|WARNING): /, "").replace(/^.*? -> /, "").trim();
    const updated = /^(\S+\.c[lv]d) updated \(version: (\d+)(?:, sigs: (\d+))?/.exec(line);
    const current = /^(\S+\.c[lv]d) database is up-to-date \(version: (\d+)(?:, sigs: (\d+))?/
      .exec(line);
    const m = updated ?? current;
    if (m) {
      const file: FreshclamFile = { name: m[1], status: updated ? "updated" : "up-to-date" };
      file.version = Number(m[2]);
      if (m[3] !== undefined) file.signatures = Number(m[3]);
      files.set(m[1], file);
    } else if (raw.startsWith("ERROR:") && line.length > 0 && !errors.includes(line)) {
      errors.push(line);
    }
  }
  return { code, files: [...files.values()], errors, meaning: freshclamExitMeaning(code) };
}

/** Options of {@linkcode runFreshclam}. */
export interface RunFreshclamOptions extends FreshclamConfigOptions {
  /** The freshclam executable. */
  executable: string;
  /** Each output line, as it comes. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** Kill freshclam after this long; 30 minutes by default. */
  timeoutMs?: number;
}

/** Runs freshclam once with a generated configuration (removed afterwards). */
export async function runFreshclam(options: RunFreshclamOptions): Promise<FreshclamOutcome> {
  const dir = await Deno.makeTempDir({ prefix: "amp-freshclam-" });
  try {
    const conf = `${dir}/freshclam.conf`;
    await Deno.writeTextFile(conf, freshclamConfig(options), { mode: 0o600 });
    const child = new Deno.Command(options.executable, {
      args: [`--config-file=${conf}`],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(options.timeoutMs ?? 30 * 60_000),
    }).spawn();
    let text = "";
    const pump = async (stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr") => {
      let pending = "";
      const flush = (line: string) => {
        text += `${line}\n`;
        options.onLine?.(line, name);
      };
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        pending += chunk;
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        lines.forEach(flush);
      }
      if (pending) flush(pending);
    };
    const [status] = await Promise.all([
      child.status,
      pump(child.stdout, "stdout"),
      pump(child.stderr, "stderr"),
    ]);
    const code = status.signal ? 128 : status.code;
    const outcome = parseFreshclamOutput(code, text);
    if (status.signal) outcome.meaning = `killed by ${status.signal} (timeout)`;
    return outcome;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The first `name` executable on `PATH`, or undefined. */
export async function findExecutable(
  name: string,
  path = Deno.env.get("PATH") ?? "/usr/bin:/bin",
): Promise<string | undefined> {
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const st = await Deno.stat(`${dir}/${name}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111) !== 0) return `${dir}/${name}`;
    } catch {
      // not here
    }
  }
  return undefined;
}
