/**
 * Recognises archive and compressed formats by their first bytes, so that a
 * file over the policy's file-size limit but under its archive limit is still
 * scanned when it is an archive (as the reference connector does).
 *
 * @module
 */

/** Bytes to read from the start of a file for {@linkcode archiveFormat}. */
export const SNIFF_BYTES = 512;

const MAGIC: Array<[string, number, number[]]> = [
  ["zip", 0, [0x50, 0x4b, 0x03, 0x04]],
  ["gzip", 0, [0x1f, 0x8b]],
  ["bzip2", 0, [0x42, 0x5a, 0x68]],
  ["xz", 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["7z", 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
  ["rar", 0, [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07]],
  ["zstd", 0, [0x28, 0xb5, 0x2f, 0xfd]],
  ["cab", 0, [0x4d, 0x53, 0x43, 0x46]],
  ["ar", 0, [0x21, 0x3c, 0x61, 0x72, 0x63, 0x68, 0x3e, 0x0a]],
  ["rpm", 0, [0xed, 0xab, 0xee, 0xdb]],
  ["cpio", 0, [0x30, 0x37, 0x30, 0x37, 0x30]],
  ["tar", 257, [0x75, 0x73, 0x74, 0x61, 0x72]],
];

/**
 * The archive format of a file from its first {@linkcode SNIFF_BYTES} bytes,
 * or undefined when it is not one amp knows.
 *
 * @example
 * ```ts
 * import { archiveFormat } from "./archive_sniff.ts";
 * archiveFormat(new Uint8Array([0x1f, 0x8b, 8, 0])); // "gzip"
 * ```
 */
export function archiveFormat(head: Uint8Array): string | undefined {
  for (const [name, offset, magic] of MAGIC) {
    if (head.length < offset + magic.length) continue;
    if (magic.every((b, i) => head[offset + i] === b)) return name;
  }
  return undefined;
}
