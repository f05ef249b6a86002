/**
 * `amp quarantine list|restore|delete`: the files amp moved into
 * `<root>/var/lib/amp/quarantine/`. The command works on the quarantine
 * through {@linkcode QuarantineStore}; by default it opens the directory
 * itself ({@linkcode openQuarantineHere}), and while the daemon holds the
 * quarantine the CLI can pass a store that asks the daemon instead
 * (`deps.open`).
 *
 * Exit status: 0 done; 1 refused or failed (a file in the way without
 * --force, a damaged copy, the quarantine busy); 2 usage (bad or unknown id, a
 * record in the wrong state).
 *
 * @module
 */

import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import {
  Quarantine,
  QUARANTINE_DB,
  quarantineDir,
  QuarantineError,
  type QuarantineRecord,
  type QuarantineRecovery,
  type RestoreOptions,
  type RestoreResult,
} from "../protect/quarantine.ts";
import { bytePath, escapePath } from "../sys/byte_path.ts";
import { UsageError } from "./usage_error.ts";

/** What the command needs of a quarantine: {@linkcode Quarantine} fits it, and so can a daemon client. */
export interface QuarantineStore {
  /** What opening recovered, when the store is the quarantine itself. */
  readonly recovery?: QuarantineRecovery;
  list(): Promise<QuarantineRecord[]>;
  get(id: number): Promise<QuarantineRecord | undefined>;
  restore(id: number, options?: RestoreOptions): Promise<RestoreResult>;
  delete(id: number): Promise<void>;
  close(): Promise<void>;
}

/** What the command needs from its surroundings (replaced in tests and by the daemon client). */
export interface QuarantineCommandDeps {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /**
   * Opens the quarantine in `dir`; `readOnly` for `list`. Defaults to
   * {@linkcode openQuarantineHere}.
   */
  open: (dir: string, options: { readOnly: boolean }) => Promise<QuarantineStore>;
}

/** Options the subcommands parse. */
export interface QuarantineCommandOptions {
  root: string;
  json?: boolean;
  to?: string;
  force?: boolean;
}

const EMPTY_STORE: QuarantineStore = {
  list: () => Promise.resolve([]),
  get: () => Promise.resolve(undefined),
  restore: (id) =>
    Promise.reject(new QuarantineError("unknown-id", `No quarantine record has id ${id}`)),
  delete: (id) =>
    Promise.reject(new QuarantineError("unknown-id", `No quarantine record has id ${id}`)),
  close: () => Promise.resolve(),
};

/**
 * Opens the quarantine in this process ({@linkcode Quarantine.open}); a
 * directory without a database is an empty quarantine, and is not created.
 */
export async function openQuarantineHere(
  dir: string,
  options: { readOnly: boolean },
): Promise<QuarantineStore> {
  try {
    await Deno.lstat(join(dir, QUARANTINE_DB));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return EMPTY_STORE;
    throw error;
  }
  return await Quarantine.open(dir, options);
}

const defaultDeps: QuarantineCommandDeps = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
  open: openQuarantineHere,
};

function recordId(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a record id, a whole number (amp quarantine list)");
  }
  return n;
}

/** `0o4750` → "4750". */
function permissions(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * A record as JSON: paths escaped for people and in base64 for programs (a
 * name need not be UTF-8), nanosecond times as strings.
 */
export function quarantineRecordJson(record: QuarantineRecord): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: record.id,
    state: record.state,
    path: record.pathText,
    pathBase64: base64(record.path),
    size: record.size,
    sha256: record.sha256,
    detection: record.detection,
    engine: record.engine,
    quarantinedAt: isoTime(record.time),
    uid: record.uid,
    gid: record.gid,
    mode: record.mode,
    permissions: permissions(record.mode),
    atimeNs: String(record.atimeNs),
    mtimeNs: String(record.mtimeNs),
  };
  if (record.restoredPath !== undefined) {
    json.restoredPath = record.restoredPathText;
    json.restoredPathBase64 = base64(record.restoredPath);
  }
  if (record.restoredTime !== undefined) json.restoredAt = isoTime(record.restoredTime);
  return json;
}

