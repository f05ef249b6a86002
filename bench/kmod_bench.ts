/**
 * `deno task bench-kmod`: exec overhead of the ampavflt module, measured in
 * one boot of the qemu VM of tests/kmod_vm_test.ts (Debian's kernel, TCG).
 * A static program forks and execs a copy of busybox (`true`) 300 times a
 * round, five rounds each:
 *  - no-module: before insmod;
 *  - module-idle: loaded, no daemon registered;
 *  - module-cached: `amp daemon` on the avflt backend in active mode, the
 *    program found clean once and so answered from the module's verdict
 *    cache (what every later execution of an unchanged program costs);
 *  - module-cached-daemon-stopped: the same with the daemon stopped (SIGSTOP)
 *    during the rounds: the module's own cost, without the daemon's CPU use
 *    (its process table follows every fork, exec and exit through the proc
 *    connector, on the VM's one CPU);
 *  - no-module-again: after rmmod, to show the drift of the VM itself.
 * Prints a table of medians and the overhead against no-module (target
 * ≤ 10 %). TCG makes absolute numbers slow; the ratio is what counts.
 *
 * Usage: deno task bench-kmod [--json] [--cpus N]
 *
 * `--cpus 2` gives the VM two vCPUs (multi-threaded TCG), so that the
 * daemon's own work (its process table follows every fork, exec and exit)
 * runs beside the benchmark, as on a real multi-core host.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  bootVm,
  buildInitramfs,
  buildModuleForVm,
  kernelImage,
  vmMissing,
} from "../tests/fixtures/vm/vm_image.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { json: { type: "boolean" }, cpus: { type: "string", default: "1" } },
});
const cpus = Number(values.cpus);
if (!Number.isInteger(cpus) || cpus < 1 || cpus > 8) {
  console.error("bench-kmod: --cpus takes 1 to 8");
  Deno.exit(2);
}

const missing = await vmMissing();
if (missing) {
  console.error(`bench-kmod: ${missing} (scripts/setup.sh installs them)`);
  Deno.exit(2);
}
const dir = await Deno.makeTempDir({ prefix: "amp-kmod-bench-" });
try {
  const build = await buildModuleForVm(`${dir}/kmod`);
  if (!build.ok) throw new Error(`The module did not build:\n${build.output}`);
  const src = new URL("../tests/fixtures/vm/exec_bench.c", import.meta.url).pathname;
  const cc = await new Deno.Command("cc", {
    args: ["-static", "-O2", "-o", `${dir}/execbench`, src],
  }).output();
  if (!cc.success) throw new Error(`cc failed: ${new TextDecoder().decode(cc.stderr)}`);
  const kernel = await kernelImage(build.headers.release);
  await buildInitramfs({
    ko: build.ko!,
    mode: "bench",
    output: `${dir}/initrd.cpio`,
    execBench: `${dir}/execbench`,
  });
  const vm = await bootVm({ kernel, initrd: `${dir}/initrd.cpio`, timeoutMs: 600_000, cpus });
  const rows = new Map<string, number[]>();
  let stats = "";
  const notes: string[] = [];
  for (const line of vm.console.split(/\r?\n/)) {
    const m = /^BENCH (\S+) (\d+)$/.exec(line.trim());
    if (m) rows.set(m[1], [...(rows.get(m[1]) ?? []), Number(m[2])]);
    if (line.startsWith("BENCH stats")) stats = line.slice("BENCH stats ".length).trim();
    if (/^BENCH (idle|daemon-cpu) /.test(line)) notes.push(line.slice("BENCH ".length).trim());
  }
  const failed = vm.console.split(/\r?\n/).filter((l) => l.startsWith("VMTEST fail"));
  if (vm.timedOut || failed.length > 0 || !rows.has("no-module") || !rows.has("module-cached")) {
    console.error(vm.console);
    throw new Error(vm.timedOut ? "The VM did not finish" : "The benchmark did not complete");
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(rows.get("no-module")!);
  const table = [...rows].map(([name, xs]) => ({
    case: name,
    rounds: xs.map((x) => Math.round(x / 1000)).join(" / "),
    medianUs: Math.round(median(xs) / 1000),
    overhead: `${(((median(xs) - base) / base) * 100).toFixed(1)} %`,
  }));
  if (values.json) {
    console.log(JSON.stringify({ table, stats, notes }));
  } else {
    console.log(
      `Exec overhead of ampavflt (qemu TCG, ${cpus} vCPU, Debian ${build.headers.release}, 300 fork+exec of a static busybox copy per round):`,
    );
    console.log("| case | rounds (µs per exec) | median µs | vs no-module |");
    console.log("|---|---|---|---|");
    for (const r of table) {
      console.log(`| ${r.case} | ${r.rounds} | ${r.medianUs} | ${r.overhead} |`);
    }
    if (stats) console.log(`module counters: ${stats}`);
    for (const n of notes) console.log(`daemon: ${n}`);
  }
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
