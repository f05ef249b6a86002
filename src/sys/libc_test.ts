import assert from "node:assert/strict";
import {
  DIRENT64,
  LOCK,
  O,
  RENAME,
  S_IF,
  STAT_AARCH64,
  STAT_ST_ATIM,
  STAT_X86_64,
  TIMESPEC,
} from "../../ffi/libc.ts";
import { parseDirents } from "../fs/dirents.ts";
import { bytePath, joinBytePath } from "./byte_path.ts";
import {
  AT,
  close,
  encodeTimespecs,
  errno,
  fchmod,
  fchown,
  fileType,
  flock,
  fstat,
  fstatat,
  fstatWithAtime,
  fsync,
  futimens,
  getdents64,
  linkat,
  openat,
  pread,
  pwrite,
  pwriteAll,
  readlink,
  renameat2,
  rewind,
  strerror,
  unlinkat,
} from "./libc.ts";
import { SysError } from "./sys_error.ts";
import { hasCompiler, IN_CI, runC } from "../../tests/fixtures/native.ts";

/** Outside CI a missing C compiler skips the layout test (with the reason printed); in CI it runs and fails. */
const noCompiler = !hasCompiler() && !IN_CI;
if (noCompiler) console.log("libc_test: skipping struct layout test: no `cc` on PATH (CI != true)");

Deno.test({
  name: "STAT_* and DIRENT64 match sizeof/offsetof from the C headers",
  ignore: noCompiler,
  async fn() {
    const c = await runC(`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};
#define OFF(t, f) printf(#f " %zu\\n", offsetof(t, f))
int main(void) {
  printf("size %zu\\n", sizeof(struct stat));
  OFF(struct stat, st_dev);
  OFF(struct stat, st_ino);
  OFF(struct stat, st_nlink);
  OFF(struct stat, st_mode);
  OFF(struct stat, st_uid);
  OFF(struct stat, st_gid);
  OFF(struct stat, st_size);
  OFF(struct stat, st_mtim);
  OFF(struct stat, st_ctim);
  printf("timespec %zu\\n", sizeof(struct timespec));
  printf("nlink_size %zu\\n", sizeof(((struct stat *)0)->st_nlink));
  OFF(struct linux_dirent64, d_ino);
  OFF(struct linux_dirent64, d_off);
  OFF(struct linux_dirent64, d_reclen);
  OFF(struct linux_dirent64, d_type);
  OFF(struct linux_dirent64, d_name);
  return 0;
}
`);
    const STAT = Deno.build.arch === "aarch64" ? STAT_AARCH64 : STAT_X86_64;
    for (const [field, offset] of Object.entries(STAT)) {
      assert.equal(offset, c.get(field), `struct stat ${field}`);
    }
    // decodeStat reads timespecs as two i64 and st_nlink as u64 on x86_64, u32 on aarch64.
    assert.equal(c.get("timespec"), 16);
    assert.equal(c.get("nlink_size"), Deno.build.arch === "aarch64" ? 4 : 8);
    for (const [field, offset] of Object.entries(DIRENT64)) {
      assert.equal(offset, c.get(field), `linux_dirent64 ${field}`);
    }
  },
});

