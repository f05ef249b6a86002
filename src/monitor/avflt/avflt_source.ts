/**
 * The `ampavflt` kernel module backend of {@linkcode FileEventSource}: file
 * events of the whole system through /dev/ampavflt (see kmod/ampavflt.c).
 *
 * Design:
 * - Registration. Opening the device makes this process the module's daemon
 *   (one at a time: a second daemon gets EBUSY; other processes cannot read
 *   or write our descriptor: EPERM). The source first checks the module's
 *   protocol (its sysfs `version`) and refuses another one, closing the
 *   device: records of another layout cannot be read safely. The module
 *   never queues events of our own process, and reports execs of our
 *   direct children, and execs the kernel starts (modprobe for a module
 *   our own syscall asked for), without holding them (a `Deno.Command`
 *   spawn waits for its child's exec on the JS thread, which alone could
 *   answer). The source then writes CONFIG: exec "active" (held until a
 *   verdict), "passive" (notification) or off, close-write when on-access
 *   is on, and the module's own timeouts with the policy's timeout answer:
 *   both the source's timeout plus a second (one bounds the wait before an
 *   exec is read, the other the wait after: the module's timeouts are the
 *   safety net for a daemon that stopped answering or reading, and answer
 *   as the policy says, so fail-closed holds then too). Then SKIP_DEV for
 *   each mounted network, FUSE or pseudo file system (`skipFsType`, as the
 *   fanotify backend skips them): the module ignores those it knows by
 *   type on its own, and these too.
 * - Reading. As in the fanotify source: `poll` off the JS thread on the
 *   device and a wake eventfd, then one non-blocking read of whole records,
 *   parsed by the pure {@linkcode parseAvfltEvents}. Waiting execs come
 *   first in every read. Events are read only while the consumer awaits
 *   `next()`; execs left unread wait in the module until its queue
 *   timeout.
 * - Permission events. Each is answered exactly once: by the consumer's
 *   `respond` (a VERDICT write; false when the module answered already, by
 *   a timeout: ENOENT), else after `permissionTimeoutMs` by the timer
 *   (`timeoutAnswer`, counted), else by `close()` (allow). Events filtered
 *   out by `pathPrefixes`, unknown records and events that cannot be used
 *   are allowed at once.
 * - Verdict cache (`ignoreUntilModified`): a CACHE write naming the event's
 *   descriptor and the change time the event carried. The module refuses
 *   it (false) when the file changed since the event or has a writer, or
 *   lives on a file system it does not cache (overlayfs, skipped ones), and
 *   drops the entry when a writer opens the file, so a write through a
 *   mapping is seen too. Its size is the module's to bound (ENOSPC: false,
 *   told once until the next forget); a module that cannot cache at all
 *   (EOPNOTSUPP) is not asked again. `stats.ignoreMarks` counts the files
 *   cached since the last forget (an upper bound: the module drops entries
 *   of modified files on its own). `forgetIgnored()` empties it; so does
 *   closing.
 * - Descriptors. Each event's `fd` (read-only, close-on-exec, made by the
 *   module in our process at read time, within our RLIMIT_NOFILE, whose
 *   soft limit opening the device raises to the hard one) belongs to the
 *   consumer. When the module could give none (out of descriptors) it
 *   gives the path instead; this source never opens a path (races), so
 *   such an event is allowed if it waits, counted as a problem and yielded
 *   as an "overflow" (a rescan; for an exec, the running programs are
 *   scanned).
 * - The module watches every file system; `pathPrefixes` narrows what is
 *   yielded, as for fanotify. A program executed outside them is put in
 *   the verdict cache at once, so that its next executions do not wait
 *   for this process at all. It reports no moved-to: a file renamed into
 *   place was written (and reported at its close) under its old name.
 *
 * @module
 */

