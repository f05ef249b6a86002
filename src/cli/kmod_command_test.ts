import assert from "node:assert/strict";
import {
  buildKmod,
  kbuildWarnings,
  makeKmodCommand,
  moduleLoaded,
  parseKmodStats,
} from "./kmod_command.ts";

Deno.test("kbuildWarnings() picks compiler and modpost warnings, not BTF notes", () => {
  const log = [
    "  CC [M]  /b/ampavflt.o",
    "/b/ampavflt.c:10:5: warning: unused variable 'x' [-Wunused-variable]",
    "WARNING: modpost: missing MODULE_LICENSE() in /b/ampavflt.o",
    "Skipping BTF generation for /b/ampavflt.ko due to unavailability of vmlinux",
  ].join("\n");
  assert.deepEqual(kbuildWarnings(log), [
    "/b/ampavflt.c:10:5: warning: unused variable 'x' [-Wunused-variable]",
    "WARNING: modpost: missing MODULE_LICENSE() in /b/ampavflt.o",
  ]);
  assert.deepEqual(kbuildWarnings("  LD [M]  x.ko\n"), []);
});

Deno.test("parseKmodStats() reads name value lines; moduleLoaded() matches the first column", () => {
  const stats = parseKmodStats("version 1\ndaemon 0\nclose_hook __fput\n\n");
  assert.deepEqual(stats, { version: "1", daemon: "0", close_hook: "__fput" });
  const modules = "ampavflt 28672 1 - Live 0x0000000000000000\nfoo_ampavflt 1 0 - Live 0x0\n";
  assert.equal(moduleLoaded(modules), true);
  assert.equal(moduleLoaded("foo_ampavflt 1 0 - Live 0x0\n"), false);
});

Deno.test("buildKmod() refuses a kernel directory without a Makefile, naming it", async () => {
  await assert.rejects(
    buildKmod({ kernelDir: "/nonexistent/build", outputDir: "/nonexistent/out" }),
    /No kernel build directory at \/nonexistent\/build/,
  );
});

Deno.test("amp kmod build exits 1 with one line when the kernel directory is missing", async () => {
  const out: string[] = [];
  const err: string[] = [];
  let code = -1;
  const cmd = makeKmodCommand({
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    exit: (c) => void (code = c),
  });
  await cmd.parseAsync(["build", "--kernel-dir", "/nonexistent/k"], { from: "user" });
  assert.equal(code, 1);
  assert.deepEqual(out, []);
  assert.match(err[0], /^amp: No kernel build directory at \/nonexistent\/k/);
});
