/**
 * The ampavflt kernel module for real: it builds without warnings against
 * Debian's kernel headers, and inside a qemu VM (TCG) booting Debian's own
 * kernel a small client (tests/fixtures/vm/avflt_probe.c) checks the
 * device's contract, then it serves `amp daemon` on the avflt backend (see
 * tests/fixtures/vm/guest.sh for the checks run in the guest). The VM's
 * console is printed when a check fails.
 *
 * Needs (scripts/setup.sh installs them): linux-headers-amd64, make, cc,
 * qemu-system-x86, busybox-static, cpio, libclamav12, and apt access to
 * download Debian's kernel image once (kept in .build/vm). Runs as root in
 * CI; outside CI it skips when something is missing, saying what.
 */

import assert from "node:assert/strict";
import { IN_CI } from "./fixtures/native.ts";
import {
  bootVm,
  buildInitramfs,
  buildModuleForVm,
  kernelImage,
  vmMissing,
} from "./fixtures/vm/vm_image.ts";

const missing = await vmMissing();
const skip = !IN_CI && missing !== undefined;
if (skip) console.log(`kmod_vm_test: skipping: ${missing} (CI != true)`);

/** The whole VM test (build, boot, checks) must finish within this. */
const VM_BUDGET_MS = 280_000;

Deno.test({
  name: "kmod/ampavflt builds with no warnings against Debian's linux-headers-amd64",
  ignore: skip,
  async fn() {
    assert.equal(missing, undefined, `prerequisites: ${missing}`);
    const dir = await Deno.makeTempDir({ prefix: "amp-kmod-" });
    try {
      const build = await buildModuleForVm(dir);
      assert.ok(build.ok, `the module did not build:\n${build.output}`);
      assert.equal(build.release, build.headers.release);
      assert.deepEqual(build.warnings, [], `warnings:\n${build.output}`);
      const modinfo = await new Deno.Command("modinfo", {
        args: ["-F", "vermagic", build.ko!],
        stdout: "piped",
      }).output().catch(() => undefined);
      if (modinfo?.success) {
        assert.match(new TextDecoder().decode(modinfo.stdout), new RegExp(`^${build.release} `));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "ampavflt in a VM: the device's contract (EPERM, EINVAL, fd -1, fail-closed timeouts, " +
    "kernel execs, memfd, a gone daemon); amp daemon denies (active) and kills (passive) a " +
    "block-listed program, convicts a written sample, fails closed, skips what it should, " +
    "and its death releases held execs; rmmod works",
  ignore: skip,
  sanitizeResources: false,
  async fn() {
    assert.equal(missing, undefined, `prerequisites: ${missing}`);
    const started = performance.now();
    const dir = await Deno.makeTempDir({ prefix: "amp-vm-" });
    let vm: Awaited<ReturnType<typeof bootVm>> | undefined;
    try {
      const build = await buildModuleForVm(`${dir}/kmod`);
      assert.ok(build.ok, build.output);
      const kernel = await kernelImage(build.headers.release);
      await buildInitramfs({ ko: build.ko!, mode: "test", output: `${dir}/initrd.cpio` });
      const prepared = performance.now() - started;
      vm = await bootVm({
        kernel,
        initrd: `${dir}/initrd.cpio`,
        timeoutMs: VM_BUDGET_MS - prepared,
        onLine: (l) => {
          if (l.startsWith("VMTEST")) console.log(`  ${l}`);
        },
      });
      const lines = vm.console.split(/\r?\n/);
      const fails = lines.filter((l) => l.startsWith("VMTEST fail"));
      const done = lines.find((l) => l.startsWith("VMTEST done"));
      const passed = lines.filter((l) => l.startsWith("VMTEST ok")).map((l) =>
        l.slice("VMTEST ok ".length)
      );
      assert.ok(!vm.timedOut, `the VM did not finish within ${VM_BUDGET_MS / 1000} s`);
      assert.ok(done, "the guest did not finish its checks");
      assert.deepEqual(fails, []);
      for (
        const what of [
          "insmod",
          "sysfs: protocol version",
          "probe: another process cannot read or write the daemon's descriptor (EPERM)",
          "probe: a read too small for the first record (a path) gets EINVAL",
          "probe: with no descriptor left a record has fd -1 and the path",
          "probe: a timeout over 60 s is refused",
          "probe: a nonzero unused field is refused",
          "probe: a file of procfs is never cached",
          "fail-closed: a delivered exec left unanswered is denied at the module's timeout",
          "a program run from a memfd (fexecve) is held",
          "an exec the kernel starts (modprobe) is reported without being held",
          "a registered daemon whose process is gone holds no exec",
          "daemon started on the avflt backend",
          "amp status names the avflt backend",
          "active: a block-listed program is denied",
          "a sample written to disk is convicted",
          "passive: a block-listed program is killed",
          "an unanswered exec is allowed at the module's timeout and counted",
          "fail-closed: an exec the stopped daemon never reads is denied at the module's timeout",
          "unmounting a file system drops its verdict cache entries",
          "a program on a file system the daemon skips runs without waiting",
          "an exec waits while the daemon does not answer",
          "killing the daemon releases the held exec",
          "rmmod",
        ]
      ) {
        assert.ok(passed.some((p) => p.startsWith(what)), `no passing check "${what}"`);
      }
      const total = performance.now() - started;
      console.log(
        `  VM test: ${(total / 1000).toFixed(1)} s (preparation ${
          (prepared / 1000).toFixed(1)
        } s, ` +
          `VM ${(vm.elapsedMs / 1000).toFixed(1)} s)`,
      );
      assert.ok(total < 300_000, `took ${total} ms`);
    } catch (error) {
      if (vm) console.log(`---- VM console ----\n${vm.console}\n---- end of VM console ----`);
      throw error;
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
