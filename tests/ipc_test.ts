/**
 * The IPC server and client over real unix sockets: requests, progress,
 * concurrency, errors, cancellation, stale and live sockets, bounds, modes,
 * and (as root) a client of another user refused by the socket's mode.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Logger, type LogRecord } from "../src/log/logger.ts";
import {
  DaemonAccessError,
  DaemonProtocolError,
  DaemonRequestError,
  DaemonUnavailableError,
  IpcClient,
} from "../src/ipc/ipc_client.ts";
import { DaemonRunningError } from "../src/ipc/ipc_errors.ts";
import { type IpcHandlers, IpcServer, type IpcServerOptions } from "../src/ipc/ipc_server.ts";
import { LineSplitter, PROTOCOL_VERSION } from "../src/ipc/protocol.ts";
import { IN_CI } from "./fixtures/native.ts";

/** The ping handler most tests serve. */
const pong = () => Promise.resolve("pong");

const PROBE = fileURLToPath(new URL("./fixtures/ipc_probe.ts", import.meta.url));

interface World {
  dir: string;
  path: string;
}

async function withDir(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-ipc-" });
  try {
    await fn({ dir, path: `${dir}/run/amp/ampd.sock` });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function withServer(
  handlers: IpcHandlers,
  fn: (server: IpcServer, w: World) => Promise<void>,
  options: Partial<IpcServerOptions> = {},
): Promise<void> {
  await withDir(async (w) => {
    const server = await IpcServer.listen({ path: w.path, handlers, ...options });
    try {
      await fn(server, w);
    } finally {
      await server.close();
    }
  });
}

/** Resolves when `test` holds, checking every few milliseconds; fails after 5 s. */
async function eventually(test: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A promise with its resolve function outside. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Resolves when `signal` aborts, with its reason. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

/** A raw connection that reads the server's lines, for what the client would not send. */
class RawConn {
  readonly conn: Deno.UnixConn;
  readonly #splitter = new LineSplitter(1 << 20);
  readonly #lines: string[] = [];
  readonly #buffer = new Uint8Array(65536);
  private constructor(conn: Deno.UnixConn) {
    this.conn = conn;
  }
  static async connect(path: string): Promise<RawConn> {
    return new RawConn(await Deno.connect({ transport: "unix", path }));
  }
  /** The next message parsed, or null at the end of the stream. */
  async next(): Promise<Record<string, unknown> | null> {
    while (this.#lines.length === 0) {
      const n = await this.conn.read(this.#buffer);
      if (n === null) return null;
      for (const line of this.#splitter.push(this.#buffer.subarray(0, n))) this.#lines.push(line);
    }
    return JSON.parse(this.#lines.shift()!);
  }
  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    let done = 0;
    while (done < bytes.length) done += await this.conn.write(bytes.subarray(done));
  }
  close(): void {
    try {
      this.conn.close();
    } catch {
      // Closed by the server.
    }
  }
}

Deno.test("IpcClient.request() gets the handler's result; the hello names the protocol", async () => {
  await withServer({ echo: (params) => Promise.resolve({ got: params }) }, async (_, w) => {
    const client = await IpcClient.connect(w.path);
    try {
      assert.equal(client.hello.version, PROTOCOL_VERSION);
      assert.equal(client.hello.daemon, "amp");
      assert.equal(client.hello.pid, Deno.pid);
      assert.deepEqual(await client.request("echo", { a: [1, "two"] }), { got: { a: [1, "two"] } });
      assert.deepEqual(await client.request("echo"), {}, "no params: the handler gets undefined");
    } finally {
      await client.close();
    }
  });
});

Deno.test("IpcClient.request() delivers every progress message, in order, before the result", async () => {
  const handlers: IpcHandlers = {
    async scan(_, ctx) {
      for (let files = 1; files <= 50; files++) ctx.progress({ files });
      await new Promise((r) => setTimeout(r, 10));
      ctx.progress({ files: 51 });
      return { done: true };
    },
  };
  await withServer(handlers, async (_, w) => {
    const client = await IpcClient.connect(w.path);
    try {
      const seen: unknown[] = [];
      const result = await client.request("scan", undefined, {
        onProgress: (data) => seen.push(data),
      });
      seen.push(result);
      assert.equal(seen.length, 52);
      assert.deepEqual(seen.slice(0, 3), [{ files: 1 }, { files: 2 }, { files: 3 }]);
      assert.deepEqual(seen.slice(-2), [{ files: 51 }, { done: true }]);
    } finally {
      await client.close();
    }
  });
});

Deno.test("IpcServer serves two clients at once, and requests on one connection out of order", async () => {
  let running = 0;
  let most = 0;
  const release = gate();
  const handlers: IpcHandlers = {
    async hold(params) {
      running++;
      most = Math.max(most, running);
      await release.promise;
      running--;
      return params;
    },
    fast: (params) => Promise.resolve(params),
  };
  await withServer(handlers, async (server, w) => {
    const a = await IpcClient.connect(w.path);
    const b = await IpcClient.connect(w.path);
    try {
      await eventually(() => server.connectionCount === 2, "both clients are connected");
      const heldA = a.request("hold", "a");
      const heldB = b.request("hold", "b");
      await eventually(() => running === 2, "both handlers run");
      assert.equal(await a.request("fast", "a2"), "a2", "a quick request overtakes a slow one");
      release.open();
      assert.deepEqual(await Promise.all([heldA, heldB]), ["a", "b"]);
      assert.equal(most, 2);
    } finally {
      await a.close();
      await b.close();
    }
    await eventually(() => server.connectionCount === 0, "the server forgot the clients");
  });
});

Deno.test("IpcServer answers an unknown method with code unknown-method and keeps the connection", async () => {
  await withServer({ ping: () => Promise.resolve("pong") }, async (_, w) => {
    const client = await IpcClient.connect(w.path);
    try {
      for (const method of ["nope", "toString", "__proto__", "constructor"]) {
        await assert.rejects(client.request(method), (error: unknown) => {
          assert.ok(error instanceof DaemonRequestError);
          assert.equal(error.code, "unknown-method");
          assert.equal(error.message, `Unknown method: ${method}`);
          return true;
        });
      }
      assert.equal(await client.request("ping"), "pong");
    } finally {
      await client.close();
    }
  });
});

Deno.test("IpcServer turns a handler's throw into an error reply: its code or internal, no stack", async () => {
  const records: LogRecord[] = [];
  const logger = new Logger([{ write: (r) => records.push(r), close() {} }]);
  const handlers: IpcHandlers = {
    boom: () => Promise.reject(new Error("Scan engine exploded")),
    missing: () => {
      throw Object.assign(new Error("No such quarantine entry: 42"), { code: "not-found" });
    },
  };
  await withServer(handlers, async (_, w) => {
    const client = await IpcClient.connect(w.path);
    try {
      await assert.rejects(client.request("boom"), (error: unknown) => {
        assert.ok(error instanceof DaemonRequestError);
        assert.equal(error.code, "internal");
        assert.equal(error.message, "Scan engine exploded");
        return true;
      });
      await assert.rejects(client.request("missing"), (error: unknown) => {
        assert.ok(error instanceof DaemonRequestError);
        assert.equal(error.code, "not-found");
        assert.equal(error.message, "No such quarantine entry: 42");
        return true;
      });
    } finally {
      await client.close();
    }
  }, { logger });
  assert.equal(records.length, 1, "the internal failure is logged, the coded one is not");
  assert.equal(records[0].message, "IPC request failed");
  assert.equal(records[0].fields?.method, "boom");
  assert.match(String(records[0].fields?.stack), /Scan engine exploded\n\s+at /);
});

Deno.test("IpcServer aborts a handler's signal when its client goes away", async () => {
  const started = gate();
  let reason: Promise<unknown> | undefined;
  const handlers: IpcHandlers = {
    wait(_, ctx) {
      reason = aborted(ctx.signal);
      started.open();
      return reason;
    },
  };
  await withServer(handlers, async (server, w) => {
    const client = await IpcClient.connect(w.path);
    const request = client.request("wait");
    const rejected = assert.rejects(request, /The IPC client was closed/);
    await started.promise;
    await client.close();
    await rejected;
    const why = await reason;
    assert.ok(why instanceof DOMException);
    assert.equal(why.name, "AbortError");
    assert.equal(why.message, "The client went away");
    await eventually(() => server.connectionCount === 0, "the connection is gone");
  });
});

Deno.test("IpcClient.request() with an aborted signal cancels the handler and rejects at once", async () => {
  const started = gate();
  let reason: Promise<unknown> | undefined;
  const handlers: IpcHandlers = {
    wait(_, ctx) {
      reason = aborted(ctx.signal);
      started.open();
      return reason.then(() => "too late");
    },
    ping: () => Promise.resolve("pong"),
  };
  await withServer(handlers, async (_, w) => {
    const client = await IpcClient.connect(w.path);
    try {
      const controller = new AbortController();
      const request = client.request("wait", undefined, { signal: controller.signal });
      await started.promise;
      controller.abort(new Error("Ctrl-C"));
      await assert.rejects(request, /Ctrl-C/);
      const why = await reason;
      assert.equal((why as DOMException).message, "The client cancelled the request");
      assert.equal(await client.request("ping"), "pong", "the connection stays usable");
      await assert.rejects(
        client.request("ping", undefined, { signal: AbortSignal.abort(new Error("already")) }),
        /already/,
      );
    } finally {
      await client.close();
    }
  });
});

Deno.test("IpcServer.close() aborts running handlers and the client sees the daemon go", async () => {
  const started = gate();
  let reason: Promise<unknown> | undefined;
  const handlers: IpcHandlers = {
    wait(_, ctx) {
      reason = aborted(ctx.signal);
      started.open();
      return reason;
    },
  };
  await withDir(async (w) => {
    const server = await IpcServer.listen({ path: w.path, handlers });
    const client = await IpcClient.connect(w.path);
    const rejected = assert.rejects(client.request("wait"), (error: unknown) => {
      assert.ok(error instanceof DaemonUnavailableError);
      assert.equal(error.message, "amp daemon closed the connection");
      return true;
    });
    await started.promise;
    await server.close();
    await server.close();
    assert.equal(((await reason) as DOMException).message, "The amp daemon is stopping");
    await rejected;
    await assert.rejects(client.request("wait"), DaemonUnavailableError);
    await client.close();
    await assert.rejects(Deno.lstat(w.path), Deno.errors.NotFound, "the socket file is removed");
    await assert.rejects(IpcClient.connect(w.path), (error: unknown) => {
      assert.ok(error instanceof DaemonUnavailableError);
      assert.equal(error.message, `amp daemon is not running (no ${w.path})`);
      return true;
    });
  });
});

Deno.test("IpcServer.listen() creates the directory 0700 and the socket 0600", async () => {
  await withServer({}, async (_, w) => {
    assert.equal((await Deno.stat(`${w.dir}/run/amp`)).mode! & 0o777, 0o700);
    const socket = await Deno.lstat(w.path);
    assert.ok(socket.isSocket);
    assert.equal(socket.mode! & 0o777, 0o600);
    assert.deepEqual([...Deno.readDirSync(`${w.dir}/run/amp`)].map((e) => e.name), ["ampd.sock"]);
  });
});

Deno.test("IpcServer.listen() replaces a stale socket that refuses connections", async () => {
  await withDir(async (w) => {
    await Deno.mkdir(`${w.dir}/run/amp`, { recursive: true });
    // A socket whose listener is gone, as a crashed daemon leaves it.
    const crashed = Deno.listen({ transport: "unix", path: `${w.dir}/crashed.sock` });
    await Deno.link(`${w.dir}/crashed.sock`, w.path);
    crashed.close();
    await assert.rejects(IpcClient.connect(w.path), (error: unknown) => {
      assert.ok(error instanceof DaemonUnavailableError);
      assert.equal(error.message, `amp daemon is not running (${w.path} refuses connections)`);
      return true;
    });
    const server = await IpcServer.listen({ path: w.path, handlers: { ping: pong } });
    try {
      const client = await IpcClient.connect(w.path);
      assert.equal(await client.request("ping"), "pong");
      await client.close();
    } finally {
      await server.close();
    }
  });
});

Deno.test("IpcServer.listen() refuses a socket a live daemon answers on, and leaves it alone", async () => {
  await withServer({ ping: pong }, async (_, w) => {
    await assert.rejects(
      IpcServer.listen({ path: w.path, handlers: {} }),
      (error: unknown) => {
        assert.ok(error instanceof DaemonRunningError);
        assert.equal(error.message, `Another amp daemon is running (${w.path} answers)`);
        return true;
      },
    );
    const client = await IpcClient.connect(w.path);
    assert.equal(await client.request("ping"), "pong", "the first server still serves");
    await client.close();
  });
});

Deno.test("IpcServer.listen() refuses a path that is not a socket", async () => {
  await withDir(async (w) => {
    await Deno.mkdir(`${w.dir}/run/amp`, { recursive: true });
    await Deno.writeTextFile(w.path, "precious");
    await assert.rejects(
      IpcServer.listen({ path: w.path, handlers: {} }),
      new Error(`Cannot listen on ${w.path}: it exists and is not a socket`),
    );
    assert.equal(await Deno.readTextFile(w.path), "precious");
  });
});

Deno.test("IpcServer rejects an oversized line with line-too-long and closes the connection", async () => {
  await withServer({ ping: pong }, async (_, w) => {
    const raw = await RawConn.connect(w.path);
    try {
      const hello = await raw.next();
      assert.equal(hello?.maxRequestBytes, 4096);
      await raw.send('{"id":1,"method":"ping"}\n');
      assert.deepEqual(await raw.next(), { id: 1, type: "result", data: "pong" });
      // 64 KiB without a newline: the server gives up at 4 KiB, not at the end.
      await raw.send(new Uint8Array(65536).fill(0x20)).catch(() => {});
      assert.deepEqual(await raw.next(), {
        id: null,
        type: "error",
        error: { code: "line-too-long", message: "Request line is longer than 4096 bytes" },
      });
      assert.equal(await raw.next(), null, "then the server closes the connection");
    } finally {
      raw.close();
    }
    const client = await IpcClient.connect(w.path);
    try {
      await assert.rejects(client.request("ping", "x".repeat(5000)), (error: unknown) => {
        assert.ok(error instanceof DaemonRequestError);
        assert.equal(error.code, "request-too-large");
        return true;
      });
      assert.equal(await client.request("ping"), "pong", "the client did not send it");
    } finally {
      await client.close();
    }
  }, { maxRequestBytes: 4096 });
});

Deno.test("IpcServer answers a line that is not a request with bad-request and reads on", async () => {
  await withServer({ ping: pong }, async (_, w) => {
    const raw = await RawConn.connect(w.path);
    try {
      await raw.next();
      await raw.send('not json\n{"method":"ping"}\n{"id":7,"method":"ping"}\n');
      for (const expected of [/^Not JSON/, /^Not a request/]) {
        const reply = await raw.next() as { id: null; error: { code: string; message: string } };
        assert.equal(reply.id, null);
        assert.equal(reply.error.code, "bad-request");
        assert.match(reply.error.message, expected);
      }
      assert.deepEqual(await raw.next(), { id: 7, type: "result", data: "pong" });
      await raw.send('{"id":8,"method":"ping"}\n{"cancel":99}\n{"id":9,"method":"ping"}\n');
      assert.deepEqual(await raw.next(), { id: 8, type: "result", data: "pong" });
      assert.deepEqual(await raw.next(), { id: 9, type: "result", data: "pong" });
    } finally {
      raw.close();
    }
  });
});

Deno.test("IpcServer refuses a request id already in flight on the connection", async () => {
  const release = gate();
  await withServer({ hold: () => release.promise.then(() => "held") }, async (_, w) => {
    const raw = await RawConn.connect(w.path);
    try {
      await raw.next();
      await raw.send('{"id":1,"method":"hold"}\n{"id":1,"method":"hold"}\n');
      assert.equal((await raw.next() as { error: { code: string } }).error.code, "duplicate-id");
      release.open();
      assert.deepEqual(await raw.next(), { id: 1, type: "result", data: "held" });
    } finally {
      raw.close();
    }
  });
});

Deno.test("IpcServer reports a result that JSON cannot hold as an internal error", async () => {
  await withServer({ big: () => Promise.resolve({ n: 1n }) }, async (_, w) => {
    const client = await IpcClient.connect(w.path);
    try {
      await assert.rejects(client.request("big"), (error: unknown) => {
        assert.ok(error instanceof DaemonRequestError);
        assert.equal(error.code, "internal");
        assert.equal(error.message, "The result of big cannot be sent as JSON");
        return true;
      });
    } finally {
      await client.close();
    }
  });
});

Deno.test("IpcClient.connect() refuses what is not an amp daemon of its protocol version", async () => {
  await withDir(async (w) => {
    const cases: [string, RegExp][] = [
      ["SSH-2.0-OpenSSH_9.2\n", /does not answer as an amp daemon$/],
      [
        '{"type":"hello","version":99,"daemon":"amp","pid":1,"maxRequestBytes":10}\n',
        /speaks protocol version 99; this amp speaks 1: restart the daemon after upgrading amp$/,
      ],
    ];
    for (const [greeting, message] of cases) {
      const path = `${w.dir}/other.sock`;
      const listener = Deno.listen({ transport: "unix", path });
      const serving = (async () => {
        const conn = await listener.accept();
        await conn.write(new TextEncoder().encode(greeting));
        await conn.read(new Uint8Array(16)).catch(() => null);
        conn.close();
      })();
      await assert.rejects(IpcClient.connect(path), (error: unknown) => {
        assert.ok(error instanceof DaemonProtocolError);
        assert.match(error.message, message);
        return true;
      });
      await serving;
      listener.close();
    }
  });
});

Deno.test("IpcClient.connect() gives up on a socket that never says hello", async () => {
  await withDir(async (w) => {
    const path = `${w.dir}/silent.sock`;
    const listener = Deno.listen({ transport: "unix", path });
    const accepted = listener.accept();
    await assert.rejects(IpcClient.connect(path, { timeoutMs: 100 }), (error: unknown) => {
      assert.ok(error instanceof DaemonUnavailableError);
      assert.equal(error.message, `amp daemon did not answer on ${path} within 100 ms`);
      return true;
    });
    (await accepted).close();
    listener.close();
  });
});

// As root: a client running as nobody must be refused by the file modes.
const root = Deno.uid() === 0;
if (!root && !IN_CI) {
  console.log("ipc_test: skipping the other-user tests: they need root (CI != true)");
}

/** Runs the probe client as nobody (uid/gid 65534, no groups); returns its output lines. */
async function probeAsNobody(socket: string, scratch: string): Promise<string[]> {
  const out = await new Deno.Command("setpriv", {
    args: [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "--",
      Deno.execPath(),
      "run",
      "--allow-all",
      "--quiet",
      "--no-check",
      PROBE,
      socket,
    ],
    env: { DENO_DIR: `${scratch}/deno`, HOME: scratch, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, `the probe failed to run as nobody: ${stderr}`);
  return new TextDecoder().decode(out.stdout).trim().split("\n");
}

Deno.test({
  name: "IpcServer's 0600 socket refuses another user, even through a traversable directory",
  ignore: !root && !IN_CI,
  async fn() {
    await withServer({ ping: pong }, async (_, w) => {
      const scratch = `${w.dir}/scratch`;
      await Deno.mkdir(scratch, { mode: 0o777 });
      await Deno.chmod(scratch, 0o777);
      // Let nobody reach the socket: only its own mode is left to refuse.
      for (const d of [w.dir, `${w.dir}/run`, `${w.dir}/run/amp`]) await Deno.chmod(d, 0o711);
      assert.deepEqual(await probeAsNobody(w.path, scratch), [
        new DaemonAccessError("").name,
        `Permission denied: ${w.path} is root-only; run as root`,
      ]);
      // The control: the same probe gets through once the socket is open to all.
      await Deno.chmod(w.path, 0o666);
      assert.deepEqual(await probeAsNobody(w.path, scratch), ['connected "pong"']);
      await Deno.chmod(w.path, 0o600);
      // And a 0700 directory refuses on its own, whatever the socket's mode.
      await Deno.chmod(`${w.dir}/run/amp`, 0o700);
      await Deno.chmod(w.path, 0o666);
      assert.deepEqual(await probeAsNobody(w.path, scratch), [
        new DaemonAccessError("").name,
        `Permission denied: ${w.path} is root-only; run as root`,
      ]);
    });
  },
});