/** The human listing: one line per record under a header, or a sentence when empty. */
export function quarantineTable(records: readonly QuarantineRecord[], dir: string): string {
  if (records.length === 0) return `The quarantine is empty (${dir}).`;
  const rows = [["ID", "STATE", "QUARANTINED", "SIZE", "DETECTION", "ENGINE", "PATH"]];
  for (const r of records) {
    const path = r.restoredPathText !== undefined && r.restoredPathText !== r.pathText
      ? `${r.pathText} (restored to ${r.restoredPathText})`
      : r.pathText;
    rows.push([
      String(r.id),
      r.state,
      isoTime(r.time),
      String(r.size),
      r.detection,
      r.engine,
      path,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const lines = rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i])).join("  ")
  );
  const held = records.filter((r) => r.state === "quarantined").length;
  lines.push("", `${held} file${held === 1 ? "" : "s"} in quarantine (${dir}).`);
  return lines.join("\n");
}

/** Turns a refusal into the message and exit code the person sees. */
function asUsageError(error: unknown): unknown {
  if (!(error instanceof QuarantineError)) return error;
  switch (error.reason) {
    case "unknown-id":
      return new UsageError(`${error.message} (amp quarantine list shows the ids)`, {
        cause: error,
      });
    case "state":
      return new UsageError(error.message, { cause: error });
    case "exists":
      return new UsageError(`${error.message}. Add --force to replace it.`, {
        cause: error,
        exitCode: 1,
      });
    default:
      return new UsageError(error.message, { cause: error, exitCode: 1 });
  }
}

async function withStore<T>(
  deps: QuarantineCommandDeps,
  root: string,
  readOnly: boolean,
  fn: (store: QuarantineStore, dir: string) => Promise<T>,
): Promise<T> {
  const dir = quarantineDir(root);
  let store: QuarantineStore;
  try {
    store = await deps.open(dir, { readOnly });
  } catch (error) {
    throw asUsageError(error);
  }
  try {
    const recovery = store.recovery;
    if (recovery && (recovery.rolledBack || recovery.completed)) {
      deps.stderr(
        `amp: finished interrupted quarantine operations: ${recovery.completed} completed, ` +
          `${recovery.rolledBack} rolled back`,
      );
    }
    for (const problem of recovery?.problems ?? []) deps.stderr(`amp: quarantine: ${problem}`);
    return await fn(store, dir);
  } catch (error) {
    throw asUsageError(error);
  } finally {
    await store.close();
  }
}

const ROOT_HELP = "host root whose <root>/var/lib/amp/quarantine is used";

/**
 * Builds `amp quarantine` with `list`, `restore` and `delete`.
 *
 * @example
 * ```ts ignore
 * import { makeQuarantineCommand } from "./quarantine_command.ts";
 *
 * await makeQuarantineCommand().parseAsync(["list", "--root", "/tmp/host"], { from: "user" });
 * ```
 */
