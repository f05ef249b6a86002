/**
 * The on-access queue: files waiting to be scanned, one entry per file
 * (device and inode), in arrival order, bounded. A second event for a file
 * already waiting replaces the first in its place (the scan reads the file as
 * it is when its turn comes, under the path of the latest event); an event that finds the queue full is refused, and
 * the caller must arrange a rescan of what it stands for, never drop it
 * silently.
 *
 * @module
 */

/** What {@linkcode FileQueue.push} did with an item. */
export type PushResult = "queued" | "replaced" | "full";

/** A bounded first-in first-out queue keyed by file. */
export class FileQueue<T> {
  readonly limit: number;
  readonly #items = new Map<string, T>();

  /** @param limit most files waiting at once */
  constructor(limit: number) {
    this.limit = limit;
  }

  /** Files waiting. */
  get size(): number {
    return this.#items.size;
  }

  /**
   * Adds `item` under `key`; when that file already waits, `item` takes the
   * waiting one's place and the waiting one is handed to `replaced`.
   */
  push(key: string, item: T, replaced?: (older: T) => void): PushResult {
    const older = this.#items.get(key);
    if (older !== undefined) {
      this.#items.set(key, item);
      replaced?.(older);
      return "replaced";
    }
    if (this.#items.size >= this.limit) return "full";
    this.#items.set(key, item);
    return "queued";
  }

  /** Takes the oldest item. */
  shift(): T | undefined {
    const first = this.#items.entries().next();
    if (first.done) return undefined;
    this.#items.delete(first.value[0]);
    return first.value[1];
  }

  /** Empties the queue, handing each item to `each` (to close descriptors). */
  drain(each: (item: T) => void): void {
    for (const item of this.#items.values()) each(item);
    this.#items.clear();
  }
}