Deno.test("openat(), fstat() and fstatat() report size, mode and identity of a file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    const file = `${dir}/data.bin`;
    await Deno.writeFile(file, new Uint8Array(1234).fill(7));
    await Deno.chmod(file, 0o640);
    const info = await Deno.stat(file);
    const fd = openat(AT.FDCWD, bytePath(file), O.RDONLY | O.CLOEXEC);
    try {
      assert.ok(fd >= 0);
      const st = fstat(fd);
      assert.equal(st.size, 1234);
      assert.equal(fileType(st.mode), S_IF.REG);
      assert.equal(st.mode & 0o7777, 0o640);
      assert.equal(st.ino, BigInt(info.ino!));
      assert.equal(st.dev, BigInt(info.dev));
      assert.equal(st.nlink, info.nlink);
      assert.equal(st.uid, info.uid);
      assert.equal(st.gid, info.gid);
      assert.equal(st.mtimeNs / 1_000_000n, BigInt(info.mtime!.getTime()));
      assert.ok(st.ctimeNs > 0n);
    } finally {
      close(fd);
    }

    const dirfd = openat(AT.FDCWD, bytePath(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    try {
      const rel = fstatat(dirfd, bytePath("data.bin"));
      assert.equal(rel.size, 1234);
      assert.equal(rel.ino, BigInt(info.ino!));
      const dst = fstat(dirfd);
      assert.equal(fileType(dst.mode), S_IF.DIR);
    } finally {
      close(dirfd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fstatat() with AT.SYMLINK_NOFOLLOW sees the link, without it the target", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    await Deno.writeTextFile(`${dir}/target`, "hello");
    await Deno.symlink("target", `${dir}/link`);
    const link = bytePath(`${dir}/link`);
    assert.equal(fileType(fstatat(AT.FDCWD, link, AT.SYMLINK_NOFOLLOW).mode), S_IF.LNK);
    const followed = fstatat(AT.FDCWD, link);
    assert.equal(fileType(followed.mode), S_IF.REG);
    assert.equal(followed.size, 5);
    // O_NOFOLLOW on a symbolic link fails with ELOOP (the walk relies on this).
    assert.throws(() => openat(AT.FDCWD, link, O.RDONLY | O.NOFOLLOW), { code: "ELOOP" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openat() and fstatat() throw SysError ENOENT with the escaped path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    const missing = joinBytePath(bytePath(dir), new Uint8Array([0x6e, 0x6f, 0xff]));
    let caught: unknown;
    try {
      openat(AT.FDCWD, missing, O.RDONLY);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof SysError);
    assert.equal(caught.name, "SysError");
    assert.equal(caught.code, "ENOENT");
    assert.equal(caught.errno, 2);
    assert.equal(caught.syscall, "openat");
    assert.ok(caught.message.startsWith(`openat ${dir}/no\\xff: ENOENT`), caught.message);
    assert.throws(() => fstatat(AT.FDCWD, missing), { code: "ENOENT", syscall: "fstatat" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fstat() of a closed descriptor throws SysError EBADF; errno() keeps it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    await Deno.writeTextFile(`${dir}/f`, "x");
    const fd = openat(AT.FDCWD, bytePath(`${dir}/f`), O.RDONLY);
    close(fd);
    assert.throws(() => fstat(fd), { name: "SysError", code: "EBADF", syscall: "fstat" });
    assert.equal(errno(), 9);
    assert.match(strerror(2), /No such file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pread() reads at an offset and returns 0 past the end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    await Deno.writeTextFile(`${dir}/f`, "0123456789");
    const fd = openat(AT.FDCWD, bytePath(`${dir}/f`), O.RDONLY);
    try {
      const buf = new Uint8Array(4);
      assert.equal(pread(fd, buf, 3), 4);
      assert.equal(new TextDecoder().decode(buf), "3456");
      assert.equal(pread(fd, buf, 8), 2);
      assert.equal(new TextDecoder().decode(buf.subarray(0, 2)), "89");
      assert.equal(pread(fd, buf, 100), 0);
    } finally {
      close(fd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("getdents64() lists a directory in records parseDirents() reads; rewind() restarts it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    await Deno.writeTextFile(`${dir}/a`, "");
    await Deno.mkdir(`${dir}/sub`);
    const fd = openat(AT.FDCWD, bytePath(dir), O.RDONLY | O.DIRECTORY);
    try {
      const buf = new Uint8Array(4096);
      const list = () => {
        const names: string[] = [];
        for (let n = getdents64(fd, buf); n > 0; n = getdents64(fd, buf)) {
          for (const e of parseDirents(buf, n)) names.push(new TextDecoder().decode(e.name));
        }
        return names.sort();
      };
      assert.deepEqual(list(), ["a", "sub"]);
      assert.equal(getdents64(fd, buf), 0);
      // rewind() moves the offset back to the start, so the listing starts again.
      rewind(fd);
      assert.match(Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`), /^pos:\s+0$/m);
      assert.deepEqual(list(), ["a", "sub"]);
    } finally {
      close(fd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readlink() returns a symbolic link's target bytes, not UTF-8 included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    // Deno's API takes strings only, so the shell makes the link with raw bytes.
    const made = await new Deno.Command("sh", {
      args: ["-c", 'ln -s "$(printf "bad\\377\\376")" "$1"', "sh", `${dir}/link`],
    }).output();
    assert.ok(made.success, new TextDecoder().decode(made.stderr));
    assert.deepEqual(
      readlink(bytePath(`${dir}/link`)),
      new Uint8Array([0x62, 0x61, 0x64, 0xff, 0xfe]),
    );
    assert.throws(() => readlink(bytePath(`${dir}/missing`)), {
      code: "ENOENT",
      syscall: "readlink",
    });
    await Deno.writeTextFile(`${dir}/plain`, "");
    assert.throws(() => readlink(bytePath(`${dir}/plain`)), { code: "EINVAL" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "TIMESPEC and STAT_ST_ATIM match sizeof/offsetof from the C headers",
  ignore: noCompiler,
  async fn() {
    const c = await runC(`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>
int main(void) {
  printf("size %zu\\n", sizeof(struct timespec));
  printf("tv_sec %zu\\n", offsetof(struct timespec, tv_sec));
  printf("tv_nsec %zu\\n", offsetof(struct timespec, tv_nsec));
  printf("st_atim %zu\\n", offsetof(struct stat, st_atim));
  return 0;
}
`);
    for (const [field, offset] of Object.entries(TIMESPEC)) {
      assert.equal(offset, c.get(field), `struct timespec ${field}`);
    }
    assert.equal(STAT_ST_ATIM, c.get("st_atim"));
  },
});

Deno.test("encodeTimespecs() splits nanoseconds into tv_sec and 0 <= tv_nsec < 1e9", () => {
  const view = (b: Uint8Array) => new DataView(b.buffer);
  const t = encodeTimespecs(1_700_000_000_123_456_789n, -1n);
  assert.equal(t.length, 32);
  assert.equal(view(t).getBigInt64(0, true), 1_700_000_000n);
  assert.equal(view(t).getBigInt64(8, true), 123_456_789n);
  // One nanosecond before the epoch is second -1 plus 999,999,999 ns.
  assert.equal(view(t).getBigInt64(16, true), -1n);
  assert.equal(view(t).getBigInt64(24, true), 999_999_999n);
});

Deno.test("pwriteAll(), fsync(), fchmod() and futimens() write a file that fstatWithAtime() reads back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    const name = new Uint8Array([0x77, 0xff]);
    const dirfd = openat(AT.FDCWD, bytePath(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    try {
      const fd = openat(dirfd, name, O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, 0o600);
      try {
        pwriteAll(fd, new TextEncoder().encode("hello"), 0);
        assert.equal(pwrite(fd, new TextEncoder().encode("!!"), 5), 2);
        fchmod(fd, 0o640);
        futimens(fd, 1_600_000_000_111_222_333n, 1_500_000_000_444_555_666n);
        fsync(fd);
        fsync(dirfd);
        const st = fstatWithAtime(fd);
        assert.equal(st.size, 7);
        assert.equal(st.mode & 0o7777, 0o640);
        assert.equal(st.atimeNs, 1_600_000_000_111_222_333n);
        assert.equal(st.mtimeNs, 1_500_000_000_444_555_666n);
      } finally {
        close(fd);
      }
      assert.throws(
        () => openat(dirfd, name, O.WRONLY | O.CREAT | O.EXCL, 0o600),
        { code: "EEXIST" },
      );
      const rd = openat(dirfd, name, O.RDONLY);
      try {
        const buf = new Uint8Array(16);
        assert.equal(new TextDecoder().decode(buf.subarray(0, pread(rd, buf, 0))), "hello!!");
      } finally {
        close(rd);
      }
    } finally {
      close(dirfd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("renameat2() with RENAME.NOREPLACE, linkat() and unlinkat() move names, never clobbering", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    await Deno.writeTextFile(`${dir}/a`, "A");
    await Deno.writeTextFile(`${dir}/b`, "B");
    const dirfd = openat(AT.FDCWD, bytePath(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    try {
      assert.throws(
        () => renameat2(dirfd, bytePath("a"), dirfd, bytePath("b"), RENAME.NOREPLACE),
        { code: "EEXIST", syscall: "renameat2" },
      );
      assert.equal(await Deno.readTextFile(`${dir}/b`), "B");
      renameat2(dirfd, bytePath("a"), dirfd, bytePath("c"), RENAME.NOREPLACE);
      assert.equal(await Deno.readTextFile(`${dir}/c`), "A");
      renameat2(dirfd, bytePath("c"), dirfd, bytePath("b"));
      assert.equal(await Deno.readTextFile(`${dir}/b`), "A");
      linkat(dirfd, bytePath("b"), dirfd, bytePath("d"));
      assert.equal(fstatat(dirfd, bytePath("d")).nlink, 2);
      assert.throws(() => linkat(dirfd, bytePath("b"), dirfd, bytePath("d")), { code: "EEXIST" });
      unlinkat(dirfd, bytePath("b"));
      assert.equal(fstatat(dirfd, bytePath("d")).nlink, 1);
      assert.throws(() => unlinkat(dirfd, bytePath("b")), { code: "ENOENT", syscall: "unlinkat" });
    } finally {
      close(dirfd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flock() with LOCK.NB fails with EAGAIN while another open file holds the lock", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
  try {
    const first = openat(AT.FDCWD, bytePath(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    const second = openat(AT.FDCWD, bytePath(dir), O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    try {
      flock(first, LOCK.EX | LOCK.NB);
      assert.throws(() => flock(second, LOCK.EX | LOCK.NB), { code: "EAGAIN", syscall: "flock" });
      flock(first, LOCK.UN);
      flock(second, LOCK.EX | LOCK.NB);
    } finally {
      close(first);
      close(second);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const notRoot = Deno.uid() !== 0 && !IN_CI;
if (notRoot) console.log("libc_test: skipping fchown() test: not root (CI != true)");

Deno.test({
  name: "fchown() sets owner and group (root)",
  ignore: notRoot,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "amp-libc-" });
    try {
      await Deno.writeTextFile(`${dir}/f`, "x");
      const fd = openat(AT.FDCWD, bytePath(`${dir}/f`), O.RDONLY);
      try {
        fchown(fd, 1234, 4321);
        const st = fstat(fd);
        assert.equal(st.uid, 1234);
        assert.equal(st.gid, 4321);
      } finally {
        close(fd);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
