/**
 * SHA-256 of an open file. The native hasher (libclamav's OpenSSL, off the JS
 * thread) is the default; the JS one (`node:crypto` over `pread`) serves when
 * libclamav cannot be loaded.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { pread, rewind } from "../sys/libc.ts";
import { sha256Descriptor } from "./clamav/_native.ts";

/** Hashes an open descriptor from its start. */
export interface FileHasher {
  /** Lower-case hex SHA-256 of the whole file. */
  sha256(fd: number): Promise<string>;
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Hashes with libclamav's `cl_hash_file_fd` on Deno's blocking thread pool. */
export class NativeFileHasher implements FileHasher {
  async sha256(fd: number): Promise<string> {
    rewind(fd);
    const digest = await sha256Descriptor(fd);
    rewind(fd);
    return hex(digest);
  }
}

/** Hashes on the JS thread with `node:crypto`, reading with `pread`. */
export class JsFileHasher implements FileHasher {
  readonly #buf = new Uint8Array(1 << 20);

  // deno-lint-ignore require-await -- async so that a read error rejects instead of throwing
  async sha256(fd: number): Promise<string> {
    const hash = createHash("sha256");
    for (let offset = 0;;) {
      const n = pread(fd, this.#buf, offset);
      if (n === 0) break;
      hash.update(this.#buf.subarray(0, n));
      offset += n;
    }
    return hash.digest("hex");
  }
}
