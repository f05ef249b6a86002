/**
 * FanotifySource against the real kernel: a private tmpfs is mounted per
 * test, watched, and changed by child processes (events of this process are
 * never yielded). Needs root; skipped outside CI otherwise.
 */

import assert from "node:assert/strict";
import { FAN_MARK } from "../ffi/fanotify.ts";
import type { FileEvent, MonitorEvent, OverflowEvent } from "../src/monitor/file_event.ts";
import { type FanotifyOptions, FanotifySource } from "../src/monitor/fanotify/fanotify_source.ts";
import { bytePath, escapePath } from "../src/sys/byte_path.ts";
import { close, pread } from "../src/sys/libc.ts";
import { SysError } from "../src/sys/sys_error.ts";
import { IN_CI } from "./fixtures/native.ts";

const skip = Deno.uid() !== 0 && !IN_CI;
if (skip) {
  console.log("fanotify_source_test: skipping: needs root for fanotify and mount (CI != true)");
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skip, fn });

/** Mounts a private tmpfs, opens a source on it, and always closes and unmounts. */
async function withSource(
  options: Omit<FanotifyOptions, "paths"> | ((dir: string) => Omit<FanotifyOptions, "paths">),
  fn: (source: FanotifySource, dir: string) => Promise<void>,
  prepare?: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-fanotify-" });
  try {
    await run("mount", ["-t", "tmpfs", "none", dir]);
    try {
      if (prepare) await prepare(dir);
      const opts = typeof options === "function" ? options(dir) : options;
      const source = FanotifySource.open({ ...opts, paths: [dir] });
      try {
        assert.deepEqual(source.warnings, []);
        assert.deepEqual(source.watched, [dir]);
        await fn(source, dir);
      } finally {
        releaseBacklog(source);
        await source.close();
      }
    } finally {
      // Fails (EBUSY) when a descriptor on the tmpfs was leaked.
      await run("umount", [dir]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  assert.ok(out.success, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
}

/** Runs a shell script with `$d` set to `dir`, in a child process. */
function sh(dir: string, script: string, shell = "sh"): Deno.ChildProcess {
  return new Deno.Command(shell, {
    args: ["-c", script],
    env: { d: dir },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function shOk(dir: string, script: string, shell = "sh"): Promise<void> {
  const status = await sh(dir, script, shell).status;
  assert.equal(status.code, 0, `${shell} -c ${script}`);
}

/** Gives an event back: allowed if it waits for an answer, descriptor closed. */
function release(event: MonitorEvent): void {
  if (event.kind === "overflow") return;
  event.respond?.(true);
  close(event.fd);
}

function isFile(event: MonitorEvent): event is FileEvent {
  return event.kind !== "overflow";
}

/** Events read but not yet looked at, per source (a batch can hold several wanted ones). */
const backlog = new WeakMap<FanotifySource, MonitorEvent[]>();

/**
 * Reads until an event matches `want` (returned, still owned by the caller);
 * every event before it is passed to `seen` and released, the ones after it
 * are kept for the next call.
 */
async function waitFor(
  source: FanotifySource,
  want: (event: MonitorEvent) => boolean,
  options: { ms?: number; seen?: (event: MonitorEvent) => void } = {},
): Promise<MonitorEvent> {
  const deadline = Date.now() + (options.ms ?? 5000);
  const queue = backlog.get(source) ?? [];
  backlog.set(source, queue);
  for (;;) {
    while (queue.length > 0) {
      const event = queue.shift()!;
      if (want(event)) return event;
      options.seen?.(event);
      release(event);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
    });
    const batch = await Promise.race([source.next(), timeout]);
    clearTimeout(timer);
    assert.ok(batch, `No matching event within ${options.ms ?? 5000} ms`);
    assert.ok(batch.length > 0, "next() returned [] before close()");
    queue.push(...batch);
  }
}

/** Releases the events a test did not look at. */
function releaseBacklog(source: FanotifySource): void {
  for (const event of backlog.get(source)?.splice(0) ?? []) release(event);
}

function pathIs(path: Uint8Array, kind?: string): (event: MonitorEvent) => boolean {
  const want = escapePath(path);
  return (e) => isFile(e) && escapePath(e.path) === want && (kind === undefined || e.kind === kind);
}

function content(fd: number): string {
  const buf = new Uint8Array(4096);
  return new TextDecoder().decode(buf.subarray(0, pread(fd, buf, 0)));
}

function delay(ms: number): Promise<"timeout"> {
  return new Promise((resolve) => setTimeout(() => resolve("timeout"), ms));
}

/**
 * The `mflags` of this process's fanotify marks on inode `ino` that ignore
 * something, read from /proc/self/fdinfo (one entry per group).
 */
function ignoreMarkFlags(ino: number): number[] {
  const out: number[] = [];
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    let info: string;
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) !== "anon_inode:[fanotify]") continue;
      info = Deno.readTextFileSync(`/proc/self/fdinfo/${entry.name}`);
    } catch {
      continue; // closed meanwhile (such as the descriptor of /proc/self/fd itself)
    }
    const marks = info.matchAll(
      /^fanotify ino:([0-9a-f]+) .*mflags:([0-9a-f]+) .*ignored_mask:([0-9a-f]+)/gm,
    );
    for (const [, i, flags, ignored] of marks) {
      if (parseInt(i, 16) === ino && parseInt(ignored, 16) !== 0) out.push(parseInt(flags, 16));
    }
  }
  return out;
}

test("FanotifySource yields close-write with the writer's pid, the path and a readable fd", async () => {
  await withSource({ onAccess: true, exec: "off" }, async (source, dir) => {
    const child = sh(dir, `printf 'hello fanotify' > "$d/a.txt"`);
    const event = await waitFor(source, pathIs(bytePath(`${dir}/a.txt`))) as FileEvent;
    try {
      assert.equal((await child.status).code, 0);
      assert.equal(event.kind, "close-write");
      assert.equal(event.pid, child.pid);
      assert.equal(event.respond, undefined);
      assert.equal(content(event.fd), "hello fanotify");
    } finally {
      close(event.fd);
    }
    assert.equal(source.backend, "fanotify");
    assert.ok(source.stats.events >= 1);
    assert.equal(source.stats.errors, 0);
  });
});

test("FanotifySource yields moved-to for a rename into a watched directory, regular files only", async () => {
  await withSource({ onAccess: true, exec: "off" }, async (source, dir) => {
    await shOk(
      dir,
      `mkdir "$d/a" "$d/b" "$d/a/sub" && printf moved > "$d/a/x" && ln -s /etc/passwd "$d/a/link"`,
    );
    // A directory and a symbolic link moved first: neither is yielded.
    await shOk(dir, `mv "$d/a/sub" "$d/b/sub" && mv "$d/a/link" "$d/b/link"`);
    const child = sh(dir, `exec mv "$d/a/x" "$d/b/y"`);
    const seen: string[] = [];
    const event = await waitFor(source, (e) => e.kind === "moved-to", {
      seen: (e) => isFile(e) && seen.push(`${e.kind} ${escapePath(e.path)}`),
    }) as FileEvent;
    try {
      assert.equal((await child.status).code, 0);
      assert.equal(escapePath(event.path), `${dir}/b/y`);
      assert.equal(event.pid, child.pid);
      assert.equal(content(event.fd), "moved");
    } finally {
      close(event.fd);
    }
    assert.ok(!seen.some((s) => s.startsWith("moved-to")), seen.join("\n"));
    assert.equal(source.stats.errors, 0);
  });
});

test("FanotifySource yields exec (passive) with the pid of the process that executes", async () => {
  await withSource({ onAccess: false, exec: "passive" }, async (source, dir) => {
    await shOk(dir, `cp /bin/true "$d/true"`);
    const child = new Deno.Command(`${dir}/true`, { stdout: "null", stderr: "null" }).spawn();
    const event = await waitFor(source, pathIs(bytePath(`${dir}/true`))) as FileEvent;
    close(event.fd);
    assert.equal(event.kind, "exec");
    assert.equal(event.pid, child.pid);
    assert.equal(event.respond, undefined);
    assert.equal((await child.status).code, 0);
  });
});

test("FanotifySource: exec of a script yields events for the script and its interpreter", async () => {
  await withSource({ onAccess: false, exec: "passive" }, async (source, dir) => {
    await shOk(
      dir,
      `cp /bin/sh "$d/interp" && printf '#!%s/interp\\nexit 0\\n' "$d" > "$d/script" && chmod +x "$d/script"`,
    );
    const child = sh(dir, `exec "$d/script"`);
    const script = await waitFor(source, pathIs(bytePath(`${dir}/script`), "exec")) as FileEvent;
    close(script.fd);
    const interp = await waitFor(source, pathIs(bytePath(`${dir}/interp`), "exec")) as FileEvent;
    close(interp.fd);
    assert.equal(script.pid, child.pid);
    assert.equal(interp.pid, child.pid);
    assert.equal((await child.status).code, 0);
  });
});

test("FanotifySource (active) holds an exec until respond(): false → EPERM (126), true → runs", async () => {
  await withSource(
    { onAccess: false, exec: "active" },
    async (source, dir) => {
      // Spawned through sh (on the unwatched root fs): Deno's spawn itself waits for the
      // exec it starts, so only the grandchild's exec may be held.
      const denied = sh(dir, `exec "$d/true"`);
      const event = await waitFor(source, (e) => e.kind === "exec-perm") as FileEvent;
      assert.equal(escapePath(event.path), `${dir}/true`);
      assert.equal(event.pid, denied.pid);
      assert.equal(await Promise.race([denied.status, delay(300)]), "timeout", "exec not held");
      assert.equal(event.respond!(false), true);
      assert.equal(event.respond!(true), false, "answered once");
      close(event.fd);
      assert.equal((await denied.status).code, 126);

      const allowed = sh(dir, `exec "$d/true"`);
      const again = await waitFor(source, (e) => e.kind === "exec-perm") as FileEvent;
      assert.equal(again.pid, allowed.pid);
      assert.equal(again.respond!(true), true);
      close(again.fd);
      assert.equal((await allowed.status).code, 0);
      assert.equal(source.stats.errors, 0, "a second respond() wrote nothing");
      assert.equal(source.stats.permissionTimeouts, 0);
    },
    (dir) => shOk(dir, `cp /bin/true "$d/true"`),
  );
});

test("FanotifySource answers an unanswered permission event after the timeout (allow by default)", async () => {
  await withSource(
    { onAccess: false, exec: "active", permissionTimeoutMs: 300 },
    async (source, dir) => {
      const started = Date.now();
      const child = sh(dir, `exec "$d/true"`);
      const event = await waitFor(source, (e) => e.kind === "exec-perm") as FileEvent;
      try {
        assert.equal((await child.status).code, 0);
        assert.ok(Date.now() - started >= 250, "answered before the timeout");
        assert.equal(source.stats.permissionTimeouts, 1);
        assert.equal(event.respond!(false), false, "too late: the timeout answered");
        assert.equal(source.stats.errors, 0);
      } finally {
        close(event.fd);
      }
    },
    (dir) => shOk(dir, `cp /bin/true "$d/true"`),
  );
});

test("FanotifySource with timeoutAnswer deny refuses an unanswered exec", async () => {
  await withSource(
    { onAccess: false, exec: "active", permissionTimeoutMs: 200, timeoutAnswer: "deny" },
    async (source, dir) => {
      const child = sh(dir, `exec "$d/true"`);
      const event = await waitFor(source, (e) => e.kind === "exec-perm") as FileEvent;
      close(event.fd); // the timer still answers: it never needs the descriptor open
      assert.equal((await child.status).code, 126);
      assert.equal(source.stats.permissionTimeouts, 1);
    },
    (dir) => shOk(dir, `cp /bin/true "$d/true"`),
  );
});

test("FanotifySource close() allows a permission event still pending", async () => {
  await withSource(
    { onAccess: false, exec: "active", permissionTimeoutMs: 60_000 },
    async (source, dir) => {
      const child = sh(dir, `exec "$d/true"`);
      const event = await waitFor(source, (e) => e.kind === "exec-perm") as FileEvent;
      await source.close();
      close(event.fd);
      assert.equal((await child.status).code, 0);
      assert.equal(event.respond!(false), false, "close() answered");
      assert.equal(source.stats.errors, 0);
    },
    (dir) => shOk(dir, `cp /bin/true "$d/true"`),
  );
});

test("FanotifySource never yields events of its own process", async () => {
  await withSource({ onAccess: true, exec: "off" }, async (source, dir) => {
    await Deno.writeTextFile(`${dir}/own.txt`, "ours");
    await Deno.rename(`${dir}/own.txt`, `${dir}/own2.txt`);
    const seen: string[] = [];
    const child = sh(dir, `printf theirs > "$d/marker"`);
    const marker = await waitFor(source, pathIs(bytePath(`${dir}/marker`)), {
      seen: (e) => isFile(e) && seen.push(escapePath(e.path)),
    }) as FileEvent;
    close(marker.fd);
    assert.equal((await child.status).code, 0);
    assert.deepEqual(seen.filter((p) => p.includes("own")), []);
    // The close-write and the moved-to of our own file.
    assert.ok(source.stats.ownEvents >= 2, `ownEvents ${source.stats.ownEvents}`);
  });
});

test("FanotifySource yields an overflow event when the kernel queue fills", async () => {
  await withSource({ onAccess: true, exec: "off" }, async (source, dir) => {
    // 20,000 close-write events while nothing reads: more than the default queue of 16384.
    await shOk(dir, `i=0; while [ $i -lt 20000 ]; do : > "$d/f$i"; i=$((i+1)); done`);
    let files = 0;
    const overflow = await waitFor(source, (e) => e.kind === "overflow", {
      ms: 60_000,
      seen: () => files++,
    });
    assert.equal(overflow.kind, "overflow");
    assert.ok(overflow.kind === "overflow" && Math.abs(overflow.time - Date.now()) < 60_000);
    assert.ok(files >= 16_000 && files < 20_000, `${files} events before the overflow`);
    assert.equal(source.stats.overflows, 1);
  });
});

test("FanotifySource (active): a write storm that overflows the write queue cannot hide an exec", async () => {
  await withSource(
    { onAccess: true, exec: "active", permissionTimeoutMs: 60_000 },
    async (source, dir) => {
      // More close-writes than the write queue holds, while nothing reads.
      await shOk(dir, `i=0; while [ $i -lt 20000 ]; do : > "$d/f$i"; i=$((i+1)); done`);
      // The executions' own queue still takes this one: held, not allowed unseen.
      const child = sh(dir, `exec "$d/true"`);
      const overflows: OverflowEvent[] = [];
      const collect = (e: MonitorEvent) => e.kind === "overflow" && overflows.push(e);
      const event = await waitFor(source, pathIs(bytePath(`${dir}/true`), "exec-perm"), {
        ms: 60_000,
        seen: collect,
      }) as FileEvent;
      assert.equal(event.pid, child.pid);
      assert.equal(await Promise.race([child.status, delay(300)]), "timeout", "exec not held");
      assert.equal(event.respond!(false), true);
      close(event.fd);
      assert.equal((await child.status).code, 126);
      // The writes' overflow is still reported, as one that lost no executions.
      if (overflows.length === 0) {
        collect(await waitFor(source, (e) => e.kind === "overflow", { ms: 60_000 }));
      }
      assert.equal(overflows.length, 1);
      assert.equal(overflows[0].execs, undefined);
      assert.equal(source.stats.overflows, 1);
    },
    (dir) => shOk(dir, `cp /bin/true "$d/true"`),
  );
});

test("FanotifySource.watched names one path per file system, the first given", async () => {
  await withSource(
    { onAccess: true, exec: "off" },
    async (_source, dir) => {
      const other = FanotifySource.open({
        paths: [`${dir}/sub`, dir, `${dir}/sub`],
        onAccess: false,
        exec: "passive",
      });
      try {
        assert.deepEqual(other.watched, [`${dir}/sub`]);
      } finally {
        await other.close();
      }
    },
    (dir) => Deno.mkdir(`${dir}/sub`),
  );
});

test("FanotifySource close() returns promptly while next() waits, and next() then yields []", async () => {
  await withSource({ onAccess: true, exec: "passive" }, async (source) => {
    const pending = source.next();
    await delay(100);
    const started = Date.now();
    await source.close();
    assert.deepEqual(await pending, []);
    assert.ok(Date.now() - started < 1000, `close() took ${Date.now() - started} ms`);
    await source.close();
    assert.deepEqual(await source.next(), []);
  });
});

test("FanotifySource pathPrefixes: other paths are not yielded and their execs allowed at once", async () => {
  await withSource(
    (dir) => ({
      onAccess: true,
      exec: "active",
      permissionTimeoutMs: 60_000,
      pathPrefixes: [bytePath(`${dir}/keep/`)],
    }),
    async (source, dir) => {
      const seen: string[] = [];
      const reading = waitFor(source, pathIs(bytePath(`${dir}/keep/b`)), {
        seen: (e) => isFile(e) && seen.push(escapePath(e.path)),
      });
      // Answered by the source itself while the consumer waits: not yielded, not timed out.
      await shOk(dir, `exec "$d/skip/true"`);
      await shOk(dir, `printf x > "$d/skip/a" && printf y > "$d/keep/b"`);
      const event = await reading as FileEvent;
      close(event.fd);
      assert.equal(event.kind, "close-write");
      assert.deepEqual(seen, []);
      assert.equal(source.stats.events, 1);
      assert.equal(source.stats.permissionTimeouts, 0);
    },
    (dir) => shOk(dir, `mkdir "$d/keep" "$d/skip" && cp /bin/true "$d/skip/true"`),
  );
});

test("FanotifySource reports a name that is not UTF-8 byte for byte", async () => {
  await withSource({ onAccess: true, exec: "off" }, async (source, dir) => {
    const name = new Uint8Array([0x62, 0xff, 0xfe]);
    const path = new Uint8Array([...bytePath(`${dir}/`), ...name]);
    await shOk(dir, `printf data > "$d/b"$'\\xff\\xfe'`, "bash");
    const written = await waitFor(source, pathIs(path)) as FileEvent;
    close(written.fd);
    assert.equal(written.kind, "close-write");
    assert.deepEqual([...written.path], [...path]);

    const moved = new Uint8Array([...bytePath(`${dir}/sub/`), ...name]);
    await shOk(dir, `mkdir "$d/sub" && mv "$d/b"$'\\xff\\xfe' "$d/sub/"`, "bash");
    const event = await waitFor(source, pathIs(moved)) as FileEvent;
    try {
      assert.equal(event.kind, "moved-to");
      assert.deepEqual([...event.path], [...moved]);
      assert.equal(content(event.fd), "data");
    } finally {
      close(event.fd);
    }
  });
});

Deno.test("FanotifySource.open() refuses options that watch nothing", () => {
  assert.throws(
    () => FanotifySource.open({ paths: ["/"], onAccess: false, exec: "off" }),
    { name: "TypeError", message: /Nothing to watch: onAccess is false and exec is off/ },
  );
  assert.throws(
    () => FanotifySource.open({ paths: [], onAccess: true, exec: "off" }),
    { name: "TypeError", message: /Nothing to watch: no paths/ },
  );
});

Deno.test("FanotifySource.open() throws SysError ENOENT for a missing path and leaks nothing", () => {
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  const before = fds();
  assert.throws(
    () =>
      FanotifySource.open({ paths: ["/", "/nonexistent-amp-path"], onAccess: true, exec: "off" }),
    (error: unknown) =>
      error instanceof SysError && error.code === "ENOENT" && error.syscall === "openat",
  );
  assert.equal(fds(), before, "the descriptor of / was closed");
});

for (const [exec, onAccess] of [["passive", true], ["active", true], ["passive", false]] as const) {
  test(`FanotifySource (${exec}, on-access ${onAccess}): an ignored executable is not reported until modified`, async () => {
    await withSource({ onAccess, exec }, async (source, dir) => {
      await shOk(
        dir,
        `cp /bin/true "$d/t"; chmod 755 "$d/t"; cp /bin/true "$d/u"; chmod 755 "$d/u"`,
      );
      const ino = Deno.statSync(`${dir}/t`).ino!;
      const execOf = (e: MonitorEvent, name = "t") =>
        isFile(e) && (e.kind === "exec" || e.kind === "exec-perm") &&
        escapePath(e.path) === `${dir}/${name}`;
      // First run: reported; the consumer finds it clean and ignores it.
      const first = sh(dir, `"$d/t"`);
      const event = await waitFor(source, execOf) as FileEvent;
      assert.equal(event.ignoreUntilModified?.(), true);
      release(event);
      assert.equal((await first.status).code, 0);
      assert.equal(source.stats.ignoreMarks, 1);
      // Evictable: the mark does not pin the inode.
      assert.deepEqual(ignoreMarkFlags(ino), [FAN_MARK.EVICTABLE]);
      // Second run: not reported (a later write is the sentinel).
      // (Not awaited first: in active mode "u" waits for our answer.)
      const second = sh(dir, `"$d/t"; "$d/u"`);
      let execs = 0;
      // (Its exec, not the close-write of its copy: the groups are read independently.)
      await waitFor(source, (e) => execOf(e, "u"), {
        seen: (e) => execOf(e) && execs++,
      }).then(release);
      assert.equal((await second.status).code, 0);
      assert.equal(execs, 0, "the ignored executable was reported again");
      // Rewritten in place with the same byte (a real write): reported again.
      await shOk(dir, `dd if="$d/t" of="$d/t" bs=1 count=1 conv=notrunc`);
      const third = sh(dir, `"$d/t"`);
      const again = await waitFor(source, execOf) as FileEvent;
      assert.equal(again.ignoreUntilModified?.(), true);
      release(again);
      assert.equal((await third.status).code, 0);
      if (onAccess) {
        // Opened for writing and closed without a write, as after writes through a shared
        // mapping: no modification to the kernel, but the close-write removes the mark.
        const opener = sh(dir, `: 1<> "$d/t"`);
        release(
          await waitFor(
            source,
            (e) =>
              pathIs(bytePath(`${dir}/t`), "close-write")(e) && isFile(e) && e.pid === opener.pid,
          ),
        );
        assert.equal((await opener.status).code, 0);
        assert.deepEqual(ignoreMarkFlags(ino), []);
        const fourth = sh(dir, `"$d/t"`);
        const reported = await waitFor(source, execOf) as FileEvent;
        assert.equal(reported.ignoreUntilModified?.(), true);
        release(reported);
        assert.equal((await fourth.status).code, 0);
      }
      // Forgotten (signatures changed): reported again without a change to the file.
      source.forgetIgnored();
      assert.equal(source.stats.ignoreMarks, 0);
      assert.deepEqual(ignoreMarkFlags(ino), []);
      const fifth = sh(dir, `"$d/t"`);
      release(await waitFor(source, execOf));
      assert.equal((await fifth.status).code, 0);
    });
  });
}
