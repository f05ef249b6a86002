/**
 * Builds the synthetic signature database the benchmark scans with, shaped like
 * a real one: 500,000 SHA-256 hash signatures (`.hsb`) and 20,000 body
 * signatures (`.ndb`), plus the ones that detect the planted samples.
 *
 * Plain-text `.hsb`/`.ndb` load about 3.5x slower inside multithreaded
 * processes (clamd, amp), so the files are packed into an unsigned container
 * with `sigtool --unsigned --build=amp-bench.cud`. sigtool packs every database
 * file of its working directory, insists on a `COPYING` file there, reads the
 * previous version from `--datadir` (an empty folder plus `--cvd-version`
 * avoids its version prompt) and asks for the builder's name unless
 * `SIGNDUSER` is set. If packing fails the plain-text files are used instead,
 * and the result says so.
 *
 * The database is rebuilt only when its manifest does not match.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { Prng, toHex } from "./prng.ts";
import {
  eicarBytes,
  hashOf,
  plantedBodyPattern,
  plantedHashContent,
  writeSamples,
} from "./samples.ts";

const DB_VERSION = 1;
const DB_BASENAME = "amp-bench";

/** Options of {@linkcode ensureSignatureDb}. */
export interface SignatureDbOptions {
  /** Folder that receives the database (`DIR/db`) and its build files. */
  workDir: string;
  /** Random SHA-256 hash signatures, planted one included (default 500,000). */
  hashSignatures?: number;
  /** Random body signatures, besides EICAR and the planted one (default 20,000). */
  bodySignatures?: number;
}

/** The database ready to scan with. */
export interface SignatureDb {
  /** Folder to pass to `clamscan -d`, clamd's DatabaseDirectory, `amp --db-dir`. */
  dir: string;
  /** Number of signatures in it. */
  signatures: number;
  /** "cud" when sigtool packed it, "plain" for the .hsb/.ndb fallback. */
  format: "cud" | "plain";
  /** Why the fallback was taken, if it was. */
  note?: string;
  /** The sigtool command line that built it (for the report). */
  recipe: string;
  /** True when an existing database was reused. */
  reused: boolean;
}

interface DbManifest {
  version: number;
  hashSignatures: number;
  bodySignatures: number;
  format: "cud" | "plain";
  signatures: number;
  files: Record<string, string>;
  note?: string;
  recipe: string;
}

/**
 * Returns the benchmark database under `workDir/db`, building it if missing or
 * stale, and checks with clamscan that it loads and detects the samples.
 *
 * @param options where to build and how many signatures
 */
export async function ensureSignatureDb(options: SignatureDbOptions): Promise<SignatureDb> {
  const hashSignatures = options.hashSignatures ?? 500_000;
  const bodySignatures = options.bodySignatures ?? 20_000;
  const dir = join(options.workDir, "db");
  const manifestPath = join(options.workDir, "db.manifest.json");

  const existing = await readManifest(manifestPath);
  if (
    existing && existing.version === DB_VERSION && existing.hashSignatures === hashSignatures &&
    existing.bodySignatures === bodySignatures && await filesMatch(dir, existing.files)
  ) {
    return {
      dir,
      signatures: existing.signatures,
      format: existing.format,
      note: existing.note,
      recipe: existing.recipe,
      reused: true,
    };
  }

  await Deno.remove(manifestPath).catch(() => {});
  const buildDir = join(options.workDir, "db-build");
  await Deno.remove(buildDir, { recursive: true }).catch(() => {});
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(buildDir, { recursive: true });
  await Deno.mkdir(dir, { recursive: true });

  const hsb = hashSignatureLines(hashSignatures);
  const ndb = bodySignatureLines(bodySignatures);
  const signatures = hsb.length + ndb.length;
  await Deno.writeTextFile(join(buildDir, `${DB_BASENAME}.hsb`), hsb.join("\n") + "\n");
  await Deno.writeTextFile(join(buildDir, `${DB_BASENAME}.ndb`), ndb.join("\n") + "\n");

  let format: "cud" | "plain" = "cud";
  let note: string | undefined;
  const packed = await packWithSigtool(buildDir);
  if (packed.ok) {
    await Deno.copyFile(join(buildDir, `${DB_BASENAME}.cud`), join(dir, `${DB_BASENAME}.cud`));
  } else {
    format = "plain";
    note = `sigtool --build failed, using plain-text .hsb/.ndb: ${packed.error}`;
    for (const ext of ["hsb", "ndb"]) {
      await Deno.copyFile(
        join(buildDir, `${DB_BASENAME}.${ext}`),
        join(dir, `${DB_BASENAME}.${ext}`),
      );
    }
  }
  await verifyDetects(dir, options.workDir);

  const manifest: DbManifest = {
    version: DB_VERSION,
    hashSignatures,
    bodySignatures,
    format,
    signatures,
    files: await fileHashes(dir),
    note,
    recipe: packed.recipe,
  };
  await Deno.writeTextFile(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  await Deno.remove(buildDir, { recursive: true });
  return { dir, signatures, format, note, recipe: packed.recipe, reused: false };
}

/** `.hsb` lines: `count - 1` random hashes (fixed seed) and the planted file's hash. */
export function hashSignatureLines(count: number): string[] {
  const prng = new Prng(0x5eed_0001);
  const lines: string[] = [];
  for (let i = 0; i < count - 1; i++) {
    lines.push(`${toHex(prng.bytes(32))}:${prng.int(64, 4_000_000)}:Amp.Bench.Hash.${i}`);
  }
  const planted = hashOf(plantedHashContent());
  lines.push(`${planted.sha256}:${planted.size}:Amp.Bench.PlantedHash`);
  return lines;
}

/** `.ndb` lines: `count` random 16–32-byte patterns (fixed seed), EICAR and the planted one. */
export function bodySignatureLines(count: number): string[] {
  const prng = new Prng(0x5eed_0002);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(`Amp.Bench.Body.${i}:0:*:${toHex(prng.bytes(prng.int(16, 32)))}`);
  }
  lines.push(`Amp.Bench.Eicar:0:*:${toHex(eicarBytes())}`);
  lines.push(`Amp.Bench.PlantedBody:0:*:${toHex(plantedBodyPattern())}`);
  return lines;
}