import {
  AMPAVFLT_DEVICE,
  AMPAVFLT_MASK,
  AMPAVFLT_MAX_TIMEOUT_MS,
  AMPAVFLT_VERSION,
} from "../../../ffi/ampavflt.ts";
import { type Mount, readMounts, skipFsType } from "../../fs/mounts.ts";
import { SysError } from "../../sys/sys_error.ts";
import type { FileEvent, FileEventKind, FileEventSource, MonitorEvent } from "../file_event.ts";
import { type AvfltFileRecord, encodeAvfltCommands, parseAvfltEvents } from "./avflt_events.ts";
import type { AvfltPort } from "./avflt_port.ts";
import { openAvfltDevice } from "./_native.ts";

/** What {@linkcode AvfltSource.open} asks of the module. */
export interface AvfltOptions {
  /** Report closes of files written (close-write). */
  onAccess: boolean;
  /** Executions: "passive" (notified), "active" (held until answered) or "off". */
  exec: "passive" | "active" | "off";
  /** Permission events not answered within this many ms are answered `timeoutAnswer` and counted. Default 5000. */
  permissionTimeoutMs?: number;
  /** When the timeout passes: allow (default, fail-open) or deny. */
  timeoutAnswer?: "allow" | "deny";
  /** Only events whose path starts with one of these byte prefixes are yielded. Default: all. */
  pathPrefixes?: Uint8Array[];
  /** Shown as `watched` (status); default ["/"]: the module sees every file system. */
  paths?: string[];
  /** Told about each record or call that failed and was counted in `stats.errors`. */
  onProblem?: (message: string) => void;
  /**
   * Devices (`st_dev`) whose files the module must ignore. Default: with the
   * native device, those of the mounted network, FUSE and pseudo file
   * systems ({@linkcode skippedDevices}); with a port given, none.
   */
  skipDevices?: bigint[];
  /** The device to open when no port is given. Default /dev/ampavflt. */
  device?: string;
}

const READ_BUFFER_SIZE = 16384;
const POLL_FAILURE_PAUSE_MS = 100;
const DEFAULT_PERMISSION_TIMEOUT_MS = 5000;
/** The module's timeouts exceed ours by this much: they only catch a daemon that stopped. */
const MODULE_TIMEOUT_MARGIN_MS = 1000;
/** The module's answers to a cache request: a writer has the file open; no cache at all; not on this file system. */
const ETXTBSY = 26;
const EOPNOTSUPP = 95;
const EMEDIUMTYPE = 124;

/** A permission event handed out and not answered yet. */
interface Pending {
  id: bigint;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * File events from the `ampavflt` kernel module: close-write, exec and exec
 * permission, as {@linkcode MonitorEvent} batches. Needs root and the
 * module loaded.
 *
 * @example
 * ```ts ignore
 * import { AvfltSource } from "./avflt_source.ts";
 * const source = AvfltSource.open({ onAccess: true, exec: "active" });
 * for (let batch = await source.next(); batch.length > 0; batch = await source.next()) {
 *   for (const event of batch) {
 *     if (event.kind === "overflow") continue;
 *     event.respond?.(true);
 *   }
 * }
 * ```
 */
export class AvfltSource implements FileEventSource {
  /** Always `"avflt"`. */
  readonly backend = "avflt";
  /** Counters since open (see {@linkcode FileEventSource}). */
  readonly stats = {
    events: 0,
    overflows: 0,
    permissionTimeouts: 0,
    ownEvents: 0,
    errors: 0,
    ignoreMarks: 0,
  };
  /** The paths whose events are yielded (["/"] unless narrowed). */
  readonly watched: readonly string[];

  readonly #port: AvfltPort;
  readonly #buf = new Uint8Array(READ_BUFFER_SIZE);
  readonly #pending = new Map<bigint, Pending>();
  readonly #ownPid = Deno.pid;
  readonly #timeoutMs: number;
  readonly #timeoutAllow: boolean;
  readonly #prefixes: Uint8Array[] | undefined;
  readonly #onProblem: ((message: string) => void) | undefined;
  readonly #wantExec: boolean;
  /** The module cannot cache (EOPNOTSUPP): not asked again. */
  #cacheOff = false;
  /** The module's cache was full (ENOSPC): told once until the next forget. */
  #cacheFullTold = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #reading: Promise<unknown> = Promise.resolve();

