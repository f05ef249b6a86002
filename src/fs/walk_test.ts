import assert from "node:assert/strict";
import { bytePath, escapePath } from "../sys/byte_path.ts";
import { close, pread } from "../sys/libc.ts";
import { walk, type WalkItem, type WalkOptions } from "./walk.ts";

/** What a test compares: the item with its path relative to `base` and no descriptor. */
type Seen =
  | { kind: "file"; path: string; size: number; head: string }
  | { kind: "skipped"; path: string; reason: string; detail?: string }
  | { kind: "error"; path: string; error: string };

/** Walks, closes every file descriptor it is handed, and returns the items sorted by path. */
function collect(base: string, roots: string[], options: WalkOptions = {}): Seen[] {
  const out: Seen[] = [];
  for (const item of walk(roots.map(bytePath), options)) {
    if (item.kind !== "tick") out.push(seen(base, item));
  }
  return out.sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
}

function seen(base: string, item: Exclude<WalkItem, { kind: "tick" }>): Seen {
  const path = escapePath(item.path).slice(base.length);
  if (item.kind === "file") {
    try {
      const buf = new Uint8Array(16);
      const n = pread(item.fd, buf, 0);
      return {
        kind: "file",
        path,
        size: item.stat.size,
        head: new TextDecoder().decode(buf.subarray(0, n)),
      };
    } finally {
      close(item.fd);
    }
  }
  if (item.kind === "skipped") {
    return { kind: "skipped", path, reason: item.reason, detail: item.detail };
  }
  return { kind: "error", path, error: item.error };
}

async function sh(script: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("sh", { args: ["-c", script, "sh", ...args] }).output();
  assert.ok(out.success, `sh failed: ${new TextDecoder().decode(out.stderr)}`);
}

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

async function withTempDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-walk-" });
  try {
    await fn(dir);
  } finally {
    await Deno.chmod(dir, 0o700).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("walk() yields every regular file of a nested tree, opened, with its stat", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/a/b/c`, { recursive: true });
    await Deno.mkdir(`${dir}/empty`);
    await Deno.writeTextFile(`${dir}/top.txt`, "top");
    await Deno.writeTextFile(`${dir}/a/one.txt`, "one!");
    await Deno.writeTextFile(`${dir}/a/b/c/deep.txt`, "deepest");
    await Deno.writeTextFile(`${dir}/a/b/line\nbreak`, "nl");
    assert.deepEqual(collect(dir, [dir]), [
      { kind: "file", path: "/a/b/c/deep.txt", size: 7, head: "deepest" },
      { kind: "file", path: "/a/b/line\\nbreak", size: 2, head: "nl" },
      { kind: "file", path: "/a/one.txt", size: 4, head: "one!" },
      { kind: "file", path: "/top.txt", size: 3, head: "top" },
    ]);
  });
});

Deno.test("walk() reaches a file whose name is not UTF-8 and keeps its bytes", async () => {
  await withTempDir(async (dir) => {
    await sh('printf evil > "$1/$(printf "bad\\377\\376")"', dir);
    const items = [...walk([bytePath(dir)])];
    try {
      assert.equal(items.length, 1);
      const item = items[0];
      assert.equal(item.kind, "file");
      const name = item.path.subarray(item.path.length - 5);
      assert.deepEqual(name, new Uint8Array([0x62, 0x61, 0x64, 0xff, 0xfe]));
      assert.equal(escapePath(item.path), `${dir}/bad\\xff\\xfe`);
      if (item.kind === "file") assert.equal(item.stat.size, 4);
    } finally {
      for (const item of items) if (item.kind === "file") close(item.fd);
    }
  });
});

Deno.test("walk() neither follows nor reports symbolic links below a root", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/real`);
    await Deno.writeTextFile(`${dir}/real/f.txt`, "f");
    const outside = await Deno.makeTempDir({ prefix: "amp-walk-outside-" });
    try {
      await Deno.writeTextFile(`${outside}/secret.txt`, "s");
      await Deno.symlink(`${dir}/real/f.txt`, `${dir}/link-to-file`);
      await Deno.symlink(outside, `${dir}/link-to-dir`);
      await Deno.symlink(`${dir}/nowhere`, `${dir}/dangling`);
      assert.deepEqual(collect(dir, [dir]), [
        { kind: "file", path: "/real/f.txt", size: 1, head: "f" },
      ]);
    } finally {
      await Deno.remove(outside, { recursive: true });
    }
  });
});

