/**
 * The `.rpm`: packaging/amp.spec.in filled in, then `rpmbuild -bb` with its
 * own top directory, its %install copying the staged tree.
 *
 * @module
 */

import { join } from "node:path";
import { fillTemplate, readTemplate, scriptletFunctions } from "./_template.ts";
import { runTool } from "./_run.ts";

/** What {@linkcode buildRpm} needs. */
export interface RpmOptions {
  root: string;
  /** An empty directory of its own, for rpmbuild's tree. */
  work: string;
  version: string;
  /** rpm architecture: x86_64 or aarch64. */
  arch: string;
  maintainer: string;
  license: string;
  /** The kernel module sources' installed path, when the payload has them. */
  kmodDir?: string;
  outDir: string;
}

/** Builds `amp-<version>-1.<arch>.rpm` in `outDir`; returns its path. */
export async function buildRpm(options: RpmOptions): Promise<string> {
  for (const value of [options.root, options.work]) {
    // The paths go into the spec, where '%' and quotes would be expanded.
    if (/['%\s\\]/.test(value)) throw new Error(`Cannot use ${value} in an rpm spec`);
  }
  await Deno.mkdir(join(options.work, "tmp"), { recursive: true });
  const spec = join(options.work, "amp.spec");
  const text = fillTemplate("amp.spec", await readTemplate("amp.spec.in"), {
    VERSION: options.version,
    LICENSE: options.license,
    MAINTAINER: options.maintainer,
    STAGE: options.root,
    FUNCTIONS: await scriptletFunctions(options.version),
    KMOD_FILES: options.kmodDir ? `%attr(-,root,root) ${options.kmodDir}` : "",
  });
  await Deno.writeTextFile(spec, text);
  await runTool("rpmbuild", [
    "-bb",
    "--quiet",
    "--target",
    options.arch,
    "--define",
    `_topdir ${options.work}`,
    "--define",
    `_tmppath ${join(options.work, "tmp")}`,
    "--define",
    `_rpmdir ${options.outDir}`,
    // rpmbuild opens the rpm database; keep it private (Debian's is ~/.rpmdb).
    "--define",
    `_dbpath ${join(options.work, "rpmdb")}`,
    // amp-<version>-1.<arch>.rpm directly in outDir, not in an arch folder.
    "--define",
    "_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
    spec,
  ]);
  return join(options.outDir, `amp-${options.version}-1.${options.arch}.rpm`);
}