  private constructor(port: AvfltPort, options: AvfltOptions) {
    this.#port = port;
    this.#timeoutMs = options.permissionTimeoutMs ?? DEFAULT_PERMISSION_TIMEOUT_MS;
    this.#timeoutAllow = options.timeoutAnswer !== "deny";
    this.#prefixes = options.pathPrefixes?.map((p) => p.slice());
    this.#onProblem = options.onProblem;
    this.#wantExec = options.exec !== "off";
    this.watched = options.paths && options.paths.length > 0 ? [...options.paths] : ["/"];
  }

  /**
   * Opens /dev/ampavflt (or uses `port`), checks the module's protocol and
   * configures the module. Throws {@linkcode SysError} when the device cannot
   * be opened (ENOENT: module not loaded; EBUSY: another daemon has it) or
   * refuses the configuration, and an `Error` when the module speaks another
   * protocol; the device is closed then.
   *
   * @param options what to report
   * @param port the device (tests); default the native device
   */
  static open(options: AvfltOptions, port?: AvfltPort): AvfltSource {
    if (!options.onAccess && options.exec === "off") {
      throw new TypeError("Nothing to watch: onAccess is false and exec is off");
    }
    const device = port ?? openAvfltDevice(options.device);
    const skip = options.skipDevices ?? (port ? [] : skippedDevices(readMounts()));
    let source: AvfltSource;
    try {
      const version = device.protocolVersion();
      if (version !== AMPAVFLT_VERSION) {
        throw new Error(
          `Cannot use ${options.device ?? AMPAVFLT_DEVICE}: the ampavflt module speaks protocol ${
            version ?? "1 or unknown"
          }, this amp needs ${AMPAVFLT_VERSION} (rebuild it with amp kmod build and reload it)`,
        );
      }
      source = new AvfltSource(device, options);
      const moduleTimeoutMs = Math.min(
        AMPAVFLT_MAX_TIMEOUT_MS,
        (options.permissionTimeoutMs ?? DEFAULT_PERMISSION_TIMEOUT_MS) + MODULE_TIMEOUT_MARGIN_MS,
      );
      device.write(encodeAvfltCommands([{
        cmd: "config",
        mask: configMask(options),
        timeoutMs: moduleTimeoutMs,
        queueTimeoutMs: moduleTimeoutMs,
        timeoutAnswer: options.timeoutAnswer ?? "allow",
      }]));
    } catch (error) {
      device.close();
      throw error;
    }
    // One per write: a batch that fails part-way cannot say which command did.
    for (const dev of skip) {
      try {
        device.write(encodeAvfltCommands([{ cmd: "skip-dev", dev }]));
      } catch (error) {
        source.#problem(
          `Cannot make ampavflt skip device ${dev}: ${
            error instanceof Error ? error.message : String(error)
          }`,
        );
        // The module's list is full: the rest would be refused too.
        if (error instanceof SysError && error.code === "ENOSPC") break;
      }
    }
    return source;
  }

  /** Next batch of events; resolves to [] only after close(). Calls are served in order. */
  next(): Promise<MonitorEvent[]> {
    const run = this.#reading.then(() => this.#read());
    this.#reading = run.catch(() => undefined);
    return run;
  }

  /** Stops reading, answers allow to every unanswered permission event, closes the device. Safe twice. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    this.#port.wake();
    await this.#reading;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      this.#verdict(id, true);
    }
    this.#pending.clear();
    // The module allows whatever is still waiting when the device closes.
    this.#port.close();
  }

  /** Empties the module's verdict cache (signatures or policy changed). */
  forgetIgnored(): void {
    if (this.#closed) return;
    try {
      this.#port.write(encodeAvfltCommands([{ cmd: "forget" }]));
      this.stats.ignoreMarks = 0;
      this.#cacheFullTold = false;
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
    }
  }

  async #read(): Promise<MonitorEvent[]> {
    while (!this.#closed) {
      const ready = await this.#port.wait();
      if (this.#closed) break;
      if (ready === "failed" || ready === "broken") {
        this.#problem(
          ready === "failed"
            ? "Poll on /dev/ampavflt failed"
            : "Poll reports an error on /dev/ampavflt",
        );
        await pause(POLL_FAILURE_PAUSE_MS);
        continue;
      }
      if (ready !== "ready") continue;
      const out: MonitorEvent[] = [];
      this.#drain(out);
      if (out.length > 0) return out;
    }
    return [];
  }

