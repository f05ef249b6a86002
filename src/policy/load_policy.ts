/**
 * Finds, reads and validates the policy in force. Every failure is a
 * {@linkcode ConfigError} whose message is meant to be shown as it is.
 *
 * @module
 */
import { posix } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "../fs/write_atomic.ts";
import { builtinPolicy } from "./builtin.ts";
import { type Policy, PolicySchema } from "./schema.ts";

/** Where the policy lives, relative to `--root`. */
export const POLICY_PATH = "/etc/amp/policy.json";

/** Writes a policy document (as the cloud sent it) to `<root>/etc/amp/policy.json`, atomically, 0644. */
export async function writePolicyFile(root: string, document: unknown): Promise<void> {
  const path = resolveUnderRoot(root, POLICY_PATH);
  await Deno.mkdir(posix.dirname(path), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(document, null, 2) + "\n", 0o644);
}

/** A bad policy or config file; `issues` holds zod's issues when the schema rejected it. */
export class ConfigError extends Error {
  /** Structured schema issues (empty for unreadable files and bad JSON). */
  readonly issues: readonly z.core.$ZodIssue[];
  /** The file at fault. */
  readonly file: string;

  /**
   * @param message shown to the user as it is
   * @param options the file, the schema issues and the underlying error
   */
  constructor(
    message: string,
    options: { file: string; issues?: readonly z.core.$ZodIssue[]; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.name = "ConfigError";
    this.file = options.file;
    this.issues = options.issues ?? [];
  }
}

/** Options for {@linkcode loadPolicy}. */
export interface LoadPolicyOptions {
  /** Host root (`--root`); default `/`. */
  root?: string;
  /** An explicit policy file (as given, not under `root`); it must exist. */
  file?: string;
}

/** A policy and where it came from. */
export interface LoadedPolicy {
  /** The validated policy, defaults filled in. */
  policy: Policy;
  /** The file path it was read from, or `"built-in"`. */
  source: string;
}

/**
 * Joins an absolute host path under a root. `..` cannot climb out of the
 * root, and a root of `/` gives the (normalized) path unchanged.
 *
 * @example
 * ```ts
 * import { resolveUnderRoot } from "./load_policy.ts";
 * resolveUnderRoot("/tmp/r", "/etc/amp/policy.json"); // "/tmp/r/etc/amp/policy.json"
 * ```
 */
export function resolveUnderRoot(root: string, absPath: string): string {
  if (!absPath.startsWith("/")) throw new TypeError(`Expected an absolute path: ${absPath}`);
  const path = posix.normalize(absPath);
  if (root === "" || root === "/") return path;
  return path === "/" ? posix.normalize(root) : posix.join(root, path);
}

/**
 * Validates the text of a policy file. Throws a {@linkcode ConfigError} on
 * bad JSON or a schema violation.
 *
 * @param text the file's contents
 * @param file where the text came from, for messages
 * @example
 * ```ts
 * import { parsePolicyText } from "./load_policy.ts";
 * parsePolicyText('{"id": 7, "name": "Servers"}', "policy.json").scan.maxFileSize; // 5242880
 * ```
 */
export function parsePolicyText(text: string, file: string): Policy {
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`Invalid JSON in policy ${file}: ${detail}`, { file, cause: error });
  }
  const result = PolicySchema.safeParse(json);
  if (result.success) return result.data;
  throw new ConfigError(`Invalid policy ${file}:\n${z.prettifyError(result.error)}`, {
    file,
    issues: result.error.issues,
    cause: result.error,
  });
}

/**
 * Loads the policy in force: the explicit `file` if given, else
 * `<root>/etc/amp/policy.json` if it exists, else the built-in Audit policy.
 *
 * @example
 * ```ts
 * import { loadPolicy } from "./load_policy.ts";
 * const { policy, source } = await loadPolicy({ root: "/nonexistent" });
 * // policy.name === "Audit Policy for Linux", source === "built-in"
 * ```
 */
export async function loadPolicy(options: LoadPolicyOptions = {}): Promise<LoadedPolicy> {
  const explicit = options.file !== undefined;
  const file = options.file ?? resolveUnderRoot(options.root ?? "/", POLICY_PATH);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    if (!explicit && error instanceof Deno.errors.NotFound) {
      return { policy: builtinPolicy("audit"), source: "built-in" };
    }
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : error instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new ConfigError(`Cannot read policy ${file}: ${reason}`, { file, cause: error });
  }
  return { policy: parsePolicyText(text, file), source: file };
}
