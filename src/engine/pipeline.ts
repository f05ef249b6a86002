/**
 * The verdict pipeline for one open file, in the order that costs least:
 *
 * 1. size: over the policy's file limit → skipped, unless the file is an
 *    archive within the archive limit;
 * 2. the verdict cache (device, inode, size, mtime, ctime, signature version)
 *    → the remembered verdict, with no read at all;
 * 3. SHA-256 (streaming, off the JS thread);
 * 4. the allow list → clean; simple custom detections → malicious;
 * 5. a file of the same SHA-256 already scanned in this run → its verdict;
 * 6. ClamAV on the descriptor → clean, malicious, skipped (a limit) or error.
 *
 * Exclusions are applied by the walk, before a file is opened. An error at any
 * step is an `error` verdict, never a conviction. The pipeline never closes the
 * descriptor: the caller owns it.
 *
 * @module
 */

import type { BytePath } from "../sys/byte_path.ts";
import { type FileStat, pread } from "../sys/libc.ts";
import { archiveFormat, SNIFF_BYTES } from "./archive_sniff.ts";
import type { FileHasher } from "./file_hasher.ts";
import type { HashList } from "./hash_list.ts";
import type { FileVerdict, Verdict } from "./verdict.ts";

/** How many recent SHA-256 verdicts a pipeline keeps to scan duplicates once. */
export const RECENT_SHA256 = 4096;

/** A file opened for scanning. */
export interface OpenFile {
  fd: number;
  path: BytePath;
  stat: FileStat;
}

/** An engine that scans a descriptor: ClamAV, or a fake in tests. */
export interface DescriptorScanner {
  scan(fd: number): Promise<Verdict>;
}

/** Remembers verdicts across runs by file identity (see `src/scan/verdict_memory.ts`). */
export interface VerdictMemory {
  /** The remembered verdict of an unchanged file. */
  get(stat: FileStat): FileVerdict | undefined;
  /** Records a clean or malicious verdict. */
  remember(stat: FileStat, verdict: FileVerdict): void;
}

/** Options of {@linkcode ScanPipeline}. */
export interface PipelineOptions {
  /** Largest file scanned (bytes). */
  maxFileSize: number;
  /** Largest archive scanned (bytes); archives between the two limits are scanned. */
  maxArchiveSize: number;
  hasher: FileHasher;
  allowList?: HashList;
  blockList?: HashList;
  /**
   * The descriptor scanner, awaited at the first file that needs it (so a scan
   * answered entirely from the verdict cache never waits for signatures to
   * load). Resolves to undefined when ClamAV is off or has no signatures.
   */
  scanner?: () => Promise<DescriptorScanner | undefined>;
  memory?: VerdictMemory;
}

/** Decides the verdict of one open file. */
export class ScanPipeline {
  readonly #options: PipelineOptions;
  /** Recent verdicts by SHA-256 (bounded: duplicates tend to sit close together). */
  readonly #bySha = new Map<string, Promise<Verdict>>();
  readonly #head = new Uint8Array(SNIFF_BYTES);

  constructor(options: PipelineOptions) {
    this.#options = options;
  }

  /** Runs the pipeline; never throws. */
  async scanFile(file: OpenFile): Promise<FileVerdict> {
    const size = file.stat.size;
    try {
      const o = this.#options;
      if (size > o.maxFileSize) {
        const format = size <= o.maxArchiveSize ? this.#archiveFormat(file.fd) : undefined;
        if (!format) {
          const limit = size > o.maxArchiveSize ? o.maxArchiveSize : o.maxFileSize;
          return {
            verdict: { kind: "skipped", reason: "too-large", detail: `${size} bytes > ${limit}` },
            size,
          };
        }
      }
      const remembered = o.memory?.get(file.stat);
      if (remembered) return { ...remembered, size, cached: true };

      const sha256 = await o.hasher.sha256(file.fd);
      const verdict = await this.#decide(file.fd, sha256);
      const result: FileVerdict = { verdict, sha256, size };
      if (verdict.kind === "clean" || verdict.kind === "malicious") {
        o.memory?.remember(file.stat, result);
      }
      return result;
    } catch (error) {
      return {
        verdict: { kind: "error", error: error instanceof Error ? error.message : String(error) },
        size,
      };
    }
  }

  async #decide(fd: number, sha256: string): Promise<Verdict> {
    const o = this.#options;
    if (o.allowList?.lookup(sha256) !== undefined) return { kind: "clean", engine: "allowlist" };
    const custom = o.blockList?.lookup(sha256);
    if (custom !== undefined) return { kind: "malicious", name: custom, engine: "hashlist" };
    const seen = this.#bySha.get(sha256);
    if (seen) return seen;
    // Remember the promise at once, so identical files in flight together
    // are scanned once; forget it unless it ends clean or malicious.
    const pending = (async (): Promise<Verdict> => {
      const scanner = await o.scanner?.();
      return scanner ? await scanner.scan(fd) : { kind: "clean" };
    })();
    this.#bySha.set(sha256, pending);
    if (this.#bySha.size > RECENT_SHA256) {
      this.#bySha.delete(this.#bySha.keys().next().value!);
    }
    try {
      const verdict = await pending;
      if (verdict.kind !== "clean" && verdict.kind !== "malicious") this.#bySha.delete(sha256);
      return verdict;
    } catch (error) {
      this.#bySha.delete(sha256);
      throw error;
    }
  }

  #archiveFormat(fd: number): string | undefined {
    const n = pread(fd, this.#head, 0);
    return archiveFormat(this.#head.subarray(0, n));
  }
}
