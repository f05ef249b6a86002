/**
 * Turns the measurements into the markdown report: one row per tool, the
 * amp/clamdscan and amp/clamscan ratios, and PASS/MISS per performance target.
 * The benchmark reports; it never fails on a missed target.
 *
 * @module
 */

import type { Corpus } from "./corpus.ts";
import { CLAMD_LIMIT_LINES, CLAMSCAN_LIMIT_ARGS } from "./limits.ts";
import type { PlantedSample } from "./samples.ts";
import type { SignatureDb } from "./signatures.ts";
import type { ToolRun } from "./tool.ts";

/** Several runs of one row, summarised. */
export interface RowSummary {
  /** Row label. */
  label: string;
  /** Median wall time, ms (NaN if no run succeeded). */
  wallMs: number;
  /** Fastest and slowest successful run, ms. */
  wallRangeMs: [number, number] | null;
  /** Highest peak RSS over the runs, KiB. */
  peakRssKb: number | null;
  /** Successful runs. */
  runs: number;
  /** Last successful run (for detections and files). */
  last?: ToolRun;
  /** Errors of failed runs. */
  errors: string[];
  /** Notes of the last successful run and of failed runs, de-duplicated. */
  notes: string[];
}

/**
 * Groups runs by label and summarises each group (median wall, max RSS).
 *
 * @param runs every run, in the order they happened
 */
export function summarise(runs: ToolRun[]): RowSummary[] {
  const groups = new Map<string, ToolRun[]>();
  for (const run of runs) groups.set(run.label, [...(groups.get(run.label) ?? []), run]);
  return [...groups].map(([label, group]) => {
    const ok = group.filter((r) => !r.error && Number.isFinite(r.wallMs));
    const walls = ok.map((r) => r.wallMs).sort((a, b) => a - b);
    const rss = ok.map((r) => r.peakRssKb).filter((v): v is number => v !== null);
    return {
      label,
      wallMs: median(walls),
      wallRangeMs: walls.length > 0 ? [walls[0], walls.at(-1)!] : null,
      peakRssKb: rss.length > 0 ? Math.max(...rss) : null,
      runs: ok.length,
      last: ok.at(-1),
      errors: [...new Set(group.flatMap((r) => (r.error ? [r.error] : [])))],
      // The last successful run's notes, plus those of failed runs.
      notes: [
        ...new Set([
          ...(ok.at(-1)?.notes ?? []),
          ...group.filter((r) => r.error).flatMap((r) => r.notes),
        ]),
      ],
    };
  });
}

/** How many planted samples a tool found, and what else it reported. */
export interface DetectionScore {
  /** Planted samples reported. */
  found: number;
  /** Planted samples in total. */
  expected: number;
  /** Reported paths that are not planted samples. */
  extra: string[];
}

/**
 * Scores reported detection paths against the planted samples. A report on an
 * archive member ("x.zip!eicar.com", "x.zip/eicar.com", …) counts for the archive.
 *
 * @param reported paths the tool reported
 * @param samples the planted samples
 */
export function scoreDetections(reported: string[], samples: PlantedSample[]): DetectionScore {
  const matches = (path: string, sample: string) =>
    path === sample ||
    (path.startsWith(sample) && /[^A-Za-z0-9_.-]/.test(path.charAt(sample.length)));
  const found = samples.filter((s) => reported.some((r) => matches(r, s.path))).length;
  const extra = [...new Set(reported.filter((r) => !samples.some((s) => matches(r, s.path))))];
  return { found, expected: samples.length, extra };
}

/** Everything the report shows besides the rows. */
export interface ReportContext {
  /** The corpus scanned. */
  corpus: Corpus;
  /** The database used. */
  db: SignatureDb;
  /** Runs per tool. */
  runs: number;
  /** Cores. */
  cores: number;
  /** Time to read the corpus once before measuring, ms. */
  warmMs: number;
  /** clamscan on one file: wall (≈ database load) and RSS. */
  dbLoad?: { wallMs: number; peakRssKb: number | null; signatures?: number };
  /** Lines describing the machine and versions. */
  environment: string[];
  /** The exact command lines used. */
  commands: string[];
  /** How peak RSS was measured. */
  rssMethod: string;
}

const AMP_FIRST = "amp scan (first, cold verdict cache)";
const AMP_RESCAN = "amp rescan (warm verdict cache)";

