/**
 * The IPC protocol between `amp daemon` and its clients (`amp status`,
 * `amp scan` through the daemon, …) on the unix stream socket
 * `/run/amp/ampd.sock`.
 *
 * Framing: JSON lines. Every message is one JSON object followed by `\n`
 * (JSON never contains a raw newline). A line may not exceed a bound (1 MiB
 * for requests, by default); the reader stops with
 * {@linkcode LineTooLongError} instead of buffering without end.
 *
 * Conversation:
 * 1. On connect the server sends a hello:
 *    `{"type":"hello","version":1,"daemon":"amp","pid":4242,"maxRequestBytes":1048576}`.
 *    `version` is {@linkcode PROTOCOL_VERSION}; it changes only when a message
 *    changes meaning. Fields added to a message do not change it, so readers
 *    ignore fields they do not know. A client that does not speak the
 *    server's version stops there.
 * 2. The client sends requests `{"id":1,"method":"status","params":{…}}`,
 *    as many as it likes without waiting; `id` is the client's choice,
 *    unique among its requests in flight.
 * 3. For each request the server sends any number of
 *    `{"id":1,"type":"progress","data":…}`, then exactly one of
 *    `{"id":1,"type":"result","data":…}` or
 *    `{"id":1,"type":"error","error":{"code":"unknown-method","message":"…"}}`.
 *    Replies to different requests may interleave.
 * 4. `{"cancel":1}` asks the server to abort request 1 (its handler's
 *    signal fires); the client stops waiting at once and ignores any later
 *    reply with that id.
 * 5. A line the server cannot read as a request gets an error with
 *    `"id":null` (`bad-request`); a line over the bound gets `line-too-long`
 *    and the connection is closed (its framing is lost).
 *
 * Closing the connection aborts every request still running on it: clients
 * keep their end open until they have their results.
 *
 * @module
 */

import { z } from "zod";

/** The protocol version this amp speaks. */
export const PROTOCOL_VERSION = 1;

/** Where the daemon listens (below `--root`). */
export const DEFAULT_SOCKET_PATH = "/run/amp/ampd.sock";

/** The longest request line the server reads by default: 1 MiB. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/** The longest reply line a client reads by default: 64 MiB. */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024;

/** Error codes the server itself sends (handlers may send their own). */
export const IPC_ERROR = {
  /** No handler has this method name. */
  UNKNOWN_METHOD: "unknown-method",
  /** The handler failed without a `code` of its own. */
  INTERNAL: "internal",
  /** The line is not JSON or not a request. */
  BAD_REQUEST: "bad-request",
  /** The line is over the server's bound. */
  LINE_TOO_LONG: "line-too-long",
  /** The id is already used by a request in flight on this connection. */
  DUPLICATE_ID: "duplicate-id",
} as const;

const id = z.number().int().nonnegative();

/** A client's request. */
export const IpcRequestSchema = z.object({
  id,
  method: z.string().min(1),
  params: z.unknown().optional(),
});

/** A client's request to abort one of its requests. */
export const IpcCancelSchema = z.object({ cancel: id });

/** What a client sends. */
export const IpcClientMessageSchema = z.union([IpcRequestSchema, IpcCancelSchema]);

/** The server's first message on every connection. */
export const IpcHelloSchema = z.object({
  type: z.literal("hello"),
  version: z.number().int(),
  daemon: z.string(),
  pid: z.number().int(),
  maxRequestBytes: z.number().int().positive(),
});

/** Progress of a request, sent before its result. */
export const IpcProgressSchema = z.object({
  id,
  type: z.literal("progress"),
  data: z.unknown(),
});

/** The result of a request. */
export const IpcResultSchema = z.object({
  id,
  type: z.literal("result"),
  data: z.unknown(),
});

/** A failed request (`id`), or a line that was not one (`id: null`). */
export const IpcErrorSchema = z.object({
  id: id.nullable(),
  type: z.literal("error"),
  error: z.object({ code: z.string(), message: z.string() }),
});

/** What the server sends. */
export const IpcServerMessageSchema = z.discriminatedUnion("type", [
  IpcHelloSchema,
  IpcProgressSchema,
  IpcResultSchema,
  IpcErrorSchema,
]);

