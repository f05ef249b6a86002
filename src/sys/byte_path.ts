/**
 * Paths on Linux are bytes, not text. A file named `bad\xff\xfe.com` is a
 * perfectly good file that Deno's and node:fs's directory listings turn into
 * an unopenable `bad\uFFFD\uFFFD.com`. Everything that walks, opens or reports
 * host files keeps names as {@linkcode BytePath} and shows them escaped.
 *
 * @module
 */

/** A host path as raw bytes (no trailing NUL). */
export type BytePath = Uint8Array;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Turns a JavaScript string into a byte path (UTF-8).
 *
 * @example
 * ```ts
 * import { bytePath } from "./byte_path.ts";
 * bytePath("/tmp").length; // 4
 * ```
 */
export function bytePath(path: string): BytePath {
  return encoder.encode(path);
}

/**
 * Joins a directory and an entry name with exactly one `/` between them.
 *
 * @example
 * ```ts
 * import { bytePath, joinBytePath, escapePath } from "./byte_path.ts";
 * escapePath(joinBytePath(bytePath("/tmp/"), bytePath("a"))); // "/tmp/a"
 * ```
 */
export function joinBytePath(dir: BytePath, name: BytePath): BytePath {
  const slash = dir.length > 0 && dir[dir.length - 1] === 0x2f;
  const out = new Uint8Array(dir.length + (slash ? 0 : 1) + name.length);
  out.set(dir, 0);
  if (!slash) out[dir.length] = 0x2f;
  out.set(name, out.length - name.length);
  return out;
}

/** A NUL-terminated copy of a path, as C functions take it. */
export function cPath(path: BytePath): Uint8Array<ArrayBuffer> {
  if (path.includes(0)) throw new TypeError("Path contains a NUL byte");
  const out = new Uint8Array(path.length + 1);
  out.set(path, 0);
  return out;
}

/**
 * Shows a byte path as printable text, escaped in the manner of a shell
 * `$'…'` string (quotes are left as they are): valid UTF-8 passes through, a backslash becomes `\\`, control
 * characters become `\n`, `\t` or `\xNN`, and bytes that are not UTF-8 become
 * `\xNN`. Plain paths come back unchanged.
 *
 * @example
 * ```ts
 * import { escapePath } from "./byte_path.ts";
 * escapePath(new Uint8Array([0x61, 0xff, 0x0a])); // "a\\xff\\n"
 * ```
 */
export function escapePath(path: BytePath): string {
  let text: string | undefined;
  try {
    text = strictDecoder.decode(path);
  } catch {
    text = undefined;
  }
  // deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
  if (text !== undefined && !/[\x00-\x1f\x7f\\]/.test(text)) return text;
  let out = "";
  let i = 0;
  while (i < path.length) {
    const b = path[i];
    if (b < 0x80) {
      out += escapeAscii(b);
      i++;
      continue;
    }
    const len = utf8SequenceLength(path, i);
    if (len === 0) {
      out += `\\x${hex2(b)}`;
      i++;
    } else {
      out += strictDecoder.decode(path.subarray(i, i + len));
      i += len;
    }
  }
  return out;
}

/**
 * A binary string (one char per byte, code points 0–255) of a path: lets
 * pattern matching work byte for byte whatever the encoding.
 */
export function latin1(path: BytePath): string {
  let out = "";
  for (let i = 0; i < path.length; i += 8192) {
    out += String.fromCharCode(...path.subarray(i, i + 8192));
  }
  return out;
}

function escapeAscii(b: number): string {
  switch (b) {
    case 0x5c:
      return "\\\\";
    case 0x0a:
      return "\\n";
    case 0x09:
      return "\\t";
    case 0x0d:
      return "\\r";
  }
  if (b < 0x20 || b === 0x7f) return `\\x${hex2(b)}`;
  return String.fromCharCode(b);
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, "0");
}

/** Length of a valid UTF-8 sequence starting at `i`, or 0 when invalid. */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  const len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 0;
  if (len === 0 || i + len > bytes.length) return 0;
  try {
    strictDecoder.decode(bytes.subarray(i, i + len));
    return len;
  } catch {
    return 0;
  }
}

/**
 * True when `path` is `dir` or below it (component-wise: `/a/bc` is not
 * below `/a/b`).
 *
 * @example
 * ```ts
 * import { bytePath, isUnder } from "./byte_path.ts";
 * isUnder(bytePath("/var/lib/amp/events.db"), bytePath("/var/lib/amp")); // true
 * ```
 */
export function isUnder(path: BytePath, dir: BytePath): boolean {
  if (path.length < dir.length) return false;
  for (let i = 0; i < dir.length; i++) if (path[i] !== dir[i]) return false;
  return path.length === dir.length || path[dir.length] === 0x2f || dir[dir.length - 1] === 0x2f;
}

/** True when two byte strings are equal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
