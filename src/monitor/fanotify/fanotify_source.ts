/**
 * The fanotify backend of {@linkcode FileEventSource}.
 *
 * Design:
 * - Groups. The main group (`FAN_CLASS_CONTENT` when exec is "active", so it
 *   may receive `FAN_OPEN_EXEC_PERM`; `FAN_CLASS_NOTIF` otherwise) reports
 *   `FAN_CLOSE_WRITE` and `FAN_OPEN_EXEC[_PERM]` with a read-only descriptor
 *   per event. The queue is the kernel's default bounded one (16384 events,
 *   no `FAN_UNLIMITED_QUEUE`), so falling behind is a real
 *   `FAN_Q_OVERFLOW`, yielded as an "overflow" event, never silent growth.
 *   `FAN_MOVED_TO` cannot be reported with descriptors, so a second group
 *   (`FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME`) reports it as a directory file
 *   handle plus a name; the file is opened with `open_by_handle_at` on a
 *   descriptor of the watched path (kept open: one per file system, looked
 *   up by fsid) and `openat(dir, name, O_NOFOLLOW)`; anything but a regular
 *   file is skipped. Both groups mark whole file systems
 *   (`FAN_MARK_FILESYSTEM`), once per distinct `st_dev`.
 * - Reading. The JS thread never blocks on the kernel: `poll` runs off-thread
 *   (`nonblocking`) on the groups and a wake eventfd, then each ready group is
 *   read once, synchronously (the descriptors are `O_NONBLOCK`), and errno is
 *   read at once. `close()` writes the eventfd, so no wait outlives it. A
 *   read error or malformed record is counted in `stats.errors` and reading
 *   goes on. Events are read only while the consumer awaits `next()`: what it
 *   does not read stays in the kernel's bounded queue, and permission events
 *   in that queue hold their processes without a timer, so a consumer must
 *   call `next()` again promptly (queue its work, do not await it first).
 * - Our own process. Events whose pid is `Deno.pid` are never yielded (their
 *   permission answered allow, their descriptor closed, `stats.ownEvents`):
 *   amp's own writes (quarantine, databases) must not come back as events.
 *   Note that this cannot protect a child: `Deno.Command#spawn` blocks the JS
 *   thread until the child's `execve` completes, so spawning a program that
 *   lies on a file system watched in "active" mode waits for an answer that
 *   only the (blocked) JS thread could give. Do not spawn programs from such
 *   file systems while an active source is open.
 * - Permission events. Each is answered exactly once: by the consumer's
 *   `respond` (later calls ignored), else after `permissionTimeoutMs` by the
 *   timer (`timeoutAnswer`, counted in `stats.permissionTimeouts`), else by
 *   `close()` (allow). Events filtered out by `pathPrefixes`, our own, and
 *   ones that cannot be read are allowed at once.
 * - Descriptors. Every yielded event's `fd` belongs to the consumer, who
 *   must close it, after `respond` for "exec-perm" (the kernel matches a
 *   response by descriptor number, and a closed number can be reused by the
 *   next event). The source never closes a descriptor it handed out: the
 *   timeout and `close()` only write the response. A read creates at most
 *   ~340 descriptors (8 KiB buffer); when the process is out of descriptors
 *   the kernel drops the event it could not open (and denies it if it was a
 *   permission event), which is yielded as an "overflow" when the read
 *   fails. The source keeps one descriptor per watched file system open
 *   while it runs, so those cannot be unmounted (except lazily) meanwhile.
 * - Order. Events of one group come in kernel order; the two groups are
 *   independent, so a moved-to may come before or after close-writes that
 *   happened earlier. An event with several bits (the kernel merges
 *   identical events) has one descriptor and is yielded once, as exec-perm,
 *   else exec, else close-write.
 *
 * @module
 */

