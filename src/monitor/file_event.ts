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
  /**
   * exec-perm only: answers the event. Returns true when this call wrote the
   * answer; false when it changed nothing: the event was already answered
   * (by the source's timeout, an earlier call, or `close()`) or the answer
   * could not be written. A consumer whose deny returns false must stop the
   * process otherwise (kill it): the execution may have been allowed.
   */
  respond?: (allow: boolean) => boolean;
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
  /**
   * Executions may have been missed (not only writes): a rescan of files
   * changed since the loss does not cover an old, unchanged program that was
   * run, so look at the running processes too. Absent for write overflows.
   */
  execs?: boolean;
}

/** What a source yields. */
export type MonitorEvent = FileEvent | OverflowEvent;

/** A source of file events. */
export interface FileEventSource {
  /** Which backend this is, such as `"fanotify"`. */
  readonly backend: string;
  /** The paths watched, one per file system (for status; absent when the backend cannot tell). */
  readonly watched?: readonly string[];
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
    /**
     * Files whose executions the kernel no longer reports until modified, at
     * most: marks added since the last `forgetIgnored()`, less the ones the
     * source removed itself. Marks the kernel drops on its own (evicted
     * inodes, modified files) are not seen.
     */
    ignoreMarks: number;
  };
}
