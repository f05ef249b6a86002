/**
 * Batches of records handed from a reader worker to the main thread: a
 * bounded queue of batches (when full, what waits is replaced by one
 * overflow record, so loss is visible and memory bounded), one waiter, an
 * error given to the waiter once, and the states "ended" (the reader
 * stopped) and "closed" (the consumer stopped). Used by the netlink readers
 * (proc connector, conntrack).
 *
 * @module
 */

/** The queue between a reader and its consumer. */
export class BatchQueue<T> {
  readonly #batches: T[][] = [];
  readonly #max: number;
  readonly #overflow: () => T;
  #waiter: (() => void) | undefined;
  #error: Error | undefined;
  #ended = false;
  #closed = false;

  /**
   * @param maxBatches batches kept before they are replaced by an overflow record
   * @param overflow makes the record that says records were lost
   */
  constructor(maxBatches: number, overflow: () => T) {
    this.#max = maxBatches;
    this.#overflow = overflow;
  }

  /** True once the reader stopped. */
  get ended(): boolean {
    return this.#ended;
  }

  /** True once the consumer closed the queue. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Queues a batch; returns true when waiting batches had to be dropped (an overflow). */
  push(records: T[]): boolean {
    let overflowed = false;
    if (this.#batches.length >= this.#max) {
      this.#batches.length = 0;
      this.#batches.push([this.#overflow()]);
      overflowed = true;
    }
    this.#batches.push(records);
    this.#wake();
    return overflowed;
  }

  /** The reader failed: the next `next()` throws `error`, once. */
  fail(error: Error): void {
    this.#error = error;
    this.#wake();
  }

  /** Forgets a failure already reported another way. */
  clearError(): void {
    this.#error = undefined;
  }

  /** The reader stopped: `next()` returns [] once the queue is empty. */
  end(): void {
    this.#ended = true;
    this.#wake();
  }

  /** The consumer stopped: `next()` returns [] from now on. */
  close(): void {
    this.#closed = true;
    this.#wake();
  }

  /** The next batch; [] once closed or ended and empty; throws once if the reader failed. */
  async next(): Promise<T[]> {
    for (;;) {
      if (this.#closed) return [];
      const batch = this.#batches.shift();
      if (batch) return batch;
      if (this.#error) {
        const error = this.#error;
        this.#error = undefined;
        throw error;
      }
      if (this.#ended) return [];
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
}
