/**
 * The quarantine: convicted files moved into `<root>/var/lib/amp/quarantine/`,
 * encrypted (`quarantine_format.ts`) so that they are inert, with a record in
 * `quarantine.db` of everything needed to put them back exactly.
 *
 * ## The invariant
 * Killing amp at any instant (or losing power: every step is fsync'd and the
 * database runs `synchronous = FULL`) leaves each file either at its place or
 * in quarantine with its record — never lost, never in both without a record
 * saying so. Every operation first commits a record in a transitional state
 * (`pending`, `restoring`, `deleting`); {@linkcode Quarantine.open} finishes or
 * undoes whatever such a record describes, deciding by what exists on disk,
 * and reports it in {@linkcode Quarantine.recovery}.
 *
 * ## Quarantine (original at P, in directory D, copy in Q)
 * 0. Check that the descriptor is a regular file and that the name P in D is
 *    still that inode (dev, ino). Nothing is changed if not.
 * 1. Insert the record `pending` (path bytes, dev/ino, owner, mode, times,
 *    SHA-256, a fresh key and IV) and commit.
 * 2. Stream the descriptor (never the path) into `Q/<id>.tmp` (mode 0400),
 *    hashing as it goes; fsync. A hash other than the convicted one means the
 *    file changed since it was scanned: undo and refuse. Rename to
 *    `Q/<id>.amq`; fsync Q.
 * 3. Rename P to `D/.amp-quarantine-<id>-<tag>` (renameat2 RENAME_NOREPLACE, in its
 *    own directory: no data moves and nothing can be replaced). Check that the
 *    renamed inode is the scanned one and that the descriptor's size and mtime
 *    did not move during the copy; otherwise rename it back and refuse.
 * 4. Unlink the hidden name; fsync D.
 * 5. Mark the record `quarantined` and commit.
 * An error before step 4 undoes the steps done (rename back, delete the copy,
 * then the record); an undo that fails leaves the record `pending` for
 * recovery.
 *
 * Recovery of a `pending` record:
 * - hidden name present: rename it back to P (the hidden name and P being the
 *   same inode, from the link+unlink fallback of a file system without
 *   RENAME_NOREPLACE: just drop the hidden name); then delete the copy and
 *   the record (rolled back). Should P meanwhile hold another file, the
 *   quarantine is completed instead when the hidden file is the recorded
 *   inode with the recorded hash and the copy verifies; else it is left as it
 *   is and reported.
 * - no hidden name, P is the recorded inode: delete the copy and the record
 *   (rolled back).
 * - no hidden name, P gone (or another inode): when `<id>.amq` decrypts to the
 *   recorded size and SHA-256, mark it `quarantined` (completed); else the
 *   file vanished before amp touched it: delete the copy and the record, and
 *   report it.
 *
 * ## Restore (to T in directory D', default the original path)
 * 1. Refuse if T exists (unless forced) or the record is not `quarantined`.
 *    Mark the record `restoring` with T, commit.
 * 2. Decrypt into `D'/.amp-restore-<id>-<tag>` (created exclusively), check the
 *    hash, then fchown, fchmod (after fchown, which clears set-id bits),
 *    futimens, fsync.
 * 3. Rename into place: RENAME_NOREPLACE, or a plain (atomic) rename when
 *    forced; fsync D'.
 * 4. Mark the record `restored` (history: it stays), commit; then delete the
 *    copy; fsync Q.
 * Recovery of `restoring`: a temporary name still there means the file was
 * not placed: delete it and go back to `quarantined` — unless T is the same
 * inode (the link+unlink fallback), which means it was. No temporary name and
 * T holding the recorded SHA-256 means it was placed: mark `restored` and
 * delete the copy. Otherwise go back to `quarantined`. A `restored` record
 * whose copy is still there gets its copy deleted.
 *
 * ## Delete
 * Mark `deleting`, commit; delete the copy, fsync Q; delete the record.
 * Recovery finishes a `deleting` record the same way. Deleting a `restored`
 * record only forgets the history (and {@linkcode Quarantine.isRestored}).
 *
 * ## Decisions
 * - Mode: restore puts back all of `st_mode & 07777`, set-user-ID and
 *   set-group-ID included: restore is an administrator's decision that the
 *   file is good, and a false positive on a set-id program (`sudo`, `passwd`)
 *   must come back working. In quarantine the copy is always root's 0400, so
 *   no set-id file exists meanwhile.
 * - atime is the one read from the descriptor before amp reads the content;
 *   the scan that convicted the file may already have moved it (relatime).
 * - Only this one name of the file is removed: other hard links (`nlink`
 *   > 1) keep the content, as they would after `rm`.
 * - One process at a time: `open` takes an exclusive `flock` on the
 *   directory (EAGAIN → {@linkcode QuarantineError} "busy"), so recovery never
 *   runs under the feet of a daemon. `readOnly` opens skip the lock and the
 *   recovery and may only read.
 * - Operations of one `Quarantine` run one after another.
 * - `<tag>` in the hidden and temporary names is hex of the record's IV, known
 *   only to the database: a local user cannot plant the next name to make
 *   RENAME_NOREPLACE refuse.
 * - A process that still has the file open for writing may write between
 *   step 3's check and the unlink; what it writes then goes to the unlinked
 *   inode, as after `rm`. The copy holds the convicted content.
 * - Crash tests stop a child process at each step through
 *   {@linkcode QuarantineOpenOptions.onStep} (`tests/quarantine_test.ts`).
 *
 * @module
 */