/** A request. */
export type IpcRequest = z.infer<typeof IpcRequestSchema>;
/** A cancellation. */
export type IpcCancel = z.infer<typeof IpcCancelSchema>;
/** A message from client to server. */
export type IpcClientMessage = z.infer<typeof IpcClientMessageSchema>;
/** The hello. */
export type IpcHello = z.infer<typeof IpcHelloSchema>;
/** A message from server to client. */
export type IpcServerMessage = z.infer<typeof IpcServerMessageSchema>;

/** A line longer than the reader's bound. */
export class LineTooLongError extends Error {
  /** The bound, in bytes. */
  readonly limit: number;

  /** @param limit the bound that was passed */
  constructor(limit: number) {
    super(`Line longer than ${limit} bytes`);
    this.name = "LineTooLongError";
    this.limit = limit;
  }
}

const encoder = new TextEncoder();

/**
 * One message as a line: JSON and `\n`. Throws `TypeError` for what JSON
 * cannot hold (a bigint, a cycle).
 */
export function encodeLine(message: unknown): Uint8Array<ArrayBuffer> {
  const json = JSON.stringify(message);
  if (json === undefined) throw new TypeError("Message cannot be written as JSON");
  return encoder.encode(`${json}\n`);
}

/**
 * Splits a byte stream into lines of at most `maxBytes` bytes (without the
 * `\n`; a `\r` before it is dropped, empty lines are skipped). Holds at most
 * `maxBytes` bytes of an unfinished line.
 *
 * @example
 * ```ts
 * import { LineSplitter } from "./protocol.ts";
 * const lines = new LineSplitter(1024);
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * [...lines.push(bytes('{"id":1}\n{"id"'))]; // ['{"id":1}']
 * [...lines.push(bytes(':2}\n'))]; // ['{"id":2}']
 * ```
 */
export class LineSplitter {
  readonly #maxBytes: number;
  readonly #decoder = new TextDecoder();
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  /** @param maxBytes the longest line accepted */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes held of a line not yet ended. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Adds bytes and yields the lines they complete. Throws
   * {@linkcode LineTooLongError} when a line passes the bound, after yielding
   * the lines before it.
   */
  *push(chunk: Uint8Array): Generator<string> {
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(0x0a, start);
      if (end < 0) break;
      const length = this.#pendingBytes + end - start;
      if (length > this.#maxBytes) throw new LineTooLongError(this.#maxBytes);
      const line = this.#take(chunk.subarray(start, end));
      start = end + 1;
      if (line !== "") yield line;
    }
    if (start < chunk.length) {
      if (this.#pendingBytes + chunk.length - start > this.#maxBytes) {
        throw new LineTooLongError(this.#maxBytes);
      }
      this.#pending.push(chunk.slice(start));
      this.#pendingBytes += chunk.length - start;
    }
  }

  #take(tail: Uint8Array): string {
    let bytes = tail;
    if (this.#pending.length > 0) {
      bytes = new Uint8Array(this.#pendingBytes + tail.length);
      let at = 0;
      for (const part of this.#pending) {
        bytes.set(part, at);
        at += part.length;
      }
      bytes.set(tail, at);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    return this.#decoder.decode(bytes);
  }
}

/**
 * Parses one line from a client: a request, a cancellation, or a
 * description of what is wrong with it.
 */
export function parseClientLine(
  line: string,
): { ok: true; message: IpcClientMessage } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (error) {
    return { ok: false, error: `Not JSON: ${(error as Error).message}` };
  }
  const parsed = IpcClientMessageSchema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, error: `Not a request: ${z.prettifyError(parsed.error)}` };
  }
  return { ok: true, message: parsed.data };
}

/** Parses one line from the server, or describes what is wrong with it. */
export function parseServerLine(
  line: string,
): { ok: true; message: IpcServerMessage } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (error) {
    return { ok: false, error: `Not JSON: ${(error as Error).message}` };
  }
  const parsed = IpcServerMessageSchema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, error: `Not a server message: ${z.prettifyError(parsed.error)}` };
  }
  return { ok: true, message: parsed.data };
}
