import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { O } from "../../ffi/libc.ts";
import { bytePath } from "../sys/byte_path.ts";
import { AT, close, openat } from "../sys/libc.ts";
import { libclamavSkip } from "../../tests/fixtures/native.ts";
import { JsFileHasher, NativeFileHasher } from "./file_hasher.ts";

/** Outside CI a missing libclamav skips the native hasher test (reason printed); in CI it fails. */
const nativeSkip = libclamavSkip("file_hasher_test");

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** The descriptor's file offset, from /proc. */
function offsetOf(fd: number): number {
  const m = Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`).match(/^pos:\s+(\d+)$/m);
  assert.ok(m);
  return Number(m[1]);
}

async function withFile(data: Uint8Array, fn: (fd: number) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-hasher-" });
  try {
    await Deno.writeFile(`${dir}/f`, data);
    const fd = openat(AT.FDCWD, bytePath(`${dir}/f`), O.RDONLY | O.CLOEXEC);
    try {
      await fn(fd);
    } finally {
      close(fd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const reference = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

Deno.test({
  name: "NativeFileHasher.sha256() matches node:crypto on a 3 MB random file and rewinds",
  ignore: nativeSkip !== undefined,
  async fn() {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    await withFile(data, async (fd) => {
      const hasher = new NativeFileHasher();
      const digest = await hasher.sha256(fd);
      assert.match(digest, /^[0-9a-f]{64}$/);
      assert.equal(digest, reference(data));
      assert.equal(offsetOf(fd), 0);
      // Hashing again gives the same answer (it starts from 0, not from where it was).
      assert.equal(await hasher.sha256(fd), digest);
    });
  },
});

Deno.test({
  name: "NativeFileHasher.sha256() hashes an empty file",
  ignore: nativeSkip !== undefined,
  async fn() {
    await withFile(new Uint8Array(0), async (fd) => {
      assert.equal(await new NativeFileHasher().sha256(fd), reference(new Uint8Array(0)));
    });
  },
});

Deno.test("JsFileHasher.sha256() matches node:crypto on a file larger than its buffer", async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  await withFile(data, async (fd) => {
    const hasher = new JsFileHasher();
    assert.equal(await hasher.sha256(fd), reference(data));
    assert.equal(await hasher.sha256(fd), reference(data));
    // pread does not move the offset.
    assert.equal(offsetOf(fd), 0);
  });
  await withFile(new Uint8Array(0), async (fd) => {
    assert.equal(await new JsFileHasher().sha256(fd), reference(new Uint8Array(0)));
  });
});

Deno.test("JsFileHasher.sha256() fails with SysError EBADF on a closed descriptor", async () => {
  let closedFd = -1;
  await withFile(new Uint8Array([1, 2, 3]), (fd) => {
    closedFd = fd;
    return Promise.resolve();
  });
  await assert.rejects(async () => await new JsFileHasher().sha256(closedFd), {
    name: "SysError",
    code: "EBADF",
  });
});
