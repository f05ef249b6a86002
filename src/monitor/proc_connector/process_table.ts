/**
 * A table of the processes running on the host and of those that exited a
 * moment ago, kept up to date from the kernel's proc connector, so that an
 * event seen after its process is gone (a network flow, a file) can still
 * name its executable, command line, user and parent.
 *
 * Design:
 * - Keyed by process (thread-group id); thread events are ignored except
 *   where they change the process (an exec in a thread makes it the leader).
 * - exec: the reader reads the new executable and command line from /proc
 *   at once, while the new image runs. This races with the process: one
 *   that exits before the reader gets to it (within about a millisecond of
 *   the exec) is recorded without executable and command line, never with
 *   the pre-exec image's. Parent, user and the parent's executable come from
 *   the fork (an exec changes none of them); /proc is asked only for a
 *   process whose fork the table did not see.
 * - fork of a process: the child inherits its parent's executable, command
 *   line and uid (it runs the same image until it execs) and records the
 *   parent's pid and executable.
 * - exit of a process: the entry stays, marked `exited` (epoch ms), for
 *   `retainMs`, then is dropped (lazily: at the next batch of events or
 *   lookup). A pid reused by a new fork replaces the exited entry.
 * - Bounds: at most `maxEntries`; when full, the oldest exited entry goes
 *   first, then the oldest entry (`stats.evicted`).
 * - Loss: when the kernel drops events (the socket buffer overflowed), an
 *   "overflow" record is counted in `stats.lost`; lookups of pids the table
 *   missed fall back to reading /proc.
 * - Events are read only by the table's own loop, which starts in the
 *   constructor and ends at `close()` (or when the source ends).
 *
 * @module
 */

import { type ProcessInfo, readProcessInfo } from "../../protect/process_info.ts";
import { NativeProcEventSource } from "./_native.ts";
import type { ProcEventSource, ProcRecord } from "./proc_events.ts";

/** A process as the table knows it; `exited` (epoch ms) once it has exited. */
export type ProcessEntry = ProcessInfo & { exited?: number };

/** Options of {@linkcode ProcessTable}. */
export interface ProcessTableOptions {
  /** How long an exited process stays in the table, in ms. Default 10 000. */
  retainMs?: number;
  /** The most entries kept. Default 65 536. */
  maxEntries?: number;
  /** Where procfs is mounted. Default "/proc". */
  proc?: string;
  /** The clock, in epoch ms (tests). Default `Date.now`. */
  now?: () => number;
}

/** Options of {@linkcode ProcessTable.open}. */
export interface ProcessTableOpenOptions extends ProcessTableOptions {
  /** Socket receive buffer to ask the kernel for, in bytes. Default 8 MiB. */
  receiveBufferBytes?: number;
}

/** Counters of a {@linkcode ProcessTable}. */
export interface ProcessTableStats {
  /** Process events applied (fork, exec, exit, uid, …), threads included. */
  events: number;
  /** Executions seen. */
  execs: number;
  /** Process (thread-group leader) exits seen. */
  exits: number;
  /** Times the kernel reported lost events. */
  lost: number;
  /** Records that could not be parsed. */
  unknown: number;
  /** Failed reads and netlink errors. */
  errors: number;
  /** Entries dropped because the table was full. */
  evicted: number;
  /** Entries now in the table. */
  size: number;
}

/**
 * Processes by pid, running and recently exited, from proc connector events.
 *
 * @example
 * ```ts ignore
 * import { ProcessTable } from "./process_table.ts";
 * const table = ProcessTable.open({ retainMs: 10_000 }); // needs root
 * const info = table.get(1234); // { pid, ppid, uid, executable, commandLine, exited? }
 * await table.close();
 * ```
 */
export class ProcessTable {
  readonly #source: ProcEventSource;
  readonly #retainMs: number;
  readonly #maxEntries: number;
  readonly #proc: string;
  readonly #now: () => number;
  /** In insertion order: the first is the oldest. */
  readonly #entries = new Map<number, ProcessEntry>();
  /** Exited pids in order of exit: the first expires first. */
  readonly #exited = new Map<number, number>();
  readonly #stats = { events: 0, execs: 0, exits: 0, lost: 0, unknown: 0, errors: 0, evicted: 0 };
  readonly #loop: Promise<void>;
  #closed = false;
  /** Resolves once the source reads (the native one: once its reader thread runs). */
  readonly ready: Promise<void>;

  /**
   * Opens the kernel's proc connector (root) and starts following it.
   * Throws {@linkcode SysError} when the socket cannot be set up.
   *
   * @param options retention, bounds and socket buffer
   */
  static open(options: ProcessTableOpenOptions = {}): ProcessTable {
    const source = NativeProcEventSource.open({
      receiveBufferBytes: options.receiveBufferBytes,
      proc: options.proc,
    });
    return new ProcessTable(source, options);
  }

