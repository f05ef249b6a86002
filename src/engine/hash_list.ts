/**
 * SHA-256 lists: simple custom detections (a block list that convicts) and the
 * allow list (that clears). One file format for both, as administrators write
 * them: one SHA-256 per line, optionally followed by whitespace and a name;
 * `#` starts a comment; blank lines are ignored. A malformed line is counted
 * and reported, never fatal.
 *
 * @module
 */

/** A SHA-256 list loaded from one or more files. */
export interface HashList {
  /** The name a match carries (the file's name for it, or the default). */
  lookup(sha256: string): string | undefined;
  /** Number of distinct hashes. */
  readonly size: number;
  /** Lines that were not a SHA-256 (file:line: text), at most 20 kept. */
  readonly problems: string[];
  /** Content fingerprint of the list (part of the verdict cache's signature version). */
  readonly fingerprint: string;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/**
 * Parses the text of one list file into `into` (sha256 → name), returning
 * the malformed lines as `file:line: text`.
 *
 * @example
 * ```ts
 * import { parseHashList } from "./hash_list.ts";
 * const map = new Map<string, string>();
 * parseHashList("# comment\n" + "a".repeat(64) + " Bad.Tool\n", "list.txt", "Custom", map); // []
 * map.get("a".repeat(64)); // "Bad.Tool"
 * ```
 */
export function parseHashList(
  text: string,
  file: string,
  defaultName: string,
  into: Map<string, string>,
): string[] {
  const problems: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/#.*/, "").trim();
    if (line === "") continue;
    const [hash, ...rest] = line.split(/\s+/);
    if (!HEX64.test(hash)) {
      problems.push(`${file}:${i + 1}: not a SHA-256: ${line.slice(0, 80)}`);
      continue;
    }
    into.set(hash.toLowerCase(), rest.join(" ") || defaultName);
  }
  return problems;
}

/**
 * Loads and merges list files. A missing file is an empty list (the default
 * files need not exist); an unreadable one is a problem line.
 */
export async function loadHashList(files: string[], defaultName: string): Promise<HashList> {
  const map = new Map<string, string>();
  const problems: string[] = [];
  const parts: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      problems.push(`${file}: cannot read: ${error instanceof Error ? error.message : error}`);
      continue;
    }
    parts.push(file, text);
    problems.push(...parseHashList(text, file, defaultName, map));
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\0")));
  return {
    lookup: (sha256) => map.get(sha256),
    size: map.size,
    problems: problems.slice(0, 20),
    fingerprint: [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("")
      .slice(0, 16),
  };
}
