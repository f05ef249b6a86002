/**
 * Builds amp's `.deb` and `.rpm` around a given amp executable.
 *
 * The payload is staged once in a temporary directory: the executable as
 * /opt/amp/bin/amp, the README as /usr/share/doc/amp/README.md and, when the
 * repository has them, the kernel module sources as /usr/src/ampavflt-<version>
 * for DKMS. The packages' scriptlets only call the executable (`amp install`
 * after installation, `amp disable` and `amp uninstall` before removal): the
 * init files and the cron file come from amp's own templates, never from a
 * second copy here.
 *
 * @example Build both packages
 * ```ts ignore
 * import { buildPackages } from "./build_packages.ts";
 * const built = await buildPackages({ binary: ".build/amp", version: "0.1.0", outDir: "dist" });
 * console.log(built.deb, built.rpm);
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import { buildDeb } from "./_deb.ts";
import { buildRpm } from "./_rpm.ts";

const REPO = new URL("..", import.meta.url).pathname;

/** Debian architectures we package, with rpm's name for each. */
export const ARCHITECTURES: Readonly<Record<string, string>> = {
  amd64: "x86_64",
  arm64: "aarch64",
};

/** Options of {@linkcode buildPackages}. */
export interface BuildOptions {
  /** The amp executable to package (a `deno compile`d amp). */
  binary: string;
  /** Package version, such as `0.1.0` (no `-`: the release is always 1). */
  version: string;
  /** Where the packages are written (created when missing). */
  outDir: string;
  /** Debian architecture name: `amd64` (default) or `arm64`. */
  arch?: string;
  /**
   * Kernel module sources: a directory, `false` for none, or undefined for the
   * repository's `kmod/` when it exists.
   */
  kmod?: string | false;
  /** The deb Maintainer and rpm Packager field. */
  maintainer?: string;
  /** The rpm License field. */
  license?: string;
}

/** What {@linkcode buildPackages} made. */
export interface BuiltPackages {
  /** Path of the `.deb`. */
  deb: string;
  /** Path of the `.rpm`. */
  rpm: string;
  /** Things the builder wants the caller to know (such as a skipped kmod). */
  notes: string[];
}

/** A bad option or input file; the message says which and why. */
export class PackagingError extends Error {
  /** @param message what is wrong, for people */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PackagingError";
  }
}

