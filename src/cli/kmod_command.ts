/**
 * `amp kmod`: the `ampavflt` kernel module (kmod/). `build` compiles it for
 * the running kernel (or a given kernel build directory) in a directory of
 * its own and says where the .ko is; `status` says whether it is loaded,
 * its device, its counters and which backend the daemon's `auto` picks.
 *
 * Exit status: build 0 built (warnings are listed), 1 failed; status 0
 * loaded, 1 not loaded; 2 usage.
 *
 * @module
 */

import { VERSION } from "../version.ts";
import { Command } from "commander";
import { AMPAVFLT_DEVICE } from "../../ffi/ampavflt.ts";
import { avfltAvailable } from "../monitor/avflt/avflt_source.ts";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";

/** The module's source files, copied into the build directory. */
export const KMOD_FILES = ["ampavflt.c", "ampavflt_uapi.h", "Kbuild", "Makefile", "dkms.conf"];

/** Where the module's counters are. */
export const KMOD_STATS = "/sys/class/misc/ampavflt/stats";

/** Options of {@linkcode buildKmod}. */
export interface KmodBuildOptions {
  /** The kernel build directory (default /lib/modules/$(uname -r)/build). */
  kernelDir?: string;
  /** The module sources (default: kmod/ beside the program, else /opt/amp/kmod, else /usr/src/ampavflt-<amp version>, where the packages put them). */
  sourceDir?: string;
  /** Where to build (default /var/lib/amp/kmod/<kernel release> under `root`). */
  outputDir?: string;
  /** Host root for the default output directory. Default "/". */
  root?: string;
}

/** What a build did. */
export interface KmodBuild {
  ok: boolean;
  /** The module, when built. */
  ko?: string;
  kernelDir: string;
  release: string;
  outputDir: string;
  /** `warning:` lines of the compiler and modpost. */
  warnings: string[];
  /** Everything make printed. */
  output: string;
}

/** The `warning:` lines of a kbuild log (compiler and modpost), in order. */
export function kbuildWarnings(output: string): string[] {
  return output.split("\n").filter((l) => /\bwarning\b\s*:/i.test(l) || /^WARNING:/.test(l));
}

/** Parses the module's `stats` file (`name value` lines) into a record. */
export function parseKmodStats(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** Whether `name` is in /proc/modules text. */
export function moduleLoaded(procModules: string, name = "ampavflt"): boolean {
  return procModules.split("\n").some((l) => l.split(" ")[0] === name);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The first directory holding ampavflt.c among the usual places. */
async function findSources(): Promise<string | undefined> {
  const candidates: string[] = [];
  const here = new URL("../../kmod/", import.meta.url);
  if (here.protocol === "file:") candidates.push(here.pathname);
  // The packages install the sources for DKMS as /usr/src/ampavflt-<amp version>.
  candidates.push("/opt/amp/kmod/", `/usr/src/ampavflt-${VERSION}/`);
  for (const dir of candidates) if (await exists(`${dir}ampavflt.c`)) return dir;
  return undefined;
}

/**
 * The release a kernel build directory is for: UTS_RELEASE (what the
 * module's vermagic says; Debian's include/config/kernel.release holds the
 * upstream version instead), else kernel.release, else undefined.
 */
async function kernelRelease(kernelDir: string): Promise<string | undefined> {
  try {
    const h = await Deno.readTextFile(`${kernelDir}/include/generated/utsrelease.h`);
    const m = /UTS_RELEASE\s+"([^"]+)"/.exec(h);
    if (m) return m[1];
  } catch {
    // older layouts: below
  }
  try {
    return (await Deno.readTextFile(`${kernelDir}/include/config/kernel.release`)).trim();
  } catch {
    return undefined;
  }
}

/**
 * Builds ampavflt.ko with kbuild (`make -C KDIR M=OUT modules`) in a copy
 * of the sources. Throws only for missing sources or kernel directory;
 * a failed compile is `ok: false` with the output.
 *
 * @param options what to build against, and where
 */
export async function buildKmod(options: KmodBuildOptions = {}): Promise<KmodBuild> {
  const running = Deno.osRelease();
  const kernelDir = options.kernelDir ?? `/lib/modules/${running}/build`;
  if (!(await exists(`${kernelDir}/Makefile`))) {
    throw new Error(
      `No kernel build directory at ${kernelDir}: install the headers of this kernel ` +
        `(Debian: apt-get install linux-headers-${running}) or give --kernel-dir`,
    );
  }
  const release = (await kernelRelease(kernelDir)) ?? running;
  const sourceDir = options.sourceDir ?? (await findSources());
  if (!sourceDir || !(await exists(`${sourceDir}/ampavflt.c`))) {
    throw new Error(
      `No module sources (ampavflt.c) ${
        sourceDir ? `in ${sourceDir}` : `in kmod/, /opt/amp/kmod or /usr/src/ampavflt-${VERSION}`
      }: give --source`,
    );
  }
  const outputDir = options.outputDir ??
    resolveUnderRoot(options.root ?? "/", `/var/lib/amp/kmod/${release}`);
  await Deno.mkdir(outputDir, { recursive: true });
  for (const f of KMOD_FILES) {
    if (await exists(`${sourceDir}/${f}`)) {
      await Deno.copyFile(`${sourceDir}/${f}`, `${outputDir}/${f}`);
    }
  }
  const make = await new Deno.Command("make", {
    args: ["-C", kernelDir, `M=${outputDir}`, "modules"],
    stdout: "piped",
    stderr: "piped",
    env: { LC_ALL: "C" },
  }).output().catch((error) => {
    throw new Error(`Cannot run make: ${error instanceof Error ? error.message : error}`, {
      cause: error,
    });
  });
  const output = new TextDecoder().decode(make.stdout) + new TextDecoder().decode(make.stderr);
  const ko = `${outputDir}/ampavflt.ko`;
  const ok = make.success && (await exists(ko));
  return {
    ok,
    ko: ok ? ko : undefined,
    kernelDir,
    release,
    outputDir,
    warnings: kbuildWarnings(output),
    output,
  };
}