import {
  FAN,
  FAN_ALLOW,
  FAN_DENY,
  FAN_EVENT_INFO_TYPE,
  FAN_INIT,
  FAN_MARK,
  FAN_O,
} from "../../../ffi/fanotify.ts";
import { S_IF } from "../../../ffi/libc.ts";
import { type BytePath, bytePath } from "../../sys/byte_path.ts";
import { AT, fileType, fstat, fstatat, openat } from "../../sys/libc.ts";
import { SysError } from "../../sys/sys_error.ts";
import type { FileEvent, FileEventKind, FileEventSource, MonitorEvent } from "../file_event.ts";
import {
  closeFd,
  createWakeFd,
  fanotifyInit,
  fanotifyMark,
  fdPath,
  fsidOf,
  openByHandle,
  Poller,
  readEvents,
  signalWakeFd,
  writeResponse,
} from "./_native.ts";
import {
  type FanotifyFidInfo,
  type FanotifyRecord,
  parseFanotifyEvents,
} from "./fanotify_events.ts";

/** What {@linkcode FanotifySource.open} watches and how. */
export interface FanotifyOptions {
  /** Paths whose file systems are watched (FAN_MARK_FILESYSTEM on each distinct one; dedupe by st_dev). */
  paths: string[];
  /** Report written files: FAN_CLOSE_WRITE, and FAN_MOVED_TO (through a second group). */
  onAccess: boolean;
  /** Executions: "passive" (FAN_OPEN_EXEC), "active" (FAN_OPEN_EXEC_PERM, held until answered) or "off". */
  exec: "passive" | "active" | "off";
  /** Permission events not answered within this many ms are answered `timeoutAnswer` and counted. Default 5000. */
  permissionTimeoutMs?: number;
  /** When the timeout passes: allow (default, fail-open) or deny. */
  timeoutAnswer?: "allow" | "deny";
  /** Only events whose path starts with one of these byte prefixes are yielded (others: closed, perm events allowed at once). Default: all. */
  pathPrefixes?: Uint8Array[];
  /** Told about each record or call that failed and was counted in `stats.errors` (for the log). */
  onProblem?: (message: string) => void;
  /** Most files whose executions are ignored until modified (each pins an inode). Default 8192. */
  maxIgnoreMarks?: number;
}

/** Bytes per read: bounds the descriptors one read creates (~340 events). */
const READ_BUFFER_SIZE = 8192;
/** After a failed `poll`, wait this long so a persistent failure cannot spin. */
const POLL_FAILURE_PAUSE_MS = 100;
const DEFAULT_PERMISSION_TIMEOUT_MS = 5000;

/** `AT_FDCWD`: no directory (FAN_MARK_FLUSH takes no object). */
const AT_FDCWD = -100;

/** Default bound of ignore marks (fs.fanotify.max_user_marks is far larger on any host). */
const DEFAULT_MAX_IGNORE_MARKS = 8192;
/** Errors of opening a moved file that mean it is gone or was never a plain file: not problems. */
const GONE = new Set(["ENOENT", "ESTALE", "ENOTDIR", "ELOOP"]);

/** A permission event handed out and not answered yet. */
interface Pending {
  fd: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A watched file system: an open descriptor of one of its paths. */
interface WatchedFs {
  path: string;
  fd: number;
  dev: bigint;
}

/**
 * fanotify file events of whole file systems: close-write, moved-to, exec
 * and exec permission, as {@linkcode MonitorEvent} batches. Needs root
 * (CAP_SYS_ADMIN; CAP_DAC_READ_SEARCH for moved-to).
 *
 * @example
 * ```ts ignore
 * import { FanotifySource } from "./fanotify_source.ts";
 * import { close } from "../../sys/libc.ts";
 * const source = FanotifySource.open({ paths: ["/"], onAccess: true, exec: "passive" });
 * for (let batch = await source.next(); batch.length > 0; batch = await source.next()) {
 *   for (const event of batch) if (event.kind !== "overflow") close(event.fd);
 * }
 * ```
 */
export class FanotifySource implements FileEventSource {
  /** Always `"fanotify"`. */
  readonly backend = "fanotify";
  /** Counters since open; `events` counts file events yielded. */
  readonly stats = {
    events: 0,
    overflows: 0,
    permissionTimeouts: 0,
    ownEvents: 0,
    errors: 0,
    ignoreMarks: 0,
  };
  /** Why moved-to events are not reported on some watched file systems (empty when they all are). */
  readonly warnings: readonly string[];

