import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { IN_CI } from "../../tests/fixtures/native.ts";
import { LOG_FACILITY, LOG_PRIORITY, openlog } from "./syslog.ts";

/*
 * glibc's syslog always sends to /dev/log, so the test listens there: when
 * /dev/log is missing it binds it (and removes it afterwards); when a syslog
 * daemon owns it, the writer runs in a private mount namespace with the
 * test's socket bind-mounted over /dev/log, and the host's syslog sees
 * nothing. Both need root; outside CI the test is skipped when not root.
 */
const root = Deno.uid() === 0;
if (!root && !IN_CI) {
  console.log("syslog_test: skipping the /dev/log test: needs root (CI != true)");
}

const LISTENER = fileURLToPath(
  new URL("../../tests/fixtures/datagram_listener.ts", import.meta.url),
);
const WRITER = fileURLToPath(new URL("../../tests/fixtures/syslog_writer.ts", import.meta.url));

/** Reads stdout of a child line by line, failing after a deadline. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  async next(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#buffer.includes("\n")) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("Timed out waiting for a line")),
          Math.max(0, deadline - Date.now()),
        );
      });
      try {
        const { value, done } = await Promise.race([this.#reader.read(), timeout]);
        if (done) throw new Error(`Stream ended; unread: ${JSON.stringify(this.#buffer)}`);
        this.#buffer += value;
      } finally {
        clearTimeout(timer);
      }
    }
    const i = this.#buffer.indexOf("\n");
    const line = this.#buffer.slice(0, i);
    this.#buffer = this.#buffer.slice(i + 1);
    return line;
  }
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test({
  name: "syslog() sends `<priority>time ident[pid]: message` datagrams to /dev/log",
  ignore: !root && !IN_CI,
  async fn() {
    const devLogTaken = await exists("/dev/log");
    const dir = await Deno.makeTempDir({ prefix: "amp-syslog-" });
    const socket = devLogTaken ? `${dir}/log` : "/dev/log";
    const listener = new Deno.Command(Deno.execPath(), {
      args: ["run", "--unstable-net", "--allow-all", "--quiet", LISTENER, socket],
      stdin: "null",
      stdout: "piped",
    }).spawn();
    const lines = new Lines(listener.stdout);
    try {
      assert.equal(await lines.next(), "ready");
      const ident = `amp-test-${Deno.pid}`;
      const message = "Connector started: %s %n are not formats";
      const deno = [Deno.execPath(), "run", "--allow-all", "--quiet", WRITER, ident, message];
      const argv = devLogTaken
        ? [
          "unshare",
          "--mount",
          "--propagation",
          "private",
          "--",
          "sh",
          "-c",
          'mount --bind "$0" /dev/log && exec "$@"',
          socket,
          ...deno,
        ]
        : deno;
      const writer = await new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null" })
        .output();
      const stderr = new TextDecoder().decode(writer.stderr);
      assert.ok(writer.success, `the writer failed: ${stderr}`);
      const pid = new TextDecoder().decode(writer.stdout).trim();
      assert.match(pid, /^\d+$/);

      const first = JSON.parse(await lines.next()) as string;
      const second = JSON.parse(await lines.next()) as string;
      // LOG_DAEMON (3 << 3) | LOG_NOTICE (5) = 29; | LOG_WARNING (4) = 28.
      const time = String.raw`[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d`;
      const escaped = message.replace(/[%$]/g, "\\$&");
      assert.match(first, new RegExp(`^<29>${time} ${ident}\\[${pid}\\]: ${escaped}$`));
      assert.match(
        second,
        new RegExp(`^<28>${time} ${ident}-sink\\[${pid}\\]: warning: ${escaped} k=v$`),
      );
      assert.equal(LOG_FACILITY.DAEMON | LOG_PRIORITY.NOTICE, 29);
    } finally {
      listener.kill("SIGTERM");
      await listener.status;
      await lines.cancel();
      if (!devLogTaken && await exists("/dev/log")) await Deno.remove("/dev/log");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("openlog() refuses an ident with a NUL character", () => {
  assert.throws(() => openlog("amp\0x"), TypeError);
});