/** What `amp kmod status` reports. */
export interface KmodStatus {
  loaded: boolean;
  device: string;
  deviceExists: boolean;
  /** The module's counters (empty when not loaded). */
  stats: Record<string, string>;
  /** The backend `auto` picks now. */
  autoBackend: "avflt" | "fanotify";
}

/** Reads the module's state from /proc/modules, /dev and sysfs. */
export async function kmodStatus(): Promise<KmodStatus> {
  const modules = await Deno.readTextFile("/proc/modules").catch(() => "");
  const deviceExists = avfltAvailable();
  const stats = parseKmodStats(await Deno.readTextFile(KMOD_STATS).catch(() => ""));
  return {
    loaded: moduleLoaded(modules),
    device: AMPAVFLT_DEVICE,
    deviceExists,
    stats,
    autoBackend: deviceExists ? "avflt" : "fanotify",
  };
}

/** Builds `amp kmod` with `build` and `status`. */
export function makeKmodCommand(io: CommandIo = defaultIo): Command {
  const kmod = new Command("kmod")
    .summary("build the ampavflt kernel module, or show its state")
    .description(
      "The ampavflt kernel module gives the daemon file events through /dev/ampavflt\n" +
        "on kernels where fanotify permission events are missing or unusable: execs\n" +
        "held until the daemon's verdict, and closes of written files. The daemon uses\n" +
        'it when amp.json says monitor.backend "avflt", or "auto" and the device exists.',
    );
  kmod.command("build")
    .summary("compile ampavflt.ko for this kernel and say where it is")
    .description(
      "Compile ampavflt.ko for the running kernel (or --kernel-dir) in\n" +
        "/var/lib/amp/kmod/<release>/ and print where it is. Needs make, a C compiler\n" +
        "and the kernel's headers (Debian: linux-headers-$(uname -r)). Load it with\n" +
        "insmod PATH (or install the sources with DKMS: kmod/dkms.conf).",
    )
    .option("--kernel-dir <dir>", "kernel build directory (default /lib/modules/$(uname -r)/build)")
    .option("--source <dir>", "module sources (default: kmod/ of this amp, /opt/amp/kmod)")
    .option("--output <dir>", "build directory (default /var/lib/amp/kmod/<release>)")
    .option("--root <dir>", "host root for the default build directory", "/")
    .option("--json", "print the result as JSON")
    .action(async (opts: {
      kernelDir?: string;
      source?: string;
      output?: string;
      root: string;
      json?: boolean;
    }) => {
      let build: KmodBuild;
      try {
        build = await buildKmod({
          kernelDir: opts.kernelDir,
          sourceDir: opts.source,
          outputDir: opts.output,
          root: opts.root,
        });
      } catch (error) {
        io.stderr(`amp: ${error instanceof Error ? error.message : String(error)}`);
        return io.exit(1);
      }
      if (opts.json) {
        const { output: _output, ...rest } = build;
        io.stdout(JSON.stringify(rest));
      } else if (build.ok) {
        io.stdout(`Built ${build.ko} for ${build.release} (${build.warnings.length} warnings)`);
        for (const w of build.warnings) io.stdout(`  ${w}`);
      } else {
        io.stderr(build.output.trimEnd());
        io.stderr(`amp: the module did not build for ${build.release} (in ${build.outputDir})`);
      }
      return io.exit(build.ok ? 0 : 1);
    });
  kmod.command("status")
    .summary("whether the module is loaded, its counters, the backend auto picks")
    .description("Whether ampavflt is loaded, its device, counters, and the backend auto picks.")
    .option("--json", "print the state as JSON")
    .action(async (opts: { json?: boolean }) => {
      const s = await kmodStatus();
      if (opts.json) {
        io.stdout(JSON.stringify(s));
      } else {
        io.stdout(`Module: ${s.loaded ? "loaded" : "not loaded"}`);
        io.stdout(`Device: ${s.device} ${s.deviceExists ? "present" : "absent"}`);
        io.stdout(`Backend (auto): ${s.autoBackend}`);
        const daemon = s.stats.daemon;
        if (daemon !== undefined) {
          io.stdout(`Daemon: ${daemon === "0" ? "none registered" : `pid ${daemon}`}`);
          for (const [k, v] of Object.entries(s.stats)) {
            if (k !== "daemon") io.stdout(`  ${k}: ${v}`);
          }
        }
      }
      return io.exit(s.loaded ? 0 : 1);
    });
  return kmod;
}
