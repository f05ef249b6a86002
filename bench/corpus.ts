/**
 * Builds the benchmark corpus: regular files copied from this machine's /usr
 * (keeping their directory tree) until the requested size is reached, plus the
 * planted samples (see `samples.ts`).
 *
 * Files of 5 MiB and more are left out, so every tool scans the same set under
 * amp's default 5 MiB file-size limit (and the same limits are given to
 * clamscan and clamd). Which files are taken is a deterministic shuffle (the
 * order of the SHA-256 of each path), so the corpus mixes libraries, programs,
 * documentation and data the way /usr does, instead of taking whatever folder
 * sorts first.
 *
 * Idempotent: a corpus is built in `DIR.partial` and renamed into place, then a
 * manifest is written beside it (`DIR.manifest.json`, outside the scanned tree).
 * An existing corpus is reused when its manifest matches the options and its
 * file count and byte total still match the manifest. A folder that exists
 * without a manifest is never deleted: that is an error, so a mistyped
 * `--corpus` cannot wipe unrelated data.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { type PlantedSample, SAMPLES_DIR_NAME, writeSamples } from "./samples.ts";

const CORPUS_VERSION = 1;

/** Default source folders, in this machine's /usr. */
export const DEFAULT_ROOTS = [
  "/usr/bin",
  "/usr/sbin",
  "/usr/lib",
  "/usr/libexec",
  "/usr/share",
  "/usr/include",
];

/** Files at or above this size are left out (amp's default limit). */
export const MAX_FILE_BYTES = 5 * 1024 * 1024;

/** Options of {@linkcode ensureCorpus}. */
export interface CorpusOptions {
  /** Where the corpus lives. */
  dir: string;
  /** Minimum total size in MB (10^6 bytes) of copied files. */
  sizeMb: number;
  /** Source folders (default {@linkcode DEFAULT_ROOTS}). */
  roots?: string[];
  /** Progress messages go here. */
  log?: (message: string) => void;
}

/** A corpus ready to scan. */
export interface Corpus {
  /** Its folder. */
  dir: string;
  /** Regular files in it, samples included. */
  files: number;
  /** Their total size in bytes. */
  bytes: number;
  /** The planted samples: the detections every scanner should report. */
  samples: PlantedSample[];
  /** NUL-separated list of every file (absolute paths), outside the corpus. */
  listFile: string;
  /** True when an existing corpus was reused. */
  reused: boolean;
  /** Source folders. */
  roots: string[];
}

interface CorpusManifest {
  version: number;
  sizeMb: number;
  maxFileBytes: number;
  roots: string[];
  files: number;
  bytes: number;
  samples: PlantedSample[];
}

/**
 * Returns the corpus at `options.dir`, reusing it if its manifest matches,
 * building it otherwise.
 *
 * @param options folder, size, sources
 */
