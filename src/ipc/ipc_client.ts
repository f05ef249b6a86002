/**
 * The client side of the IPC socket, for `amp status`, `amp scan` and the
 * other commands that talk to the daemon (protocol in `protocol.ts`).
 *
 * Failures come out as errors a command can show as they are:
 * {@linkcode DaemonUnavailableError} (no daemon), {@linkcode DaemonAccessError}
 * (not root), {@linkcode DaemonRequestError} (the daemon said no, with a
 * code) and {@linkcode DaemonProtocolError} (something else answers).
 *
 * @module
 */

import {
  DaemonAccessError,
  DaemonProtocolError,
  DaemonRequestError,
  DaemonUnavailableError,
} from "./ipc_errors.ts";
import {
  DEFAULT_SOCKET_PATH,
  encodeLine,
  type IpcHello,
  type IpcServerMessage,
  LineSplitter,
  LineTooLongError,
  MAX_REPLY_BYTES,
  parseServerLine,
  PROTOCOL_VERSION,
} from "./protocol.ts";

export { DaemonAccessError, DaemonProtocolError, DaemonRequestError, DaemonUnavailableError };

/** Options of {@linkcode IpcClient.connect}. */
export interface IpcConnectOptions {
  /** How long to wait for the daemon's hello; 5000 ms by default. */
  timeoutMs?: number;
  /** The longest reply line read; 64 MiB by default. */
  maxReplyBytes?: number;
}

/** Options of {@linkcode IpcClient.request}. */
export interface IpcRequestOptions {
  /** Called with each progress message, in order, before the result. */
  onProgress?: (data: unknown) => void;
  /** Aborting rejects the request with the signal's reason and asks the daemon to cancel it. */
  signal?: AbortSignal;
}

interface Pending {
  resolve(data: unknown): void;
  reject(error: unknown): void;
  onProgress?: (data: unknown) => void;
}

const DEFAULT_TIMEOUT_MS = 5000;
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * A connection to the amp daemon. Several requests may be in flight at once.
 *
 * @example
 * ```ts
 * import { DaemonUnavailableError, IpcClient } from "./ipc_client.ts";
 *
 * try {
 *   const client = await IpcClient.connect("/run/amp/ampd.sock");
 *   try {
 *     console.log(await client.request("status"));
 *   } finally {
 *     await client.close();
 *   }
 * } catch (error) {
 *   if (!(error instanceof DaemonUnavailableError)) throw error;
 *   console.error(error.message); // amp daemon is not running (no /run/amp/ampd.sock)
 * }
 * ```
 */
export class IpcClient {
  /** The socket path. */
  readonly path: string;
  /** The daemon's hello: protocol version, pid, request size bound. */
  readonly hello: IpcHello;
  readonly #conn: Deno.UnixConn;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  readonly #reading: Promise<void>;
  #writing: Promise<void> = Promise.resolve();
  #failure: Error | undefined;

  private constructor(path: string, conn: Deno.UnixConn, hello: IpcHello, reader: LineReader) {
    this.path = path;
    this.#conn = conn;
    this.hello = hello;
    this.#reading = this.#read(reader);
  }

