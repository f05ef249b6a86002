/**
 * Replacing a small file so that a crash leaves the old content or the new,
 * never half of either, and never writes through a link: the data goes to
 * a temporary file beside the target (made with O_EXCL after removing any
 * leftover there, so a link planted at that name is replaced, not
 * followed), is synced, and is renamed over the target (rename replaces a
 * link at the target itself). On failure the temporary file is removed.
 *
 * @module
 */

/**
 * Writes `data` to `path` atomically with `mode`.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./write_atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/state.json`, "{}\n", 0o600);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  mode: number,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.remove(tmp).catch(() => {}); // a leftover of a run that died, or a planted link
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    await Deno.writeFile(tmp, bytes, { mode, createNew: true });
    await Deno.chmod(tmp, mode); // the umask may have taken bits off
    const file = await Deno.open(tmp, { read: true });
    try {
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}