  /**
   * Follows `source` until {@linkcode ProcessTable.close} (or the source ends).
   *
   * @param source where the records come from; the table closes it
   * @param options retention and bounds
   */
  constructor(source: ProcEventSource, options: ProcessTableOptions = {}) {
    this.#source = source;
    this.ready = source.ready ?? Promise.resolve();
    this.#retainMs = options.retainMs ?? 10_000;
    this.#maxEntries = Math.max(1, options.maxEntries ?? 65_536);
    this.#proc = options.proc ?? "/proc";
    this.#now = options.now ?? Date.now;
    this.#loop = this.#run();
  }

  /** A copy of the counters. */
  get stats(): ProcessTableStats {
    return { ...this.#stats, size: this.#entries.size };
  }

  /**
   * What is known of `pid`: the table's entry (kept `retainMs` after exit),
   * else what /proc says now, else undefined.
   *
   * @param pid a process id (thread-group id)
   */
  get(pid: number): ProcessEntry | undefined {
    this.#expire();
    const known = this.#entries.get(pid);
    if (known) return { ...known };
    const info = readProcessInfo(pid, this.#proc);
    if (info.ppid === undefined && info.executable === undefined) return undefined;
    if (!this.#closed) this.#insert(info);
    return { ...info };
  }

  /** Stops following events and waits for the loop to end; safe to call twice. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      await this.#source.close();
    }
    await this.#loop;
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      let records: ProcRecord[];
      try {
        records = await this.#source.next();
      } catch {
        this.#stats.errors++;
        if (!this.#closed) await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (records.length === 0) break;
      for (const record of records) this.#apply(record);
      this.#expire();
    }
  }

  #apply(r: ProcRecord): void {
    switch (r.kind) {
      case "overflow":
        this.#stats.lost++;
        return;
      case "unknown":
        this.#stats.unknown++;
        return;
      case "error":
      case "ack":
        if (r.error !== 0) this.#stats.errors++;
        return;
    }
    this.#stats.events++;
    switch (r.kind) {
      case "fork": {
        if (r.pid !== r.tgid) return; // a new thread
        const parent = this.#entries.get(r.ptgid) ?? this.get(r.ptgid);
        this.#insert({
          pid: r.tgid,
          ppid: r.ptgid,
          uid: parent?.uid,
          executable: parent?.executable,
          commandLine: parent?.commandLine,
          parentExecutable: parent?.executable,
        });
        return;
      }
      case "exec": {
        this.#stats.execs++;
        const before = this.#entries.get(r.tgid);
        const info = r.process ? { ...r.process } : readProcessInfo(r.tgid, this.#proc);
        if (before) {
          // What the fork (and uid events) said; the parent's image as it is now.
          info.ppid ??= before.ppid;
          info.uid ??= before.uid;
          // The parent's image at the fork: the pid may since belong to another process.
          info.parentExecutable ??= before.parentExecutable;
        } else if (info.ppid === undefined || info.uid === undefined) {
          // Forked before the table started: /proc, while it still runs.
          const live = readProcessInfo(r.tgid, this.#proc);
          info.ppid ??= live.ppid;
          info.uid ??= live.uid;
          info.parentExecutable ??= live.parentExecutable;
        }
        this.#insert(info);
        return;
      }
      case "exit": {
        if (r.pid !== r.tgid) return; // a thread
        this.#stats.exits++;
        const entry = this.#entries.get(r.tgid) ?? this.#insert({ pid: r.tgid, ppid: r.ptgid });
        entry.exited = this.#now();
        this.#exited.delete(r.tgid);
        this.#exited.set(r.tgid, entry.exited);
        return;
      }
      case "uid": {
        const entry = this.#entries.get(r.tgid);
        if (entry) entry.uid = r.real;
        return;
      }
    }
  }

  /** Adds or replaces the entry of `info.pid`, making room first; returns the stored entry. */
  #insert(info: ProcessInfo): ProcessEntry {
    const entry: ProcessEntry = { ...info };
    for (const key of Object.keys(entry) as (keyof ProcessEntry)[]) {
      if (entry[key] === undefined) delete entry[key];
    }
    if (this.#entries.delete(info.pid)) {
      this.#exited.delete(info.pid);
    } else if (this.#entries.size >= this.#maxEntries) {
      const victim = this.#exited.keys().next().value ?? this.#entries.keys().next().value;
      if (victim !== undefined) {
        this.#entries.delete(victim);
        this.#exited.delete(victim);
        this.#stats.evicted++;
      }
    }
    this.#entries.set(info.pid, entry);
    return entry;
  }

  /** Drops exited entries older than `retainMs`. */
  #expire(): void {
    const cutoff = this.#now() - this.#retainMs;
    for (const [pid, exited] of this.#exited) {
      if (exited > cutoff) break;
      this.#exited.delete(pid);
      this.#entries.delete(pid);
    }
  }
}
