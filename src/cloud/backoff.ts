/**
 * Retry delays for the connector's calls to the cloud: exponential growth
 * with jitter, so that a fleet that lost its cloud at the same moment does
 * not come back in step and knock it over again.
 *
 * @module
 */

/** Options of {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** The first delay (before jitter), in milliseconds. */
  baseMs: number;
  /** The longest delay, in milliseconds. */
  maxMs: number;
  /** A number in [0, 1); `Math.random` by default (tests pass their own). */
  random?: () => number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): the
 * exponential step `min(maxMs, baseMs × 2^attempt)`, of which a random half
 * is waited ("equal jitter": never less than half the step, so retries do
 * not bunch up at zero, and spread over the other half).
 *
 * @param attempt retries made so far
 * @param options base, cap and the random source
 * @returns milliseconds to wait
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * backoffDelay(3, { baseMs: 1000, maxMs: 60_000, random: () => 0 }); // 4000
 * ```
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  const step = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * step / 2);
}
