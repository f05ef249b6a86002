/**
 * Parsing of IP reputation lists (pure functions, no I/O).
 *
 * Two formats:
 * - `lines`: one address or CIDR per line, as Spamhaus DROP
 *   (`1.2.3.0/24 ; SBL123`) and FireHOL netsets (`# comment`, bare CIDRs).
 *   `#` and `;` start a comment anywhere on a line; blank lines, CRLF line
 *   endings and a leading byte-order mark are accepted. What is left of a line
 *   must be exactly one token: `1.2.3.4 extra` is malformed rather than
 *   silently read as `1.2.3.4` (a `start end` range file would otherwise be
 *   half-loaded without anyone noticing).
 * - `csv`: one column of a delimited file, chosen by zero-based index or by
 *   header name. Lines starting with `#` are comments; fields may be quoted
 *   with `"` (a quote inside is doubled). Quoted fields spanning lines are not
 *   supported (such a row is reported as malformed).
 *
 * Addresses are strict: IPv4 is four decimal octets 0–255 without leading
 * zeros (`010.0.0.1` is octal to inet_aton and decimal to others, so it is
 * rejected as ambiguous); IPv6 is RFC 4291 text (`::` compression, an embedded
 * dotted IPv4 tail), zone ids (`fe80::1%eth0`) are rejected. A prefix is
 * decimal without leading zeros, /0–/32 or /0–/128; no prefix means a single
 * address. An entry with host bits set beyond its prefix (`10.1.2.3/8`) is
 * normalized to its network (`10.0.0.0/8`) and counted as a warning. IPv6
 * entries inside `::ffff:0:0/96` (IPv4-mapped) are stored as the IPv4 entries
 * they denote, so `::ffff:1.2.3.0/120` and `1.2.3.0/24` are the same entry.
 *
 * A malformed line is counted and kept for the report (the first 20, with
 * line number and text), never fatal. Entries go straight into typed arrays
 * (no object per entry), and the hot path reads the text with `charCodeAt`,
 * without regular expressions or substrings, so a million lines parse in a
 * few hundred milliseconds.
 *
 * @module
 */

/** How many problems (and warnings) a parse result keeps for the report. */
export const MAX_REPORTED = 20;

/** One-address-or-CIDR-per-line text (Spamhaus DROP, FireHOL netsets, plain lists). */
export interface LinesFormat {
  /** Discriminator. */
  format: "lines";
}

/** One column of a delimited (CSV) file. */
export interface CsvFormat {
  /** Discriminator. */
  format: "csv";
  /** Zero-based column index, or the column's name in the header line. */
  column: number | string;
  /** One-character field delimiter (default `,`). */
  delimiter?: string;
  /**
   * Whether the first non-comment line is a header (default: true when
   * `column` is a name, false when it is an index).
   */
  header?: boolean;
}

/** Options of {@linkcode parseIpList}. */
export type IpListFormat = LinesFormat | CsvFormat;

/** A line of a list that was reported: malformed, or normalized with a warning. */
export interface IpListIssue {
  /** One-based line number. */
  line: number;
  /** The line as read (without line ending), at most 120 characters. */
  text: string;
  /** What was wrong, in sentence case. */
  reason: string;
}

/**
 * The entries of one named list, as typed arrays: what `IpMatcher` (ip_list.ts)
 * is built from. Networks are normalized (no host bits set).
 */
export interface IpListEntries {
  /** The list's name, as lookups report it. */
  readonly name: string;
  /** IPv4 network addresses as unsigned 32-bit integers. */
  readonly v4: Uint32Array;
  /** Prefix length (0–32) of each IPv4 entry; same length as `v4`. */
  readonly v4Prefixes: Uint8Array;
  /** IPv6 networks, four big-endian 32-bit words per entry (most significant first). */
  readonly v6: Uint32Array;
  /** Prefix length (0–128) of each IPv6 entry; a quarter of `v6`'s length. */
  readonly v6Prefixes: Uint8Array;
}

/** A parsed list: its entries and what was wrong with the text. */
export interface ParsedIpList extends IpListEntries {
  /** Entries accepted (IPv4 plus IPv6, duplicates included). */
  readonly size: number;
  /** Lines read. */
  readonly lines: number;
  /** Malformed lines (all of them, not only those kept in `problems`). */
  readonly malformed: number;
  /** The first {@linkcode MAX_REPORTED} malformed lines. */
  readonly problems: readonly IpListIssue[];
  /** Entries whose host bits were set and have been cleared. */
  readonly hostBitsCleared: number;
  /** The first {@linkcode MAX_REPORTED} such entries. */
  readonly warnings: readonly IpListIssue[];
}

