/**
 * The 512-byte header of ClamAV's signature containers (`.cvd`, `.cld`,
 * `.cud`): `ClamAV-VDB:build time:version:signatures:functionality
 * level:md5:digital signature:builder:stime`, padded with spaces. The MD5 is
 * of everything after the header (the tar.gz body) in `.cvd` and `.cud`
 * files; a `.cld` (what freshclam leaves after applying cdiffs) holds an
 * unpacked body, so its MD5 is not checked here.
 *
 * @module
 */

/** Size of the header in bytes. */
export const CVD_HEADER_SIZE = 512;

/** The parsed header of a signature container. */
export interface CvdHeader {
  /** Build time as written (`26 Nov 2026 14-07 +0000`). */
  buildTime: string;
  version: number;
  signatures: number;
  functionalityLevel: number;
  /** Lower-case hex MD5 of the body. */
  md5: string;
  /** Digital signature (`X` in unsigned containers). */
  digitalSignature: string;
  builder: string;
  /** Build time in seconds since the epoch, when present. */
  stime?: number;
}

/** A header that is not a ClamAV container header. */
export class CvdHeaderError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CvdHeaderError";
  }
}

/**
 * Parses the first 512 bytes of a container. Throws {@linkcode CvdHeaderError}
 * when they are not a ClamAV header.
 *
 * @example
 * ```ts
 * import { parseCvdHeader } from "./cvd_header.ts";
 * const text = "ClamAV-VDB:26 Nov 2026 14-07 +0000:3:1:216:" +
 *   "34cee02e3c381fcf43b947e0979e1b9c:X:amp:1795702065";
 * parseCvdHeader(new TextEncoder().encode(text.padEnd(512))).version; // 3
 * ```
 */
export function parseCvdHeader(bytes: Uint8Array): CvdHeader {
  if (bytes.length < CVD_HEADER_SIZE) {
    throw new CvdHeaderError(`Header too short: ${bytes.length} of ${CVD_HEADER_SIZE} bytes`);
  }
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, CVD_HEADER_SIZE)).trimEnd();
  if (!text.startsWith("ClamAV-VDB:")) throw new CvdHeaderError("Not a ClamAV database header");
  const fields = text.split(":");
  if (fields.length < 8) {
    throw new CvdHeaderError(`Header has ${fields.length} fields, expected at least 8`);
  }
  const whole = (value: string, what: string): number => {
    if (!/^\d+$/.test(value)) throw new CvdHeaderError(`Bad ${what} in header: ${value}`);
    return Number(value);
  };
  const md5 = fields[5].toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(md5)) throw new CvdHeaderError(`Bad MD5 in header: ${fields[5]}`);
  const header: CvdHeader = {
    buildTime: fields[1],
    version: whole(fields[2], "version"),
    signatures: whole(fields[3], "signature count"),
    functionalityLevel: whole(fields[4], "functionality level"),
    md5,
    digitalSignature: fields[6],
    builder: fields[7],
  };
  if (fields[8] !== undefined && /^\d+$/.test(fields[8])) header.stime = Number(fields[8]);
  return header;
}

/**
 * Reads the header of a container file; undefined when the file does not
 * exist. Throws {@linkcode CvdHeaderError} for a file that is not one.
 */
export async function readCvdHeader(path: string): Promise<CvdHeader | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  try {
    const buf = new Uint8Array(CVD_HEADER_SIZE);
    let got = 0;
    while (got < buf.length) {
      const n = await file.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    return parseCvdHeader(buf.subarray(0, got));
  } finally {
    file.close();
  }
}
