/**
 * Small statistics for the daemon benchmark: nearest-rank percentiles,
 * medians and overhead ratios. Pure functions, tested in `daemon_stats_test.ts`.
 *
 * @module
 */

/**
 * The nearest-rank percentile of some values (the smallest value with at
 * least `p` percent of the values at or below it); NaN when there are none.
 *
 * @param values the values, in any order
 * @param p the percentile, 0–100
 *
 * @example
 * ```ts
 * import { percentile } from "./daemon_stats.ts";
 * percentile([5, 1, 4, 2, 3], 50); // 3
 * ```
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`Invalid percentile: ${p} (0–100)`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/**
 * The median: the middle value, or the mean of the two middle ones; NaN when
 * there are none.
 *
 * @param values the values, in any order
 *
 * @example
 * ```ts
 * import { median } from "./daemon_stats.ts";
 * median([4, 1, 3, 2]); // 2.5
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * How much slower `measured` is than `baseline`, in percent (negative when
 * faster); NaN when either is missing or the baseline is not positive.
 *
 * @param baseline the reference time
 * @param measured the time with the daemon
 *
 * @example
 * ```ts
 * import { overheadPercent } from "./daemon_stats.ts";
 * overheadPercent(1000, 1050); // 5
 * ```
 */
export function overheadPercent(baseline: number, measured: number): number {
  if (!(baseline > 0) || !Number.isFinite(measured)) return Number.NaN;
  return (measured / baseline - 1) * 100;
}
