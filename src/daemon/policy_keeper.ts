/**
 * The policy in force, and the last good one. `/etc/amp/policy.json` is
 * what an administrator (or, later, the cloud) writes; every policy the
 * daemon accepts is also copied to `/var/lib/amp/policy.last-good.json`, so
 * that a broken file, at start or on reload, never leaves the host without
 * the policy it had: the last good one stays in force and the failure is
 * reported (Policy Update Failure).
 *
 * @module
 */

import { writeFileAtomic } from "../fs/write_atomic.ts";
import { builtinPolicy } from "../policy/builtin.ts";
import {
  ConfigError,
  loadPolicy,
  parsePolicyText,
  resolveUnderRoot,
} from "../policy/load_policy.ts";
import type { Policy } from "../policy/schema.ts";

/** Where the last accepted policy is kept, relative to the root. */
export const LAST_GOOD_PATH = "/var/lib/amp/policy.last-good.json";

/** What loading found. */
export interface PolicyLoad {
  policy: Policy;
  /** Where it came from: a file, the last good copy, or "built-in". */
  source: string;
  /** Set when the policy file was rejected (the policy is then the last good one). */
  failure?: ConfigError;
}

/** Loads the policy, falling back to the last good one. */
export async function loadPolicyOrLastGood(root: string): Promise<PolicyLoad> {
  try {
    const { policy, source } = await loadPolicy({ root });
    return { policy, source };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const lastGood = resolveUnderRoot(root, LAST_GOOD_PATH);
    try {
      const policy = parsePolicyText(await Deno.readTextFile(lastGood), lastGood);
      return { policy, source: `${lastGood} (last good)`, failure: error };
    } catch {
      return {
        policy: builtinPolicy("audit"),
        source: "built-in (no last good policy)",
        failure: error,
      };
    }
  }
}

/** Records `policy` as the last good one (written atomically). */
export async function saveLastGood(root: string, policy: Policy): Promise<void> {
  const path = resolveUnderRoot(root, LAST_GOOD_PATH);
  await writeFileAtomic(path, JSON.stringify(policy, null, 2) + "\n", 0o600);
}

/** True when two policies differ in anything that matters. */
export function samePolicy(a: Policy, b: Policy): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
