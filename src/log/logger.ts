/**
 * amp's logger: records filtered by a minimum level and handed to sinks (a
 * file, syslog, stderr), each behind the one-method {@linkcode LogSink}
 * interface and chosen where the program starts.
 *
 * Logging never throws into the code that logs: a sink that throws is
 * counted ({@linkcode Logger.sinkErrors}) and the other sinks still get the
 * record.
 *
 * @module
 */

/** The levels, most severe first (the syslog severities amp uses). */
export const LOG_LEVELS = ["error", "warning", "notice", "info", "debug"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Extra facts of a record, shown as `key=value` after the message. */
export type LogFields = Record<string, unknown>;

/** One thing logged. */
export interface LogRecord {
  /** When it was logged. */
  time: Date;
  level: LogLevel;
  message: string;
  fields?: LogFields;
}

/** Where records go: one implementation per file in `src/log/`. */
export interface LogSink {
  /** Writes one record; should not throw (the logger counts it if it does). */
  write(record: LogRecord): void;
  /** Releases the sink; safe to call twice. */
  close(): void;
  /** Settles once every record written so far has left the process (sinks that queue). */
  flush?(): Promise<void>;
}

/** Whether `value` names a log level. */
export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === "string" && (LOG_LEVELS as readonly string[]).includes(value);
}

/** Options of the {@linkcode Logger} constructor. */
export interface LoggerOptions {
  /** Least severe level reported; `notice` by default. */
  level?: LogLevel;
  /** The clock; `() => new Date()` by default. */
  now?: () => Date;
}

/**
 * Records messages at five levels to a set of sinks.
 *
 * @example
 * ```ts
 * import { Logger, type LogRecord } from "./logger.ts";
 *
 * const seen: LogRecord[] = [];
 * const log = new Logger([{ write: (r) => seen.push(r), close() {} }], { level: "info" });
 * log.info("Scan started", { paths: 2 });
 * log.debug("not shown"); // below the level
 * // seen.length === 1
 * ```
 */
export class Logger {
  #sinks: LogSink[];
  #rank: number;
  #now: () => Date;
  #sinkErrors = 0;
  #closed = false;

  /**
   * @param sinks where records go (more can be added with {@linkcode Logger.addSink})
   * @param options the minimum level and the clock
   */
  constructor(sinks: readonly LogSink[] = [], options: LoggerOptions = {}) {
    this.#sinks = [...sinks];
    this.#rank = rankOf(options.level ?? "notice");
    this.#now = options.now ?? (() => new Date());
  }

  /** The least severe level reported. */
  get level(): LogLevel {
    return LOG_LEVELS[this.#rank];
  }

  /** How many times a sink threw (the record still went to the other sinks). */
  get sinkErrors(): number {
    return this.#sinkErrors;
  }

  /**
   * Changes the minimum level and records the change at `notice`, whatever the
   * new level (a log that goes quiet says why).
   *
   * @param level the least severe level to report from now on
   */
  setLevel(level: LogLevel): void {
    this.#rank = rankOf(level);
    this.#emit("notice", `Set minimum reported log level to ${level}`);
  }

  /** Whether a record at `level` would be reported (to skip building costly fields). */
  enabled(level: LogLevel): boolean {
    return rankOf(level) <= this.#rank;
  }

  /** Adds a sink, such as the log file once the configuration is read. */
  addSink(sink: LogSink): void {
    this.#sinks.push(sink);
  }

  /** Logs at `level` if it is enabled. */
  log(level: LogLevel, message: string, fields?: LogFields): void {
    if (this.enabled(level)) this.#emit(level, message, fields);
  }

  /** Something failed: an operation did not happen. */
  error(message: string, fields?: LogFields): void {
    this.log("error", message, fields);
  }

  /** Something is wrong but amp carries on. */
  warning(message: string, fields?: LogFields): void {
    this.log("warning", message, fields);
  }

  /** A normal but significant event (start, stop, policy change, detection). */
  notice(message: string, fields?: LogFields): void {
    this.log("notice", message, fields);
  }

  /** Routine progress. */
  info(message: string, fields?: LogFields): void {
    this.log("info", message, fields);
  }

  /** Details for developers. */
  debug(message: string, fields?: LogFields): void {
    this.log("debug", message, fields);
  }

  /** Waits until the sinks that queue records have sent them. */
  async flush(): Promise<void> {
    await Promise.all(this.#sinks.map(async (sink) => {
      try {
        await sink.flush?.();
      } catch {
        this.#sinkErrors++;
      }
    }));
  }

  /** Flushes and closes every sink; later records are dropped. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.flush();
    for (const sink of this.#sinks) {
      try {
        sink.close();
      } catch {
        this.#sinkErrors++;
      }
    }
    this.#sinks = [];
  }

  #emit(level: LogLevel, message: string, fields?: LogFields): void {
    const record: LogRecord = { time: this.#now(), level, message };
    if (fields !== undefined) record.fields = fields;
    for (const sink of this.#sinks) {
      try {
        sink.write(record);
      } catch {
        this.#sinkErrors++;
      }
    }
  }
}

function rankOf(level: LogLevel): number {
  const rank = LOG_LEVELS.indexOf(level);
  if (rank < 0) throw new TypeError(`Unknown log level: ${level}`);
  return rank;
}
