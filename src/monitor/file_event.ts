/**
 * The one interface of file event sources (fanotify today, the `ampavflt`
 * kernel module later): a pull of batches of {@linkcode MonitorEvent}s.
 *
 * Ownership: every {@linkcode FileEvent} hands its `fd` to the consumer, who
 * must close it. A permission event (`exec-perm`) holds the process that
 * caused it until `respond` is called; call `respond` before closing `fd`
 * (backends may identify the event by its descriptor number). A source
 * answers what the consumer does not: on its timeout, and on `close()`.
 *
 * @module
 */

/** What happened to a file. */
export type FileEventKind = "close-write" | "moved-to" | "exec" | "exec-perm";

/** One file event. */
export interface FileEvent {
  kind: FileEventKind;
  /** Read-only descriptor of the file, owned by the consumer (must close it). */
  fd: number;
  /** Process that caused the event. */
  pid: number;
  /** Bytes, from readlink(/proc/self/fd/N) (may end with " (deleted)"). */
  path: Uint8Array;
  /** exec-perm only: answer exactly once; later calls are ignored. */
  respond?: (allow: boolean) => void;
  /**
   * exec and exec-perm: the file was found clean, so the kernel need not
   * report its executions again until it is modified (a kernel-side verdict
   * cache). Call before closing `fd`. Returns false when it was not done
   * (the source's limit of such marks, or the kernel refused).
   */
  ignoreUntilModified?: () => boolean;
}

/** The kernel queue overflowed: something was missed (a rescan is due). */
export interface OverflowEvent {
  kind: "overflow";
  /** When the source saw it (ms since the epoch). */
  time: number;
}

/** What a source yields. */
export type MonitorEvent = FileEvent | OverflowEvent;

/** A source of file events. */
export interface FileEventSource {
  /** Which backend this is, such as `"fanotify"`. */
  readonly backend: string;
  /** Next batch of events; resolves to [] only after close(). */
  next(): Promise<MonitorEvent[]>;
  /**
   * Forgets every `ignoreUntilModified` (signatures or policy changed: a
   * file found clean before may not be clean now).
   */
  forgetIgnored?(): void;
  /** Stops reading, answers "allow" to every unanswered permission event, closes fds. Safe twice. */
  close(): Promise<void>;
  /** Counters since the source was opened. */
  readonly stats: {
    events: number;
    overflows: number;
    permissionTimeouts: number;
    ownEvents: number;
    errors: number;
    /** Files whose executions the kernel no longer reports until modified. */
    ignoreMarks: number;
  };
}
