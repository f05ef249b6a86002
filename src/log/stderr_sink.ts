/**
 * Records on standard error, one line each: for `amp daemon` run in a
 * terminal, or under systemd, whose journal stores stderr.
 *
 * Under systemd (`JOURNAL_STREAM` set) each line starts with the sd-daemon
 * priority prefix (`<5>notice: Connector started`), so the journal files it
 * at the right priority and adds its own time and host. Elsewhere the line is
 * the log-file line (`Nov 26 13:01:02 web1 amp[4242]: notice: Connector
 * started`).
 *
 * @module
 */

import { formatLogLine, formatLogText, localHostname, type LogTimeFormat } from "./log_line.ts";
import type { LogRecord, LogSink } from "./logger.ts";
import { syslogSeverity } from "./syslog_sink.ts";

/** `line`: the full log-file line; `journal`: `<N>` priority prefix and the text. */
export type StderrStyle = "line" | "journal";

/** Where the lines go: `Deno.stderr` by default. */
export interface SyncWriter {
  /** Writes some of `p`, returning how many bytes were written. */
  writeSync(p: Uint8Array): number;
}

/** Options of {@linkcode StderrSink}. */
export interface StderrSinkOptions {
  /** `journal` when `JOURNAL_STREAM` is set (systemd), `line` otherwise. */
  style?: StderrStyle;
  /** The output; `Deno.stderr` by default. */
  writer?: SyncWriter;
  /** Program name in `line` style; `amp` by default. */
  ident?: string;
  /** Host name in `line` style; `Deno.hostname()` by default. */
  host?: string;
  /** Process id in `line` style; `Deno.pid` by default. */
  pid?: number;
  /** Time format in `line` style; `syslog` by default. */
  timeFormat?: LogTimeFormat;
}

const encoder = new TextEncoder();

/**
 * Writes each record as one line on stderr. A write that fails (stderr
 * closed) is counted in {@linkcode StderrSink.errors}, never thrown.
 *
 * @example
 * ```ts
 * import { Logger } from "./logger.ts";
 * import { StderrSink } from "./stderr_sink.ts";
 *
 * const log = new Logger([new StderrSink({ style: "journal" })]);
 * log.warning("Signature directory is empty"); // stderr: <4>warning: Signature directory is empty
 * ```
 */
export class StderrSink implements LogSink {
  readonly #style: StderrStyle;
  readonly #writer: SyncWriter;
  readonly #line: { ident: string; host: string; pid: number; timeFormat: LogTimeFormat };
  #errors = 0;
  #closed = false;

  /** @param options style, output and what each line says */
  constructor(options: StderrSinkOptions = {}) {
    this.#style = options.style ?? (Deno.env.get("JOURNAL_STREAM") ? "journal" : "line");
    this.#writer = options.writer ?? Deno.stderr;
    this.#line = {
      ident: options.ident ?? "amp",
      host: options.host ?? localHostname(),
      pid: options.pid ?? Deno.pid,
      timeFormat: options.timeFormat ?? "syslog",
    };
  }

  /** How many writes failed. */
  get errors(): number {
    return this.#errors;
  }

  /** Writes one line. */
  write(record: LogRecord): void {
    if (this.#closed) return;
    const text = this.#style === "journal"
      ? `<${syslogSeverity(record.level)}>${formatLogText(record)}`
      : formatLogLine(record, this.#line);
    const bytes = encoder.encode(`${text}\n`);
    try {
      let done = 0;
      while (done < bytes.length) done += this.#writer.writeSync(bytes.subarray(done));
    } catch {
      this.#errors++;
    }
  }

  /** Stops writing (stderr itself stays open). Safe to call twice. */
  close(): void {
    this.#closed = true;
  }
}
