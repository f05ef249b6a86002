/**
 * The `.deb`: control files from packaging/debian/*.in added to the staged
 * tree as DEBIAN/, then `dpkg-deb --root-owner-group --build` (every file
 * root:root without fakeroot).
 *
 * @module
 */

import { join } from "node:path";
import { fillTemplate, readTemplate, scriptletFunctions } from "./_template.ts";
import { runTool } from "./_run.ts";

/** What {@linkcode buildDeb} needs. */
export interface DebOptions {
  root: string;
  version: string;
  arch: string;
  maintainer: string;
  installedKiB: number;
  md5sums: string;
  outDir: string;
}

/** Builds `amp_<version>_<arch>.deb` in `outDir` from the tree at `root`; returns its path. */
export async function buildDeb(options: DebOptions): Promise<string> {
  const control = join(options.root, "DEBIAN");
  await Deno.mkdir(control);
  await Deno.chmod(control, 0o755);
  const controlText = fillTemplate("debian/control", await readTemplate("debian/control.in"), {
    VERSION: options.version,
    DEB_ARCH: options.arch,
    MAINTAINER: options.maintainer,
    INSTALLED_SIZE: String(options.installedKiB),
  });
  await writeMode(join(control, "control"), controlText, 0o644);
  await writeMode(join(control, "md5sums"), options.md5sums, 0o644);
  const functions = await scriptletFunctions(options.version);
  for (const script of ["postinst", "prerm", "postrm"]) {
    const text = fillTemplate(`debian/${script}`, await readTemplate(`debian/${script}.in`), {
      FUNCTIONS: functions,
    });
    await writeMode(join(control, script), text, 0o755);
  }
  const deb = join(options.outDir, `amp_${options.version}_${options.arch}.deb`);
  try {
    await runTool("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", options.root, deb]);
  } finally {
    await Deno.remove(control, { recursive: true });
  }
  return deb;
}

async function writeMode(path: string, text: string, mode: number): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, mode);
}