  #drain(out: MonitorEvent[]): void {
    let n: number;
    try {
      n = this.#port.read(this.#buf);
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
      return;
    }
    const { records, problems } = parseAvfltEvents(this.#buf, n);
    for (const p of problems) this.#problem(p);
    for (const r of records) {
      if (r.kind === "overflow") {
        this.stats.overflows++;
        out.push({ kind: "overflow", time: Date.now(), ...(r.execs ? { execs: true } : {}) });
      } else if (r.kind === "unknown") {
        this.#dismiss(r.fd, r.perm ? r.id : undefined);
      } else {
        this.#onRecord(r, out);
      }
    }
  }

  #onRecord(r: AvfltFileRecord, out: MonitorEvent[]): void {
    const waiting = r.perm ? r.id : undefined;
    if (r.tgid === this.#ownPid) {
      this.stats.ownEvents++;
      this.#dismiss(r.fd, waiting);
      return;
    }
    const kind: FileEventKind | undefined = r.kind === "exec"
      ? (r.perm ? "exec-perm" : "exec")
      : r.kind === "close-write"
      ? "close-write"
      : undefined;
    if (kind === undefined) {
      this.#dismiss(r.fd, waiting);
      return;
    }
    if (r.fd < 0) {
      // No descriptor (we were out of them): never reopen a path; rescan instead.
      this.#problem(
        `ampavflt ${r.kind} event without a descriptor (pid ${r.pid}): treated as lost`,
      );
      this.#dismiss(r.fd, waiting);
      this.stats.overflows++;
      out.push({
        kind: "overflow",
        time: Date.now(),
        ...(r.kind === "exec" ? { execs: true } : {}),
      });
      return;
    }
    let path: Uint8Array;
    try {
      path = this.#port.fdPath(r.fd);
    } catch (error) {
      this.#problem(error instanceof Error ? error.message : String(error));
      this.#dismiss(r.fd, waiting);
      return;
    }
    if (!this.#wanted(path)) {
      // Outside the watched paths: the module need not ask about this program again.
      if (r.kind === "exec") this.#ignore(r.fd, r.ctimeNs);
      this.#dismiss(r.fd, waiting);
      return;
    }
    const event: FileEvent = { kind, fd: r.fd, pid: r.tgid, path };
    if (r.perm) event.respond = this.#hold(r.id);
    if (kind !== "close-write") {
      event.ignoreUntilModified = () => this.#ignore(r.fd, r.ctimeNs);
    }
    this.stats.events++;
    out.push(event);
  }

  /** CACHE: the module skips executions of this unchanged file. */
  #ignore(fd: number, ctimeNs: bigint): boolean {
    if (this.#closed || !this.#wantExec || this.#cacheOff) return false;
    try {
      this.#port.write(encodeAvfltCommands([{ cmd: "cache", fd, ctimeNs }]));
      this.stats.ignoreMarks++;
      return true;
    } catch (error) {
      if (!(error instanceof SysError)) {
        this.#problem(error instanceof Error ? error.message : String(error));
        return false;
      }
      // Changed since the event, a writer has it open, or a file system the
      // module does not cache: not cached, not a problem.
      if (error.code === "ESTALE" || error.errno === ETXTBSY || error.errno === EMEDIUMTYPE) {
        return false;
      }
      if (error.errno === EOPNOTSUPP) {
        this.#cacheOff = true;
        this.#onProblem?.(
          "The ampavflt module keeps no verdict cache (a kprobe did not register): " +
            "every execution waits for this daemon",
        );
        return false;
      }
      if (error.code === "ENOSPC") {
        if (!this.#cacheFullTold) this.#problem("The ampavflt verdict cache is full");
        this.#cacheFullTold = true;
        return false;
      }
      this.#problem(error.message);
      return false;
    }
  }

  /** Registers a handed-out permission event; returns its `respond`. */
  #hold(id: bigint): (allow: boolean) => boolean {
    const pending: Pending = { id, timer: undefined };
    pending.timer = setTimeout(() => {
      if (this.#pending.get(id) !== pending) return;
      this.#pending.delete(id);
      this.stats.permissionTimeouts++;
      this.#verdict(id, this.#timeoutAllow);
      this.#onProblem?.(
        `An execution waited ${this.#timeoutMs} ms without a verdict: answered ${
          this.#timeoutAllow ? "allow (fail-open)" : "deny (fail-closed)"
        }`,
      );
    }, this.#timeoutMs);
    this.#pending.set(id, pending);
    return (allow: boolean) => {
      if (this.#pending.get(id) !== pending) return false;
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      return this.#verdict(id, allow);
    };
  }

  /** Writes a verdict; false when the module no longer waits for it (its timeout) or the write failed. */
  #verdict(id: bigint, allow: boolean): boolean {
    try {
      this.#port.write(encodeAvfltCommands([{ cmd: "verdict", id, allow }]));
      return true;
    } catch (error) {
      if (error instanceof SysError && error.code === "ENOENT") {
        this.stats.permissionTimeouts++;
        return false;
      }
      this.#problem(error instanceof Error ? error.message : String(error));
      return false;
    }
  }

  /** Drops an event that is not yielded: allowed when it waits, descriptor closed. */
  #dismiss(fd: number, waiting: bigint | undefined): void {
    if (waiting !== undefined) this.#verdict(waiting, true);
    if (fd >= 0) this.#port.closeFd(fd);
  }

  #wanted(path: Uint8Array): boolean {
    const prefixes = this.#prefixes;
    if (!prefixes) return true;
    return prefixes.some((p) => p.length <= path.length && p.every((b, i) => path[i] === b));
  }

  #problem(message: string): void {
    this.stats.errors++;
    this.#onProblem?.(message);
  }
}

