/**
 * The quarantine on real files and a real quarantine.db: round trips of
 * names that are not UTF-8 with owner, mode and times; refusals; recovery
 * after amp is killed (SIGKILL) after every step of quarantine, restore and
 * delete; and `amp quarantine` through its commander command.
 */

import assert from "node:assert/strict";
import { CommanderError } from "commander";
import { O } from "../ffi/libc.ts";
import { makeQuarantineCommand } from "../src/cli/quarantine_command.ts";
import { UsageError } from "../src/cli/usage_error.ts";
import {
  type FileToQuarantine,
  Quarantine,
  quarantineDir,
  QuarantineError,
  type QuarantineStep,
} from "../src/protect/quarantine.ts";
import { type BytePath, bytePath, escapePath, joinBytePath } from "../src/sys/byte_path.ts";
import {
  AT,
  close,
  fchmod,
  fchown,
  type FileStatWithAtime,
  fstat,
  fstatat,
  fstatWithAtime,
  futimens,
  openat,
  pread,
  pwriteAll,
} from "../src/sys/libc.ts";
import { SysError } from "../src/sys/sys_error.ts";
import { IN_CI } from "./fixtures/native.ts";
import { eicar, sha256 } from "./fixtures/samples.ts";

const REPO = new URL("..", import.meta.url).pathname;
const CRASH = new URL("./fixtures/quarantine_crash.ts", import.meta.url).pathname;
/** A file name that is not UTF-8: `b\xff\xfe`. */
const BAD_NAME = new Uint8Array([0x62, 0xff, 0xfe]);
const ATIME = 1_600_000_000_123_456_789n;
const MTIME = 1_500_000_000_987_654_321n;

const notRoot = Deno.uid() !== 0 && !IN_CI;
if (notRoot) console.log("quarantine_test: skipping owner (chown) tests: not root (CI != true)");

