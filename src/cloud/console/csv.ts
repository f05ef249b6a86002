/**
 * A CSV writer (RFC 4180: comma separated, CRLF line ends, fields quoted when
 * they hold a comma, a quote or a line break, quotes doubled). Text cells that
 * a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab
 * or carriage return) are prefixed with `'`: exported events hold paths and
 * command lines that an attacker chose.
 *
 * @module
 */

/** One cell: text, a number, or empty. */
export type CsvCell = string | number | boolean | null | undefined;

const FORMULA = /^[=+\-@\t\r]/;

/**
 * One CSV field.
 *
 * @example
 * ```ts
 * import { csvField } from "./csv.ts";
 * csvField('say "hi", then go'); // '"say ""hi"", then go"'
 * csvField("=1+1"); // "'=1+1"
 * ```
 */
export function csvField(cell: CsvCell): string {
  if (cell === null || cell === undefined) return "";
  if (typeof cell === "number" || typeof cell === "boolean") return String(cell);
  const text = FORMULA.test(cell) ? `'${cell}` : cell;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * One CSV record, ending in CRLF.
 *
 * @example
 * ```ts
 * import { csvRow } from "./csv.ts";
 * csvRow(["a", 1, null, "b,c"]); // 'a,1,,"b,c"\r\n'
 * ```
 */
export function csvRow(cells: readonly CsvCell[]): string {
  return cells.map(csvField).join(",") + "\r\n";
}