Deno.test("walk() follows a root that is a symbolic link (it was named on purpose)", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/real`);
    await Deno.writeTextFile(`${dir}/real/f.txt`, "f");
    await Deno.symlink(`${dir}/real`, `${dir}/root-link`);
    await Deno.symlink(`${dir}/real/f.txt`, `${dir}/file-link`);
    assert.deepEqual(collect(dir, [`${dir}/root-link`, `${dir}/file-link`]), [
      { kind: "file", path: "/file-link", size: 1, head: "f" },
      { kind: "file", path: "/root-link/f.txt", size: 1, head: "f" },
    ]);
  });
});

Deno.test("walk() reports a FIFO as skipped not-regular and never opens it", async () => {
  await withTempDir(async (dir) => {
    await sh('mkfifo "$1/pipe"', dir);
    await Deno.writeTextFile(`${dir}/after.txt`, "x");
    // A writer blocks in open() until someone opens the FIFO for reading: if the
    // walk opened it, the writer would finish before `timeout` kills it (124).
    const writer = new Deno.Command("timeout", {
      args: ["1", "sh", "-c", 'printf x > "$1"', "sh", `${dir}/pipe`],
    }).spawn();
    await new Promise((r) => setTimeout(r, 200));
    const items = collect(dir, [dir, `${dir}/pipe`]);
    const status = await writer.status;
    assert.deepEqual(items, [
      { kind: "file", path: "/after.txt", size: 1, head: "x" },
      { kind: "skipped", path: "/pipe", reason: "not-regular", detail: "FIFO" },
      { kind: "skipped", path: "/pipe", reason: "not-regular", detail: "FIFO" },
    ]);
    assert.equal(status.code, 124, "the FIFO was opened by the walk");
  });
});

Deno.test("walk() reports an entry removed after the listing as an error and goes on", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/gone-dir`);
    await Deno.writeTextFile(`${dir}/gone-file`, "g");
    await Deno.writeTextFile(`${dir}/kept`, "k");
    // exclude() is asked right before each entry is opened: remove it there.
    const exclude = (path: Uint8Array) => {
      const p = escapePath(path);
      if (p.endsWith("/gone-dir") || p.endsWith("/gone-file")) Deno.removeSync(p);
      return undefined;
    };
    const items = collect(dir, [dir], { exclude });
    assert.equal(items.length, 3);
    assert.deepEqual(items[2], { kind: "file", path: "/kept", size: 1, head: "k" });
    for (const item of items.slice(0, 2)) {
      assert.equal(item.kind, "error");
      if (item.kind === "error") assert.match(item.error, /^openat: ENOENT/);
    }
    assert.deepEqual(items.map((i) => i.path), ["/gone-dir", "/gone-file", "/kept"]);
  });
});

Deno.test({
  name: "walk() reports an unreadable directory as an error and goes on",
  // As root, permission bits do not stop openat(): the test needs an ordinary user.
  ignore: Deno.uid() === 0,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.mkdir(`${dir}/locked`);
      await Deno.writeTextFile(`${dir}/locked/hidden.txt`, "h");
      await Deno.writeTextFile(`${dir}/open.txt`, "o");
      await Deno.chmod(`${dir}/locked`, 0o000);
      try {
        const items = collect(dir, [dir]);
        assert.equal(items.length, 2);
        assert.equal(items[0].kind, "error");
        assert.equal(items[0].path, "/locked");
        if (items[0].kind === "error") assert.match(items[0].error, /EACCES/);
        assert.deepEqual(items[1], { kind: "file", path: "/open.txt", size: 1, head: "o" });
      } finally {
        await Deno.chmod(`${dir}/locked`, 0o700);
      }
    });
  },
});
if (Deno.uid() === 0) {
  console.log("walk_test: skipping the unreadable-directory test: running as root");
}

Deno.test("walk() prunes a directory the exclude callback names, with its description", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/skipme/inner`, { recursive: true });
    await Deno.writeTextFile(`${dir}/skipme/inner/x.txt`, "x");
    await Deno.writeTextFile(`${dir}/keep.txt`, "k");
    const asked: string[] = [];
    const exclude = (path: Uint8Array) => {
      const p = escapePath(path).slice(dir.length);
      asked.push(p);
      return p === "/skipme" ? "test rule" : undefined;
    };
    assert.deepEqual(collect(dir, [dir], { exclude }), [
      { kind: "file", path: "/keep.txt", size: 1, head: "k" },
      { kind: "skipped", path: "/skipme", reason: "excluded", detail: "test rule" },
    ]);
    assert.ok(!asked.some((p) => p.startsWith("/skipme/")), "walk entered an excluded directory");
    // An excluded root is not even looked at.
    assert.deepEqual(collect(dir, [`${dir}/skipme`], { exclude }), [
      { kind: "skipped", path: "/skipme", reason: "excluded", detail: "test rule" },
    ]);
  });
});

Deno.test("walk() enters a directory named twice only once (loop guard)", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/f`, "f");
    assert.deepEqual(collect(dir, [dir, dir]), [
      { kind: "skipped", path: "", reason: "loop", detail: "directory already scanned" },
      { kind: "file", path: "/f", size: 1, head: "f" },
    ]);
  });
});

