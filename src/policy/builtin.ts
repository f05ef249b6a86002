/**
 * The two built-in policies. As in the reference connector, they differ only
 * in the file conviction mode: audit (record only) or quarantine.
 *
 * @module
 */
import { type Policy, type PolicyInput, PolicySchema } from "./schema.ts";

/** Names accepted by {@linkcode builtinPolicy}. */
export type BuiltinPolicyName = "audit" | "protect";

const INPUTS: Record<BuiltinPolicyName, PolicyInput> = {
  audit: { id: 1, name: "Audit Policy for Linux", mode: { file: "audit" } },
  protect: { id: 2, name: "Protect Policy for Linux", mode: { file: "quarantine" } },
};

/**
 * A fresh copy of a built-in policy, safe to change.
 *
 * @example
 * ```ts
 * import { builtinPolicy } from "./builtin.ts";
 * builtinPolicy("protect").mode.file; // "quarantine"
 * ```
 */
export function builtinPolicy(name: BuiltinPolicyName): Policy {
  return PolicySchema.parse(INPUTS[name]);
}

/** "Audit Policy for Linux" (#1): convictions are recorded only. Frozen. */
export const AUDIT_POLICY: Policy = deepFreeze(builtinPolicy("audit"));

/** "Protect Policy for Linux" (#2): convicted files are quarantined. Frozen. */
export const PROTECT_POLICY: Policy = deepFreeze(builtinPolicy("protect"));

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
