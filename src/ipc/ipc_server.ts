/**
 * The daemon's side of the IPC socket (`/run/amp/ampd.sock`): accepts
 * clients, reads their requests and runs one handler per request, several
 * at once on a connection and across connections (protocol in
 * `protocol.ts`).
 *
 * Access: the socket is mode 0600 in a directory created 0700, so only root
 * (the daemon's user) can connect. The socket is bound under a temporary
 * name in the same directory, with a umask of 0177, then chmod-ed and
 * renamed into place: the path never exists with a wider mode.
 *
 * Lifetimes: each request gets an `AbortSignal` that fires when its client
 * cancels it, when the client goes away (its connection reaches EOF or
 * fails) and when the server closes. A handler's later progress and result
 * are then dropped. Writes to one connection go out one line at a time, in
 * order; progress is dropped (never a result) while more than 1 MiB waits
 * for a slow client.
 *
 * @module
 */

import { basename, dirname } from "node:path";
import type { Logger } from "../log/logger.ts";
import { DaemonRunningError } from "./ipc_errors.ts";
import {
  encodeLine,
  IPC_ERROR,
  type IpcRequest,
  LineSplitter,
  LineTooLongError,
  MAX_REQUEST_BYTES,
  parseClientLine,
  PROTOCOL_VERSION,
} from "./protocol.ts";

export { DaemonRunningError };

/** What a handler gets besides its params. */
export interface IpcContext {
  /** Sends progress to the client before the result (dropped once the request is over). */
  progress(data: unknown): void;
  /** Fires when the client cancels or goes away, or the server closes. */
  readonly signal: AbortSignal;
}

/**
 * Answers one method. The resolved value is the result (it must be
 * JSON-serializable); a throw becomes an error reply whose code is the
 * error's `code` property when it has a string one, else `internal`.
 */
export type IpcHandler = (params: unknown, ctx: IpcContext) => Promise<unknown>;

/** Handlers by method name. */
export type IpcHandlers = Readonly<Record<string, IpcHandler>>;

/** Options of {@linkcode IpcServer.listen}. */
export interface IpcServerOptions {
  /** The socket path, such as `/run/amp/ampd.sock`. */
  path: string;
  /** Handlers by method name. */
  handlers: IpcHandlers;
  /** The longest request line read; 1 MiB by default. */
  maxRequestBytes?: number;
  /** Mode of the socket; 0600 by default. */
  socketMode?: number;
  /** Mode of the socket's directory when the server creates it; 0700 by default. */
  dirMode?: number;
  /** Where failures of handlers (with their stacks) and of the listener are logged. */
  logger?: Logger;
}

/** Progress waiting for a slow client beyond this is dropped. */
const MAX_QUEUED_BYTES = 1024 * 1024;
const READ_BUFFER_BYTES = 64 * 1024;

interface ServerState {
  handlers: IpcHandlers;
  maxRequestBytes: number;
  logger?: Logger;
}