export function makeQuarantineCommand(deps: Partial<QuarantineCommandDeps> = {}): Command {
  const d: QuarantineCommandDeps = { ...defaultDeps, ...deps };

  const list = new Command("list")
    .summary("list quarantined (and restored) files")
    .description(
      "List every record of the quarantine: quarantined files and the history of\n" +
        "restored ones, oldest first. Paths that are not UTF-8 are shown escaped\n" +
        "(\\xNN); --json adds each path's exact bytes in base64.",
    )
    .option("--json", "print one JSON document: { dir, records: [...] }")
    .option("--root <dir>", ROOT_HELP, "/")
    .action(async (opts: QuarantineCommandOptions) => {
      await withStore(d, opts.root, true, async (store, dir) => {
        const records = await store.list();
        d.stdout(
          opts.json
            ? JSON.stringify({ dir, records: records.map(quarantineRecordJson) }, null, 2)
            : quarantineTable(records, dir),
        );
      });
    });

  const restore = new Command("restore")
    .summary("put a quarantined file back")
    .description(
      "Write a quarantined file back, byte for byte, with its owner, mode (set-user-ID\n" +
        "and set-group-ID bits included) and access and modification times: at its\n" +
        "original path, or at --to PATH. A file already at the target is never\n" +
        "replaced unless you add --force. The quarantined copy is then deleted, and\n" +
        "the record kept as 'restored': the daemon does not convict a file with that\n" +
        "SHA-256 again (delete the record to undo that).",
    )
    .argument("<id>", "the record's id (amp quarantine list)", recordId)
    .option("--to <path>", "write the file here instead of its original path")
    .option("--force", "replace a file that is at the target")
    .option("--json", "print the restored record as JSON")
    .option("--root <dir>", ROOT_HELP, "/")
    .action(async (id: number, opts: QuarantineCommandOptions) => {
      await withStore(d, opts.root, false, async (store) => {
        const options: RestoreOptions = {};
        if (opts.to !== undefined) options.to = bytePath(opts.to);
        if (opts.force) options.force = true;
        const { record, path } = await store.restore(id, options);
        if (opts.json) {
          d.stdout(JSON.stringify(
            {
              path: escapePath(path),
              pathBase64: base64(path),
              record: quarantineRecordJson(record),
            },
            null,
            2,
          ));
          return;
        }
        d.stdout(
          `Restored ${record.id} to ${escapePath(path)}: ${record.size} bytes, owner ` +
            `${record.uid}:${record.gid}, mode ${
              permissions(record.mode)
            }, SHA-256 ${record.sha256}.`,
        );
      });
    });

  const del = new Command("delete")
    .summary("delete a quarantined file for good")
    .description(
      "Delete a quarantined file's encrypted copy and its record: the file cannot be\n" +
        "restored afterwards. For a restored file, forget its record (the daemon may\n" +
        "then convict that SHA-256 again).",
    )
    .argument("<id>", "the record's id (amp quarantine list)", recordId)
    .option("--root <dir>", ROOT_HELP, "/")
    .action(async (id: number, opts: QuarantineCommandOptions) => {
      await withStore(d, opts.root, false, async (store) => {
        const record = await store.get(id);
        await store.delete(id);
        const what = record?.state === "restored" ? "Forgot the restored record" : "Deleted";
        d.stdout(`${what} ${id} (${record?.pathText ?? "?"}).`);
      });
    });

  return new Command("quarantine")
    .summary("list, restore or delete quarantined files")
    .description(
      "Under a quarantine policy, convicted files are moved into\n" +
        "<root>/var/lib/amp/quarantine/. Each is kept encrypted (AES-256-CTR under a\n" +
        "random key per file, mode 0400), so it can neither run nor trip a scanner,\n" +
        "and quarantine.db keeps its original path (exact bytes), owner, group, mode,\n" +
        "times, size, SHA-256 and detection. Moving in and out is crash-safe: if amp\n" +
        "is killed half way, the next start finishes or undoes the operation, so a\n" +
        "file is always either at its place or in quarantine.",
    )
    .addCommand(list.exitOverride())
    .addCommand(restore.exitOverride())
    .addCommand(del.exitOverride())
    .addHelpText(
      "after",
      `
Examples:
  amp quarantine list                        what is in quarantine, with ids
  amp quarantine list --json                 the same for a script (exact path bytes in base64)
  amp quarantine restore 12                  put file 12 back where it was
  amp quarantine restore 12 --to /root/f12   look at it somewhere else first
  amp quarantine restore 12 --force          replace what is at its path now
  amp quarantine delete 12                   remove it for good

Exit status: 0 done, 1 refused or failed (a file in the way without --force,
a damaged copy, quarantine busy), 2 usage (bad or unknown id).`,
    );
}
