/**
 * Records to syslog through glibc (`openlog(ident, LOG_PID | LOG_NDELAY,
 * LOG_DAEMON)`, then `syslog(priority, "%s", text)`), levels mapped to the
 * syslog severities of the same names (`error` → `LOG_ERR`).
 *
 * glibc's `syslog` blocks when the syslog daemon stops reading `/dev/log`, so
 * each call runs off the JS thread, one at a time so that order is kept. At
 * most `maxQueue` records wait; past that a record is dropped and counted
 * ({@linkcode SyslogSink.dropped}) rather than let memory grow.
 *
 * @module
 */

import {
  closelog,
  LOG_FACILITY,
  LOG_OPTION,
  LOG_PRIORITY,
  openlog,
  syslog,
} from "../sys/syslog.ts";
import { formatLogText } from "./log_line.ts";
import type { LogLevel, LogRecord, LogSink } from "./logger.ts";

/** The syslog calls the sink needs (the real ones are in `src/sys/syslog.ts`). */
export interface SyslogPort {
  /** `openlog(ident, option, facility)`. */
  openlog(ident: string, options: { option: number; facility: number }): void;
  /** `syslog(priority, "%s", message)`. */
  syslog(priority: number, message: string): Promise<void>;
  /** `closelog()`. */
  closelog(): void;
}

/** Options of {@linkcode SyslogSink}. */
export interface SyslogSinkOptions {
  /** The ident shown before `[pid]`; `amp` by default. */
  ident?: string;
  /** A `LOG_FACILITY` value; `DAEMON` by default. */
  facility?: number;
  /** Records that may wait for syslog before new ones are dropped; 1000 by default. */
  maxQueue?: number;
  /** The syslog calls; glibc's by default. */
  port?: SyslogPort;
}

const SEVERITIES: Record<LogLevel, number> = {
  error: LOG_PRIORITY.ERR,
  warning: LOG_PRIORITY.WARNING,
  notice: LOG_PRIORITY.NOTICE,
  info: LOG_PRIORITY.INFO,
  debug: LOG_PRIORITY.DEBUG,
};

/** The syslog severity of a level (`notice` → `LOG_NOTICE`, 5). */
export function syslogSeverity(level: LogLevel): number {
  return SEVERITIES[level];
}

const glibc: SyslogPort = { openlog, syslog, closelog };

/**
 * Sends records to syslog as `level: message key=value`; syslog adds the
 * time, host and `amp[pid]`.
 *
 * @example
 * ```ts
 * import { Logger } from "./logger.ts";
 * import { SyslogSink } from "./syslog_sink.ts";
 *
 * const log = new Logger([new SyslogSink({ ident: "amp" })]);
 * log.notice("Connector started");
 * await log.close(); // waits until syslog has the record
 * ```
 */
export class SyslogSink implements LogSink {
  readonly #port: SyslogPort;
  readonly #maxQueue: number;
  readonly #queue: { priority: number; text: string }[] = [];
  #running: Promise<void> | undefined;
  #dropped = 0;
  #errors = 0;
  #closed = false;
  #released = false;

  /** Calls `openlog` at once. @param options ident, facility, queue bound */
  constructor(options: SyslogSinkOptions = {}) {
    this.#port = options.port ?? glibc;
    this.#maxQueue = options.maxQueue ?? 1000;
    this.#port.openlog(options.ident ?? "amp", {
      option: LOG_OPTION.PID | LOG_OPTION.NDELAY,
      facility: options.facility ?? LOG_FACILITY.DAEMON,
    });
  }

  /** Records dropped because too many were waiting. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Calls to syslog that failed. */
  get errors(): number {
    return this.#errors;
  }

  /** Queues one record for syslog. */
  write(record: LogRecord): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#maxQueue) {
      this.#dropped++;
      return;
    }
    this.#queue.push({ priority: syslogSeverity(record.level), text: formatLogText(record) });
    this.#pump();
  }

  /** Settles once every queued record has been handed to syslog. */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Stops taking records; `closelog` is called once the queued ones are sent.
   * Safe to call twice.
   */
  close(): void {
    this.#closed = true;
    if (!this.#running) this.#release();
  }

  #pump(): void {
    if (this.#running) return;
    this.#running = (async () => {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        try {
          await this.#port.syslog(next.priority, next.text);
        } catch {
          this.#errors++;
        }
      }
      this.#running = undefined;
      if (this.#closed) this.#release();
    })();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#port.closelog();
  }
}