import { join } from "node:path";
import { LOCK, O, S_IF } from "../../ffi/libc.ts";
import { type BytePath, bytePath, escapePath } from "../sys/byte_path.ts";
import {
  close,
  fchmod,
  fchown,
  type FileStat,
  fileType,
  flock,
  fstat,
  fstatWithAtime,
  fsync,
  futimens,
  openat,
  renameat2,
  unlinkat,
} from "../sys/libc.ts";
import { SysError } from "../sys/sys_error.ts";
import { QuarantineDb, type QuarantineEntry } from "../store/quarantine_db.ts";
import type { QuarantineState } from "../store/schema.ts";
import {
  absolutePath,
  decodeCopy,
  encodeCopy,
  hashAt,
  isErrno,
  openDirectory,
  openDirectoryIfPresent,
  renameNoReplace,
  sameFile,
  splitPath,
  statAt,
  unlinkIfPresent,
} from "./quarantine_files.ts";
import { encodeQuarantineHeader, newCipherKey } from "./quarantine_format.ts";

export type { QuarantineState } from "../store/schema.ts";

/** The quarantine directory under a host root. */
export const QUARANTINE_DIR = "var/lib/amp/quarantine";
/** The database file inside the quarantine directory. */
export const QUARANTINE_DB = "quarantine.db";

const EEXIST = 17;
const EAGAIN = 11;

/**
 * The quarantine directory of a host root.
 *
 * @example
 * ```ts
 * import { quarantineDir } from "./quarantine.ts";
 *
 * quarantineDir("/"); // "/var/lib/amp/quarantine"
 * ```
 */
export function quarantineDir(root: string): string {
  return join(root, QUARANTINE_DIR);
}

/** One quarantined (or once quarantined) file. */
export interface QuarantineRecord {
  id: number;
  /** The original path's bytes. */
  path: Uint8Array;
  /** The original path, escaped for display. */
  pathText: string;
  uid: number;
  gid: number;
  /** `st_mode`: file type and permission bits (`0o7777`). */
  mode: number;
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  /** Lower-case hex SHA-256 of the content. */
  sha256: string;
  detection: string;
  engine: string;
  /** When the file was quarantined, in milliseconds since the epoch. */
  time: number;
  state: QuarantineState;
  /** Where the file was restored to, once `restored`. */
  restoredPath?: Uint8Array;
  /** {@linkcode QuarantineRecord.restoredPath}, escaped. */
  restoredPathText?: string;
  /** When the file was restored, in milliseconds since the epoch. */
  restoredTime?: number;
}

/** Why a {@linkcode QuarantineError} was raised. */
export type QuarantineErrorReason =
  /** The content no longer has the convicted hash (or moved while being copied). */
  | "changed"
  /** The scanned file is no longer at its path. */
  | "moved"
  /** Not a regular file. */
  | "not-regular"
  /** Restore would replace an existing file. */
  | "exists"
  /** No record has this id. */
  | "unknown-id"
  /** The record's state does not allow the operation. */
  | "state"
  /** Another process holds the quarantine. */
  | "busy"
  /** The quarantined copy is missing or does not decrypt to the recorded hash. */
  | "corrupt-copy"
  /** A system call or the database failed. */
  | "io";

/** A quarantine operation that was refused or failed; nothing was lost. */
export class QuarantineError extends Error {
  /** Why, for a caller to act on. */
  readonly reason: QuarantineErrorReason;

  /**
   * @param reason why
   * @param message for people
   * @param options the underlying error as `cause`
   */
  constructor(reason: QuarantineErrorReason, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QuarantineError";
    this.reason = reason;
  }
}

/** The steps after which {@linkcode QuarantineOpenOptions.onStep} is called. */
export type QuarantineStep =
  | "quarantine:pending"
  | "quarantine:copying"
  | "quarantine:copied"
  | "quarantine:stored"
  | "quarantine:detached"
  | "quarantine:unlinked"
  | "quarantine:done"
  | "restore:restoring"
  | "restore:writing"
  | "restore:written"
  | "restore:placed"
  | "restore:marked"
  | "restore:done"
  | "delete:deleting"
  | "delete:unlinked"
  | "delete:done";