/** A single parsed CIDR (the non-hot-path result of {@linkcode parseCidr}). */
export interface Cidr {
  /** Address family. */
  family: 4 | 6;
  /** Network: one word for IPv4, four big-endian words for IPv6. */
  words: Uint32Array;
  /** Prefix length. */
  prefix: number;
  /** Whether the text had host bits set (they are cleared in `words`). */
  hostBitsSet: boolean;
}

// Character codes.
const DOT = 46;
const COLON = 58;
const SLASH = 47;
const HASH = 35;
const SEMICOLON = 59;
const QUOTE = 34;
const PERCENT = 37;
const ZERO = 48;
const NINE = 57;

// Results of the position-based parsers (negative: why it failed).
const BAD_ADDRESS = -1;
const BAD_PREFIX = -2;
const ZONE_ID = -3;

const REASONS: Record<number, string> = {
  [BAD_ADDRESS]: "Not an IP address or CIDR",
  [BAD_PREFIX]: "Invalid prefix length",
  [ZONE_ID]: "IPv6 zone ids are not allowed",
};

// Scratch shared by the position-based parsers: the last parsed address
// (1 or 4 words), prefix and host-bits flag. Single-threaded, never re-entered.
const groups = new Uint16Array(8);
const scratch = new Uint32Array(4);
let scratchPrefix = 0;
let scratchHostBits = false;