/** Checks the options and the executable, then builds both packages. */
export async function buildPackages(options: BuildOptions): Promise<BuiltPackages> {
  const arch = options.arch ?? "amd64";
  const rpmArch = ARCHITECTURES[arch];
  if (!rpmArch) {
    throw new PackagingError(
      `Unsupported --arch ${arch}: use one of ${Object.keys(ARCHITECTURES).join(", ")}`,
    );
  }
  checkVersion(options.version);
  await checkExecutable(options.binary);
  const notes: string[] = [];
  const kmod = await findKmod(options.kmod, notes);

  const outDir = resolve(options.outDir);
  await Deno.mkdir(outDir, { recursive: true });
  const work = await Deno.makeTempDir({ prefix: "amp-packaging-" });
  try {
    const root = join(work, "root");
    const installedBytes = await stagePayload(root, options.binary, options.version, kmod);
    const common = {
      version: options.version,
      maintainer: options.maintainer ?? "amp maintainers <root@localhost>",
      outDir,
    };
    // The rpm first: its %install copies the whole staged tree, and the deb
    // then adds its DEBIAN/ control directory to that same tree.
    const rpm = await buildRpm({
      ...common,
      root,
      work: join(work, "rpm"),
      arch: rpmArch,
      license: options.license ?? "Unspecified",
      kmodDir: kmod ? `/usr/src/ampavflt-${options.version}` : undefined,
    });
    const deb = await buildDeb({
      ...common,
      root,
      arch,
      installedKiB: installedBytes,
      md5sums: await md5sums(root),
    });
    return { deb, rpm, notes };
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

function checkVersion(version: string): void {
  // Valid as a Debian upstream version and an rpm Version at once.
  if (!/^[0-9][0-9A-Za-z.+~]*$/.test(version)) {
    throw new PackagingError(
      `Invalid --version ${JSON.stringify(version)}: ` +
        "use digits, letters, '.', '+' and '~', starting with a digit (no '-')",
    );
  }
}

async function checkExecutable(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new PackagingError(`Cannot package ${path}: it does not exist`, { cause: error });
  }
  if (!info.isFile) throw new PackagingError(`Cannot package ${path}: not a regular file`);
  const mode = (info.mode ?? 0) & 0o7777;
  if ((mode & 0o111) === 0) {
    throw new PackagingError(
      `Cannot package ${path}: not executable (mode ${mode.toString(8).padStart(4, "0")})`,
    );
  }
}

async function findKmod(kmod: string | false | undefined, notes: string[]) {
  if (kmod === false) {
    notes.push("kernel module sources left out (--no-kmod)");
    return undefined;
  }
  const dir = kmod ?? join(REPO, "kmod");
  const info = await Deno.stat(dir).catch(() => undefined);
  if (info?.isDirectory) return dir;
  if (kmod !== undefined) throw new PackagingError(`Cannot use --kmod ${dir}: not a directory`);
  notes.push(`${dir} does not exist: the packages carry no kernel module sources`);
  return undefined;
}

/** Stages the payload under `root`; returns its installed size in KiB. */
async function stagePayload(
  root: string,
  binary: string,
  version: string,
  kmod: string | undefined,
): Promise<number> {
  let kib = 0;
  const dir = async (path: string) => {
    await Deno.mkdir(join(root, path), { recursive: true });
    // Each level explicitly, whatever the umask.
    for (let p = path; p !== "/" && p !== "."; p = p.replace(/\/[^/]*$/, "") || "/") {
      await Deno.chmod(join(root, p), 0o755);
    }
  };
  const file = async (from: string, to: string, mode: number) => {
    await Deno.copyFile(from, join(root, to));
    await Deno.chmod(join(root, to), mode);
    kib += Math.ceil((await Deno.stat(join(root, to))).size / 1024);
  };
  await dir("/opt/amp/bin");
  await file(binary, "/opt/amp/bin/amp", 0o755);
  await dir("/usr/share/doc/amp");
  await file(join(REPO, "README.md"), "/usr/share/doc/amp/README.md", 0o644);
  if (kmod) {
    const target = `/usr/src/ampavflt-${version}`;
    const copy = async (from: string, to: string): Promise<void> => {
      await dir(to);
      for await (const entry of Deno.readDir(from)) {
        if (entry.name.startsWith(".")) continue; // .gitignore, build leftovers
        const source = join(from, entry.name);
        if (entry.isDirectory) await copy(source, `${to}/${entry.name}`);
        else if (entry.isFile) {
          const mode = ((await Deno.stat(source)).mode ?? 0) & 0o111 ? 0o755 : 0o644;
          await file(source, `${to}/${entry.name}`, mode);
        }
        // Symbolic links and special files have no place in module sources.
      }
    };
    await copy(kmod, target);
    // DKMS finds the sources by name and version: make dkms.conf agree.
    const conf = join(root, target, "dkms.conf");
    const text = await Deno.readTextFile(conf).catch(() => undefined);
    if (text !== undefined) {
      await Deno.writeTextFile(
        conf,
        text.replace(/^PACKAGE_VERSION=.*$/m, `PACKAGE_VERSION="${version}"`),
      );
    }
  }
  return kib;
}

/** `md5sums` of the deb: every regular file of the payload. */
async function md5sums(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = [];
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
    entries.sort((a, b) => a.name < b.name ? -1 : 1);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const relative = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(path, relative);
      else if (entry.isFile) {
        const hash = createHash("md5").update(await Deno.readFile(path)).digest("hex");
        lines.push(`${hash}  ${relative}`);
      }
    }
  };
  await walk(root, "");
  return lines.join("\n") + "\n";
}

/** The file name of the deb that {@linkcode buildPackages} writes. */
export function debName(version: string, arch = "amd64"): string {
  return `amp_${version}_${arch}.deb`;
}

/** The file name of the rpm that {@linkcode buildPackages} writes. */
export function rpmName(version: string, arch = "amd64"): string {
  return `amp-${version}-1.${ARCHITECTURES[arch] ?? arch}.rpm`;
}