/** Every {@linkcode QuarantineStep}, in the order each operation passes them. */
export const QUARANTINE_STEPS: readonly QuarantineStep[] = [
  "quarantine:pending",
  "quarantine:copying",
  "quarantine:copied",
  "quarantine:stored",
  "quarantine:detached",
  "quarantine:unlinked",
  "quarantine:done",
  "restore:restoring",
  "restore:writing",
  "restore:written",
  "restore:placed",
  "restore:marked",
  "restore:done",
  "delete:deleting",
  "delete:unlinked",
  "delete:done",
];

/** Options of {@linkcode Quarantine.open}. */
export interface QuarantineOpenOptions {
  /** Read only: no lock, no recovery; `quarantine`, `restore` and `delete` throw. */
  readOnly?: boolean;
  /** Called after each step of an operation. For crash tests only. */
  onStep?: (step: QuarantineStep, id: number) => void;
}

/** What {@linkcode Quarantine.open} did about interrupted operations. */
export interface QuarantineRecovery {
  /** Operations undone: files back in place, or back in quarantine. */
  rolledBack: number;
  /** Operations finished. */
  completed: number;
  /** What needs a person's attention (or could not be decided), one line each. */
  problems: string[];
}

/** The convicted file: an open descriptor, its path and its stat at scan time. */
export interface FileToQuarantine {
  /** Open for reading; the caller keeps ownership. */
  fd: number;
  /** The file's path (absolute, or relative to the current directory). */
  path: BytePath;
  /** Its stat when scanned: dev and ino identify it. */
  stat: FileStat;
}

/** The conviction. */
export interface QuarantineDetection {
  name: string;
  engine: string;
  /** The convicted content's SHA-256 (hex). */
  sha256: string;
}

/** Options of {@linkcode Quarantine.restore}. */
export interface RestoreOptions {
  /** Where to write the file (default: its original path). */
  to?: BytePath;
  /** Replace a file that is there. */
  force?: boolean;
}

/** What {@linkcode Quarantine.restore} did. */
export interface RestoreResult {
  /** The record, now `restored`. */
  record: QuarantineRecord;
  /** Where the file is now. */
  path: BytePath;
}

const HIDDEN_PREFIX = ".amp-quarantine-";
const RESTORE_PREFIX = ".amp-restore-";

/**
 * A name that only the record can tell: the id, then hex digits of the IV,
 * which exists only in the database. Sequential ids alone would let a local
 * user create `.amp-quarantine-<next id>` in /tmp beforehand and so make
 * RENAME_NOREPLACE refuse (a denial of quarantine).
 */