  readonly #main: number;
  readonly #moved: number;
  readonly #wake: number;
  readonly #filesystems: WatchedFs[];
  /** fsid → descriptor for `open_by_handle_at`, for file systems the moved-to group marks. */
  readonly #mountFds: Map<bigint, number>;
  readonly #poller: Poller;
  readonly #buf = new Uint8Array(READ_BUFFER_SIZE);
  readonly #pending = new Set<Pending>();
  readonly #ownPid = Deno.pid;
  readonly #timeoutMs: number;
  readonly #timeoutAnswer: number;
  readonly #prefixes: Uint8Array[] | undefined;
  readonly #onProblem: ((message: string) => void) | undefined;
  readonly #execMask: number;
  readonly #maxIgnoreMarks: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The chain of `next()` calls; settled means no `poll` is in flight. */
  #reading: Promise<unknown> = Promise.resolve();

  private constructor(
    options: FanotifyOptions,
    fds: {
      main: number;
      moved: number;
      wake: number;
      filesystems: WatchedFs[];
      mountFds: Map<bigint, number>;
    },
    warnings: string[],
  ) {
    this.#main = fds.main;
    this.#moved = fds.moved;
    this.#wake = fds.wake;
    this.#filesystems = fds.filesystems;
    this.#mountFds = fds.mountFds;
    this.#poller = new Poller([fds.main, ...(fds.moved >= 0 ? [fds.moved] : []), fds.wake]);
    this.#timeoutMs = options.permissionTimeoutMs ?? DEFAULT_PERMISSION_TIMEOUT_MS;
    this.#timeoutAnswer = options.timeoutAnswer === "deny" ? FAN_DENY : FAN_ALLOW;
    this.#prefixes = options.pathPrefixes?.map((p) => p.slice());
    this.#onProblem = options.onProblem;
    this.#execMask = options.exec === "active"
      ? FAN.OPEN_EXEC_PERM
      : options.exec === "passive"
      ? FAN.OPEN_EXEC
      : 0;
    this.#maxIgnoreMarks = options.maxIgnoreMarks ?? DEFAULT_MAX_IGNORE_MARKS;
    this.warnings = warnings;
  }

  /**
   * Creates the groups and marks the file systems of `options.paths`.
   * Throws {@linkcode SysError} when the main group cannot be set up (not
   * root, no fanotify, a path that cannot be opened or marked); a file system
   * where moved-to cannot be reported only adds to `warnings`.
   *
   * @param options what to watch
   */
  static open(options: FanotifyOptions): FanotifySource {
    const mask = (options.onAccess ? FAN.CLOSE_WRITE : 0) |
      (options.exec === "passive" ? FAN.OPEN_EXEC : 0) |
      (options.exec === "active" ? FAN.OPEN_EXEC_PERM : 0);
    if (mask === 0) throw new TypeError("Nothing to watch: onAccess is false and exec is off");
    if (options.paths.length === 0) throw new TypeError("Nothing to watch: no paths");
    const opened: number[] = [];
    try {
      const filesystems = openFilesystems(options.paths, opened);
      const cls = options.exec === "active" ? FAN_INIT.CLASS_CONTENT : FAN_INIT.CLASS_NOTIF;
      const main = fanotifyInit(
        cls | FAN_INIT.CLOEXEC | FAN_INIT.NONBLOCK,
        FAN_O.RDONLY | FAN_O.CLOEXEC,
      );
      opened.push(main);
      for (const fs of filesystems) {
        fanotifyMark(main, FAN_MARK.ADD | FAN_MARK.FILESYSTEM, mask, fs.fd, fs.path);
      }
      const warnings: string[] = [];
      const mountFds = new Map<bigint, number>();
      const moved = options.onAccess ? openMovedGroup(filesystems, mountFds, warnings) : -1;
      if (moved >= 0) opened.push(moved);
      const wake = createWakeFd();
      opened.push(wake);
      // Descriptors of file systems without moved-to marks are needed no more.
      const used = new Set(mountFds.values());
      const kept = filesystems.filter((fs) => used.has(fs.fd));
      for (const fs of filesystems) if (!used.has(fs.fd)) closeFd(fs.fd);
      return new FanotifySource(
        options,
        { main, moved, wake, filesystems: kept, mountFds },
        warnings,
      );
    } catch (error) {
      for (const fd of opened) closeFd(fd);
      throw error;
    }
  }