export async function ensureCorpus(options: CorpusOptions): Promise<Corpus> {
  const log = options.log ?? (() => {});
  const roots = options.roots ?? DEFAULT_ROOTS;
  const manifestPath = `${options.dir}.manifest.json`;
  const listFile = `${options.dir}.files0`;

  const manifest = await readManifest(manifestPath);
  if (
    manifest && manifest.version === CORPUS_VERSION && manifest.sizeMb === options.sizeMb &&
    manifest.maxFileBytes === MAX_FILE_BYTES && sameList(manifest.roots, roots)
  ) {
    const found = await listTree(options.dir);
    const bytes = found.reduce((sum, f) => sum + f.size, 0);
    if (found.length === manifest.files && bytes === manifest.bytes) {
      await writeList(listFile, found.map((f) => f.path));
      log(`corpus: reusing ${options.dir} (${found.length} files, ${mb(bytes)} MB)`);
      return {
        dir: options.dir,
        files: found.length,
        bytes,
        samples: manifest.samples,
        listFile,
        reused: true,
        roots,
      };
    }
    log("corpus: manifest does not match the files on disk, rebuilding");
  }

  if (await exists(options.dir)) {
    if (!manifest) {
      throw new Error(
        `Cannot build the corpus: ${options.dir} exists and has no ${manifestPath}; remove it or choose another --corpus`,
      );
    }
    log(`corpus: removing stale ${options.dir}`);
    await Deno.remove(manifestPath);
    await Deno.remove(options.dir, { recursive: true });
  }

  const partial = `${options.dir}.partial`;
  await Deno.remove(partial, { recursive: true }).catch(() => {});
  await Deno.mkdir(partial, { recursive: true });

  log(`corpus: listing regular files < ${MAX_FILE_BYTES / 1048576} MiB in ${roots.join(" ")}`);
  const candidates: FileEntry[] = [];
  for (const root of roots) candidates.push(...await listTree(root, { maxBytes: MAX_FILE_BYTES }));
  const order = (path: string) => createHash("sha256").update(path).digest("hex");
  const keyed = candidates.map((f) => ({ f, key: order(f.path) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const wanted = options.sizeMb * 1e6;
  const chosen: FileEntry[] = [];
  let total = 0;
  for (const { f } of keyed) {
    if (total >= wanted) break;
    chosen.push(f);
    total += f.size;
  }
  if (total < wanted) {
    log(`corpus: only ${mb(total)} MB available under the roots, less than ${options.sizeMb} MB`);
  }
  chosen.sort((a, b) => (a.path < b.path ? -1 : 1));

  log(`corpus: copying ${chosen.length} files (${mb(total)} MB) into ${partial}`);
  const made = new Set<string>();
  let next = 0;
  let copied = 0;
  const worker = async () => {
    while (next < chosen.length) {
      const source = chosen[next++];
      const target = join(partial, source.path);
      const parent = dirname(target);
      if (!made.has(parent)) {
        await Deno.mkdir(parent, { recursive: true });
        made.add(parent);
      }
      try {
        await Deno.copyFile(source.path, target);
        // Plain data for the scanners: no setuid or executable copies left in /var/tmp.
        await Deno.chmod(target, 0o644);
        copied++;
      } catch {
        // Vanished or unreadable since listing: leave it out.
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  log(`corpus: copied ${copied} files`);

  const samplesDir = join(options.dir, SAMPLES_DIR_NAME);
  const written = await writeSamples(join(partial, SAMPLES_DIR_NAME));
  const samples = written.map((s) => ({ ...s, path: join(samplesDir, s.path.split("/").at(-1)!) }));

  await Deno.rename(partial, options.dir);
  const found = await listTree(options.dir);
  const bytes = found.reduce((sum, f) => sum + f.size, 0);
  await writeList(listFile, found.map((f) => f.path));
  const built: CorpusManifest = {
    version: CORPUS_VERSION,
    sizeMb: options.sizeMb,
    maxFileBytes: MAX_FILE_BYTES,
    roots,
    files: found.length,
    bytes,
    samples,
  };
  await Deno.writeTextFile(manifestPath, JSON.stringify(built, null, 2) + "\n");
  log(`corpus: built ${options.dir} (${found.length} files, ${mb(bytes)} MB)`);
  return { dir: options.dir, files: found.length, bytes, samples, listFile, reused: false, roots };
}

/**
 * Reads every file of the corpus once, so that all tools run on a warm page
 * cache (`xargs cat > /dev/null`).
 *
 * @param corpus the corpus
 * @param parallel readers in parallel
 */
export async function warmPageCache(corpus: Corpus, parallel: number): Promise<number> {
  const started = performance.now();
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      `xargs -0 -a "$1" -P ${parallel} -n 256 cat > /dev/null`,
      "warm",
      corpus.listFile,
    ],
    stdin: "null",
  }).output();
  if (!out.success) throw new Error(`Cannot warm the page cache: xargs cat exited ${out.code}`);
  return performance.now() - started;
}

interface FileEntry {
  path: string;
  size: number;
}

/**
 * Regular files under `root` (symbolic links are not followed), sorted by path.
 * Names that are not valid UTF-8 (Deno shows them with U+FFFD and cannot open
 * them) or that contain a newline (ambiguous in scanners' reports) are left out.
 */
async function listTree(root: string, filter: { maxBytes?: number } = {}): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  const rootInfo = await Deno.lstat(root).catch(() => undefined);
  if (!rootInfo?.isDirectory) return out;
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (entry.name.includes("\uFFFD") || entry.name.includes("\n")) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory) stack.push(path);
      else if (entry.isFile) {
        const info = await Deno.lstat(path).catch(() => undefined);
        if (!info?.isFile || info.size === 0) continue;
        if (filter.maxBytes !== undefined && info.size >= filter.maxBytes) continue;
        out.push({ path, size: info.size });
      }
    }
  }
  out.sort((a, b) => (a.path < b.path ? -1 : 1));
  return out;
}

async function writeList(path: string, files: string[]): Promise<void> {
  await Deno.writeTextFile(path, files.map((f) => f + "\0").join(""));
}

async function readManifest(path: string): Promise<CorpusManifest | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as CorpusManifest;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(0);
}
