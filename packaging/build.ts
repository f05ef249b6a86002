/**
 * Builds amp's packages around an amp executable:
 *
 * ```sh
 * node_modules/deno/deno run -A packaging/build.ts --binary .build/amp --version 0.1.0 --out dist
 * ```
 *
 * Options: `--binary PATH` (required), `--out DIR` (required), `--version V`
 * (default: deno.json's), `--arch amd64|arm64` (default amd64), `--kmod DIR`
 * or `--no-kmod` (default: the repository's kmod/ when it exists),
 * `--maintainer`, `--license`. Prints each package's path and size. Exit
 * status 0 built, 2 bad options or input, 1 a tool failed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { VERSION } from "../src/version.ts";
import { buildPackages, PackagingError } from "./build_packages.ts";

const USAGE = "Usage: deno run -A packaging/build.ts --binary PATH --out DIR " +
  "[--version V] [--arch amd64|arm64] [--kmod DIR | --no-kmod] [--maintainer M] [--license L]";

/** Runs the command line `args`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        binary: { type: "string" },
        version: { type: "string", default: VERSION },
        out: { type: "string" },
        arch: { type: "string", default: "amd64" },
        kmod: { type: "string" },
        "no-kmod": { type: "boolean", default: false },
        maintainer: { type: "string" },
        license: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    console.error(`build: ${error instanceof Error ? error.message : error}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.binary) {
    console.error(
      "build: Missing --binary: the amp executable to package " +
        "(DENORT_BIN=… deno task compile builds .build/amp)\n" + USAGE,
    );
    return 2;
  }
  if (!values.out) {
    console.error(`build: Missing --out: the directory for the packages\n${USAGE}`);
    return 2;
  }
  if (values.kmod && values["no-kmod"]) {
    console.error(`build: --kmod and --no-kmod exclude each other\n${USAGE}`);
    return 2;
  }
  try {
    const built = await buildPackages({
      binary: values.binary,
      version: values.version,
      outDir: values.out,
      arch: values.arch,
      kmod: values["no-kmod"] ? false : values.kmod,
      maintainer: values.maintainer,
      license: values.license,
    });
    for (const note of built.notes) console.log(`build: note: ${note}`);
    for (const path of [built.deb, built.rpm]) {
      console.log(`${path}\t${(await Deno.stat(path)).size} bytes`);
    }
    return 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`build: ${message}`);
    return error instanceof PackagingError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