  /** Next batch of events; resolves to [] only after close(). Calls are served in order. */
  next(): Promise<MonitorEvent[]> {
    const run = this.#reading.then(() => this.#read());
    this.#reading = run.catch(() => undefined);
    return run;
  }

  /** Stops reading, answers allow to every unanswered permission event, closes the groups. Safe twice. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    signalWakeFd(this.#wake);
    // Once the chain settles no poll uses the descriptors, so closing cannot hit a reused number.
    await this.#reading;
    for (const p of this.#pending) {
      clearTimeout(p.timer);
      this.#answer(p.fd, FAN_ALLOW);
    }
    this.#pending.clear();
    closeFd(this.#main);
    if (this.#moved >= 0) closeFd(this.#moved);
    closeFd(this.#wake);
    for (const fs of this.#filesystems) closeFd(fs.fd);
  }

  async #read(): Promise<MonitorEvent[]> {
    while (!this.#closed) {
      const ready = await this.#poller.wait(-1);
      if (this.#closed) break;
      if (ready === undefined) {
        this.#problem("Poll on the fanotify groups failed");
        await pause(POLL_FAILURE_PAUSE_MS);
        continue;
      }
      const out: MonitorEvent[] = [];
      let broken = false;
      for (const r of ready) {
        if (r.fd === this.#wake) continue;
        if (r.readable) this.#drain(r.fd, out);
        else if (r.broken) broken = true;
      }
      if (out.length > 0) return out;
      if (broken) {
        this.#problem("Poll reports an error on a fanotify group");
        await pause(POLL_FAILURE_PAUSE_MS);
      }
    }
    return [];
  }

  /** One read of one group: the loop's only work besides parsing. */
  #drain(group: number, out: MonitorEvent[]): void {
    let n: number;
    try {
      n = readEvents(group, this.#buf);
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
      // Out of descriptors: the kernel dropped the event it could not open (and denied it
      // if it was a permission event), so something was missed, as in an overflow.
      if (error instanceof SysError && (error.code === "EMFILE" || error.code === "ENFILE")) {
        this.#overflow(out);
      }
      return;
    }
    const { records, problems } = parseFanotifyEvents(this.#buf, n);
    for (const p of problems) this.#problem(p);
    for (const record of records) {
      if (group === this.#main) this.#onMainEvent(record, out);
      else this.#onMovedEvent(record, out);
    }
  }

  #onMainEvent(r: FanotifyRecord, out: MonitorEvent[]): void {
    const perm = (r.mask & FAN.OPEN_EXEC_PERM) !== 0;
    if (r.mask & FAN.Q_OVERFLOW) {
      this.#overflow(out);
      if (r.fd >= 0) closeFd(r.fd);
      return;
    }
    if (r.fd < 0) {
      this.#problem(`Fanotify event without a descriptor: mask 0x${r.mask.toString(16)}`);
      return;
    }
    if (r.pid === this.#ownPid) {
      this.stats.ownEvents++;
      this.#dismiss(r.fd, perm);
      return;
    }
    // The kernel may merge several bits into one event; it has one descriptor, so one kind.
    const kind: FileEventKind | undefined = perm
      ? "exec-perm"
      : r.mask & FAN.OPEN_EXEC
      ? "exec"
      : r.mask & FAN.CLOSE_WRITE
      ? "close-write"
      : undefined;
    if (kind === undefined) {
      this.#problem(`Unexpected fanotify event mask 0x${r.mask.toString(16)}`);
      this.#dismiss(r.fd, perm);
      return;
    }
    let path: BytePath;
    try {
      path = fdPath(r.fd);
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
      this.#dismiss(r.fd, perm);
      return;
    }
    if (!this.#wanted(path)) {
      this.#dismiss(r.fd, perm);
      return;
    }
    const event: FileEvent = { kind, fd: r.fd, pid: r.pid, path };
    if (perm) event.respond = this.#hold(r.fd);
    if (kind === "exec" || kind === "exec-perm") {
      event.ignoreUntilModified = () => this.#ignoreExecs(r.fd);
    }
    this.stats.events++;
    out.push(event);
  }

  #onMovedEvent(r: FanotifyRecord, out: MonitorEvent[]): void {
    if (r.fd >= 0) closeFd(r.fd); // FID groups report no descriptors; never leak one
    if (r.mask & FAN.Q_OVERFLOW) {
      this.#overflow(out);
      return;
    }
    if (r.pid === this.#ownPid) {
      this.stats.ownEvents++;
      return;
    }
    const fid = r.fids.find((f) => f.infoType === FAN_EVENT_INFO_TYPE.DFID_NAME && f.name);
    if (!fid) {
      this.#problem(`Fanotify moved-to event without a name: mask 0x${r.mask.toString(16)}`);
      return;
    }
    const mountFd = this.#mountFds.get(fid.fsid);
    if (mountFd === undefined) {
      this.#problem(
        `Fanotify moved-to event on an unknown file system: fsid 0x${fid.fsid.toString(16)}`,
      );
      return;
    }
    const fd = this.#openMoved(mountFd, fid);
    if (fd === undefined) return;
    let path: BytePath;
    try {
      path = fdPath(fd);
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
      closeFd(fd);
      return;
    }
    if (!this.#wanted(path)) {
      closeFd(fd);
      return;
    }
    this.stats.events++;
    out.push({ kind: "moved-to", fd, pid: r.pid, path });
  }

