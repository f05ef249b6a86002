/**
 * The fanotify backend of {@linkcode FileEventSource}.
 *
 * Design:
 * - Groups. Up to three, each marking whole file systems
 *   (`FAN_MARK_FILESYSTEM`), once per distinct `st_dev`; the exec and write
 *   groups report a read-only descriptor per event.
 *   - The exec group (exec "active": `FAN_OPEN_EXEC_PERM` in a
 *     `FAN_CLASS_CONTENT` group; "passive": `FAN_OPEN_EXEC` in a
 *     `FAN_CLASS_NOTIF` group) has `FAN_UNLIMITED_QUEUE`. Executions are
 *     kept apart from writes because a full queue loses them for good: the
 *     kernel drops new notifications and *allows* new permission events
 *     unseen, and a rescan of the files changed since the loss never covers
 *     an old, unchanged program that was run. Its queue is bounded by the
 *     processes blocked in exec (active) or by how fast processes can exec
 *     (passive). Should it still lose events (an overflow, or a read that
 *     fails for lack of descriptors), the "overflow" has `execs: true`.
 *     Permission responses and ignore marks belong to this group.
 *   - The write group (on-access: `FAN_CLOSE_WRITE`, `FAN_CLASS_NOTIF`) has
 *     the kernel's default bounded queue (16384 events), so falling behind
 *     is a real `FAN_Q_OVERFLOW`, yielded as an "overflow" event, never
 *     silent growth.
 *   - `FAN_MOVED_TO` cannot be reported with descriptors, so the moved-to
 *     group (`FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME`) reports it as a
 *     directory file handle plus a name; the file is opened with
 *     `open_by_handle_at` on a descriptor of the watched path (kept open: one
 *     per file system, looked up by fsid) and `openat(dir, name,
 *     O_NOFOLLOW)`; anything but a regular file is skipped.
 * - Reading. The JS thread never blocks on the kernel: `poll` runs off-thread
 *   (`nonblocking`) on the groups and a wake eventfd, then each ready group is
 *   read once, synchronously (the descriptors are `O_NONBLOCK`), the exec
 *   group first, and errno is read at once. `close()` writes the eventfd, so
 *   no wait outlives it. A read error or malformed record is counted in
 *   `stats.errors` and reading goes on. Events are read only while the
 *   consumer awaits `next()`: what it does not read stays in the kernel's
 *   queues, and permission events there hold their processes without a
 *   timer, so a consumer must call `next()` again promptly (queue its work,
 *   do not await it first).
 * - Our own process. Events whose pid is `Deno.pid` are never yielded (their
 *   permission answered allow, their descriptor closed, `stats.ownEvents`):
 *   amp's own writes (quarantine, databases) must not come back as events.
 *   Note that this cannot protect a child: `Deno.Command#spawn` blocks the JS
 *   thread until the child's `execve` completes, so spawning a program that
 *   lies on a file system watched in "active" mode waits for an answer that
 *   only the (blocked) JS thread could give. Do not spawn programs from such
 *   file systems while an active source is open.
 * - Permission events. Each is answered exactly once: by the consumer's
 *   `respond` (true; later calls return false), else after
 *   `permissionTimeoutMs` by the timer (`timeoutAnswer`, counted in
 *   `stats.permissionTimeouts`), else by `close()` (allow). Events filtered
 *   out by `pathPrefixes`, our own, and ones that cannot be read are allowed
 *   at once.
 * - Ignore marks (`ignoreUntilModified`, a kernel-side cache of clean
 *   programs): an ignore mask for executions on the file's inode in the exec
 *   group, `FAN_MARK_EVICTABLE` so that it does not pin the inode (a deleted
 *   or replaced program frees its blocks); a kernel before 5.19 refuses that
 *   (`EINVAL`) once, and plain marks, which pin, are used from then on, with
 *   a lower default limit. The kernel clears the mask when the file is
 *   modified, but a write through a shared mapping is no modification to it.
 *   The writer's last close is (for a mapping, its unmapping), so while the
 *   source may hold marks, each close-write and moved-to it reads removes
 *   the mask from that inode first (a syscall per such event). An execution
 *   between that close and the source reading it is still not reported, and
 *   a write overflow may have lost such closes, so it forgets every mark.
 *   With on-access off there are no close-writes: a write through a mapping
 *   is not noticed, and the program stays ignored until `forgetIgnored()`.
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
 * - Order. Events of one group come in kernel order; the groups are
 *   independent, so an exec or a moved-to may come before or after
 *   close-writes that happened earlier.
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
  /** Report written files: FAN_CLOSE_WRITE (the write group), and FAN_MOVED_TO (the moved-to group). */
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
  /**
   * Limit of `stats.ignoreMarks` (marks added since the last forget; see
   * there): `ignoreUntilModified` returns false beyond it. Default 65536
   * when the kernel takes evictable marks (they pin nothing), else 8192
   * (each pins an inode).
   */
  maxIgnoreMarks?: number;
}

