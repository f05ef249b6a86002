/**
 * The samples planted in the corpus, each of which the benchmark database
 * detects: EICAR as a plain file, inside a zip and inside a tar.gz, a file
 * matched by a planted SHA-256 hash signature and one matched by a planted body
 * signature.
 *
 * The EICAR test string is assembled at run time from pieces so that no file
 * in the repository contains it (and no scanner flags the repository).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { Prng } from "./prng.ts";

/** Folder, inside the corpus, that holds the planted samples. */
export const SAMPLES_DIR_NAME = "amp-bench-samples";

/** The 68-byte EICAR anti-malware test string, built from pieces. */
export function eicarBytes(): Uint8Array {
  const pieces = [
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
    "EIC",
    "AR-STAN",
    "DARD-ANTI",
    "VIRUS-TEST-",
    "FILE!$H+H*",
  ];
  return new TextEncoder().encode(pieces.join(""));
}

/** Content of the file matched by the planted hash signature (deterministic). */
export function plantedHashContent(): Uint8Array {
  const head = new TextEncoder().encode("amp-bench planted hash sample\n");
  const body = new Prng(0x4a5b).bytes(4096);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

/** The byte pattern of the planted body signature (24 bytes, deterministic). */
export function plantedBodyPattern(): Uint8Array {
  return new Prng(0xb0d1).bytes(24);
}

/** Content of the file matched by the planted body signature: the pattern amid noise. */
export function plantedBodyContent(): Uint8Array {
  const noise = new Prng(0xb0d2);
  const before = noise.bytes(3000);
  const after = noise.bytes(5000);
  const pattern = plantedBodyPattern();
  const out = new Uint8Array(before.length + pattern.length + after.length);
  out.set(before);
  out.set(pattern, before.length);
  out.set(after, before.length + pattern.length);
  return out;
}

/** SHA-256 (hex) and size of `bytes`. */
export function hashOf(bytes: Uint8Array): { sha256: string; size: number } {
  return { sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length };
}

/** One planted sample, and why it must be detected. */
export interface PlantedSample {
  /** Absolute path of the sample. */
  path: string;
  /** What the sample exercises. */
  kind: "eicar" | "eicar-zip" | "eicar-tar-gz" | "hash-signature" | "body-signature";
}

/**
 * Writes the five samples into `dir` (created if needed) and returns them.
 * The zip and the tar.gz are built with the `zip` and `tar` commands.
 *
 * @param dir the folder to write into
 */
export async function writeSamples(dir: string): Promise<PlantedSample[]> {
  await Deno.mkdir(dir, { recursive: true });
  const staging = await Deno.makeTempDir({ prefix: "amp-bench-samples-" });
  try {
    await Deno.writeFile(join(staging, "eicar.com"), eicarBytes());
    await run("zip", ["-X", "-q", "-j", join(staging, "eicar.zip"), join(staging, "eicar.com")]);
    await run("tar", ["-czf", join(staging, "eicar.tar.gz"), "-C", staging, "eicar.com"]);
    const samples: PlantedSample[] = [
      { path: join(dir, "eicar.com"), kind: "eicar" },
      { path: join(dir, "eicar.zip"), kind: "eicar-zip" },
      { path: join(dir, "eicar.tar.gz"), kind: "eicar-tar-gz" },
      { path: join(dir, "planted-hash.bin"), kind: "hash-signature" },
      { path: join(dir, "planted-body.bin"), kind: "body-signature" },
    ];
    await Deno.copyFile(join(staging, "eicar.com"), samples[0].path);
    await Deno.copyFile(join(staging, "eicar.zip"), samples[1].path);
    await Deno.copyFile(join(staging, "eicar.tar.gz"), samples[2].path);
    await Deno.writeFile(samples[3].path, plantedHashContent());
    await Deno.writeFile(samples[4].path, plantedBodyContent());
    return samples;
  } finally {
    await Deno.remove(staging, { recursive: true });
  }
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(
      `Cannot build a sample: ${cmd} ${args.join(" ")} exited ${out.code}: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
}