interface World {
  dir: string;
  /** The host root: the quarantine is <root>/var/lib/amp/quarantine. */
  root: string;
  qdir: string;
  /** Where the test's "host" files live. */
  files: string;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-quarantine-" });
  const w = { dir, root: `${dir}/root`, qdir: quarantineDir(`${dir}/root`), files: `${dir}/files` };
  await Deno.mkdir(w.files, { recursive: true });
  try {
    await fn(w);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Content with an EICAR-like marker, built at run time, at two places. */
function content(size = 4096): Uint8Array<ArrayBuffer> {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  const marker = new TextEncoder().encode(eicar());
  data.set(marker, 100);
  data.set(marker, size - marker.length - 1);
  return data;
}

function includes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** Writes a file by byte path, with its mode and times. */
function writeFile(
  path: BytePath,
  data: Uint8Array<ArrayBuffer>,
  options: { mode?: number; owner?: [number, number] } = {},
): void {
  const fd = openat(AT.FDCWD, path, O.WRONLY | O.CREAT | O.TRUNC | O.CLOEXEC, 0o600);
  try {
    pwriteAll(fd, data, 0);
    if (options.owner) fchown(fd, ...options.owner);
    fchmod(fd, options.mode ?? 0o644);
    futimens(fd, ATIME, MTIME);
  } finally {
    close(fd);
  }
}

/** The file's bytes by byte path, or undefined when it is missing. */
function readFile(path: BytePath): Uint8Array | undefined {
  let fd: number;
  try {
    fd = openat(AT.FDCWD, path, O.RDONLY | O.NOFOLLOW | O.CLOEXEC);
  } catch (error) {
    if (error instanceof SysError && error.code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const size = fstat(fd).size;
    const out = new Uint8Array(size);
    for (let off = 0; off < size;) off += pread(fd, out.subarray(off), off);
    return out;
  } finally {
    close(fd);
  }
}

/** Whether a name exists, without opening or reading it. */
function present(path: BytePath): boolean {
  try {
    fstatat(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
    return true;
  } catch (error) {
    if (error instanceof SysError && error.code === "ENOENT") return false;
    throw error;
  }
}

/** Stat with atime by byte path (opening does not move atime; reading would). */
function statFile(path: BytePath): FileStatWithAtime {
  const fd = openat(AT.FDCWD, path, O.RDONLY | O.NOFOLLOW | O.CLOEXEC);
  try {
    return fstatWithAtime(fd);
  } finally {
    close(fd);
  }
}

/** What the scanner hands over: an open descriptor, the path, the stat. */
function openForScan(path: BytePath): FileToQuarantine {
  const fd = openat(AT.FDCWD, path, O.RDONLY | O.NOFOLLOW | O.CLOEXEC);
  return { fd, path, stat: fstat(fd) };
}

async function quarantineFile(
  q: Quarantine,
  path: BytePath,
  data: Uint8Array,
) {
  const file = openForScan(path);
  try {
    return await q.quarantine(file, {
      name: "Amp.Test.Marker",
      engine: "test",
      sha256: sha256(data),
    });
  } finally {
    close(file.fd);
  }
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** The quarantine directory's files besides the database. */
async function copies(qdir: string): Promise<string[]> {
  return (await names(qdir)).filter((n) => !n.startsWith("quarantine.db"));
}

async function rejectsWith(promise: Promise<unknown>, reason: string, message?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof QuarantineError, String(error));
    assert.equal(error.name, "QuarantineError");
    assert.equal(error.reason, reason, error.message);
    if (message) assert.match(error.message, message);
    return true;
  });
}

Deno.test("Quarantine round-trips a file named b\\xff\\xfe: identical bytes, mode and times", async () => {
  await withWorld(async (w) => {
    const path = joinBytePath(bytePath(w.files), BAD_NAME);
    const data = content();
    writeFile(path, data, { mode: 0o750 });
    const before = statFile(path);
    const q = await Quarantine.open(w.qdir);
    try {
      assert.deepEqual(q.recovery, { rolledBack: 0, completed: 0, problems: [] });
      const record = await quarantineFile(q, path, data);
      assert.equal(readFile(path), undefined, "the original is gone");
      assert.deepEqual(await names(w.files), [], "no hidden name is left");
      assert.deepEqual(record.path, path);
      assert.equal(record.pathText, `${w.files}/b\\xff\\xfe`);
      assert.equal(record.state, "quarantined");
      assert.equal(record.size, data.length);
      assert.equal(record.sha256, sha256(data));
      assert.equal(record.mode, 0o100750);
      assert.equal(record.uid, before.uid);
      assert.equal(record.gid, before.gid);
      assert.equal(record.mtimeNs, MTIME);
      assert.equal(record.atimeNs, ATIME);
      assert.equal(record.detection, "Amp.Test.Marker");
      assert.equal(record.engine, "test");
      assert.ok(Math.abs(record.time - Date.now()) < 60_000);
      assert.equal(await q.count(), 1);
      assert.deepEqual(await q.get(record.id), record);
      assert.deepEqual(await q.list(), [record]);

      // The copy: inert, unrecognisable, 0400, with the format header.
      assert.deepEqual(await copies(w.qdir), [`${record.id}.amq`]);
      const copyPath = `${w.qdir}/${record.id}.amq`;
      const copy = await Deno.readFile(copyPath);
      assert.equal(new TextDecoder().decode(copy.subarray(0, 4)), "AMPQ");
      assert.equal(copy.length, 32 + data.length);
      assert.ok(!includes(copy, new TextEncoder().encode(eicar())), "the marker shows in the copy");
      assert.ok(!includes(copy, data.subarray(1000, 1032)), "plain bytes show in the copy");
      const copyMode = (await Deno.stat(copyPath)).mode! & 0o7777;
      assert.equal(copyMode, 0o400);
      assert.equal(copyMode & 0o111, 0, "the copy is not executable");
      assert.equal(await q.isRestored(sha256(data)), false);

      const { record: restored, path: where } = await q.restore(record.id);
      assert.deepEqual(where, path);
      const after = statFile(path); // before reading, which moves atime
      assert.deepEqual(readFile(path), data);
      assert.equal(after.mode, 0o100750);
      assert.equal(after.uid, before.uid);
      assert.equal(after.gid, before.gid);
      assert.equal(after.mtimeNs, MTIME);
      assert.equal(after.atimeNs, ATIME);
      assert.equal(restored.state, "restored");
      assert.deepEqual(restored.restoredPath, path);
      assert.ok(restored.restoredTime !== undefined);
      assert.deepEqual(await copies(w.qdir), [], "the copy is deleted after a restore");
      assert.deepEqual(await names(w.files), ["b\uFFFD\uFFFD"], "no temporary name is left");
      assert.equal(await q.count(), 0);
      assert.equal((await q.list()).length, 1, "the restored record stays as history");
      assert.equal(await q.isRestored(sha256(data)), true);
      assert.equal(await q.isRestored(sha256(data).toUpperCase()), true);
      await rejectsWith(q.restore(record.id), "state", /it is restored, not quarantined/);
    } finally {
      await q.close();
      await q.close();
    }
  });
});

Deno.test({
  name: "Quarantine restores owner 1234:1234 and mode 04750 (set-user-ID kept) (root)",
  ignore: notRoot,
  async fn() {
    await withWorld(async (w) => {
      const path = joinBytePath(bytePath(w.files), BAD_NAME);
      const data = content(70_000);
      writeFile(path, data, { mode: 0o4750, owner: [1234, 1234] });
      const q = await Quarantine.open(w.qdir);
      try {
        const record = await quarantineFile(q, path, data);
        assert.equal(record.uid, 1234);
        assert.equal(record.gid, 1234);
        assert.equal(record.mode, 0o104750);
        const copy = await Deno.stat(`${w.qdir}/${record.id}.amq`);
        assert.equal(copy.uid, 0, "the copy belongs to root");
        assert.equal(copy.mode! & 0o7777, 0o400, "no set-id copy in quarantine");
        await q.restore(record.id);
        const after = statFile(path);
        assert.deepEqual(readFile(path), data);
        assert.equal(after.uid, 1234);
        assert.equal(after.gid, 1234);
        assert.equal(after.mode, 0o104750);
        assert.equal(after.mtimeNs, MTIME);
        assert.equal(after.atimeNs, ATIME);
      } finally {
        await q.close();
      }
    });
  },
});

Deno.test("quarantine() refuses a file that changed since it was scanned and leaves it in place", async () => {
  await withWorld(async (w) => {
    const path = bytePath(`${w.files}/changing.bin`);
    const scanned = content();
    writeFile(path, scanned);
    const q = await Quarantine.open(w.qdir);
    const file = openForScan(path);
    try {
      // Another process rewrites the file after the scan, through the same inode.
      const now = content();
      await Deno.writeFile(`${w.files}/changing.bin`, now);
      await rejectsWith(
        q.quarantine(file, { name: "X", engine: "test", sha256: sha256(scanned) }),
        "changed",
        /changed since it was scanned/,
      );
      assert.deepEqual(readFile(path), now);
      assert.equal(statFile(path).ino, file.stat.ino);
      assert.deepEqual(await q.list(), []);
      assert.deepEqual(await copies(w.qdir), []);
      assert.deepEqual(await names(w.files), ["changing.bin"]);
    } finally {
      close(file.fd);
      await q.close();
    }
  });
});

Deno.test("quarantine() refuses when the path names another file now, or a non-regular file", async () => {
  await withWorld(async (w) => {
    const path = bytePath(`${w.files}/f`);
    const data = content();
    writeFile(path, data);
    const q = await Quarantine.open(w.qdir);
    const file = openForScan(path);
    try {
      await Deno.rename(`${w.files}/f`, `${w.files}/moved`);
      await Deno.writeTextFile(`${w.files}/f`, "another file");
      await rejectsWith(
        q.quarantine(file, { name: "X", engine: "test", sha256: sha256(data) }),
        "moved",
        /no longer at this path/,
      );
      assert.equal(await Deno.readTextFile(`${w.files}/f`), "another file");
      assert.deepEqual(readFile(bytePath(`${w.files}/moved`)), data);
      assert.deepEqual(await q.list(), []);
      assert.deepEqual(await copies(w.qdir), []);
    } finally {
      close(file.fd);
    }
    const dir = openForScan(bytePath(w.files));
    try {
      await rejectsWith(
        q.quarantine(dir, { name: "X", engine: "test", sha256: "00".repeat(32) }),
        "not-regular",
      );
    } finally {
      close(dir.fd);
      await q.close();
    }
  });
});

Deno.test("restore() refuses to overwrite an existing file without force, and replaces it with force", async () => {
  await withWorld(async (w) => {
    const path = bytePath(`${w.files}/app`);
    const data = content();
    writeFile(path, data);
    const q = await Quarantine.open(w.qdir);
    try {
      const record = await quarantineFile(q, path, data);
      await Deno.writeTextFile(`${w.files}/app`, "a new version");
      await rejectsWith(q.restore(record.id), "exists", /a file is already there/);
      assert.equal(await Deno.readTextFile(`${w.files}/app`), "a new version");
      assert.equal((await q.get(record.id))?.state, "quarantined");
      assert.deepEqual(await copies(w.qdir), [`${record.id}.amq`]);
      assert.deepEqual(await names(w.files), ["app"]);

      await q.restore(record.id, { force: true });
      assert.deepEqual(readFile(path), data);
      assert.deepEqual(await copies(w.qdir), []);
    } finally {
      await q.close();
    }
  });
});

Deno.test("restore() with `to` writes the file elsewhere, even to a name that is not UTF-8", async () => {
  await withWorld(async (w) => {
    const path = bytePath(`${w.files}/orig`);
    const data = content();
    writeFile(path, data, { mode: 0o600 });
    await Deno.mkdir(`${w.dir}/elsewhere`);
    const to = joinBytePath(bytePath(`${w.dir}/elsewhere`), BAD_NAME);
    const q = await Quarantine.open(w.qdir);
    try {
      const record = await quarantineFile(q, path, data);
      const { record: restored, path: where } = await q.restore(record.id, { to });
      assert.deepEqual(where, to);
      assert.deepEqual(readFile(to), data);
      assert.equal(statFile(to).mode, 0o100600);
      assert.equal(statFile(to).mtimeNs, MTIME);
      assert.equal(readFile(path), undefined, "the original path stays empty");
      assert.deepEqual(restored.path, path);
      assert.deepEqual(restored.restoredPath, to);
      assert.equal(restored.restoredPathText, `${w.dir}/elsewhere/b\\xff\\xfe`);
      await rejectsWith(
        q.restore(record.id, { to: bytePath(`${w.dir}/missing/x`) }),
        "state",
      );
    } finally {
      await q.close();
    }
  });
});

Deno.test("restore() into a missing directory fails and keeps the file in quarantine", async () => {
  await withWorld(async (w) => {
    const path = bytePath(`${w.files}/f`);
    const data = content();
    writeFile(path, data);
    const q = await Quarantine.open(w.qdir);
    try {
      const record = await quarantineFile(q, path, data);
      await rejectsWith(
        q.restore(record.id, { to: bytePath(`${w.dir}/missing/x`) }),
        "io",
        /ENOENT/,
      );
      assert.equal((await q.get(record.id))?.state, "quarantined");
      assert.deepEqual(await copies(w.qdir), [`${record.id}.amq`]);
    } finally {
      await q.close();
    }
  });
});

Deno.test("delete() removes the copy and the record for good; unknown ids are refused", async () => {
  await withWorld(async (w) => {
    const a = bytePath(`${w.files}/a`);
    const b = bytePath(`${w.files}/b`);
    const dataA = content();
    const dataB = content();
    writeFile(a, dataA);
    writeFile(b, dataB);
    const q = await Quarantine.open(w.qdir);
    try {
      const ra = await quarantineFile(q, a, dataA);
      const rb = await quarantineFile(q, b, dataB);
      assert.equal(rb.id, ra.id + 1);
      await q.delete(ra.id);
      assert.equal(await q.get(ra.id), undefined);
      assert.deepEqual(await copies(w.qdir), [`${rb.id}.amq`]);
      assert.equal(await q.count(), 1);
      await rejectsWith(q.delete(ra.id), "unknown-id", /No quarantine record has id/);
      await rejectsWith(q.restore(999), "unknown-id");

      // Deleting a restored record forgets the history (and the "restored" mark).
      await q.restore(rb.id);
      assert.equal(await q.isRestored(sha256(dataB)), true);
      await q.delete(rb.id);
      assert.equal(await q.isRestored(sha256(dataB)), false);
      assert.deepEqual(await q.list(), []);
      assert.deepEqual(readFile(b), dataB, "forgetting a restored record leaves the file alone");
    } finally {
      await q.close();
    }
  });
});

Deno.test("Quarantine.open() makes the directory 0700 and the database 0600, and holds a lock", async () => {
  await withWorld(async (w) => {
    const q = await Quarantine.open(w.qdir);
    try {
      assert.equal((await Deno.stat(w.qdir)).mode! & 0o777, 0o700);
      for (const name of await names(w.qdir)) {
        assert.equal((await Deno.stat(`${w.qdir}/${name}`)).mode! & 0o777, 0o600, name);
      }
      await rejectsWith(Quarantine.open(w.qdir), "busy", /another amp process/);
      const reader = await Quarantine.open(w.qdir, { readOnly: true });
      try {
        assert.deepEqual(await reader.list(), []);
        await assert.rejects(reader.delete(1), /read-only/);
      } finally {
        await reader.close();
      }
    } finally {
      await q.close();
    }
    // Closing releases the lock.
    await (await Quarantine.open(w.qdir)).close();
  });
});

Deno.test("Quarantine.open() reports a record whose copy vanished and a copy without a record", async () => {
  await withWorld(async (w) => {
    const path = bytePath(`${w.files}/f`);
    const data = content();
    writeFile(path, data);
    const q = await Quarantine.open(w.qdir);
    const record = await quarantineFile(q, path, data);
    await q.close();
    await Deno.remove(`${w.qdir}/${record.id}.amq`);
    await Deno.writeTextFile(`${w.qdir}/77.amq`, "stray");
    const again = await Quarantine.open(w.qdir);
    try {
      assert.equal(again.recovery.rolledBack, 0);
      assert.equal(again.recovery.completed, 0);
      assert.deepEqual(again.recovery.problems, [
        `Record ${record.id} (${w.files}/f): its copy ${record.id}.amq is missing`,
        `77.amq in ${w.qdir} has no record; left as it is`,
      ]);
      await rejectsWith(again.restore(record.id), "corrupt-copy", /cannot be opened/);
      assert.equal((await again.get(record.id))?.state, "quarantined");
    } finally {
      await again.close();
    }
  });
});

// ---- Crash safety: a child process kills itself (SIGKILL) right after each step. ----

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function crash(args: string[]): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CRASH, ...args],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.signal, "SIGKILL", `the child was not killed at ${args.join(" ")}: ${said}`);
}

