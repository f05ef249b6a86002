/**
 * The format of a quarantined copy (`<id>.amq`): a 32-byte header, then the
 * original bytes encrypted with AES-256-CTR under a random key and IV that
 * exist only in the file's database record. Encryption here is not about
 * secrecy from root (the key sits next door) but about making the copy inert:
 * no scanner, loader or interpreter recognises it (its first bytes are `AMPQ`,
 * not `\x7fELF` or `#!`), the same malware quarantined twice gives two
 * unrelated copies, and a file of zeros does not reveal its key (as a plain
 * repeating XOR would).
 *
 * Header, little-endian:
 * ```
 * 0   4  magic "AMPQ"
 * 4   2  format version (1)
 * 6   2  header length (32): data starts here
 * 8   8  record id
 * 16  8  original size in bytes
 * 24  1  cipher (1 = AES-256-CTR)
 * 25  7  zero
 * ```
 *
 * @module
 */

import { createCipheriv, randomBytes } from "node:crypto";

/** The format version written into new copies. */
export const QUARANTINE_FORMAT_VERSION = 1;
/** Length of the header, and offset of the data. */
export const QUARANTINE_HEADER_SIZE = 32;
/** The cipher id of AES-256-CTR. */
export const CIPHER_AES_256_CTR = 1;

const MAGIC = [0x41, 0x4d, 0x50, 0x51]; // "AMPQ"

/** What a copy's header says. */
export interface QuarantineHeader {
  version: number;
  /** The id of the record the copy belongs to. */
  id: number;
  /** The original size in bytes. */
  size: number;
  cipher: number;
}

/**
 * The header of a new copy.
 *
 * @example
 * ```ts
 * import { encodeQuarantineHeader, decodeQuarantineHeader } from "./quarantine_format.ts";
 *
 * decodeQuarantineHeader(encodeQuarantineHeader({ id: 7, size: 68 })).id; // 7
 * ```
 */
export function encodeQuarantineHeader(
  info: { id: number; size: number },
): Uint8Array<ArrayBuffer> {
  const header = new Uint8Array(QUARANTINE_HEADER_SIZE);
  const view = new DataView(header.buffer);
  header.set(MAGIC, 0);
  view.setUint16(4, QUARANTINE_FORMAT_VERSION, true);
  view.setUint16(6, QUARANTINE_HEADER_SIZE, true);
  view.setBigUint64(8, BigInt(info.id), true);
  view.setBigUint64(16, BigInt(info.size), true);
  header[24] = CIPHER_AES_256_CTR;
  return header;
}

/**
 * Reads a copy's header.
 *
 * @throws {Error} when the bytes are not a header this version of amp reads
 */
export function decodeQuarantineHeader(bytes: Uint8Array): QuarantineHeader {
  if (bytes.length < QUARANTINE_HEADER_SIZE || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new Error("Not a quarantined file: no AMPQ header");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  const length = view.getUint16(6, true);
  const cipher = bytes[24];
  if (version !== QUARANTINE_FORMAT_VERSION || length !== QUARANTINE_HEADER_SIZE) {
    throw new Error(`Unsupported quarantine format: version ${version}, header ${length} bytes`);
  }
  if (cipher !== CIPHER_AES_256_CTR) {
    throw new Error(`Unsupported quarantine format: cipher ${cipher}`);
  }
  return {
    version,
    id: Number(view.getBigUint64(8, true)),
    size: Number(view.getBigUint64(16, true)),
    cipher,
  };
}

/** A fresh random key (32 bytes) and IV (16 bytes) for one copy. */
export function newCipherKey(): { key: Uint8Array; iv: Uint8Array } {
  return { key: new Uint8Array(randomBytes(32)), iv: new Uint8Array(randomBytes(16)) };
}

/**
 * The AES-256-CTR key stream of one copy: `apply` XORs the next bytes of the
 * stream into a chunk, so the same call encodes and decodes. Chunks must be
 * given in file order.
 *
 * @example
 * ```ts
 * import { newCipherKey, quarantineCipher } from "./quarantine_format.ts";
 *
 * const { key, iv } = newCipherKey();
 * const data = new TextEncoder().encode("some bytes");
 * const encoded = quarantineCipher(key, iv).apply(data);
 * quarantineCipher(key, iv).apply(encoded); // the original bytes
 * ```
 */
export function quarantineCipher(
  key: Uint8Array,
  iv: Uint8Array,
): { apply(chunk: Uint8Array): Uint8Array<ArrayBuffer> } {
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  return {
    apply(chunk) {
      // A copy: node's Buffer may be a view of a shared pool.
      return new Uint8Array(cipher.update(chunk));
    },
  };
}