function privateName(prefix: string, id: number, iv: Uint8Array): BytePath {
  const tag = [...iv.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return bytePath(`${prefix}${id}-${tag}`);
}

function hiddenName(id: number, iv: Uint8Array): BytePath {
  return privateName(HIDDEN_PREFIX, id, iv);
}

function restoreTempName(id: number, iv: Uint8Array): BytePath {
  return privateName(RESTORE_PREFIX, id, iv);
}

function copyName(id: number): BytePath {
  return bytePath(`${id}.amq`);
}

function tempCopyName(id: number): BytePath {
  return bytePath(`${id}.tmp`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A {@linkcode QuarantineError} as it is, anything else (a database error) as an "io" one. */
function asQuarantineError(error: unknown, what: string): unknown {
  if (error instanceof QuarantineError || error instanceof TypeError) return error;
  return new QuarantineError("io", `${what}: ${messageOf(error)}`, { cause: error });
}

function toRecord(entry: QuarantineEntry): QuarantineRecord {
  const record: QuarantineRecord = {
    id: entry.id,
    path: entry.path,
    pathText: escapePath(entry.path),
    uid: entry.uid,
    gid: entry.gid,
    mode: entry.mode,
    size: entry.size,
    atimeNs: entry.atimeNs,
    mtimeNs: entry.mtimeNs,
    sha256: entry.sha256,
    detection: entry.detection,
    engine: entry.engine,
    time: entry.time,
    state: entry.state,
  };
  if (entry.state === "restored" && entry.restorePath !== undefined) {
    record.restoredPath = entry.restorePath;
    record.restoredPathText = escapePath(entry.restorePath);
  }
  if (entry.restoredTime !== undefined) record.restoredTime = entry.restoredTime;
  return record;
}

/**
 * The quarantine directory and its database.
 *
 * @example
 * ```ts ignore
 * import { Quarantine, quarantineDir } from "./quarantine.ts";
 *
 * const quarantine = await Quarantine.open(quarantineDir("/"));
 * // fd, path and stat from the scan; sha256 of the convicted content
 * const record = await quarantine.quarantine({ fd, path, stat }, {
 *   name: "Eicar-Signature",
 *   engine: "clamav",
 *   sha256,
 * });
 * await quarantine.restore(record.id); // identical bytes, owner, mode and times
 * await quarantine.close();
 * ```
 */
export class Quarantine {
  /** What opening did about operations a crash interrupted. */
  readonly recovery: QuarantineRecovery = { rolledBack: 0, completed: 0, problems: [] };
  /** The quarantine directory. */
  readonly dir: string;
  readonly #db: QuarantineDb;
  readonly #dirfd: number;
  readonly #readOnly: boolean;
  readonly #onStep?: (step: QuarantineStep, id: number) => void;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    dir: string,
    db: QuarantineDb,
    dirfd: number,
    options: QuarantineOpenOptions,
  ) {
    this.dir = dir;
    this.#db = db;
    this.#dirfd = dirfd;
    this.#readOnly = options.readOnly ?? false;
    if (options.onStep) this.#onStep = options.onStep;
  }

  /**
   * Opens the quarantine in `dir` (created 0700, database 0600), takes its
   * lock and recovers interrupted operations ({@linkcode Quarantine.recovery}).
   *
   * @param dir the quarantine directory, normally {@linkcode quarantineDir}(root)
   * @throws {QuarantineError} "busy" when another process has it open
   */
  static async open(dir: string, options: QuarantineOpenOptions = {}): Promise<Quarantine> {
    const readOnly = options.readOnly ?? false;
    const dbPath = join(dir, QUARANTINE_DB);
    if (!readOnly) {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      await Deno.chmod(dir, 0o700);
    }
    const dirfd = openDirectory(bytePath(dir));
    let db: QuarantineDb | undefined;
    try {
      if (!readOnly) {
        try {
          flock(dirfd, LOCK.EX | LOCK.NB);
        } catch (error) {
          if (!isErrno(error, EAGAIN)) throw error;
          throw new QuarantineError(
            "busy",
            `Cannot open the quarantine ${dir}: another amp process (the daemon?) is using it`,
            { cause: error },
          );
        }
        // Created private before SQLite sees it; SQLite gives -wal and -shm the same mode.
        const file = await Deno.open(dbPath, { create: true, write: true, mode: 0o600 });
        file.close();
        for (const suffix of ["", "-wal", "-shm"]) {
          await Deno.chmod(dbPath + suffix, 0o600).catch((e) => {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          });
        }
      }
      db = await QuarantineDb.open(dbPath);
      const quarantine = new Quarantine(dir, db, dirfd, options);
      if (!readOnly) await quarantine.#recover(db.recovered);
      return quarantine;
    } catch (error) {
      await db?.close();
      close(dirfd);
      throw error;
    }
  }

  /**
   * Moves a convicted file into quarantine (see the protocol above).
   *
   * @param file the open descriptor, path and scan-time stat of the file
   * @param detection the conviction; `sha256` must still be the content's hash
   * @throws {QuarantineError} "changed" when the content no longer has the
   * convicted hash, "moved" when the path no longer names the file,
   * "not-regular", or "io"; in every case the file is left in place
   */
  quarantine(file: FileToQuarantine, detection: QuarantineDetection): Promise<QuarantineRecord> {
    return this.#serial(() =>
      this.#quarantine(file, detection).catch((error) => {
        throw asQuarantineError(error, `Cannot quarantine ${escapePath(file.path)}`);
      })
    );
  }

  /** Every record, quarantined and restored (history), oldest first. */
  async list(): Promise<QuarantineRecord[]> {
    return (await this.#db.list()).map(toRecord);
  }

  /** One record, or undefined. */
  async get(id: number): Promise<QuarantineRecord | undefined> {
    const entry = await this.#db.get(id);
    return entry ? toRecord(entry) : undefined;
  }

  /** The number of files in quarantine now (records in state `quarantined`). */
  count(): Promise<number> {
    return this.#db.count("quarantined");
  }

  /**
   * Puts a file back: identical bytes, owner, mode (set-id bits included) and
   * times, at its original path or at `options.to`. The copy is deleted and
   * the record kept as `restored`.
   *
   * @throws {QuarantineError} "unknown-id", "state", "exists" (a file is at
   * the target and `force` is not set), "corrupt-copy" or "io"; the file then
   * stays in quarantine
   */
  restore(id: number, options: RestoreOptions = {}): Promise<RestoreResult> {
    return this.#serial(() =>
      this.#restore(id, options).catch((error) => {
        throw asQuarantineError(error, `Cannot restore ${id}`);
      })
    );
  }

  /**
   * Deletes a quarantined file's copy and its record for good (or forgets a
   * restored file's record).
   *
   * @throws {QuarantineError} "unknown-id" or "state"
   */
  delete(id: number): Promise<void> {
    return this.#serial(() =>
      this.#delete(id).catch((error) => {
        throw asQuarantineError(error, `Cannot delete ${id}`);
      })
    );
  }

  /**
   * Whether an administrator restored a file with this SHA-256: the daemon
   * does not convict it again. One indexed query per call.
   */
  isRestored(sha256: string): Promise<boolean> {
    return this.#db.hasRestored(sha256);
  }

  /** Closes the database and releases the lock; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => {});
    await this.#db.close();
    close(this.#dirfd);
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("The quarantine is closed"));
    if (this.#readOnly) {
      return Promise.reject(new Error("The quarantine was opened read-only"));
    }
    const run = this.#queue.then(operation, operation);
    this.#queue = run.catch(() => {});
    return run;
  }

  #step(step: QuarantineStep, id: number): void {
    this.#onStep?.(step, id);
  }

  async #quarantine(
    file: FileToQuarantine,
    detection: QuarantineDetection,
  ): Promise<QuarantineRecord> {
    const path = absolutePath(file.path);
    const pathText = escapePath(path);
    const what = `Cannot quarantine ${pathText}`;
    const expected = detection.sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(expected)) {
      throw new TypeError(`Not a SHA-256 in hex: ${detection.sha256}`);
    }
    let before;
    let parts;
    try {
      parts = splitPath(path);
      before = fstatWithAtime(file.fd);
    } catch (error) {
      throw new QuarantineError("io", `${what}: ${messageOf(error)}`, { cause: error });
    }
    if (fileType(before.mode) !== S_IF.REG) {
      throw new QuarantineError("not-regular", `${what}: not a regular file`);
    }
    if (!sameFile(before, file.stat)) {
      throw new QuarantineError("moved", `${what}: the descriptor is not the scanned file`);
    }
    const { name } = parts;
    let dirfd: number;
    try {
      dirfd = openDirectory(parts.dir);
    } catch (error) {
      throw new QuarantineError("moved", `${what}: ${messageOf(error)}`, { cause: error });
    }
    try {
      const there = statAt(dirfd, name);
      if (!there || !sameFile(there, before)) {
        throw new QuarantineError("moved", `${what}: the scanned file is no longer at this path`);
      }
      const { key, iv } = newCipherKey();
      let id: number;
      try {
        id = await this.#db.insertPending({
          path,
          dev: before.dev,
          ino: before.ino,
          uid: before.uid,
          gid: before.gid,
          mode: before.mode,
          size: before.size,
          atimeNs: before.atimeNs,
          mtimeNs: before.mtimeNs,
          sha256: expected,
          detection: detection.name,
          engine: detection.engine,
          time: Date.now(),
          cipherKey: key,
          cipherIv: iv,
        });
      } catch (error) {
        throw new QuarantineError("io", `${what}: cannot record it: ${messageOf(error)}`, {
          cause: error,
        });
      }
      const hidden = hiddenName(id, iv);
      let detached = false;
      try {
        this.#step("quarantine:pending", id);
        // 2. The encrypted copy, complete and durable before the original is touched.
        const tmp = tempCopyName(id);
        const out = openat(
          this.#dirfd,
          tmp,
          O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC,
          0o400,
        );
        let copied;
        try {
          copied = await encodeCopy(
            file.fd,
            out,
            encodeQuarantineHeader({ id, size: before.size }),
            key,
            iv,
            { afterFirstChunk: () => this.#step("quarantine:copying", id) },
          );
          fchmod(out, 0o400);
          fsync(out);
        } finally {
          close(out);
        }
        if (copied.sha256 !== expected || copied.size !== before.size) {
          throw new QuarantineError(
            "changed",
            `${what}: it changed since it was scanned (SHA-256 now ${copied.sha256}, convicted ${expected})`,
          );
        }
        this.#step("quarantine:copied", id);
        renameat2(this.#dirfd, tmp, this.#dirfd, copyName(id));
        fsync(this.#dirfd);
        this.#step("quarantine:stored", id);

        // 3. Detach the name within its directory, then check what was detached.
        try {
          renameNoReplace(dirfd, name, dirfd, hidden);
        } catch (error) {
          if (isErrno(error, EEXIST)) {
            throw new QuarantineError(
              "io",
              `${what}: ${escapePath(hidden)} already exists in its directory`,
              { cause: error },
            );
          }
          throw error;
        }
        detached = true;
        this.#step("quarantine:detached", id);
        const moved = statAt(dirfd, hidden);
        if (!moved || !sameFile(moved, before)) {
          throw new QuarantineError("moved", `${what}: the scanned file is no longer at this path`);
        }
        const now = fstat(file.fd);
        if (now.size !== before.size || now.mtimeNs !== before.mtimeNs) {
          throw new QuarantineError("changed", `${what}: it changed since it was scanned`);
        }

        // 4. The point of no return: the copy is verified and durable.
        unlinkat(dirfd, hidden);
        detached = false;
      } catch (error) {
        await this.#undoQuarantine(id, dirfd, name, hidden, detached, what, error);
      }
      try {
        fsync(dirfd);
      } catch {
        // The name is gone either way; only its durability on power loss is at stake,
        // and the record stays pending until the commit below.
      }
      this.#step("quarantine:unlinked", id);

      // 5.
      try {
        await this.#db.transition(id, "pending", "quarantined");
      } catch (error) {
        throw new QuarantineError(
          "io",
          `${pathText} was moved into quarantine (${id}.amq) but its record could not be ` +
            `completed: ${messageOf(error)}; amp completes it when the quarantine is next opened`,
          { cause: error },
        );
      }
      this.#step("quarantine:done", id);
      const entry = await this.#db.get(id);
      return toRecord(entry!);
    } finally {
      close(dirfd);
    }
  }

  /** Undoes steps 1–3 after `error`, then throws. */
  async #undoQuarantine(
    id: number,
    dirfd: number,
    name: BytePath,
    hidden: BytePath,
    detached: boolean,
    what: string,
    error: unknown,
  ): Promise<never> {
    try {
      if (detached) {
        renameNoReplace(dirfd, hidden, dirfd, name);
        fsync(dirfd);
      }
      await this.#dropCopy(id);
    } catch (undoError) {
      throw new QuarantineError(
        "io",
        `${what}: ${messageOf(error)}; undoing failed too (${messageOf(undoError)}): ` +
          `record ${id} stays pending and is recovered when the quarantine is next opened`,
        { cause: error },
      );
    }
    if (error instanceof QuarantineError) throw error;
    throw new QuarantineError("io", `${what}: ${messageOf(error)}`, { cause: error });
  }

  /** Deletes a record's copies, then the record. */
  async #dropCopy(id: number): Promise<void> {
    const removedTemp = unlinkIfPresent(this.#dirfd, tempCopyName(id));
    const removedCopy = unlinkIfPresent(this.#dirfd, copyName(id));
    if (removedTemp || removedCopy) fsync(this.#dirfd);
    await this.#db.delete(id);
  }

  /** Whether `<id>.amq` decrypts to the recorded size and SHA-256. */
  async #copyVerifies(entry: QuarantineEntry): Promise<boolean> {
    let fd: number;
    try {
      fd = openat(this.#dirfd, copyName(entry.id), O.RDONLY | O.NOFOLLOW | O.CLOEXEC);
    } catch {
      return false;
    }
    try {
      const { sha256, size } = await decodeCopy(fd, undefined, {
        id: entry.id,
        key: entry.cipherKey,
        iv: entry.cipherIv,
      });
      return sha256 === entry.sha256 && size === entry.size;
    } catch {
      return false;
    } finally {
      close(fd);
    }
  }

  async #restore(id: number, options: RestoreOptions): Promise<RestoreResult> {
    const entry = await this.#db.get(id);
    if (!entry) throw new QuarantineError("unknown-id", `No quarantine record has id ${id}`);
    if (entry.state !== "quarantined") {
      throw new QuarantineError(
        "state",
        `Cannot restore ${id} (${escapePath(entry.path)}): it is ${entry.state}, not quarantined`,
      );
    }
    const target = absolutePath(options.to ?? entry.path);
    const targetText = escapePath(target);
    const what = `Cannot restore ${id} to ${targetText}`;
    let parts;
    let dirfd: number;
    try {
      parts = splitPath(target);
      dirfd = openDirectory(parts.dir);
    } catch (error) {
      throw new QuarantineError("io", `${what}: ${messageOf(error)}`, { cause: error });
    }
    const { name } = parts;
    try {
      const existing = statAt(dirfd, name);
      if (existing && fileType(existing.mode) === S_IF.DIR) {
        throw new QuarantineError("exists", `${what}: it is a directory`);
      }
      if (existing && !options.force) {
        throw new QuarantineError("exists", `${what}: a file is already there`);
      }
      let copyFd: number;
      try {
        copyFd = openat(this.#dirfd, copyName(id), O.RDONLY | O.NOFOLLOW | O.CLOEXEC);
      } catch (error) {
        throw new QuarantineError(
          "corrupt-copy",
          `${what}: the quarantined copy ${id}.amq cannot be opened: ${messageOf(error)}`,
          { cause: error },
        );
      }
      try {
        if (!await this.#db.transition(id, "quarantined", "restoring", { restorePath: target })) {
          throw new QuarantineError("state", `${what}: the record changed meanwhile`);
        }
        this.#step("restore:restoring", id);
        await this.#writeRestored(entry, copyFd, dirfd, name, target, options, what);
      } finally {
        close(copyFd);
      }
      try {
        await this.#db.transition(id, "restoring", "restored", { restoredTime: Date.now() });
        this.#step("restore:marked", id);
        if (unlinkIfPresent(this.#dirfd, copyName(id))) fsync(this.#dirfd);
      } catch (error) {
        throw new QuarantineError(
          "io",
          `${targetText} was restored but the record or copy of ${id} could not be updated: ` +
            `${messageOf(error)}; amp completes it when the quarantine is next opened`,
          { cause: error },
        );
      }
      this.#step("restore:done", id);
      return { record: toRecord((await this.#db.get(id))!), path: target };
    } finally {
      close(dirfd);
    }
  }

  /** Restore steps 2 and 3; on failure before the file is placed, back to `quarantined`. */
  async #writeRestored(
    entry: QuarantineEntry,
    copyFd: number,
    dirfd: number,
    name: BytePath,
    target: BytePath,
    options: RestoreOptions,
    what: string,
  ): Promise<void> {
    const id = entry.id;
    const temp = restoreTempName(id, entry.cipherIv);
    let placed = false;
    try {
      unlinkIfPresent(dirfd, temp);
      const out = openat(dirfd, temp, O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, 0o600);
      try {
        let decoded;
        try {
          decoded = await decodeCopy(copyFd, out, {
            id,
            key: entry.cipherKey,
            iv: entry.cipherIv,
          }, { afterFirstChunk: () => this.#step("restore:writing", id) });
        } catch (error) {
          if (error instanceof SysError) throw error;
          throw new QuarantineError("corrupt-copy", `${what}: ${messageOf(error)}`, {
            cause: error,
          });
        }
        if (decoded.sha256 !== entry.sha256) {
          throw new QuarantineError(
            "corrupt-copy",
            `${what}: the quarantined copy does not decrypt to SHA-256 ${entry.sha256}`,
          );
        }
        // fchown first: it clears set-user-ID and set-group-ID bits that fchmod then sets.
        fchown(out, entry.uid, entry.gid);
        fchmod(out, entry.mode & 0o7777);
        futimens(out, entry.atimeNs, entry.mtimeNs);
        fsync(out);
      } finally {
        close(out);
      }
      this.#step("restore:written", id);
      if (options.force) {
        renameat2(dirfd, temp, dirfd, name);
      } else {
        try {
          renameNoReplace(dirfd, temp, dirfd, name);
        } catch (error) {
          if (!isErrno(error, EEXIST)) throw error;
          throw new QuarantineError(
            "exists",
            `${what}: a file appeared there meanwhile`,
            { cause: error },
          );
        }
      }
      placed = true;
      fsync(dirfd);
      this.#step("restore:placed", id);
    } catch (error) {
      if (placed) {
        throw new QuarantineError(
          "io",
          `${escapePath(target)} was restored but: ${messageOf(error)}`,
          { cause: error },
        );
      }
      try {
        unlinkIfPresent(dirfd, temp);
        await this.#db.transition(id, "restoring", "quarantined", { restorePath: null });
      } catch (undoError) {
        throw new QuarantineError(
          "io",
          `${what}: ${messageOf(error)}; undoing failed too (${messageOf(undoError)}): ` +
            `record ${id} is recovered when the quarantine is next opened`,
          { cause: error },
        );
      }
      if (error instanceof QuarantineError) throw error;
      throw new QuarantineError("io", `${what}: ${messageOf(error)}`, { cause: error });
    }
  }

  async #delete(id: number): Promise<void> {
    const entry = await this.#db.get(id);
    if (!entry) throw new QuarantineError("unknown-id", `No quarantine record has id ${id}`);
    if (entry.state === "restored") {
      await this.#db.delete(id);
      return;
    }
    if (entry.state !== "quarantined") {
      throw new QuarantineError(
        "state",
        `Cannot delete ${id} (${escapePath(entry.path)}): it is ${entry.state}`,
      );
    }
    if (!await this.#db.transition(id, "quarantined", "deleting")) {
      throw new QuarantineError("state", `Cannot delete ${id}: the record changed meanwhile`);
    }
    this.#step("delete:deleting", id);
    if (unlinkIfPresent(this.#dirfd, copyName(id))) fsync(this.#dirfd);
    this.#step("delete:unlinked", id);
    await this.#db.delete(id);
    this.#step("delete:done", id);
  }

  // ---- Recovery ----

  async #recover(movedAside: string | undefined): Promise<void> {
    const r = this.recovery;
    if (movedAside !== undefined) {
      r.problems.push(
        `${QUARANTINE_DB} was corrupt: moved to ${movedAside} and replaced by an empty one; ` +
          `the keys of the files quarantined before are in the moved file`,
      );
    }
    for (const entry of await this.#db.list()) {
      const label = `Record ${entry.id} (${escapePath(entry.path)})`;
      try {
        switch (entry.state) {
          case "pending":
            await this.#recoverPending(entry, label);
            break;
          case "restoring":
            await this.#recoverRestoring(entry, label);
            break;
          case "deleting":
            if (unlinkIfPresent(this.#dirfd, copyName(entry.id))) fsync(this.#dirfd);
            await this.#db.delete(entry.id);
            r.completed++;
            break;
          case "restored":
            if (unlinkIfPresent(this.#dirfd, copyName(entry.id))) {
              fsync(this.#dirfd);
              r.completed++;
            }
            break;
          case "quarantined":
            if (!statAt(this.#dirfd, copyName(entry.id))) {
              r.problems.push(`${label}: its copy ${entry.id}.amq is missing`);
            }
            break;
        }
      } catch (error) {
        r.problems.push(`${label}: cannot recover the ${entry.state} record: ${messageOf(error)}`);
      }
    }
    const known = new Set((await this.#db.list()).map((e) => e.id));
    for await (const dirent of Deno.readDir(this.dir)) {
      const match = /^(\d+)\.(amq|tmp)$/.exec(dirent.name);
      if (match && !known.has(Number(match[1]))) {
        r.problems.push(`${dirent.name} in ${this.dir} has no record; left as it is`);
      }
    }
  }

  async #recoverPending(entry: QuarantineEntry, label: string): Promise<void> {
    const r = this.recovery;
    const { dir, name } = splitPath(entry.path);
    const hidden = hiddenName(entry.id, entry.cipherIv);
    const dirfd = openDirectoryIfPresent(dir);
    try {
      const atHidden = dirfd === undefined ? undefined : statAt(dirfd, hidden);
      const atPath = dirfd === undefined ? undefined : statAt(dirfd, name);
      if (dirfd !== undefined && atHidden) {
        if (atPath && sameFile(atPath, atHidden)) {
          unlinkat(dirfd, hidden);
        } else if (!atPath) {
          renameNoReplace(dirfd, hidden, dirfd, name);
        } else if (
          sameFile(atHidden, entry) && await hashAt(dirfd, hidden) === entry.sha256 &&
          await this.#copyVerifies(entry)
        ) {
          unlinkIfPresent(this.#dirfd, tempCopyName(entry.id));
          unlinkat(dirfd, hidden);
          fsync(dirfd);
          await this.#db.transition(entry.id, "pending", "quarantined");
          r.completed++;
          r.problems.push(
            `${label}: another file took its path while it was being quarantined; ` +
              `the quarantine was completed and the other file left alone`,
          );
          return;
        } else {
          const kept = escapePath(hidden);
          r.problems.push(
            `${label}: another file took its path while it was being quarantined; ` +
              `the original is kept as ${kept} beside it and the record stays pending ` +
              `(move one of the two away: amp finishes when it next opens the quarantine)`,
          );
          return;
        }
        fsync(dirfd);
        await this.#dropCopy(entry.id);
        r.rolledBack++;
        return;
      }
      if (atPath && sameFile(atPath, entry)) {
        await this.#dropCopy(entry.id);
        r.rolledBack++;
        return;
      }
      if (await this.#copyVerifies(entry)) {
        if (unlinkIfPresent(this.#dirfd, tempCopyName(entry.id))) fsync(this.#dirfd);
        await this.#db.transition(entry.id, "pending", "quarantined");
        r.completed++;
        return;
      }
      await this.#dropCopy(entry.id);
      r.rolledBack++;
      r.problems.push(
        `${label}: the file disappeared before amp moved it; nothing was quarantined`,
      );
    } finally {
      if (dirfd !== undefined) close(dirfd);
    }
  }

  async #recoverRestoring(entry: QuarantineEntry, label: string): Promise<void> {
    const r = this.recovery;
    const back = async () => {
      await this.#db.transition(entry.id, "restoring", "quarantined", { restorePath: null });
      r.rolledBack++;
      if (!statAt(this.#dirfd, copyName(entry.id))) {
        r.problems.push(`${label}: its copy ${entry.id}.amq is missing`);
      }
    };
    const done = async () => {
      await this.#db.transition(entry.id, "restoring", "restored", { restoredTime: Date.now() });
      if (unlinkIfPresent(this.#dirfd, copyName(entry.id))) fsync(this.#dirfd);
      r.completed++;
    };
    if (entry.restorePath === undefined) return await back();
    const { dir, name } = splitPath(entry.restorePath);
    const dirfd = openDirectoryIfPresent(dir);
    if (dirfd === undefined) return await back();
    try {
      const temp = restoreTempName(entry.id, entry.cipherIv);
      const atTemp = statAt(dirfd, temp);
      if (atTemp) {
        const atTarget = statAt(dirfd, name);
        unlinkat(dirfd, temp);
        fsync(dirfd);
        // Same inode: the link+unlink fallback placed it and was stopped before the unlink.
        return atTarget && sameFile(atTarget, atTemp) ? await done() : await back();
      }
      return await hashAt(dirfd, name) === entry.sha256 ? await done() : await back();
    } finally {
      close(dirfd);
    }
  }
}