Deno.test("walk() stops at maxDepth with an error item", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/a/b`, { recursive: true });
    await Deno.writeTextFile(`${dir}/a/ok.txt`, "ok");
    await Deno.writeTextFile(`${dir}/a/b/too-deep.txt`, "no");
    assert.deepEqual(collect(dir, [dir], { maxDepth: 2 }), [
      { kind: "error", path: "/a/b", error: "Directory nesting deeper than 2" },
      { kind: "file", path: "/a/ok.txt", size: 2, head: "ok" },
    ]);
  });
});

Deno.test("walk() reports a missing root as an error and a skipped device as other-filesystem", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/d`);
    const dev = BigInt((await Deno.stat(`${dir}/d`)).dev);
    const asked: bigint[] = [];
    const skipDevice = (d: bigint) => {
      asked.push(d);
      return "pseudo";
    };
    const items = collect(dir, [`${dir}/missing`, `${dir}/d`], { skipDevice });
    assert.equal(items.length, 2);
    assert.deepEqual(items[0], {
      kind: "skipped",
      path: "/d",
      reason: "other-filesystem",
      detail: "pseudo",
    });
    assert.equal(items[1].kind, "error");
    assert.equal(items[1].path, "/missing");
    if (items[1].kind === "error") assert.match(items[1].error, /^fstatat: ENOENT/);
    assert.deepEqual(asked, [dev]);
  });
});

Deno.test("walk() closes its directory descriptors when the consumer breaks early", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/a/b/c/d`, { recursive: true });
    await Deno.writeTextFile(`${dir}/a/b/c/d/file`, "x");
    await Deno.writeTextFile(`${dir}/a/b/c/d/file2`, "y");
    const before = openFds();
    let during = -1;
    for (const item of walk([bytePath(dir)])) {
      assert.equal(item.kind, "file");
      if (item.kind === "file") close(item.fd);
      during = openFds();
      break;
    }
    // Five directories were open at the break (dir, a, b, c, d) …
    assert.equal(during, before + 5);
    // … and none is left once the generator is closed.
    assert.equal(openFds(), before);
  });
});

Deno.test("walk() leaves no descriptor open after a full walk", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/x/y`, { recursive: true });
    await Deno.writeTextFile(`${dir}/x/y/z`, "z");
    await sh('mkfifo "$1/x/fifo"', dir);
    const before = openFds();
    const items = collect(dir, [dir]);
    assert.equal(items.length, 2);
    assert.equal(openFds(), before);
  });
});

Deno.test("walk() opens an aliased root by its `open` path and reports it as `path`", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/real.bin`, "payload");
    const shown = bytePath("/deleted/program (deleted)");
    const excluded: string[] = [];
    const items = [
      ...walk([{ path: shown, open: bytePath(`${dir}/real.bin`) }], {
        exclude: (p) => {
          excluded.push(escapePath(p));
          return undefined;
        },
      }),
    ];
    try {
      assert.equal(items.length, 1);
      assert.equal(items[0].kind, "file");
      assert.deepEqual(items[0].path, shown);
      if (items[0].kind === "file") assert.equal(items[0].stat.size, 7);
      // Exclusions are matched against the shown path, not the open one.
      assert.deepEqual(excluded, ["/deleted/program (deleted)"]);
    } finally {
      for (const item of items) if (item.kind === "file") close(item.fd);
    }
  });
});

Deno.test("walk() with changedSinceNs passes over files changed before that time", async () => {
  const base = await Deno.makeTempDir({ prefix: "amp-walk-since-" });
  try {
    await Deno.writeTextFile(`${base}/old`, "old");
    const past = new Date(Date.now() - 3600_000);
    await Deno.utime(`${base}/old`, past, past);
    // ctime cannot be set back: take the cut after the old file was made.
    await new Promise((r) => setTimeout(r, 20));
    const cut = BigInt(Date.now()) * 1_000_000n;
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(`${base}/new`, "new");
    const items = collect(base, [base], { changedSinceNs: cut });
    assert.deepEqual(items.map((i) => i.path), ["/new"]);
    assert.equal(collect(base, [base]).length, 2);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("walk() yields ticks while it passes over many entries without yielding", async () => {
  const base = await Deno.makeTempDir({ prefix: "amp-walk-tick-" });
  try {
    for (let i = 0; i < 1200; i++) await Deno.writeTextFile(`${base}/f${i}`, "x");
    const cut = BigInt(Date.now() + 60_000) * 1_000_000n; // every file is older
    const items = [...walk([bytePath(base)], { changedSinceNs: cut })];
    assert.ok(items.length >= 2, `expected ticks, got ${items.length} items`);
    assert.ok(items.every((i) => i.kind === "tick"));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
