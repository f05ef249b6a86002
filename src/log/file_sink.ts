/**
 * A log file such as `/var/log/amp/ampdaemon.log`, rotated by size.
 *
 * Each record is one line (see `log_line.ts`) written with a single
 * `write(2)` on a descriptor opened with `O_APPEND`, so a crash of amp loses
 * at most the line being written. Nothing here throws into the code that
 * logs: a failing disk is counted in {@linkcode FileSink.errors} and the file
 * is opened again at the next record.
 *
 * Rotation: when a line would take the file past `maxBytes`, `NAME.log.(k-1)`
 * becomes `NAME.log.k` … `NAME.log` becomes `NAME.log.1`, and a new
 * `NAME.log` is started; `keep` rotated files are kept, the oldest dropped.
 * The sizes are tracked by this process: two processes must not share one
 * file (amp gives each program its own: ampdaemon.log, ampcli.log, …).
 *
 * @module
 */

import { dirname } from "node:path";
import { formatLogLine, localHostname, type LogTimeFormat } from "./log_line.ts";
import type { LogRecord, LogSink } from "./logger.ts";

/** Options of {@linkcode FileSink}. */
export interface FileSinkOptions {
  /** Rotate when a line would take the file past this size; 10 MiB by default. */
  maxBytes?: number;
  /** Rotated files kept (`.1` … `.keep`); 5 by default, 0 to just start over. */
  keep?: number;
  /** Program name in each line; `amp` by default. */
  ident?: string;
  /** Host name in each line; `Deno.hostname()` by default. */
  host?: string;
  /** Process id in each line; `Deno.pid` by default. */
  pid?: number;
  /** Time format; `syslog` (`Nov 26 13:01:02`) by default. */
  timeFormat?: LogTimeFormat;
}

const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
const DEFAULT_KEEP = 5;
const encoder = new TextEncoder();

/**
 * Appends records to a file, creating its directory (0700) and the file
 * (0600) when missing.
 *
 * @example
 * ```ts
 * import { FileSink } from "./file_sink.ts";
 * import { Logger } from "./logger.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const log = new Logger([new FileSink(`${dir}/amp/ampdaemon.log`, { maxBytes: 1 << 20 })]);
 * log.notice("Connector started");
 * await log.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileSink implements LogSink {
  /** The log file. */
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #line: { ident: string; host: string; pid: number; timeFormat: LogTimeFormat };
  #file: Deno.FsFile | undefined;
  #size = 0;
  #errors = 0;
  #lastError: Error | undefined;
  #closed = false;

  /**
   * Opens (or creates) the file at once; when that fails the error is counted
   * and the file is tried again at the next record.
   *
   * @param path the log file
   * @param options rotation limits and what each line says
   */
  constructor(path: string, options: FileSinkOptions = {}) {
    this.path = path;
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.#keep = options.keep ?? DEFAULT_KEEP;
    if (!(this.#maxBytes > 0)) throw new RangeError(`maxBytes must be positive: ${this.#maxBytes}`);
    if (!Number.isInteger(this.#keep) || this.#keep < 0) {
      throw new RangeError(`keep must be a whole number: ${this.#keep}`);
    }
    this.#line = {
      ident: options.ident ?? "amp",
      host: options.host ?? localHostname(),
      pid: options.pid ?? Deno.pid,
      timeFormat: options.timeFormat ?? "syslog",
    };
    this.#open();
  }

  /** How many writes, opens or rotations failed. */
  get errors(): number {
    return this.#errors;
  }

  /** The last failure, if any. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** Appends one record as a line, rotating first when the line would not fit. */
  write(record: LogRecord): void {
    if (this.#closed) return;
    const bytes = encoder.encode(`${formatLogLine(record, this.#line)}\n`);
    if (this.#file && this.#size > 0 && this.#size + bytes.length > this.#maxBytes) this.#rotate();
    const file = this.#file ?? this.#open();
    if (!file) return;
    try {
      let done = 0;
      while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
      this.#size += bytes.length;
    } catch (error) {
      this.#fail(error);
      this.#release();
    }
  }

  /**
   * Closes and opens the file again, for an outside rotation (logrotate, or
   * the daemon on SIGHUP).
   */
  reopen(): void {
    if (this.#closed) return;
    this.#release();
    this.#open();
  }

  /** Closes the file; later records are dropped. Safe to call twice. */
  close(): void {
    this.#closed = true;
    this.#release();
  }

  #open(): Deno.FsFile | undefined {
    try {
      ensureDirectory(dirname(this.path));
      const file = Deno.openSync(this.path, { append: true, create: true, mode: 0o600 });
      try {
        this.#size = file.statSync().size;
      } catch (error) {
        file.close();
        throw error;
      }
      this.#file = file;
      return file;
    } catch (error) {
      this.#fail(error);
      return undefined;
    }
  }

  #rotate(): void {
    this.#release();
    let rotated = true;
    try {
      if (this.#keep === 0) {
        removeIfPresent(this.path);
      } else {
        for (let i = this.#keep - 1; i >= 1; i--) {
          renameIfPresent(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        }
        renameIfPresent(this.path, `${this.path}.1`);
      }
    } catch (error) {
      this.#fail(error);
      rotated = false;
    }
    // After a failed rotation the old file is opened again and its size
    // forgotten, so that the next try comes after another maxBytes rather
    // than at every line.
    if (this.#open() && !rotated) this.#size = 0;
  }

  #release(): void {
    const file = this.#file;
    this.#file = undefined;
    try {
      file?.close();
    } catch {
      // The descriptor is gone either way.
    }
  }

  #fail(error: unknown): void {
    this.#errors++;
    this.#lastError = error instanceof Error ? error : new Error(String(error));
  }
}

function ensureDirectory(dir: string): void {
  try {
    if (Deno.statSync(dir).isDirectory) return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  Deno.chmodSync(dir, 0o700);
}

function renameIfPresent(from: string, to: string): void {
  try {
    Deno.renameSync(from, to);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

function removeIfPresent(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