/**
 * The markdown report.
 *
 * @param rows summarised rows, in table order
 * @param context corpus, database and the rest
 */
export function formatReport(rows: RowSummary[], context: ReportContext): string {
  const { corpus } = context;
  const mbTotal = corpus.bytes / 1e6;
  const out: string[] = [];
  out.push(
    `### amp scan benchmark: ${fmtInt(corpus.files)} files, ${mbTotal.toFixed(0)} MB, ` +
      `${fmtInt(context.db.signatures)} signatures, ${context.cores} cores`,
    "",
    "| tool | wall s | files/s | MB/s | peak RSS MB | detections |",
    "|---|---:|---:|---:|---:|---|",
  );
  for (const row of rows) {
    if (row.runs === 0) {
      out.push(`| ${row.label} | — | — | — | — | not measured: ${row.errors.join("; ")} |`);
      continue;
    }
    const wall = row.wallMs / 1000;
    const range = context.runs > 1 && row.wallRangeMs
      ? ` (${(row.wallRangeMs[0] / 1000).toFixed(1)}–${(row.wallRangeMs[1] / 1000).toFixed(1)})`
      : "";
    out.push(
      `| ${row.label} | ${wall.toFixed(1)}${range} | ${fmtInt(corpus.files / wall)} | ` +
        `${(mbTotal / wall).toFixed(1)} | ${fmtRss(row.peakRssKb)} | ${
          fmtDetections(row, corpus.samples)
        } |`,
    );
  }
  out.push("");

  const wall = (label: string) => rows.find((r) => r.label === label && r.runs > 0)?.wallMs;
  const rss = (label: string) => rows.find((r) => r.label === label && r.runs > 0)?.peakRssKb;
  const clamscanLabel = rows.find((r) => r.label.startsWith("clamscan"))?.label ?? "";
  const clamdscanLabel = rows.find((r) => r.label.startsWith("clamdscan"))?.label ?? "";
  const ampFirst = wall(AMP_FIRST);
  const ampRescan = wall(AMP_RESCAN);
  const clamscan = wall(clamscanLabel);
  const clamdscan = wall(clamdscanLabel);
  const ratio = (a?: number, b?: number) => (a && b ? b / a : undefined);
  const vsClamd = ratio(ampFirst, clamdscan);
  const vsClamscan = ratio(ampFirst, clamscan);
  const rescanSpeedup = ratio(ampRescan, ampFirst);
  out.push(
    "| ratio | value |",
    "|---|---:|",
    `| amp / clamdscan throughput | ${fmtRatio(vsClamd)} |`,
    `| amp / clamscan throughput | ${fmtRatio(vsClamscan)} |`,
    `| amp rescan speed-up (first / rescan wall) | ${fmtRatio(rescanSpeedup)} |`,
    "",
  );

  const ampRss = rss(AMP_FIRST) ?? null;
  const ampRescanRss = rss(AMP_RESCAN) ?? null;
  const ampPeak = ampRss === null
    ? ampRescanRss
    : ampRescanRss === null
    ? ampRss
    : Math.max(ampRss, ampRescanRss);
  const clamscanRss = rss(clamscanLabel) ?? null;
  const ampRow = rows.find((r) => r.label === AMP_FIRST && r.runs > 0);
  const ampScore = ampRow?.last?.detections
    ? scoreDetections(ampRow.last.detections, corpus.samples)
    : undefined;
  const verdict = (value: number | undefined | null, ok: (v: number) => boolean) =>
    value === undefined || value === null ? "n/a" : ok(value) ? "PASS" : "MISS";
  out.push(
    "| target | measured | result |",
    "|---|---:|---|",
    `| amp throughput ≥ clamdscan --multiscan | ${fmtRatio(vsClamd)} | ${
      verdict(vsClamd, (v) => v >= 1)
    } |`,
    `| amp throughput ≥ 1.8× clamscan | ${fmtRatio(vsClamscan)} | ${
      verdict(vsClamscan, (v) => v >= 1.8)
    } |`,
    `| rescan ≥ 10× faster than first scan | ${fmtRatio(rescanSpeedup)} | ${
      verdict(rescanSpeedup, (v) => v >= 10)
    } |`,
    `| amp peak RSS ≤ clamscan + 80 MB | ${
      ampPeak !== null && clamscanRss !== null
        ? `${fmtRss(ampPeak)} vs ${fmtRss(clamscanRss)} + 80 MB`
        : "—"
    } | ${
      verdict(
        ampPeak !== null && clamscanRss !== null ? ampPeak - clamscanRss : undefined,
        (v) => v <= 80 * 1024,
      )
    } |`,
    `| amp detects every planted sample | ${
      ampScore ? `${ampScore.found}/${ampScore.expected}` : "—"
    } | ${verdict(ampScore?.found, (v) => v === ampScore?.expected)} |`,
    "",
  );

  out.push("Notes:");
  out.push(
    `- Corpus: ${corpus.dir} (${corpus.reused ? "reused" : "built now"}): ${
      fmtInt(corpus.files)
    } regular files, ${mbTotal.toFixed(0)} MB, copied from ${corpus.roots.join(" ")}, ` +
      `files of 5 MiB and more left out so every tool scans the same set under amp's default ` +
      `5 MiB file-size limit; ${corpus.samples.length} planted samples (${
        corpus.samples.map((s) => s.kind).join(", ")
      }) = ${corpus.samples.length} expected detections.`,
    `- Limits: every tool scans under the same limits: clamscan ${
      CLAMSCAN_LIMIT_ARGS.join(" ")
    }, ` +
      `clamd.conf ${CLAMD_LIMIT_LINES.join(" / ")}, amp's default policy (5 MB file, 50 MB ` +
      `archive). ClamAV's default directory depth of 15 would skip some of the corpus, hence the raise.`,
    `- Database: ${context.db.dir} (${context.db.reused ? "reused" : "built now"}), ${
      fmtInt(context.db.signatures)
    } signatures (500,000 SHA-256 .hsb, 20,002 .ndb body incl. EICAR and the planted one), ${
      context.db.format === "cud"
        ? "packed unsigned with sigtool as amp-bench.cud"
        : `plain-text .hsb/.ndb (${context.db.note ?? "sigtool not used"})`
    }.`,
  );
  if (context.dbLoad) {
    out.push(
      `- DB load: clamscan on one small file takes ${
        (context.dbLoad.wallMs / 1000).toFixed(2)
      } s wall, ${fmtRss(context.dbLoad.peakRssKb)} MB peak RSS (${
        fmtInt(context.dbLoad.signatures ?? 0)
      } known signatures): that is the load time included in the clamscan row.`,
    );
  }
  out.push(
    `- Warm page cache: the corpus was read once before measuring (${
      (context.warmMs / 1000).toFixed(1)
    } s). ${context.runs} run(s) per tool; wall is the median${
      context.runs > 1 ? " (min–max)" : ""
    }, peak RSS the highest. MB = 10^6 bytes; files/s and MB/s use the corpus totals for every tool.`,
    `- Peak RSS: ${context.rssMethod}.`,
  );
  for (const row of rows) {
    for (const note of row.notes) out.push(`- ${row.label}: ${note}`);
    for (const error of row.errors) {
      if (row.runs > 0) out.push(`- ${row.label}: failed run: ${error}`);
    }
    const score = row.last?.detections
      ? scoreDetections(row.last.detections, corpus.samples)
      : null;
    if (score && score.extra.length > 0) {
      out.push(`- ${row.label}: unexpected detections: ${score.extra.slice(0, 10).join(", ")}`);
    }
    if (row.last?.filesReported !== undefined && row.last.filesReported !== corpus.files) {
      out.push(
        `- ${row.label}: reports ${fmtInt(row.last.filesReported)} files scanned ` +
          `(corpus: ${fmtInt(corpus.files)})`,
      );
    }
  }
  out.push(...context.environment.map((line) => `- ${line}`));
  out.push("", "Commands:", "```", ...context.commands, "```");
  return out.join("\n");
}

function fmtDetections(row: RowSummary, samples: PlantedSample[]): string {
  if (!row.last || row.last.detections === null) return "—";
  const score = scoreDetections(row.last.detections, samples);
  return `${score.found}/${score.expected}${
    score.extra.length ? ` +${score.extra.length} extra` : ""
  }`;
}

function median(sorted: number[]): number {
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function fmtRss(kb: number | null): string {
  return kb === null ? "?" : (kb / 1024).toFixed(0);
}

function fmtRatio(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? "—" : `${value.toFixed(2)}×`;
}

function fmtInt(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}