  /** Opens a moved file read-only when it is still a regular file; undefined otherwise. */
  #openMoved(mountFd: number, fid: FanotifyFidInfo): number | undefined {
    const name = fid.name!;
    let dir: number;
    try {
      dir = openByHandle(mountFd, fid.handle, FAN_O.PATH | FAN_O.DIRECTORY | FAN_O.CLOEXEC);
    } catch (error) {
      if (!(error instanceof SysError && GONE.has(error.code))) this.#problem(String(error));
      return undefined;
    }
    let fd = -1;
    try {
      // Look before opening: opening a device or FIFO can have effects.
      if (fileType(fstatat(dir, name, AT.SYMLINK_NOFOLLOW).mode) !== S_IF.REG) return undefined;
      fd = openat(dir, name, FAN_O.RDONLY | FAN_O.NOFOLLOW | FAN_O.NONBLOCK | FAN_O.CLOEXEC);
      if (fileType(fstat(fd).mode) !== S_IF.REG) {
        closeFd(fd);
        return undefined;
      }
      return fd;
    } catch (error) {
      if (fd >= 0) closeFd(fd);
      if (!(error instanceof SysError && GONE.has(error.code))) this.#problem(String(error));
      return undefined;
    } finally {
      closeFd(dir);
    }
  }

  /**
   * Adds an ignore mark for executions on the file's inode. Without
   * `FAN_MARK_IGNORED_SURV_MODIFY` the kernel clears it when the file is
   * modified, and it dies with the group (the daemon reopens the source when
   * signatures or policy change). Bounded: each mark pins an inode.
   */
  #ignoreExecs(fd: number): boolean {
    if (this.#closed || this.#execMask === 0 || this.stats.ignoreMarks >= this.#maxIgnoreMarks) {
      return false;
    }
    try {
      fanotifyMark(this.#main, FAN_MARK.ADD | FAN_MARK.IGNORED_MASK, this.#execMask, fd, "ignore");
      this.stats.ignoreMarks++;
      return true;
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
      return false;
    }
  }

  /** Removes every ignore mark (the group's inode marks: it has no others). */
  forgetIgnored(): void {
    if (this.#closed) return;
    try {
      fanotifyMark(this.#main, FAN_MARK.FLUSH, 0, AT_FDCWD, "flush ignore marks");
      this.stats.ignoreMarks = 0;
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
    }
  }

  /** Registers a handed-out permission event; returns its `respond`. */
  #hold(fd: number): (allow: boolean) => void {
    const pending: Pending = { fd, timer: undefined };
    pending.timer = setTimeout(() => {
      if (!this.#pending.delete(pending)) return;
      this.stats.permissionTimeouts++;
      this.#answer(fd, this.#timeoutAnswer);
      this.#onProblem?.(
        `An execution waited ${this.#timeoutMs} ms without a verdict: answered ${
          this.#timeoutAnswer === FAN_ALLOW ? "allow (fail-open)" : "deny (fail-closed)"
        }`,
      );
    }, this.#timeoutMs);
    this.#pending.add(pending);
    return (allow: boolean) => {
      if (!this.#pending.delete(pending)) return;
      clearTimeout(pending.timer);
      this.#answer(fd, allow ? FAN_ALLOW : FAN_DENY);
    };
  }

  #answer(fd: number, answer: number): void {
    try {
      writeResponse(this.#main, fd, answer);
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
    }
  }

  /** Drops an event that is not yielded: allowed when it waits for an answer, descriptor closed. */
  #dismiss(fd: number, perm: boolean): void {
    if (perm) this.#answer(fd, FAN_ALLOW);
    closeFd(fd);
  }

  #overflow(out: MonitorEvent[]): void {
    this.stats.overflows++;
    out.push({ kind: "overflow", time: Date.now() });
  }

  #wanted(path: BytePath): boolean {
    const prefixes = this.#prefixes;
    if (!prefixes) return true;
    return prefixes.some((p) => p.length <= path.length && p.every((b, i) => path[i] === b));
  }

  #problem(message: string): void {
    this.stats.errors++;
    this.#onProblem?.(message);
  }
}

