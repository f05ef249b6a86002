/**
 * The host's file tree under a root, changed one path at a time with every
 * change recorded ({@linkcode Change}). In a dry run nothing is touched and
 * the same changes are recorded, as "would".
 *
 * Files are replaced atomically (written beside the target under a temporary
 * name, synced, renamed over it), so a crash leaves the old file or the new
 * one, never half of one. Owners are set to root:root when amp runs as root;
 * a test run as another user under `--root` keeps its own.
 *
 * @module
 */

import { lchown } from "node:fs/promises";
import { basename, dirname, posix } from "node:path";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import type { Change, ChangeAction } from "./change.ts";

/** Options of {@linkcode HostTree}. */
export interface HostTreeOptions {
  /** Record changes without making them. */
  dryRun?: boolean;
  /** Set owners to root:root; by default when running as root. */
  chown?: boolean;
}

const CHUNK = 1 << 20;
const encoder = new TextEncoder();

/** A root's file tree and the changes made to it. */
export class HostTree {
  /** The root (absolute). */
  readonly root: string;
  /** Whether changes are only recorded. */
  readonly dryRun: boolean;
  /** Every change so far, in order. */
  readonly changes: Change[] = [];
  readonly #chown: boolean;
  /** Directories a dry run would have created (so that their children count as creatable). */
  readonly #planned = new Set<string>();

  /**
   * @param root the host root, absolute
   * @param options dry run, owners
   */
  constructor(root: string, options: HostTreeOptions = {}) {
    this.root = root;
    this.dryRun = options.dryRun ?? false;
    this.#chown = options.chown ?? Deno.uid() === 0;
  }

  /** The real path of a host path under the root. */
  real(path: string): string {
    return resolveUnderRoot(this.root, path);
  }

  /** lstat of a host path, or undefined when it does not exist. */
  async lstat(path: string): Promise<Deno.FileInfo | undefined> {
    try {
      return await Deno.lstat(this.real(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }

  /** Records a change made some other way (or a file kept). */
  note(action: ChangeAction, path: string, detail?: string): void {
    this.changes.push(detail === undefined ? { action, path } : { action, path, detail });
  }

  /**
   * Creates the missing parents of `path` (0755 root:root: shared directories
   * such as /etc/init.d belong to the system, not to amp), recording each.
   */
  async ensureParents(path: string): Promise<void> {
    const parts = posix.dirname(path).split("/").filter((p) => p !== "");
    let current = "";
    for (const part of parts) {
      current += `/${part}`;
      if (this.#planned.has(current)) continue;
      const stat = await this.lstat(current);
      if (stat?.isDirectory) continue;
      if (stat) throw new Error(`${this.real(current)} is not a directory`);
      await this.#mkdir(current, 0o755);
      this.note("created", current, `${modeText(0o755)} ${this.#ownerText()}`);
    }
  }

  /** Makes sure `path` is a directory with `mode` (and owned by root), creating parents. */
  async ensureDir(path: string, mode: number): Promise<void> {
    await this.ensureParents(path);
    if (this.#planned.has(path)) return;
    const stat = await this.lstat(path);
    if (!stat) {
      await this.#mkdir(path, mode);
      this.note("created", path, `${modeText(mode)} ${this.#ownerText()}`);
      return;
    }
    if (!stat.isDirectory) throw new Error(`${this.real(path)} is not a directory`);
    this.#record(path, await this.#fixAttributes(path, stat, mode));
  }

  /** Makes `path` a regular file with exactly `data` and `mode`. */
  async writeFile(path: string, data: string | Uint8Array, mode: number): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    await this.ensureParents(path);
    const stat = await this.lstat(path);
    if (stat && !stat.isFile) throw new Error(`${this.real(path)} is not a regular file`);
    if (stat && equalBytes(await Deno.readFile(this.real(path)), bytes)) {
      this.#record(path, await this.#fixAttributes(path, stat, mode));
      return;
    }
    if (!this.dryRun) {
      await this.#replace(path, mode, async (file) => {
        let done = 0;
        while (done < bytes.length) done += await file.write(bytes.subarray(done));
      });
    }
    this.note(stat ? "updated" : "created", path, `${modeText(mode)} ${this.#ownerText()}`);
  }

  /** Makes `path` a copy of the file `source` (a real path) with `mode`. */
  async copyFile(path: string, source: string, mode: number): Promise<void> {
    await this.ensureParents(path);
    const stat = await this.lstat(path);
    if (stat && !stat.isFile) throw new Error(`${this.real(path)} is not a regular file`);
    if (stat && await sameContent(source, this.real(path))) {
      this.#record(path, await this.#fixAttributes(path, stat, mode));
      return;
    }
    if (!this.dryRun) {
      await this.#replace(path, mode, async (file) => {
        using input = await Deno.open(source, { read: true });
        const buffer = new Uint8Array(CHUNK);
        for (;;) {
          const n = await input.read(buffer);
          if (n === null) break;
          let done = 0;
          while (done < n) done += await file.write(buffer.subarray(done, n));
        }
      });
    }
    this.note(stat ? "updated" : "created", path, `${modeText(mode)} ${this.#ownerText()}`);
  }

