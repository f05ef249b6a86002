/**
 * Checks made before a service command changes anything: every path it will
 * write has directories (or nothing) where directories are needed, the right
 * kind of thing where it exists, and a writable directory to be made in. A
 * read-only mount, a file where a directory should be, or a directory where
 * the executable should be are found here, so bad input changes nothing.
 *
 * @module
 */

import { resolveUnderRoot } from "../policy/load_policy.ts";
import { errorMessage as message } from "../sys/sys_error.ts";

/** A path a command will create or replace. */
export interface Target {
  /** Host path. */
  path: string;
  kind: "dir" | "file" | "link";
}

/**
 * The problems that would stop writing `targets` under `root`; empty when
 * there are none. Writability is probed by creating and removing a file in
 * the deepest existing directory of each target (what a read-only mount or
 * an immutable directory refuses).
 *
 * @example
 * ```ts
 * import { findProblems } from "./preflight.ts";
 * const root = await Deno.makeTempDir();
 * await findProblems(root, [{ path: "/etc/amp", kind: "dir" }]); // []
 * await Deno.remove(root);
 * ```
 */
export async function findProblems(root: string, targets: readonly Target[]): Promise<string[]> {
  const problems = new Set<string>();
  const probeDirs = new Set<string>();
  for (const target of targets) {
    const parts = target.path.split("/").filter((p) => p !== "");
    let current = "";
    let deepest = "/";
    let blocked = false;
    for (const [i, part] of parts.entries()) {
      current += `/${part}`;
      const last = i === parts.length - 1;
      const real = resolveUnderRoot(root, current);
      let stat: Deno.FileInfo | undefined;
      try {
        stat = last ? await Deno.lstat(real) : await Deno.stat(real);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) {
          problems.add(`Cannot inspect ${real}: ${message(error)}`);
          blocked = true;
        }
        break;
      }
      if (!last) {
        if (!stat.isDirectory) {
          problems.add(`${real} is not a directory (needed for ${target.path})`);
          blocked = true;
          break;
        }
        deepest = current;
        continue;
      }
      const wrong = target.kind === "dir"
        ? !stat.isDirectory
        : target.kind === "file"
        ? !stat.isFile
        : !stat.isSymlink;
      if (wrong) {
        const want = { dir: "a directory", file: "a regular file", link: "a symbolic link" };
        problems.add(`${real} is not ${want[target.kind]}`);
        blocked = true;
      }
      if (target.kind === "dir" && stat.isDirectory) deepest = current;
    }
    if (!blocked) probeDirs.add(deepest);
  }
  for (const dir of probeDirs) {
    const real = resolveUnderRoot(root, dir);
    try {
      const probe = await Deno.makeTempFile({ dir: real, prefix: ".amp-probe-" });
      await Deno.remove(probe);
    } catch (error) {
      problems.add(`Cannot write in ${real}: ${message(error)}`);
    }
  }
  return [...problems];
}