/** Mask of the `bits` most significant bits of a 32-bit word (bits clamped to 0–32). */
function maskWord(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** Dotted-quad IPv4 in `t[s, e)` → unsigned 32-bit value, or -1. */
function parseV4At(t: string, s: number, e: number): number {
  let value = 0;
  let octets = 0;
  let i = s;
  for (;;) {
    const start = i;
    let octet = 0;
    while (i < e) {
      const c = t.charCodeAt(i);
      if (c < ZERO || c > NINE) break;
      octet = octet * 10 + c - ZERO;
      if (++i - start > 3) return -1;
    }
    const len = i - start;
    if (len === 0 || octet > 255 || (len > 1 && t.charCodeAt(start) === ZERO)) return -1;
    value = value * 256 + octet;
    octets++;
    if (i === e) break;
    if (octets === 4 || t.charCodeAt(i) !== DOT) return -1;
    i++;
  }
  return octets === 4 ? value : -1;
}

function hexValue(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** IPv6 text in `t[s, e)` → four words in `out` at `off`; false if invalid. */
function parseV6At(t: string, s: number, e: number, out: Uint32Array, off: number): boolean {
  let n = 0; // groups parsed
  let gap = -1; // index in `groups` where `::` stands
  let i = s;
  if (i >= e) return false;
  if (t.charCodeAt(i) === COLON) {
    if (i + 1 >= e || t.charCodeAt(i + 1) !== COLON) return false;
    gap = 0;
    i += 2;
  }
  while (i < e) {
    if (n >= 8) return false;
    const start = i;
    let v = 0;
    while (i < e && i - start < 5) {
      const h = hexValue(t.charCodeAt(i));
      if (h < 0) break;
      v = v * 16 + h;
      i++;
    }
    if (i < e && t.charCodeAt(i) === DOT) {
      // Embedded IPv4: the rest of the text, worth two groups.
      if (n > 6) return false;
      const v4 = parseV4At(t, start, e);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = e;
      break;
    }
    const len = i - start;
    if (len === 0 || len > 4) return false;
    groups[n++] = v;
    if (i === e) break;
    if (t.charCodeAt(i) !== COLON) return false;
    i++;
    if (i < e && t.charCodeAt(i) === COLON) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === e) {
      return false; // a single trailing colon
    }
  }
  if (gap < 0) {
    if (n !== 8) return false;
  } else {
    if (n > 7) return false;
    const tail = n - gap;
    for (let k = 1; k <= tail; k++) groups[8 - k] = groups[n - k];
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  }
  for (let w = 0; w < 4; w++) out[off + w] = ((groups[2 * w] << 16) | groups[2 * w + 1]) >>> 0;
  return true;
}

/**
 * CIDR (or bare address) in `t[s, e)` → family 4 or 6 with the normalized
 * network in `scratch`, `scratchPrefix` and `scratchHostBits`; or a negative
 * failure code. IPv4-mapped IPv6 networks come back as IPv4.
 */
function parseCidrAt(t: string, s: number, e: number): number {
  let slash = -1;
  let v6 = false;
  for (let i = s; i < e; i++) {
    const c = t.charCodeAt(i);
    if (c === COLON) v6 = true;
    else if (c === SLASH) {
      slash = i;
      break;
    } else if (c === PERCENT) return ZONE_ID;
  }
  const addressEnd = slash < 0 ? e : slash;
  const max = v6 ? 128 : 32;
  let prefix = max;
  if (slash >= 0) {
    const ps = slash + 1;
    const len = e - ps;
    if (len < 1 || len > 3 || (len > 1 && t.charCodeAt(ps) === ZERO)) return BAD_PREFIX;
    prefix = 0;
    for (let i = ps; i < e; i++) {
      const c = t.charCodeAt(i);
      if (c < ZERO || c > NINE) return BAD_PREFIX;
      prefix = prefix * 10 + c - ZERO;
    }
    if (prefix > max) return BAD_PREFIX;
  }
  if (!v6) {
    const address = parseV4At(t, s, addressEnd);
    if (address < 0) return BAD_ADDRESS;
    const network = (address & maskWord(prefix)) >>> 0;
    scratch[0] = network;
    scratchPrefix = prefix;
    scratchHostBits = network !== address;
    return 4;
  }
  if (!parseV6At(t, s, addressEnd, scratch, 0)) return BAD_ADDRESS;
  let hostBits = false;
  for (let w = 0; w < 4; w++) {
    const word = scratch[w];
    const network = (word & maskWord(prefix - 32 * w)) >>> 0;
    if (network !== word) hostBits = true;
    scratch[w] = network;
  }
  scratchHostBits = hostBits;
  if (prefix >= 96 && scratch[0] === 0 && scratch[1] === 0 && scratch[2] === 0xffff) {
    scratch[0] = scratch[3];
    scratchPrefix = prefix - 96;
    return 4;
  }
  scratchPrefix = prefix;
  return 6;
}

/**
 * Parses an IPv4 or IPv6 address (no prefix) into `out`, for lookups on a hot
 * path: returns 4 with the address in `out[0]`, 6 with four big-endian words
 * in `out[0..3]`, or 0 if `text` is not an address. IPv4-mapped IPv6
 * addresses are returned as they are (family 6); `IpMatcher` (ip_list.ts) maps
 * them.
 *
 * @param text the address, without surrounding whitespace
 * @param out at least four words, overwritten
 *
 * @example
 * ```ts
 * import { parseIpAddressInto } from "./ip_list_parse.ts";
 * const out = new Uint32Array(4);
 * parseIpAddressInto("10.0.0.1", out); // 4, out[0] === 0x0a000001
 * parseIpAddressInto("2001:db8::1", out); // 6
 * parseIpAddressInto("10.0.0.1/8", out); // 0
 * ```
 */
export function parseIpAddressInto(text: string, out: Uint32Array): 0 | 4 | 6 {
  const e = text.length;
  for (let i = 0; i < e; i++) {
    if (text.charCodeAt(i) === COLON) return parseV6At(text, 0, e, out, 0) ? 6 : 0;
  }
  const v4 = parseV4At(text, 0, e);
  if (v4 < 0) return 0;
  out[0] = v4;
  return 4;
}

/**
 * Parses one CIDR or bare address (strict, see the module comment); host bits
 * are cleared and flagged, IPv4-mapped IPv6 networks become IPv4.
 *
 * @param text e.g. `192.0.2.0/24`, `2001:db8::/32`, `198.51.100.7`
 * @returns the network, or undefined if `text` is not one
 *
 * @example
 * ```ts
 * import { parseCidr } from "./ip_list_parse.ts";
 * parseCidr("10.1.2.3/8"); // { family: 4, words: [0x0a000000], prefix: 8, hostBitsSet: true }
 * parseCidr("fe80::1%eth0"); // undefined
 * ```
 */
export function parseCidr(text: string): Cidr | undefined {
  const family = parseCidrAt(text, 0, text.length);
  if (family < 0) return undefined;
  return {
    family: family as 4 | 6,
    words: scratch.slice(0, family === 4 ? 1 : 4),
    prefix: scratchPrefix,
    hostBitsSet: scratchHostBits,
  };
}

/** Growable typed-array store of a list's entries. */
class EntryBuffer {
  v4 = new Uint32Array(1024);
  v4Prefixes = new Uint8Array(1024);
  n4 = 0;
  v6 = new Uint32Array(4 * 64);
  v6Prefixes = new Uint8Array(64);
  n6 = 0;

  /** Appends the entry in the parser scratch of `family`. */
  add(family: number): void {
    if (family === 4) {
      if (this.n4 === this.v4Prefixes.length) {
        this.v4 = grow32(this.v4, this.v4.length * 2);
        this.v4Prefixes = grow8(this.v4Prefixes, this.v4Prefixes.length * 2);
      }
      this.v4[this.n4] = scratch[0];
      this.v4Prefixes[this.n4++] = scratchPrefix;
    } else {
      if (this.n6 === this.v6Prefixes.length) {
        this.v6 = grow32(this.v6, this.v6.length * 2);
        this.v6Prefixes = grow8(this.v6Prefixes, this.v6Prefixes.length * 2);
      }
      this.v6.set(scratch, 4 * this.n6);
      this.v6Prefixes[this.n6++] = scratchPrefix;
    }
  }
}

function grow32(a: Uint32Array, length: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(length);
  b.set(a);
  return b;
}

function grow8(a: Uint8Array, length: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(length);
  b.set(a);
  return b;
}

/** Collects malformed lines and host-bit warnings while parsing. */
class Report {
  malformed = 0;
  problems: IpListIssue[] = [];
  hostBitsCleared = 0;
  warnings: IpListIssue[] = [];

  problem(line: number, text: string, reason: string): void {
    if (this.malformed++ < MAX_REPORTED) this.problems.push(issue(line, text, reason));
  }

  hostBits(line: number, text: string): void {
    if (this.hostBitsCleared++ < MAX_REPORTED) {
      this.warnings.push(issue(line, text, "Host bits set beyond the prefix: cleared"));
    }
  }
}

function issue(line: number, text: string, reason: string): IpListIssue {
  return { line, text: text.length > 120 ? text.slice(0, 117) + "..." : text, reason };
}

function isSpace(c: number): boolean {
  return c <= 32;
}

/**
 * Parses the text of a named IP list. Never throws on content: malformed
 * lines are counted in the result. Throws only on bad options (a RangeError
 * for a delimiter that is not one character, a negative column, or a column
 * name without a header).
 *
 * @param name the list's name, as lookups report it
 * @param text the whole file
 * @param format `{ format: "lines" }` (default) or `{ format: "csv", column, delimiter?, header? }`
 *
 * @example
 * ```ts
 * import { parseIpList } from "./ip_list_parse.ts";
 * const drop = parseIpList("spamhaus-drop", "; Spamhaus DROP\r\n1.10.16.0/20 ; SBL256894\r\nbogus\r\n");
 * drop.size; // 1
 * drop.problems; // [{ line: 3, text: "bogus", reason: "Not an IP address or CIDR" }]
 * const feodo = parseIpList("feodo", '"first_seen","dst_ip"\n"2024-01-01","198.51.100.7"\n', {
 *   format: "csv",
 *   column: "dst_ip",
 * });
 * feodo.v4[0]; // 0xc6336407
 * ```
 */
export function parseIpList(
  name: string,
  text: string,
  format: IpListFormat = { format: "lines" },
): ParsedIpList {
  const entries = new EntryBuffer();
  const report = new Report();
  const lines = format.format === "csv"
    ? parseCsv(text, format, entries, report)
    : parseLines(text, entries, report);
  return {
    name,
    v4: entries.v4.slice(0, entries.n4),
    v4Prefixes: entries.v4Prefixes.slice(0, entries.n4),
    v6: entries.v6.slice(0, 4 * entries.n6),
    v6Prefixes: entries.v6Prefixes.slice(0, entries.n6),
    size: entries.n4 + entries.n6,
    lines,
    malformed: report.malformed,
    problems: report.problems,
    hostBitsCleared: report.hostBitsCleared,
    warnings: report.warnings,
  };
}

/** Calls `onLine(lineNumber, start, end)` for each line, without its CR/LF. Returns the count. */
function forEachLine(
  text: string,
  onLine: (line: number, start: number, end: number) => void,
): number {
  const len = text.length;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 0;
  while (pos < len) {
    let nl = text.indexOf("\n", pos);
    if (nl < 0) nl = len;
    let end = nl;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--;
    onLine(++line, pos, end);
    pos = nl + 1;
  }
  return line;
}

function lineText(text: string, start: number, end: number): string {
  return text.slice(start, Math.min(end, start + 200));
}

function parseLines(text: string, entries: EntryBuffer, report: Report): number {
  return forEachLine(text, (line, start, end) => {
    let s = start;
    let e = end;
    for (let i = s; i < e; i++) {
      const c = text.charCodeAt(i);
      if (c === HASH || c === SEMICOLON) {
        e = i;
        break;
      }
    }
    while (s < e && isSpace(text.charCodeAt(s))) s++;
    while (e > s && isSpace(text.charCodeAt(e - 1))) e--;
    if (s === e) return;
    for (let i = s; i < e; i++) {
      if (isSpace(text.charCodeAt(i))) {
        report.problem(line, lineText(text, start, end), "More than one field on the line");
        return;
      }
    }
    addEntry(text, s, e, line, () => lineText(text, start, end), entries, report);
  });
}

/** Parses `t[s, e)` into `entries`, or reports why not; `row` gives the line's text when needed. */
function addEntry(
  t: string,
  s: number,
  e: number,
  line: number,
  row: () => string,
  entries: EntryBuffer,
  report: Report,
): void {
  const family = parseCidrAt(t, s, e);
  if (family < 0) {
    report.problem(line, row(), REASONS[family]);
    return;
  }
  if (scratchHostBits) report.hostBits(line, row());
  entries.add(family);
}

/** Splits one CSV line into unquoted fields. */
function csvFields(line: string, delimiter: number): string[] {
  const fields: string[] = [];
  let i = 0;
  const len = line.length;
  for (;;) {
    while (i < len && line.charCodeAt(i) === 32) i++;
    if (i < len && line.charCodeAt(i) === QUOTE) {
      let value = "";
      let from = ++i;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return []; // unterminated quote: unusable row
        if (line.charCodeAt(q + 1) === QUOTE) {
          value += line.slice(from, q + 1);
          from = i = q + 2;
          continue;
        }
        value += line.slice(from, q);
        i = q + 1;
        break;
      }
      while (i < len && line.charCodeAt(i) !== delimiter) i++;
      fields.push(value);
    } else {
      const from = i;
      while (i < len && line.charCodeAt(i) !== delimiter) i++;
      fields.push(line.slice(from, i).trim());
    }
    if (i >= len) return fields;
    i++; // past the delimiter
  }
}