/** Bytes per read: bounds the descriptors one read creates (~340 events). */
const READ_BUFFER_SIZE = 8192;
/** After a failed `poll`, wait this long so a persistent failure cannot spin. */
const POLL_FAILURE_PAUSE_MS = 100;
const DEFAULT_PERMISSION_TIMEOUT_MS = 5000;

/** `AT_FDCWD`: no directory (FAN_MARK_FLUSH takes no object). */
const AT_FDCWD = -100;

/** Default bound of evictable ignore marks: they pin nothing, the bound only guards the kernel's fs.fanotify.max_user_marks. */
const DEFAULT_MAX_EVICTABLE_MARKS = 65536;
/** Default bound of plain ignore marks (kernels before 5.19): each pins an inode. */
const DEFAULT_MAX_PINNING_MARKS = 8192;
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

/** The descriptors a source owns; -1 for a group it does not use. */
interface Groups {
  exec: number;
  write: number;
  moved: number;
  wake: number;
  /** File systems whose descriptors stay open (the moved-to group's). */
  filesystems: WatchedFs[];
  mountFds: Map<bigint, number>;
  /** One path per watched file system. */
  watched: string[];
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
  /**
   * Counters since open; `events` counts file events yielded, `ignoreMarks`
   * is an upper bound of the marks held (see {@linkcode FileEventSource}).
   */
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
  /** The paths given to open(), one per watched file system (the first given for each). */
  readonly watched: readonly string[];

  /** Executions (permission responses and ignore marks too), or -1. */
  readonly #exec: number;
  /** Close-writes, or -1. */
  readonly #write: number;
  /** Moved-to events, or -1. */
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
  readonly #maxIgnoreMarks: number | undefined;
  /** Until the kernel refuses `FAN_MARK_EVICTABLE`. */
  #evictable = true;
  /** The kernel ran out of marks (ENOSPC): no more until the next forget. */
  #marksFull = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** The chain of `next()` calls; settled means no `poll` is in flight. */
  #reading: Promise<unknown> = Promise.resolve();