/**
 * The IPC server.
 *
 * @example
 * ```ts
 * import { IpcClient } from "./ipc_client.ts";
 * import { IpcServer } from "./ipc_server.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const server = await IpcServer.listen({
 *   path: `${dir}/amp/ampd.sock`,
 *   handlers: {
 *     async scan(params, ctx) {
 *       ctx.progress({ files: 1 });
 *       return { params, detections: 0 };
 *     },
 *   },
 * });
 * const client = await IpcClient.connect(`${dir}/amp/ampd.sock`);
 * await client.request("scan", { paths: ["/tmp"] }, { onProgress: console.log });
 * await client.close();
 * await server.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class IpcServer {
  /** The socket path. */
  readonly path: string;
  readonly #listener: Deno.UnixListener;
  readonly #ino: number | null;
  readonly #state: ServerState;
  readonly #connections = new Set<Connection>();
  readonly #accepting: Promise<void>;
  #closing: Promise<void> | undefined;

  private constructor(
    path: string,
    listener: Deno.UnixListener,
    ino: number | null,
    state: ServerState,
  ) {
    this.path = path;
    this.#listener = listener;
    this.#ino = ino;
    this.#state = state;
    this.#accepting = this.#accept();
  }

  /**
   * Listens on `options.path`: creates the directory (0700) when missing,
   * replaces a stale socket (one that refuses connections: its daemon died),
   * and refuses to start when a live daemon answers there.
   *
   * @throws {DaemonRunningError} when another server answers on the path
   * @throws {Error} when the path is not a socket, or binding fails
   */
  static async listen(options: IpcServerOptions): Promise<IpcServer> {
    const { path } = options;
    const dir = dirname(path);
    await prepareDirectory(path, dir, options.dirMode ?? 0o700);
    await clearStaleSocket(path);

    const temp = `${dir}/.${basename(path)}.${Deno.pid}`;
    await removeIfPresent(temp);
    let listener: Deno.UnixListener;
    const umask = Deno.umask(0o177);
    try {
      listener = Deno.listen({ transport: "unix", path: temp });
    } catch (error) {
      throw new Error(`Cannot listen on ${path}: ${(error as Error).message}`, { cause: error });
    } finally {
      Deno.umask(umask);
    }
    let ino: number | null;
    try {
      await Deno.chmod(temp, options.socketMode ?? 0o600);
      ino = (await Deno.lstat(temp)).ino;
      await Deno.rename(temp, path);
    } catch (error) {
      listener.close();
      await removeIfPresent(temp);
      throw new Error(`Cannot listen on ${path}: ${(error as Error).message}`, { cause: error });
    }
    const state: ServerState = {
      handlers: options.handlers,
      maxRequestBytes: options.maxRequestBytes ?? MAX_REQUEST_BYTES,
    };
    if (options.logger) state.logger = options.logger;
    return new IpcServer(path, listener, ino, state);
  }

  /** Clients connected now. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Stops accepting, aborts every running handler's signal, closes the
   * connections and removes the socket file (if it is still this server's).
   * Does not wait for handlers that ignore their signal. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      try {
        this.#listener.close();
      } catch {
        // Already closed.
      }
      const reason = new DOMException("The amp daemon is stopping", "AbortError");
      const done = [...this.#connections].map((c) => {
        c.close(reason);
        return c.done;
      });
      await Promise.all([this.#accepting, ...done]);
      await this.#removeSocket();
    })();
    return this.#closing;
  }

  async #accept(): Promise<void> {
    while (!this.#closing) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) return;
        // EMFILE and the like: wait a little rather than spin or stop serving.
        this.#state.logger?.error("IPC accept failed", { path: this.path, error });
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      if (this.#closing) {
        conn.close();
        return;
      }
      const connection = new Connection(conn, this.#state);
      this.#connections.add(connection);
      connection.done.then(() => this.#connections.delete(connection));
    }
  }

  async #removeSocket(): Promise<void> {
    try {
      const stat = await Deno.lstat(this.path);
      if (stat.isSocket && stat.ino === this.#ino) await Deno.remove(this.path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        this.#state.logger?.warning("Cannot remove the IPC socket", { path: this.path, error });
      }
    }
  }
}

/** One client connection. */
class Connection {
  /** Settles when the connection is closed and its reader stopped. */
  readonly done: Promise<void>;
  readonly #conn: Deno.UnixConn;
  readonly #state: ServerState;
  readonly #requests = new Map<number, AbortController>();
  #writing: Promise<void> = Promise.resolve();
  #queuedBytes = 0;
  #closed = false;

  constructor(conn: Deno.UnixConn, state: ServerState) {
    this.#conn = conn;
    this.#state = state;
    this.done = this.#run();
  }

