/**
 * The log of install, uninstall, disable and enable:
 * `/var/log/amp/ampinstaller.log`. Lines written before the log directory
 * exists (the checks, "executing pre") wait in memory and go to the file
 * once it can be opened, so that a refused install leaves no trace on disk
 * and a completed one has every step in its log. A dry run logs nothing.
 *
 * @module
 */

import { FileSink } from "../log/file_sink.ts";
import { Logger, type LogRecord, type LogSink } from "../log/logger.ts";

/** A sink that holds records until it is given a file. */
class PendingFileSink implements LogSink {
  #pending: LogRecord[] = [];
  #file: FileSink | undefined;
  #closed = false;

  write(record: LogRecord): void {
    if (this.#closed) return;
    if (this.#file) this.#file.write(record);
    else this.#pending.push(record);
  }

  open(path: string): void {
    if (this.#file || this.#closed) return;
    this.#file = new FileSink(path, { ident: "ampinstaller" });
    for (const record of this.#pending) this.#file.write(record);
    this.#pending = [];
  }

  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#file?.close();
  }
}

/** The installer's logger and its file, opened when the directory is there. */
export class InstallerLog {
  /** Log through this. */
  readonly logger: Logger;
  readonly #sink = new PendingFileSink();
  readonly #path: string | undefined;

  /**
   * @param path the log file (real path), or undefined to log nothing (dry run)
   */
  constructor(path: string | undefined) {
    this.#path = path;
    this.logger = new Logger(path === undefined ? [] : [this.#sink], { level: "info" });
  }

  /** Starts writing to the file (creating it 0600), with what was logged so far. */
  open(): void {
    if (this.#path !== undefined) this.#sink.open(this.#path);
  }

  /** Closes the file; lines not yet written (the file was never opened) are dropped. */
  async close(): Promise<void> {
    await this.logger.close();
  }
}
