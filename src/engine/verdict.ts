/**
 * What the pipeline decides about one file. Expected outcomes are values, not
 * exceptions; an error is never a conviction.
 *
 * @module
 */

/** Names of the engines that can convict or clear a file. */
export type EngineName = "clamav" | "hashlist" | "allowlist" | "cache" | "cloud";

/** Why a file was not scanned. */
export type SkipReason =
  | "too-large"
  | "excluded"
  | "not-regular"
  | "symlink"
  | "other-filesystem"
  | "scan-limit"
  | "loop";

/** The decision about one file. */
export type Verdict =
  | { kind: "clean"; engine?: EngineName }
  | { kind: "malicious"; name: string; engine: EngineName }
  | { kind: "skipped"; reason: SkipReason; detail?: string }
  | { kind: "error"; error: string };

/** A verdict together with what was learnt about the file on the way. */
export interface FileVerdict {
  /** The decision. */
  verdict: Verdict;
  /** Lower-case hex SHA-256, when the file was hashed. */
  sha256?: string;
  /** Size in bytes, when the file was opened. */
  size?: number;
  /** True when the verdict came from the verdict cache without rescanning. */
  cached?: boolean;
}