/** Bigger than one copy chunk (1 MiB), so that a copy in progress is partial. */
const CRASH_SIZE = 2_500_000;

/** Records as the child left them, before any recovery (read-only open). */
async function statesBefore(qdir: string): Promise<string[]> {
  const reader = await Quarantine.open(qdir, { readOnly: true });
  try {
    return (await reader.list()).map((r) => `${r.id}:${r.state}`);
  } finally {
    await reader.close();
  }
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await Deno.lstat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

const QUARANTINE_CRASHES: Array<{
  step: QuarantineStep;
  outcome: "rolled back" | "completed" | "done";
  /** What the disk holds when the child dies: the file, the hidden name, the copies. */
  disk: { file: boolean; hidden: boolean; tmp: "none" | "partial" | "full"; amq: boolean };
}> = [
  {
    step: "quarantine:pending",
    outcome: "rolled back",
    disk: { file: true, hidden: false, tmp: "none", amq: false },
  },
  {
    step: "quarantine:copying",
    outcome: "rolled back",
    disk: { file: true, hidden: false, tmp: "partial", amq: false },
  },
  {
    step: "quarantine:copied",
    outcome: "rolled back",
    disk: { file: true, hidden: false, tmp: "full", amq: false },
  },
  {
    step: "quarantine:stored",
    outcome: "rolled back",
    disk: { file: true, hidden: false, tmp: "none", amq: true },
  },
  {
    step: "quarantine:detached",
    outcome: "rolled back",
    disk: { file: false, hidden: true, tmp: "none", amq: true },
  },
  {
    step: "quarantine:unlinked",
    outcome: "completed",
    disk: { file: false, hidden: false, tmp: "none", amq: true },
  },
  {
    step: "quarantine:done",
    outcome: "done",
    disk: { file: false, hidden: false, tmp: "none", amq: true },
  },
];

for (const { step, outcome, disk } of QUARANTINE_CRASHES) {
  Deno.test(`quarantine() killed after ${step}: the file is ${outcome}, never lost`, async () => {
    await withWorld(async (w) => {
      const path = joinBytePath(bytePath(w.files), BAD_NAME);
      const data = content(CRASH_SIZE);
      writeFile(path, data, { mode: 0o640 });
      const before = statFile(path);
      await crash(["quarantine", w.qdir, hex(path), sha256(data), step]);

      // The child died where the test meant it to.
      assert.equal(present(path), disk.file, "file at its path");
      const hidden = (await names(w.files)).filter((n) => n.startsWith(".amp-quarantine-1-"));
      assert.equal(hidden.length, disk.hidden ? 1 : 0, "the hidden name");
      assert.match(hidden[0] ?? "-0123456789ab", /-[0-9a-f]{12}$/);
      const tmp = await sizeOf(`${w.qdir}/1.tmp`);
      const full = 32 + data.length;
      const tmpState = tmp === undefined ? "none" : tmp < full ? "partial" : "full";
      assert.equal(tmpState, disk.tmp, `1.tmp is ${tmp} bytes`);
      assert.equal(await sizeOf(`${w.qdir}/1.amq`), disk.amq ? full : undefined);
      assert.deepEqual(await statesBefore(w.qdir), [
        `1:${outcome === "done" ? "quarantined" : "pending"}`,
      ]);

      const q = await Quarantine.open(w.qdir);
      try {
        assert.deepEqual(q.recovery, {
          rolledBack: outcome === "rolled back" ? 1 : 0,
          completed: outcome === "completed" ? 1 : 0,
          problems: [],
        });
        if (outcome === "rolled back") {
          assert.deepEqual(readFile(path), data, "the file is back, byte for byte");
          const now = statFile(path);
          assert.equal(now.ino, before.ino, "the same inode");
          assert.equal(now.mode, before.mode);
          assert.equal(now.mtimeNs, MTIME);
          assert.deepEqual(await q.list(), []);
          assert.deepEqual(await copies(w.qdir), []);
          assert.deepEqual(await names(w.files), ["b\uFFFD\uFFFD"]);
        } else {
          assert.equal(readFile(path), undefined);
          assert.deepEqual(await names(w.files), [], "no hidden name is left");
          const [record] = await q.list();
          assert.equal(record.state, "quarantined");
          assert.deepEqual(record.path, path);
          assert.deepEqual(await copies(w.qdir), ["1.amq"]);
          await q.restore(record.id);
          assert.deepEqual(readFile(path), data, "restore gives the bytes back");
          assert.equal(statFile(path).mode, 0o100640);
        }
      } finally {
        await q.close();
      }
    });
  });
}

const RESTORE_CRASHES: Array<{
  step: QuarantineStep;
  outcome: "rolled back" | "completed" | "done";
  disk: { state: string; temp: "none" | "partial" | "full"; target: boolean; amq: boolean };
}> = [
  {
    step: "restore:restoring",
    outcome: "rolled back",
    disk: { state: "restoring", temp: "none", target: false, amq: true },
  },
  {
    step: "restore:writing",
    outcome: "rolled back",
    disk: { state: "restoring", temp: "partial", target: false, amq: true },
  },
  {
    step: "restore:written",
    outcome: "rolled back",
    disk: { state: "restoring", temp: "full", target: false, amq: true },
  },
  {
    step: "restore:placed",
    outcome: "completed",
    disk: { state: "restoring", temp: "none", target: true, amq: true },
  },
  {
    step: "restore:marked",
    outcome: "completed",
    disk: { state: "restored", temp: "none", target: true, amq: true },
  },
  {
    step: "restore:done",
    outcome: "done",
    disk: { state: "restored", temp: "none", target: true, amq: false },
  },
];

for (const { step, outcome, disk } of RESTORE_CRASHES) {
  Deno.test(`restore() killed after ${step}: the restore is ${outcome}, never lost`, async () => {
    await withWorld(async (w) => {
      const path = joinBytePath(bytePath(w.files), BAD_NAME);
      const data = content(CRASH_SIZE);
      writeFile(path, data, { mode: 0o640 });
      const q0 = await Quarantine.open(w.qdir);
      const { id } = await quarantineFile(q0, path, data);
      await q0.close();
      await crash(["restore", w.qdir, String(id), step]);

      assert.deepEqual(await statesBefore(w.qdir), [`${id}:${disk.state}`]);
      const temps = (await names(w.files)).filter((n) => n.startsWith(`.amp-restore-${id}-`));
      const temp = temps.length ? await sizeOf(`${w.files}/${temps[0]}`) : undefined;
      const tempState = temp === undefined ? "none" : temp < data.length ? "partial" : "full";
      assert.equal(tempState, disk.temp, `${temps} is ${temp} bytes`);
      assert.equal(present(path), disk.target, "file at its path");
      assert.equal(await sizeOf(`${w.qdir}/${id}.amq`) !== undefined, disk.amq);

      const q = await Quarantine.open(w.qdir);
      try {
        assert.deepEqual(q.recovery, {
          rolledBack: outcome === "rolled back" ? 1 : 0,
          completed: outcome === "completed" ? 1 : 0,
          problems: [],
        });
        if (outcome === "rolled back") {
          assert.equal(readFile(path), undefined);
          assert.deepEqual(await names(w.files), [], "no temporary name is left");
          assert.equal((await q.get(id))?.state, "quarantined");
          assert.deepEqual(await copies(w.qdir), [`${id}.amq`]);
          await q.restore(id);
        } else {
          assert.equal((await q.get(id))?.state, "restored");
          assert.deepEqual(await copies(w.qdir), []);
        }
        const now = statFile(path); // before reading, which moves atime
        assert.deepEqual(readFile(path), data, "the file is back, byte for byte");
        assert.equal(now.mode, 0o100640);
        assert.equal(now.mtimeNs, MTIME);
        assert.equal(now.atimeNs, ATIME);
        assert.deepEqual(await names(w.files), ["b\uFFFD\uFFFD"]);
      } finally {
        await q.close();
      }
    });
  });
}

for (const step of ["delete:deleting", "delete:unlinked", "delete:done"] as const) {
  Deno.test(`delete() killed after ${step}: the deletion is finished`, async () => {
    await withWorld(async (w) => {
      const path = bytePath(`${w.files}/f`);
      const data = content();
      writeFile(path, data);
      const q0 = await Quarantine.open(w.qdir);
      const { id } = await quarantineFile(q0, path, data);
      await q0.close();
      await crash(["delete", w.qdir, String(id), step]);

      assert.deepEqual(
        await statesBefore(w.qdir),
        step === "delete:done" ? [] : [`${id}:deleting`],
      );
      assert.equal(await sizeOf(`${w.qdir}/${id}.amq`) !== undefined, step === "delete:deleting");
      const q = await Quarantine.open(w.qdir);
      try {
        assert.deepEqual(q.recovery, {
          rolledBack: 0,
          completed: step === "delete:done" ? 0 : 1,
          problems: [],
        });
        assert.deepEqual(await q.list(), []);
        assert.deepEqual(await copies(w.qdir), []);
      } finally {
        await q.close();
      }
    });
  });
}

// ---- amp quarantine ----

interface CliRun {
  stdout: string[];
  stderr: string[];
}

async function cli(args: string[]): Promise<CliRun> {
  const run: CliRun = { stdout: [], stderr: [] };
  const command = makeQuarantineCommand({
    stdout: (text) => run.stdout.push(text),
    stderr: (text) => run.stderr.push(text),
  }).exitOverride();
  for (const sub of command.commands) {
    sub.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  }
  await command.parseAsync(args, { from: "user" });
  return run;
}

async function cliError(args: string[]): Promise<UsageError> {
  try {
    await cli(args);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error;
  }
  assert.fail(`amp quarantine ${args.join(" ")} did not fail`);
}

Deno.test("amp quarantine list shows an empty quarantine without creating it", async () => {
  await withWorld(async (w) => {
    const run = await cli(["list", "--root", w.root]);
    assert.deepEqual(run.stdout, [`The quarantine is empty (${w.qdir}).`]);
    assert.deepEqual(JSON.parse((await cli(["list", "--json", "--root", w.root])).stdout[0]), {
      dir: w.qdir,
      records: [],
    });
    assert.equal(await sizeOf(w.qdir), undefined);
    const unknown = await cliError(["restore", "3", "--root", w.root]);
    assert.equal(unknown.exitCode, 2);
  });
});

Deno.test("amp quarantine list, restore --to, restore refusal and delete", async () => {
  await withWorld(async (w) => {
    const path = joinBytePath(bytePath(w.files), BAD_NAME);
    const data = content();
    writeFile(path, data, { mode: 0o750 });
    const q = await Quarantine.open(w.qdir);
    const { id } = await quarantineFile(q, path, data);
    await q.close();

    const listed = await cli(["list", "--root", w.root]);
    const table = listed.stdout[0].split("\n");
    assert.match(table[0], /^ID +STATE +QUARANTINED +SIZE +DETECTION +ENGINE +PATH$/);
    assert.match(
      table[1],
      new RegExp(`^${id} +quarantined +\\S+Z +${data.length} +Amp\\.Test\\.Marker +test +`),
    );
    assert.ok(table[1].endsWith(`${w.files}/b\\xff\\xfe`), table[1]);
    assert.equal(table.at(-1), `1 file in quarantine (${w.qdir}).`);

    const json = JSON.parse((await cli(["list", "--json", "--root", w.root])).stdout[0]);
    assert.equal(json.records.length, 1);
    const [r] = json.records;
    assert.equal(r.id, id);
    assert.equal(r.path, escapePath(path));
    assert.deepEqual(Uint8Array.from(atob(r.pathBase64), (c) => c.charCodeAt(0)), path);
    assert.equal(r.permissions, "0750");
    assert.equal(r.mtimeNs, String(MTIME));
    assert.equal(r.sha256, sha256(data));

    // Refused: something is at the original path.
    writeFile(path, new TextEncoder().encode("new"));
    const refused = await cliError(["restore", String(id), "--root", w.root]);
    assert.equal(refused.exitCode, 1);
    assert.match(refused.message, /a file is already there\. Add --force to replace it\.$/);
    assert.equal(new TextDecoder().decode(readFile(path)), "new");

    const unknown = await cliError(["restore", "999", "--root", w.root]);
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.message, /No quarantine record has id 999 \(amp quarantine list/);
    await assert.rejects(cli(["restore", "x1", "--root", w.root]), CommanderError);

    const to = `${w.dir}/inspect.bin`;
    const restored = await cli(["restore", String(id), "--to", to, "--json", "--root", w.root]);
    const out = JSON.parse(restored.stdout[0]);
    assert.equal(out.path, to);
    assert.equal(out.record.state, "restored");
    assert.equal(out.record.restoredPath, to);
    assert.deepEqual(await Deno.readFile(to), data);

    const again = await cliError(["restore", String(id), "--root", w.root]);
    assert.equal(again.exitCode, 2);
    assert.match(again.message, /it is restored, not quarantined/);

    const forgot = await cli(["delete", String(id), "--root", w.root]);
    assert.deepEqual(forgot.stdout, [`Forgot the restored record ${id} (${escapePath(path)}).`]);
    assert.deepEqual((await cli(["list", "--json", "--root", w.root])).stdout, [
      JSON.stringify({ dir: w.qdir, records: [] }, null, 2),
    ]);
  });
});

Deno.test("amp quarantine restore and delete act on the quarantine and say what they did", async () => {
  await withWorld(async (w) => {
    const a = bytePath(`${w.files}/a`);
    const b = bytePath(`${w.files}/b`);
    const dataA = content();
    const dataB = content();
    writeFile(a, dataA, { mode: 0o644 });
    writeFile(b, dataB);
    const q = await Quarantine.open(w.qdir);
    const ra = await quarantineFile(q, a, dataA);
    const rb = await quarantineFile(q, b, dataB);
    await q.close();

    const restored = await cli(["restore", String(ra.id), "--root", w.root]);
    const owner = `${ra.uid}:${ra.gid}`;
    assert.deepEqual(restored.stdout, [
      `Restored ${ra.id} to ${w.files}/a: ${dataA.length} bytes, owner ${owner}, mode 0644, ` +
      `SHA-256 ${sha256(dataA)}.`,
    ]);
    assert.deepEqual(readFile(a), dataA);

    const deleted = await cli(["delete", String(rb.id), "--root", w.root]);
    assert.deepEqual(deleted.stdout, [`Deleted ${rb.id} (${w.files}/b).`]);
    assert.deepEqual(await copies(w.qdir), []);
    assert.equal(readFile(b), undefined);
    assert.match((await cli(["list", "--root", w.root])).stdout[0], /0 files in quarantine/);
  });
});

Deno.test("amp quarantine --help teaches the subcommands with examples", () => {
  const help = makeQuarantineCommand().helpInformation() +
    makeQuarantineCommand().commands.map((c) => c.helpInformation()).join("");
  for (const text of ["list", "restore", "delete", "--to <path>", "--force", "--root <dir>"]) {
    assert.ok(help.includes(text), text);
  }
  let after = "";
  const command = makeQuarantineCommand().configureOutput({ writeOut: (s) => after += s });
  command.outputHelp();
  assert.match(after, /Examples:\n {2}amp quarantine list/);
  assert.match(after, /Exit status: 0 done, 1 refused/);
});

Deno.test("recovery decides by what exists when the host changed while amp was down", async (t) => {
  const setup = async (w: World, step: QuarantineStep) => {
    const path = bytePath(`${w.files}/f`);
    const data = content(CRASH_SIZE);
    writeFile(path, data);
    await crash(["quarantine", w.qdir, hex(path), sha256(data), step]);
    return { path, data };
  };

  await t.step(
    "original path taken by a new file after the detach: quarantine completed",
    async () => {
      await withWorld(async (w) => {
        const { path, data } = await setup(w, "quarantine:detached");
        await Deno.writeTextFile(`${w.files}/f`, "a new file");
        const q = await Quarantine.open(w.qdir);
        try {
          assert.equal(q.recovery.completed, 1);
          assert.match(q.recovery.problems[0], /another file took its path.*completed/);
          assert.equal(await Deno.readTextFile(`${w.files}/f`), "a new file");
          assert.deepEqual(await names(w.files), ["f"]);
          await q.restore(1, { to: bytePath(`${w.dir}/back`) });
          assert.deepEqual(readFile(bytePath(`${w.dir}/back`)), data);
          assert.notDeepEqual(readFile(path), data);
        } finally {
          await q.close();
        }
      });
    },
  );

  await t.step(
    "path taken and the detached file changed: both kept, reported, pending",
    async () => {
      await withWorld(async (w) => {
        const { data } = await setup(w, "quarantine:detached");
        const [hidden] = (await names(w.files)).filter((n) => n.startsWith(".amp-quarantine-1-"));
        await Deno.writeTextFile(`${w.files}/${hidden}`, "appended", { append: true });
        await Deno.writeTextFile(`${w.files}/f`, "a new file");
        const q = await Quarantine.open(w.qdir);
        try {
          assert.equal(q.recovery.rolledBack + q.recovery.completed, 0);
          assert.match(
            q.recovery.problems[0],
            /kept as \.amp-quarantine-1-[0-9a-f]{12} beside it and the record stays pending \(/,
          );
          const kept = await Deno.readFile(`${w.files}/${hidden}`);
          assert.deepEqual(kept.subarray(0, data.length), data);
          assert.equal(await Deno.readTextFile(`${w.files}/f`), "a new file");
          assert.deepEqual((await q.list()).map((r) => r.state), ["pending"]);
          await rejectsWith(q.restore(1), "state", /it is pending/);
        } finally {
          await q.close();
        }
        // The administrator moves the new file away: the next open puts the original back.
        await Deno.rename(`${w.files}/f`, `${w.dir}/new-file`);
        const again = await Quarantine.open(w.qdir);
        try {
          assert.deepEqual(again.recovery, { rolledBack: 1, completed: 0, problems: [] });
          assert.equal((await Deno.readFile(`${w.files}/f`)).length, data.length + 8);
          assert.deepEqual(await again.list(), []);
          assert.deepEqual(await copies(w.qdir), []);
        } finally {
          await again.close();
        }
      });
    },
  );
  await t.step(
    "file deleted by someone after the copy was stored: quarantine completed",
    async () => {
      await withWorld(async (w) => {
        const { data } = await setup(w, "quarantine:stored");
        await Deno.remove(`${w.files}/f`);
        const q = await Quarantine.open(w.qdir);
        try {
          assert.deepEqual(q.recovery, { rolledBack: 0, completed: 1, problems: [] });
          await q.restore(1);
          assert.deepEqual(await Deno.readFile(`${w.files}/f`), data);
        } finally {
          await q.close();
        }
      });
    },
  );

  await t.step(
    "file deleted by someone before the copy was complete: nothing to keep",
    async () => {
      await withWorld(async (w) => {
        await setup(w, "quarantine:copying");
        await Deno.remove(`${w.files}/f`);
        const q = await Quarantine.open(w.qdir);
        try {
          assert.equal(q.recovery.rolledBack, 1);
          assert.match(q.recovery.problems[0], /disappeared before amp moved it/);
          assert.deepEqual(await q.list(), []);
          assert.deepEqual(await copies(w.qdir), []);
        } finally {
          await q.close();
        }
      });
    },
  );
});

Deno.test("quarantine() is not blocked by planted hidden names, and runs calls one at a time", async () => {
  await withWorld(async (w) => {
    for (let id = 1; id <= 3; id++) {
      await Deno.writeTextFile(`${w.files}/.amp-quarantine-${id}`, "planted");
      await Deno.writeTextFile(`${w.files}/.amp-restore-${id}`, "planted");
    }
    const data = [content(), content(), content()];
    const paths = data.map((_, i) => bytePath(`${w.files}/f${i}`));
    data.forEach((d, i) => writeFile(paths[i], d));
    const q = await Quarantine.open(w.qdir);
    try {
      const records = await Promise.all(paths.map((p, i) => quarantineFile(q, p, data[i])));
      assert.deepEqual(records.map((r) => r.id).sort(), [1, 2, 3]);
      assert.deepEqual(await copies(w.qdir), ["1.amq", "2.amq", "3.amq"]);
      for (const r of records) await q.restore(r.id);
      paths.forEach((p, i) => assert.deepEqual(readFile(p), data[i]));
      assert.equal(await Deno.readTextFile(`${w.files}/.amp-quarantine-1`), "planted");
      assert.equal(await Deno.readTextFile(`${w.files}/.amp-restore-1`), "planted");
    } finally {
      await q.close();
    }
  });
});