async function packWithSigtool(
  buildDir: string,
): Promise<{ ok: true; recipe: string } | { ok: false; recipe: string; error: string }> {
  const emptyDatadir = join(buildDir, "empty-datadir");
  await Deno.mkdir(emptyDatadir);
  await Deno.writeTextFile(
    join(buildDir, "COPYING"),
    "Synthetic signatures generated by amp's benchmark (bench/signatures.ts). No rights reserved.\n",
  );
  const args = [
    "--unsigned",
    `--build=${DB_BASENAME}.cud`,
    "--cvd-version=1",
    "--no-cdiff",
    `--datadir=${emptyDatadir}`,
  ];
  const recipe = `cd ${buildDir} && SIGNDUSER=amp-bench sigtool ${args.join(" ")} </dev/null`;
  try {
    const out = await new Deno.Command("sigtool", {
      args,
      cwd: buildDir,
      env: { SIGNDUSER: "amp-bench" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const built = await Deno.stat(join(buildDir, `${DB_BASENAME}.cud`)).then(
      () => true,
      () => false,
    );
    if (out.success && built) return { ok: true, recipe };
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    return { ok: false, recipe, error: `exit ${out.code}: ${text.trim().slice(-400)}` };
  } catch (error) {
    return { ok: false, recipe, error: String(error) };
  }
}

/** Scans freshly written samples with `clamscan -d dir` and throws unless all are found. */
async function verifyDetects(dir: string, workDir: string): Promise<void> {
  const scratch = await Deno.makeTempDir({ dir: workDir, prefix: "db-verify-" });
  try {
    const samples = await writeSamples(scratch);
    const out = await new Deno.Command("clamscan", {
      args: ["--no-summary", "-d", dir, ...samples.map((s) => s.path)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    const missed = samples.filter((s) => !foundLine(text, s.path));
    if (out.code !== 1 || missed.length > 0) {
      throw new Error(
        `Signature database does not detect the samples: clamscan exited ${out.code}, missed ${
          missed.map((s) => s.kind).join(", ") || "none"
        }\n${text}${new TextDecoder().decode(out.stderr)}`,
      );
    }
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
}

function foundLine(text: string, path: string): boolean {
  return text.split("\n").some((line) => line.startsWith(`${path}: `) && line.endsWith(" FOUND"));
}

async function readManifest(path: string): Promise<DbManifest | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as DbManifest;
  } catch {
    return undefined;
  }
}

async function fileHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile) continue;
    const bytes = await Deno.readFile(join(dir, entry.name));
    out[entry.name] = createHash("sha256").update(bytes).digest("hex");
  }
  return out;
}

async function filesMatch(dir: string, expected: Record<string, string>): Promise<boolean> {
  try {
    const actual = await fileHashes(dir);
    const names = Object.keys(expected);
    return names.length === Object.keys(actual).length &&
      names.every((name) => actual[name] === expected[name]);
  } catch {
    return false;
  }
}