  /**
   * Connects to the daemon and waits for its hello.
   *
   * @param path the socket; `/run/amp/ampd.sock` by default
   * @param options hello timeout and reply size bound
   * @throws {DaemonUnavailableError} no socket, a dead daemon, or no hello in time
   * @throws {DaemonAccessError} the socket or its directory is not open to this user
   * @throws {DaemonProtocolError} the other end is not an amp daemon of this protocol version
   */
  static async connect(
    path: string = DEFAULT_SOCKET_PATH,
    options: IpcConnectOptions = {},
  ): Promise<IpcClient> {
    let conn: Deno.UnixConn;
    try {
      conn = await Deno.connect({ transport: "unix", path });
    } catch (error) {
      throw connectError(path, error);
    }
    const reader = new LineReader(conn, options.maxReplyBytes ?? MAX_REPLY_BYTES);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let line: string | null;
    try {
      line = await Promise.race([
        reader.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new DaemonUnavailableError(
                  `amp daemon did not answer on ${path} within ${timeoutMs} ms`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } catch (error) {
      conn.close();
      if (error instanceof DaemonUnavailableError) throw error;
      throw new DaemonUnavailableError(
        `Lost the connection to the amp daemon on ${path}: ${(error as Error).message}`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    const hello = checkHello(path, line);
    if (hello instanceof Error) {
      conn.close();
      throw hello;
    }
    return new IpcClient(path, conn, hello, reader);
  }

  /**
   * Sends a request and waits for its result.
   *
   * @param method the method name, such as `status`
   * @param params its parameters (JSON)
   * @param options progress callback and abort signal
   * @returns the daemon's result
   * @throws {DaemonRequestError} the daemon answered with an error
   * @throws {DaemonUnavailableError} the connection was lost first
   */
  request(method: string, params?: unknown, options: IpcRequestOptions = {}): Promise<unknown> {
    if (this.#failure) return Promise.reject(this.#failure);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const id = this.#nextId++;
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = encodeLine(params === undefined ? { id, method } : { id, method, params });
    } catch (error) {
      return Promise.reject(
        new TypeError(`The params of ${method} cannot be sent as JSON`, { cause: error }),
      );
    }
    if (bytes.length - 1 > this.hello.maxRequestBytes) {
      return Promise.reject(
        new DaemonRequestError(
          "request-too-large",
          `The ${method} request is larger than the daemon accepts (${this.hello.maxRequestBytes} bytes)`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.#pending.delete(id)) return;
        this.#write(encodeLine({ cancel: id }));
        reject(signal?.reason);
      };
      const done = () => signal?.removeEventListener("abort", onAbort);
      const pending: Pending = {
        resolve: (data) => {
          done();
          resolve(data);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      };
      if (options.onProgress) pending.onProgress = options.onProgress;
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, pending);
      this.#write(bytes);
    });
  }

  /**
   * Closes the connection; requests still waiting are rejected. The promise
   * settles once the connection's reader has stopped. Safe to call twice.
   */
  close(): Promise<void> {
    this.#fail(new Error("The IPC client was closed"));
    return this.#reading;
  }

  async #read(reader: LineReader): Promise<void> {
    let failure: Error;
    try {
      for (;;) {
        const line = await reader.next();
        if (line === null) {
          failure = new DaemonUnavailableError("amp daemon closed the connection");
          break;
        }
        const parsed = parseServerLine(line);
        if (!parsed.ok) {
          failure = new DaemonProtocolError(
            `Unexpected message from the amp daemon: ${parsed.error}`,
          );
          break;
        }
        this.#deliver(parsed.message);
      }
    } catch (error) {
      failure = error instanceof LineTooLongError
        ? new DaemonProtocolError(`Reply from the amp daemon is longer than ${error.limit} bytes`)
        : new DaemonUnavailableError(
          `Lost the connection to the amp daemon: ${(error as Error).message}`,
          { cause: error },
        );
    }
    this.#fail(failure);
  }

  #deliver(message: IpcServerMessage): void {
    if (message.type === "hello") return;
    if (message.id === null) {
      // About a line the daemon could not read: not tied to one request.
      if (message.type === "error") {
        this.#fail(new DaemonRequestError(message.error.code, message.error.message));
      }
      return;
    }
    const pending = this.#pending.get(message.id);
    if (!pending) return; // Cancelled, or not ours.
    switch (message.type) {
      case "progress":
        try {
          pending.onProgress?.(message.data);
        } catch (error) {
          this.#pending.delete(message.id);
          this.#write(encodeLine({ cancel: message.id }));
          pending.reject(error);
        }
        return;
      case "result":
        this.#pending.delete(message.id);
        pending.resolve(message.data);
        return;
      case "error":
        this.#pending.delete(message.id);
        pending.reject(new DaemonRequestError(message.error.code, message.error.message));
        return;
    }
  }

  #write(bytes: Uint8Array<ArrayBuffer>): void {
    this.#writing = this.#writing.then(async () => {
      if (this.#failure) return;
      try {
        let done = 0;
        while (done < bytes.length) done += await this.#conn.write(bytes.subarray(done));
      } catch (error) {
        this.#fail(
          new DaemonUnavailableError(
            `Lost the connection to the amp daemon: ${(error as Error).message}`,
            { cause: error },
          ),
        );
      }
    });
  }

  /** Ends the connection once: every waiting request is rejected with `error`. */
  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(error);
  }
}

/** Reads lines from a connection, keeping those that arrived together. */
class LineReader {
  readonly #conn: Deno.UnixConn;
  readonly #splitter: LineSplitter;
  readonly #buffer = new Uint8Array(READ_BUFFER_BYTES);
  readonly #lines: string[] = [];

  constructor(conn: Deno.UnixConn, maxBytes: number) {
    this.#conn = conn;
    this.#splitter = new LineSplitter(maxBytes);
  }

  /** The next line, or null at the end of the stream. */
  async next(): Promise<string | null> {
    while (this.#lines.length === 0) {
      const n = await this.#conn.read(this.#buffer);
      if (n === null) return null;
      for (const line of this.#splitter.push(this.#buffer.subarray(0, n))) this.#lines.push(line);
    }
    return this.#lines.shift()!;
  }
}

function checkHello(path: string, line: string | null): IpcHello | Error {
  if (line === null) {
    return new DaemonUnavailableError(`amp daemon closed the connection on ${path}`);
  }
  const parsed = parseServerLine(line);
  if (!parsed.ok || parsed.message.type !== "hello") {
    return new DaemonProtocolError(`${path} does not answer as an amp daemon`);
  }
  const hello = parsed.message;
  if (hello.version !== PROTOCOL_VERSION) {
    return new DaemonProtocolError(
      `amp daemon on ${path} speaks protocol version ${hello.version}; this amp speaks ` +
        `${PROTOCOL_VERSION}: restart the daemon after upgrading amp`,
    );
  }
  return hello;
}

function connectError(path: string, error: unknown): Error {
  const options = { cause: error };
  if (error instanceof Deno.errors.NotFound) {
    return new DaemonUnavailableError(`amp daemon is not running (no ${path})`, options);
  }
  if (error instanceof Deno.errors.ConnectionRefused) {
    return new DaemonUnavailableError(
      `amp daemon is not running (${path} refuses connections)`,
      options,
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new DaemonAccessError(`Permission denied: ${path} is root-only; run as root`, options);
  }
  if (error instanceof Deno.errors.NotCapable) return error;
  return new DaemonUnavailableError(
    `Cannot connect to the amp daemon on ${path}: ${(error as Error).message}`,
    options,
  );
}