/** Opens each path once per file system (by `st_dev`); every descriptor is pushed to `opened`. */
function openFilesystems(paths: string[], opened: number[]): WatchedFs[] {
  const out: WatchedFs[] = [];
  for (const path of paths) {
    const fd = openat(
      AT.FDCWD,
      bytePath(path),
      FAN_O.RDONLY | FAN_O.NONBLOCK | FAN_O.CLOEXEC,
    );
    opened.push(fd);
    const dev = fstat(fd).dev;
    if (out.some((fs) => fs.dev === dev)) {
      opened.pop();
      closeFd(fd);
      continue;
    }
    out.push({ path, fd, dev });
  }
  return out;
}

/**
 * The moved-to group, marked on every file system it can report on; fills
 * `mountFds` (fsid → descriptor). Returns -1 when the kernel cannot report
 * names at all. Failures are warnings: close-write still covers new files.
 */
function openMovedGroup(
  filesystems: WatchedFs[],
  mountFds: Map<bigint, number>,
  warnings: string[],
): number {
  let group: number;
  try {
    group = fanotifyInit(
      FAN_INIT.CLASS_NOTIF | FAN_INIT.REPORT_DFID_NAME | FAN_INIT.CLOEXEC | FAN_INIT.NONBLOCK,
      FAN_O.RDONLY | FAN_O.CLOEXEC,
    );
  } catch (error) {
    warnings.push(`No moved-to events: ${error instanceof Error ? error.message : error}`);
    return -1;
  }
  for (const fs of filesystems) {
    try {
      const fsid = fsidOf(fs.fd);
      if (mountFds.has(fsid)) {
        warnings.push(
          `No moved-to events on ${fs.path}: its fsid is shared with another watched file system`,
        );
        continue;
      }
      fanotifyMark(group, FAN_MARK.ADD | FAN_MARK.FILESYSTEM, FAN.MOVED_TO, fs.fd, fs.path);
      mountFds.set(fsid, fs.fd);
    } catch (error) {
      warnings.push(
        `No moved-to events on ${fs.path}: ${error instanceof Error ? error.message : error}`,
      );
    }
  }
  if (mountFds.size === 0) {
    closeFd(group);
    return -1;
  }
  return group;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
