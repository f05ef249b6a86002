/**
 * Loads the policy's DFC lists from their files into one
 * {@linkcode IpMatcher}. A list that cannot be read is reported and left out
 * (the others still load); malformed lines are counted, never fatal.
 *
 * @module
 */

import { resolveUnderRoot } from "../policy/load_policy.ts";
import { redactUrl } from "../support/redact.ts";
import type { IpListSource } from "../policy/schema.ts";
import { IpMatcher } from "./ip_list.ts";
import { type IpListIssue, type ParsedIpList, parseIpList } from "./ip_list_parse.ts";

/** What loading one list found. */
export interface IpListReport {
  name: string;
  file: string;
  entries: number;
  malformed: number;
  /** The first malformed lines. */
  problems: readonly IpListIssue[];
  hostBitsCleared: number;
  /** Why the list could not be read (then it holds nothing). */
  error?: string;
}

/** The matcher and a report per list. */
export interface LoadedIpLists {
  matcher: IpMatcher;
  lists: IpListReport[];
}

/**
 * Reads and parses every list (files under `root`), and builds the matcher.
 *
 * @example
 * ```ts
 * import { loadIpLists } from "./load_ip_lists.ts";
 * const { matcher, lists } = await loadIpLists([], "/");
 * matcher.lookup("198.51.100.7"); // []
 * ```
 */
export async function loadIpLists(
  sources: readonly IpListSource[],
  root: string,
): Promise<LoadedIpLists> {
  const parsed: ParsedIpList[] = [];
  const lists: IpListReport[] = [];
  for (const source of sources) {
    const file = resolveUnderRoot(root, source.file);
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      lists.push({
        name: source.name,
        file,
        entries: 0,
        malformed: 0,
        problems: [],
        hostBitsCleared: 0,
        error: source.url && error instanceof Deno.errors.NotFound
          ? `not downloaded yet: amp update fetches it from ${redactUrl(source.url)}`
          : error instanceof Error
          ? error.message
          : String(error),
      });
      continue;
    }
    const list = source.format === "csv"
      ? parseIpList(source.name, text, {
        format: "csv",
        column: source.column!,
        delimiter: source.delimiter,
      })
      : parseIpList(source.name, text);
    parsed.push(list);
    lists.push({
      name: source.name,
      file,
      entries: list.size,
      malformed: list.malformed,
      problems: list.problems,
      hostBitsCleared: list.hostBitsCleared,
    });
  }
  return { matcher: new IpMatcher(parsed), lists };
}