  private constructor(options: FanotifyOptions, groups: Groups, warnings: string[]) {
    this.#exec = groups.exec;
    this.#write = groups.write;
    this.#moved = groups.moved;
    this.#wake = groups.wake;
    this.#filesystems = groups.filesystems;
    this.#mountFds = groups.mountFds;
    // The exec group first: each wakeup reads its events before a backlog of writes.
    this.#poller = new Poller(
      [groups.exec, groups.write, groups.moved, groups.wake].filter((fd) => fd >= 0),
    );
    this.#timeoutMs = options.permissionTimeoutMs ?? DEFAULT_PERMISSION_TIMEOUT_MS;
    this.#timeoutAnswer = options.timeoutAnswer === "deny" ? FAN_DENY : FAN_ALLOW;
    this.#prefixes = options.pathPrefixes?.map((p) => p.slice());
    this.#onProblem = options.onProblem;
    this.#execMask = execMask(options.exec);
    this.#maxIgnoreMarks = options.maxIgnoreMarks;
    this.warnings = warnings;
    this.watched = groups.watched;
  }

  /**
   * Creates the groups and marks the file systems of `options.paths`.
   * Throws {@linkcode SysError} when the exec or write group cannot be set up
   * (not root, no fanotify, a path that cannot be opened or marked); a file
   * system where moved-to cannot be reported only adds to `warnings`.
   *
   * @param options what to watch
   */
  static open(options: FanotifyOptions): FanotifySource {
    if (!options.onAccess && options.exec === "off") {
      throw new TypeError("Nothing to watch: onAccess is false and exec is off");
    }
    if (options.paths.length === 0) throw new TypeError("Nothing to watch: no paths");
    const opened: number[] = [];
    try {
      const filesystems = openFilesystems(options.paths, opened);
      const exec = options.exec === "off" ? -1 : openGroup(
        (options.exec === "active" ? FAN_INIT.CLASS_CONTENT : FAN_INIT.CLASS_NOTIF) |
          FAN_INIT.UNLIMITED_QUEUE,
        execMask(options.exec),
        filesystems,
        opened,
      );
      const write = options.onAccess
        ? openGroup(FAN_INIT.CLASS_NOTIF, FAN.CLOSE_WRITE, filesystems, opened)
        : -1;
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
      return new FanotifySource(options, {
        exec,
        write,
        moved,
        wake,
        filesystems: kept,
        mountFds,
        watched: filesystems.map((fs) => fs.path),
      }, warnings);
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
    for (const fd of [this.#exec, this.#write, this.#moved]) if (fd >= 0) closeFd(fd);
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
        this.#overflow(group, out);
      }
      return;
    }
    const { records, problems } = parseFanotifyEvents(this.#buf, n);
    for (const p of problems) this.#problem(p);
    for (const record of records) {
      if (group === this.#moved) this.#onMovedEvent(record, out);
      else this.#onFdEvent(group, record, out);
    }
  }

  /** An event of the exec or the write group (both report a descriptor per event). */
  #onFdEvent(group: number, r: FanotifyRecord, out: MonitorEvent[]): void {
    const perm = group === this.#exec && (r.mask & FAN.OPEN_EXEC_PERM) !== 0;
    if (r.mask & FAN.Q_OVERFLOW) {
      this.#overflow(group, out);
      if (r.fd >= 0) closeFd(r.fd);
      return;
    }
    if (r.fd < 0) {
      this.#problem(`Fanotify event without a descriptor: mask 0x${r.mask.toString(16)}`);
      return;
    }
    const kind: FileEventKind | undefined = group === this.#exec
      ? (perm ? "exec-perm" : r.mask & FAN.OPEN_EXEC ? "exec" : undefined)
      : r.mask & FAN.CLOSE_WRITE
      ? "close-write"
      : undefined;
    // Whoever wrote, and whether or not the event is yielded: the file may have changed.
    if (kind === "close-write") this.#unignore(r.fd);
    if (r.pid === this.#ownPid) {
      this.stats.ownEvents++;
      this.#dismiss(r.fd, perm);
      return;
    }
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
    if (kind !== "close-write") event.ignoreUntilModified = () => this.#ignoreExecs(r.fd);
    this.stats.events++;
    out.push(event);
  }

  #onMovedEvent(r: FanotifyRecord, out: MonitorEvent[]): void {
    if (r.fd >= 0) closeFd(r.fd); // FID groups report no descriptors; never leak one
    if (r.mask & FAN.Q_OVERFLOW) {
      this.#overflow(this.#moved, out);
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
    this.#unignore(fd);
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
   * Adds an evictable ignore mark for executions on the file's inode (a
   * plain one, pinning the inode, on kernels before 5.19). Without
   * `FAN_MARK_IGNORED_SURV_MODIFY` the kernel clears it when the file is
   * modified, and it dies with the group (the daemon reopens the source when
   * signatures or policy change).
   */
  #ignoreExecs(fd: number): boolean {
    const max = this.#maxIgnoreMarks ??
      (this.#evictable ? DEFAULT_MAX_EVICTABLE_MARKS : DEFAULT_MAX_PINNING_MARKS);
    if (this.#closed || this.#exec < 0 || this.#marksFull || this.stats.ignoreMarks >= max) {
      return false;
    }
    const flags = FAN_MARK.ADD | FAN_MARK.IGNORED_MASK;
    try {
      try {
        fanotifyMark(
          this.#exec,
          flags | (this.#evictable ? FAN_MARK.EVICTABLE : 0),
          this.#execMask,
          fd,
          "ignore executions",
        );
      } catch (error) {
        if (!(this.#evictable && error instanceof SysError && error.code === "EINVAL")) throw error;
        // Before Linux 5.19: no evictable marks. Plain ones from now on.
        this.#evictable = false;
        fanotifyMark(this.#exec, flags, this.#execMask, fd, "ignore executions");
      }
      this.stats.ignoreMarks++;
      return true;
    } catch (error) {
      // Out of marks (fs.fanotify.max_user_marks): say so once, try again after a forget.
      if (error instanceof SysError && error.code === "ENOSPC") this.#marksFull = true;
      this.#problem(error instanceof Error ? error.message : String(error));
      return false;
    }
  }

  /**
   * Removes the exec ignore mask from the inode of `fd`, which a writer just
   * closed: a write through a shared mapping did not clear it. Only while
   * the source may hold marks; ENOENT means there was none.
   */
  #unignore(fd: number): void {
    if (this.stats.ignoreMarks === 0 || this.#exec < 0) return;
    try {
      fanotifyMark(
        this.#exec,
        FAN_MARK.REMOVE | FAN_MARK.IGNORED_MASK,
        this.#execMask,
        fd,
        "unignore executions",
      );
      this.stats.ignoreMarks--;
    } catch (error) {
      if (error instanceof SysError && error.code === "ENOENT") return;
      this.#problem(error instanceof Error ? error.message : String(error));
    }
  }

  /** Removes every ignore mark (the exec group's inode marks: it has no others). */
  forgetIgnored(): void {
    if (this.#closed || this.#exec < 0) return;
    try {
      fanotifyMark(this.#exec, FAN_MARK.FLUSH, 0, AT_FDCWD, "flush ignore marks");
      this.stats.ignoreMarks = 0;
      this.#marksFull = false;
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
    }
  }

  /** Registers a handed-out permission event; returns its `respond`. */
  #hold(fd: number): (allow: boolean) => boolean {
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
      if (!this.#pending.delete(pending)) return false;
      clearTimeout(pending.timer);
      return this.#answer(fd, allow ? FAN_ALLOW : FAN_DENY);
    };
  }

  /** Writes a permission response; false (and counted) when the write failed. */
  #answer(fd: number, answer: number): boolean {
    try {
      writeResponse(this.#exec, fd, answer);
      return true;
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
      return false;
    }
  }

  /** Drops an event that is not yielded: allowed when it waits for an answer, descriptor closed. */
  #dismiss(fd: number, perm: boolean): void {
    if (perm) this.#answer(fd, FAN_ALLOW);
    closeFd(fd);
  }

  /** Events of `group` were lost. */
  #overflow(group: number, out: MonitorEvent[]): void {
    this.stats.overflows++;
    if (group === this.#exec) {
      out.push({ kind: "overflow", time: Date.now(), execs: true });
      return;
    }
    out.push({ kind: "overflow", time: Date.now() });
    // A lost close-write may have been the only sign of a write through a mapping to an
    // ignored program: no ignore mark can be trusted now.
    if (group === this.#write && this.stats.ignoreMarks > 0) this.forgetIgnored();
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

/** The exec group's event mask for an `exec` option (0 for "off"). */
function execMask(exec: FanotifyOptions["exec"]): number {
  return exec === "active" ? FAN.OPEN_EXEC_PERM : exec === "passive" ? FAN.OPEN_EXEC : 0;
}

/**
 * A group (`flags`, plus close-on-exec and non-blocking) reporting `mask`
 * with read-only descriptors on every file system; pushed to `opened` at
 * once so a failed mark closes it too.
 */
function openGroup(
  flags: number,
  mask: number,
  filesystems: WatchedFs[],
  opened: number[],
): number {
  const group = fanotifyInit(
    flags | FAN_INIT.CLOEXEC | FAN_INIT.NONBLOCK,
    FAN_O.RDONLY | FAN_O.CLOEXEC,
  );
  opened.push(group);
  for (const fs of filesystems) {
    fanotifyMark(group, FAN_MARK.ADD | FAN_MARK.FILESYSTEM, mask, fs.fd, fs.path);
  }
  return group;
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