function parseCsv(text: string, format: CsvFormat, entries: EntryBuffer, report: Report): number {
  const delimiter = format.delimiter ?? ",";
  if (delimiter.length !== 1) {
    throw new RangeError(`CSV delimiter must be one character: ${JSON.stringify(delimiter)}`);
  }
  const delim = delimiter.charCodeAt(0);
  const byName = typeof format.column === "string";
  const hasHeader = format.header ?? byName;
  if (byName && !hasHeader) {
    throw new RangeError(`CSV column named without a header: ${format.column}`);
  }
  if (!byName && (!Number.isInteger(format.column) || (format.column as number) < 0)) {
    throw new RangeError(`CSV column must be a name or an index from 0: ${format.column}`);
  }
  let column = byName ? -1 : format.column as number;
  let headerSeen = !hasHeader;
  let unusable = false; // a named column missing from the header
  return forEachLine(text, (line, start, end) => {
    let s = start;
    while (s < end && isSpace(text.charCodeAt(s))) s++;
    if (s === end || text.charCodeAt(s) === HASH || unusable) return;
    const row = text.slice(start, end);
    const fields = csvFields(row, delim);
    if (!headerSeen) {
      headerSeen = true;
      if (byName) {
        const wanted = (format.column as string).toLowerCase();
        column = fields.findIndex((f) => f.trim().toLowerCase() === wanted);
        if (column < 0) {
          unusable = true;
          report.problem(line, row, `Column not in the header: ${format.column}`);
        }
      }
      return;
    }
    if (column >= fields.length) {
      report.problem(line, row, fields.length === 0 ? "Unterminated quote" : "Missing column");
      return;
    }
    const value = fields[column].trim();
    if (value === "") {
      report.problem(line, row, "Empty column");
      return;
    }
    addEntry(value, 0, value.length, line, () => row, entries, report);
  });
}