/**
 * Whether the module's device exists (the module is loaded): what the
 * daemon's `auto` backend looks at.
 *
 * @param device the device node (default /dev/ampavflt)
 */
export function avfltAvailable(device: string = AMPAVFLT_DEVICE): boolean {
  try {
    return Deno.statSync(device).isCharDevice === true;
  } catch {
    return false;
  }
}

/**
 * The devices the module should ignore: those of mounted file systems a scan
 * skips (`skipFsType`: network, FUSE and pseudo ones), each once.
 *
 * @param mounts the mount table (`readMounts()`)
 *
 * @example
 * ```ts
 * import { skippedDevices } from "./avflt_source.ts";
 * import { parseMountInfo } from "../../fs/mounts.ts";
 * const mounts = parseMountInfo(new TextEncoder().encode(
 *   "22 1 0:21 / /proc rw - proc proc rw\n23 1 8:1 / / rw - ext4 /dev/sda1 rw\n",
 * ));
 * skippedDevices(mounts); // [21n]
 * ```
 */
export function skippedDevices(mounts: readonly Mount[]): bigint[] {
  const out = new Set<bigint>();
  for (const m of mounts) if (skipFsType(m.fsType) !== undefined) out.add(m.dev);
  return [...out];
}

/** The CONFIG mask for `options`. */
export function configMask(options: Pick<AvfltOptions, "onAccess" | "exec">): number {
  return (options.exec === "active"
    ? AMPAVFLT_MASK.EXEC_PERM
    : options.exec === "passive"
    ? AMPAVFLT_MASK.EXEC
    : 0) | (options.onAccess ? AMPAVFLT_MASK.CLOSE_WRITE : 0);
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
