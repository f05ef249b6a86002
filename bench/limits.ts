/**
 * The scan limits every tool runs under, so that they all scan the same bytes:
 * amp's default policy (maximum file size 5 MB, maximum archive/scan size
 * 50 MB), given to clamscan as options and to clamd in its configuration.
 * ClamAV reads "5M" as 5 MiB.
 *
 * ClamAV also stops descending at 15 directory levels by default
 * (`--max-dir-recursion`, `MaxDirectoryRecursion`); /usr has deeper trees
 * (Google Cloud SDK, PHP vendors) that amp scans, so the limit is raised for
 * clamscan and clamd alike.
 *
 * @module
 */

/** ClamAV size value for the maximum file size. */
export const MAX_FILE_SIZE = "5M";

/** ClamAV size value for the maximum data scanned per file (archives). */
export const MAX_SCAN_SIZE = "50M";

/** Directory levels ClamAV's walkers descend (default 15). */
export const MAX_DIR_RECURSION = 64;

/** The clamscan options that set the limits. */
export const CLAMSCAN_LIMIT_ARGS = [
  `--max-filesize=${MAX_FILE_SIZE}`,
  `--max-scansize=${MAX_SCAN_SIZE}`,
  `--max-dir-recursion=${MAX_DIR_RECURSION}`,
];

/** The clamd.conf lines that set the limits. */
export const CLAMD_LIMIT_LINES = [
  `MaxFileSize ${MAX_FILE_SIZE}`,
  `MaxScanSize ${MAX_SCAN_SIZE}`,
  `MaxDirectoryRecursion ${MAX_DIR_RECURSION}`,
];