  /** Makes `path` a symbolic link to `target`. */
  async symlink(path: string, target: string): Promise<void> {
    await this.ensureParents(path);
    const stat = await this.lstat(path);
    if (stat?.isSymlink && await Deno.readLink(this.real(path)) === target) {
      this.note("unchanged", path, `→ ${target}`);
      return;
    }
    if (stat && !stat.isSymlink) throw new Error(`${this.real(path)} is not a symbolic link`);
    if (!this.dryRun) {
      const temp = `${dirname(this.real(path))}/.${basename(path)}.amp-new`;
      await removeIfPresent(temp);
      await Deno.symlink(target, temp);
      if (this.#chown) await lchown(temp, 0, 0);
      await Deno.rename(temp, this.real(path));
    }
    this.note(stat ? "updated" : "created", path, `→ ${target}`);
  }

  /** Renames `from` to `to` (replacing `to`). */
  async rename(from: string, to: string, detail?: string): Promise<void> {
    if (!this.dryRun) await Deno.rename(this.real(from), this.real(to));
    this.note("renamed", from, detail ?? `→ ${to}`);
  }

  /** Sets the mode of an existing path. */
  async setMode(path: string, mode: number, detail?: string): Promise<void> {
    const stat = await this.lstat(path);
    if (!stat) throw new Error(`${this.real(path)} does not exist`);
    const old = stat.mode === null ? 0 : stat.mode & 0o7777;
    if (old === mode) {
      this.note("unchanged", path, detail);
      return;
    }
    if (!this.dryRun) await Deno.chmod(this.real(path), mode);
    this.note("updated", path, detail ?? `mode ${modeText(old)} → ${modeText(mode)}`);
  }

  /** Removes a file or link; a missing one is not a change. Returns whether it existed. */
  async remove(path: string, detail?: string): Promise<boolean> {
    const stat = await this.lstat(path);
    if (!stat) return false;
    if (stat.isDirectory) throw new Error(`${this.real(path)} is a directory`);
    if (!this.dryRun) await Deno.remove(this.real(path));
    this.note("removed", path, detail);
    return true;
  }

  /** Removes a directory and everything in it; a missing one is not a change. */
  async removeTree(path: string, detail?: string): Promise<boolean> {
    const stat = await this.lstat(path);
    if (!stat) return false;
    if (!this.dryRun) await Deno.remove(this.real(path), { recursive: true });
    this.note("removed", path, detail);
    return true;
  }

  /**
   * Removes a directory if nothing is left in it (counting what this dry run
   * would have removed); returns whether it did.
   */
  async removeDirIfEmpty(path: string): Promise<boolean> {
    const stat = await this.lstat(path);
    if (!stat?.isDirectory) return false;
    for await (const entry of Deno.readDir(this.real(path))) {
      const child = posix.join(path, entry.name);
      const gone = this.changes.some((c) =>
        c.action === "removed" && (c.path === child || child.startsWith(`${c.path}/`))
      );
      if (!gone) return false;
    }
    if (!this.dryRun) await Deno.remove(this.real(path));
    this.note("removed", path, "empty");
    return true;
  }

  async #mkdir(path: string, mode: number): Promise<void> {
    if (this.dryRun) {
      this.#planned.add(path);
      return;
    }
    const real = this.real(path);
    await Deno.mkdir(real, { mode });
    await Deno.chmod(real, mode); // mkdir's mode is cut by the umask
    if (this.#chown) await Deno.chown(real, 0, 0);
  }

  /** Writes a new file beside `path`, syncs it, sets mode and owner, and renames it over `path`. */
  async #replace(
    path: string,
    mode: number,
    fill: (file: Deno.FsFile) => Promise<void>,
  ): Promise<void> {
    const real = this.real(path);
    const temp = `${dirname(real)}/.${basename(real)}.amp-new`;
    try {
      const file = await Deno.open(temp, { write: true, create: true, truncate: true, mode });
      try {
        await fill(file);
        await file.sync();
      } finally {
        file.close();
      }
      await Deno.chmod(temp, mode);
      if (this.#chown) await Deno.chown(temp, 0, 0);
      await Deno.rename(temp, real);
    } catch (error) {
      await removeIfPresent(temp);
      throw error;
    }
    syncDirectory(dirname(real));
  }

  /** Sets mode and owner of an existing path when they differ; returns what changed. */
  async #fixAttributes(path: string, stat: Deno.FileInfo, mode: number): Promise<string[]> {
    const fixed: string[] = [];
    const old = stat.mode === null ? 0 : stat.mode & 0o7777;
    if (old !== mode) {
      if (!this.dryRun) await Deno.chmod(this.real(path), mode);
      fixed.push(`mode ${modeText(old)} → ${modeText(mode)}`);
    }
    if (this.#chown && (stat.uid !== 0 || stat.gid !== 0)) {
      if (!this.dryRun) await Deno.chown(this.real(path), 0, 0);
      fixed.push(`owner ${stat.uid}:${stat.gid} → root:root`);
    }
    return fixed;
  }

  #record(path: string, fixed: string[]): void {
    if (fixed.length === 0) this.note("unchanged", path);
    else this.note("updated", path, fixed.join(", "));
  }

  #ownerText(): string {
    return this.#chown ? "root:root" : `${Deno.uid()}:${Deno.gid()}`;
  }
}

/** A mode as four octal digits: `0755`. */
export function modeText(mode: number): string {
  return mode.toString(8).padStart(4, "0");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two files hold the same bytes (read in chunks: the executable is large). */
async function sameContent(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([Deno.stat(a), Deno.stat(b)]);
  if (sa.size !== sb.size) return false;
  using fa = await Deno.open(a, { read: true });
  using fb = await Deno.open(b, { read: true });
  const ba = new Uint8Array(CHUNK);
  const bb = new Uint8Array(CHUNK);
  for (;;) {
    const na = await readFull(fa, ba);
    const nb = await readFull(fb, bb);
    if (na !== nb || !equalBytes(ba.subarray(0, na), bb.subarray(0, nb))) return false;
    if (na < CHUNK) return true;
  }
}

async function readFull(file: Deno.FsFile, buffer: Uint8Array): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** fsyncs a directory so that a rename in it survives a crash; best effort. */
function syncDirectory(dir: string): void {
  try {
    using file = Deno.openSync(dir, { read: true });
    file.syncSync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  }
}
