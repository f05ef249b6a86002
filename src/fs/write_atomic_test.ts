import assert from "node:assert/strict";
import { writeFileAtomic } from "./write_atomic.ts";

Deno.test("writeFileAtomic replaces the file with the mode asked, leaving no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.json`;
    await Deno.writeTextFile(path, "old\n", { mode: 0o644 });
    await writeFileAtomic(path, "new\n", 0o600);
    assert.equal(await Deno.readTextFile(path), "new\n");
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]), 0o644);
    assert.deepEqual(await Deno.readFile(path), new Uint8Array([1, 2, 3]));
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["state.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic never writes through links at the target or the temporary name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const victim = `${dir}/victim`;
    await Deno.writeTextFile(victim, "untouched\n");
    await Deno.symlink(victim, `${dir}/list`);
    await Deno.symlink(victim, `${dir}/list.tmp-${Deno.pid}`);
    await writeFileAtomic(`${dir}/list`, "198.51.100.1\n", 0o644);
    assert.equal(await Deno.readTextFile(victim), "untouched\n");
    assert.equal((await Deno.lstat(`${dir}/list`)).isFile, true);
    assert.equal(await Deno.readTextFile(`${dir}/list`), "198.51.100.1\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic leaves the old file and no temporary file when the rename fails", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A directory at the target: the rename of a file over it fails.
    await Deno.mkdir(`${dir}/target`);
    await assert.rejects(writeFileAtomic(`${dir}/target`, "x", 0o644));
    assert.equal((await Deno.stat(`${dir}/target`)).isDirectory, true);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["target"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
