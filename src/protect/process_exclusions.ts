/**
 * Process exclusions: file activity of an excluded program (optionally only
 * when run by a given user, optionally with all its descendants) is not
 * scanned by real-time protection. amp's own process is always excluded by
 * the event source itself.
 *
 * The matcher is pure over a small {@linkcode ProcessTable}, so it is tested
 * without real processes; {@linkcode procTable} reads /proc.
 *
 * @module
 */

import type { ProcessExclusion } from "../policy/schema.ts";
import { bytePath, bytesEqual } from "../sys/byte_path.ts";
import { parseProcStatus, readExe } from "./process_info.ts";

/** What the matcher needs to know about processes. */
export interface ProcessTable {
  /** Executable path bytes, uid and parent pid, or undefined when gone. */
  get(pid: number): { executable?: Uint8Array; uid?: number; ppid?: number } | undefined;
}

/** Deepest ancestry followed for `children` exclusions. */
const MAX_ANCESTRY = 64;

/** /proc as a {@linkcode ProcessTable}. */
export const procTable: ProcessTable = {
  // Only what the matcher needs (status and the exe link): it runs for every
  // file event while the policy has process exclusions.
  get(pid) {
    const executable = readExe(pid);
    let status: { ppid?: number; uid?: number } = {};
    try {
      status = parseProcStatus(Deno.readTextFileSync(`/proc/${pid}/status`));
    } catch {
      // gone, or not readable
    }
    if (status.uid === undefined && executable === undefined) return undefined;
    return { executable, uid: status.uid, ppid: status.ppid };
  },
};

/** Resolves user names to uids (from /etc/passwd by default). */
export type UidLookup = (user: string) => number | undefined;

/** Reads /etc/passwd into a name → uid lookup. */
export function passwdLookup(passwd = "/etc/passwd"): UidLookup {
  const uids = new Map<string, number>();
  try {
    for (const line of Deno.readTextFileSync(passwd).split("\n")) {
      const [name, , uid] = line.split(":");
      if (name && uid !== undefined && /^\d+$/.test(uid)) uids.set(name, Number(uid));
    }
  } catch {
    // no passwd: only numeric users match
  }
  return (user) => uids.get(user);
}

/** Compiled process exclusions. */
export interface ProcessExclusionMatcher {
  /**
   * The exclusion that covers `pid`, or undefined. For an execution give
   * the `executable` being run: the process may still show the image it had
   * (the program that started it), so the executable is matched directly
   * and `pid` itself counts as a parent for "children" rules.
   */
  match(pid: number, executable?: Uint8Array): ProcessExclusion | undefined;
  readonly size: number;
}

/** Compiles the policy's process exclusions. */
export function compileProcessExclusions(
  exclusions: readonly ProcessExclusion[],
  table: ProcessTable = procTable,
  lookupUid: UidLookup = passwdLookup(),
): ProcessExclusionMatcher {
  const rules = exclusions.map((e) => ({
    rule: e,
    exe: bytePath(e.executable),
    uid: e.user === undefined
      ? undefined
      : typeof e.user === "number"
      ? e.user
      : /^\d+$/.test(e.user)
      ? Number(e.user)
      : lookupUid(e.user) ?? -1,
  }));
  const anyChildren = rules.some((r) => r.rule.children);
  const matches = (p: { executable?: Uint8Array; uid?: number }, direct: boolean) =>
    rules.find((r) =>
      (direct || r.rule.children) && p.executable !== undefined &&
      bytesEqual(p.executable, r.exe) && (r.uid === undefined || r.uid === p.uid)
    )?.rule;
  return {
    size: rules.length,
    match(pid, executable) {
      if (rules.length === 0) return undefined;
      let current = table.get(pid);
      let direct = true;
      if (executable !== undefined) {
        const hit = matches({ executable, uid: current?.uid }, true);
        if (hit) return hit;
        if (!anyChildren) return undefined;
        direct = false;
      }
      for (let depth = 0; current && depth < MAX_ANCESTRY; depth++) {
        const hit = matches(current, direct);
        if (hit) return hit;
        if (!anyChildren || !current.ppid || current.ppid <= 1) break;
        current = table.get(current.ppid);
        direct = false;
      }
      return undefined;
    },
  };
}
