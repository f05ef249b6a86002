/**
 * Exclusion matching on raw path bytes.
 *
 * Paths may be invalid UTF-8, so matching happens in the latin1 domain: the
 * path's bytes become one char each ({@linkcode latin1}), and patterns are
 * encoded as UTF-8 and mapped the same way. Everything is compiled once; a
 * match costs the latin1 string plus one test per exclusion, in policy order.
 *
 * Semantics (paths are absolute and normalized: no `//`, `.` or `..`):
 * - `path`: a component-wise prefix: `/proc` matches `/proc` and `/proc/1`,
 *   not `/procfoo`; a trailing `/` in the exclusion is ignored.
 * - `wildcard`: anchored to the whole path, case-sensitive. `*` matches any
 *   bytes except `/`, `?` one byte except `/`, `**` any bytes including `/`;
 *   `/**\/` also matches a single `/` (`/a/**\/b` matches `/a/b`) and a
 *   trailing `/**` also matches the directory itself. No `[...]` classes.
 * - `extension`: `.log` or `log`, ASCII case-insensitive, matches the end of
 *   the last component when something precedes it (`a.LOG`, not `.log`).
 *
 * @module
 */
import { type BytePath, bytePath, latin1 } from "../sys/byte_path.ts";
import type { Exclusion } from "./schema.ts";

/** Tells whether a path is excluded, and by which exclusion. */
export interface ExclusionMatcher {
  /** The first exclusion (in policy order) that matches a file path, if any. */
  match(path: BytePath): Exclusion | undefined;
  /** As {@linkcode ExclusionMatcher.match}, for a path already in {@linkcode latin1} form. */
  matchLatin1(path: string): Exclusion | undefined;
  /**
   * The first exclusion that covers a directory and everything below it
   * (`path` exclusions and wildcards ending in `/**`): the walk may prune it.
   */
  matchDirectory(path: BytePath): Exclusion | undefined;
}

interface Compiled {
  exclusion: Exclusion;
  test: (path: string) => boolean;
  coversTree: boolean;
}

/**
 * Compiles a policy's exclusions into a matcher.
 *
 * @example
 * ```ts
 * import { compileExclusions } from "./exclusions.ts";
 * import { bytePath } from "../sys/byte_path.ts";
 * const matcher = compileExclusions([{ type: "path", path: "/proc" }]);
 * matcher.match(bytePath("/proc/1/maps")); // { type: "path", path: "/proc" }
 * ```
 */
export function compileExclusions(exclusions: readonly Exclusion[]): ExclusionMatcher {
  const all = exclusions.map(compileOne);
  const trees = all.filter((c) => c.coversTree);
  const first = (list: Compiled[], path: string) => {
    for (const c of list) if (c.test(path)) return c.exclusion;
    return undefined;
  };
  return {
    match: (path) => first(all, latin1(path)),
    matchLatin1: (path) => first(all, path),
    matchDirectory: (path) => first(trees, latin1(path)),
  };
}

function toLatin1(text: string): string {
  return latin1(bytePath(text));
}

function compileOne(exclusion: Exclusion): Compiled {
  switch (exclusion.type) {
    case "path": {
      const prefix = toLatin1(exclusion.path.replace(/\/+/g, "/").replace(/(.)\/$/, "$1"));
      const test = prefix === "/" ? () => true : (path: string) =>
        path.startsWith(prefix) &&
        (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f);
      return { exclusion, test, coversTree: true };
    }
    case "wildcard": {
      const regex = compileWildcard(toLatin1(exclusion.pattern));
      return {
        exclusion,
        test: (path) => regex.test(path),
        coversTree: exclusion.pattern.endsWith("/**"),
      };
    }
    case "extension": {
      const ext = toLatin1(
        "." + exclusion.extension.replace(/^\./, "").replace(/[A-Z]/g, (c) => c.toLowerCase()),
      );
      return { exclusion, test: (path) => endsWithExtension(path, ext), coversTree: false };
    }
  }
}

/** ASCII case-insensitive suffix test; `ext` is lowercase and starts with a dot. */
function endsWithExtension(path: string, ext: string): boolean {
  const start = path.length - ext.length;
  if (start < 1 || path.charCodeAt(start - 1) === 0x2f) return false;
  for (let k = 0; k < ext.length; k++) {
    let c = path.charCodeAt(start + k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== ext.charCodeAt(k)) return false;
  }
  return true;
}

/** Compiles a latin1 wildcard pattern to an anchored RegExp (no `u` flag: chars are bytes). */
function compileWildcard(pattern: string): RegExp {
  let re = "";
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      const afterSlash = i === 0 || pattern[i - 1] === "/";
      const next = i + 2;
      if (afterSlash && pattern[next] === "/") {
        re += "(?:[^]*/)?"; // "/**/": zero or more directories
        i = next + 1;
      } else if (afterSlash && i > 0 && next === pattern.length) {
        re = re.slice(0, -1) + "(?:/[^]*)?"; // trailing "/**": the directory and all below
        i = next;
      } else {
        re += "[^]*";
        i = next;
      }
    } else if (c === "*") {
      re += "[^/]*";
      i++;
    } else if (c === "?") {
      re += "[^/]";
      i++;
    } else {
      re += c.replace(/[\\^$.|?*+()[\]{}]/, "\\$&");
      i++;
    }
  }
  return new RegExp(`^${re}$`);
}