  /** Aborts the connection's requests and closes it. Safe to call twice. */
  close(reason: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const controller of this.#requests.values()) controller.abort(reason);
    this.#requests.clear();
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async #run(): Promise<void> {
    this.#send({
      type: "hello",
      version: PROTOCOL_VERSION,
      daemon: "amp",
      pid: Deno.pid,
      maxRequestBytes: this.#state.maxRequestBytes,
    });
    const splitter = new LineSplitter(this.#state.maxRequestBytes);
    const buffer = new Uint8Array(READ_BUFFER_BYTES);
    try {
      while (!this.#closed) {
        let n: number | null;
        try {
          n = await this.#conn.read(buffer);
        } catch {
          break; // Reset by the client, or closed by the server.
        }
        if (n === null) break;
        try {
          for (const line of splitter.push(buffer.subarray(0, n))) this.#dispatch(line);
        } catch (error) {
          // Only LineTooLongError comes from the splitter; the framing is lost either way.
          const limit = error instanceof LineTooLongError
            ? error.limit
            : this.#state.maxRequestBytes;
          this.#sendError(
            null,
            IPC_ERROR.LINE_TOO_LONG,
            `Request line is longer than ${limit} bytes`,
          );
          await this.#writing;
          break;
        }
      }
    } finally {
      this.close(new DOMException("The client went away", "AbortError"));
    }
  }

  #dispatch(line: string): void {
    const parsed = parseClientLine(line);
    if (!parsed.ok) {
      this.#sendError(null, IPC_ERROR.BAD_REQUEST, parsed.error);
      return;
    }
    const message = parsed.message;
    if ("cancel" in message) {
      this.#requests.get(message.cancel)?.abort(
        new DOMException("The client cancelled the request", "AbortError"),
      );
      return;
    }
    this.#handle(message);
  }

  async #handle(request: IpcRequest): Promise<void> {
    const { id, method } = request;
    if (this.#requests.has(id)) {
      this.#sendError(id, IPC_ERROR.DUPLICATE_ID, `Request id ${id} is already in use`);
      return;
    }
    const handlers = this.#state.handlers;
    const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
    if (!handler) {
      this.#sendError(id, IPC_ERROR.UNKNOWN_METHOD, `Unknown method: ${method}`);
      return;
    }
    const controller = new AbortController();
    this.#requests.set(id, controller);
    let over = false;
    const ctx: IpcContext = {
      signal: controller.signal,
      progress: (data) => {
        if (!over && !controller.signal.aborted) this.#send({ id, type: "progress", data }, true);
      },
    };
    try {
      const data = await handler(request.params, ctx);
      over = true;
      if (!this.#send({ id, type: "result", data })) {
        this.#sendError(id, IPC_ERROR.INTERNAL, `The result of ${method} cannot be sent as JSON`);
      }
    } catch (error) {
      over = true;
      const code = errorCode(error);
      if (code === IPC_ERROR.INTERNAL && !controller.signal.aborted) {
        this.#state.logger?.error("IPC request failed", {
          method,
          error,
          stack: error instanceof Error ? error.stack : undefined,
        });
      }
      this.#sendError(id, code, error instanceof Error ? error.message : String(error));
    } finally {
      if (this.#requests.get(id) === controller) this.#requests.delete(id);
    }
  }

  #sendError(id: number | null, code: string, message: string): void {
    this.#send({ id, type: "error", error: { code, message } });
  }

  /**
   * Queues one message; returns false if it cannot be written as JSON.
   * `droppable` (progress) messages are dropped while the queue is full.
   */
  #send(message: unknown, droppable = false): boolean {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = encodeLine(message);
    } catch {
      return false;
    }
    if (this.#closed) return true;
    if (droppable && this.#queuedBytes > MAX_QUEUED_BYTES) return true;
    this.#queuedBytes += bytes.length;
    this.#writing = this.#writing.then(async () => {
      try {
        let done = 0;
        while (done < bytes.length && !this.#closed) {
          done += await this.#conn.write(bytes.subarray(done));
        }
      } catch {
        this.close(new DOMException("The client went away", "AbortError"));
      } finally {
        this.#queuedBytes -= bytes.length;
      }
    });
    return true;
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code !== "" ? code : IPC_ERROR.INTERNAL;
}

async function prepareDirectory(path: string, dir: string, mode: number): Promise<void> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new Error(`Cannot listen on ${path}: ${(error as Error).message}`, { cause: error });
    }
    await Deno.mkdir(dir, { recursive: true, mode });
    await Deno.chmod(dir, mode);
    return;
  }
  if (!stat.isDirectory) throw new Error(`Cannot listen on ${path}: ${dir} is not a directory`);
}

/** Removes a socket nobody answers on; throws if a server answers or it is not a socket. */
async function clearStaleSocket(path: string): Promise<void> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!stat.isSocket) {
    throw new Error(`Cannot listen on ${path}: it exists and is not a socket`);
  }
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound) {
      await removeIfPresent(path);
      return;
    }
    throw new Error(`Cannot listen on ${path}: ${(error as Error).message}`, { cause: error });
  }
  throw new DaemonRunningError(path);
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
