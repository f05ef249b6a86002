import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { O } from "../../ffi/libc.ts";
import { bytePath } from "../sys/byte_path.ts";
import { AT, close, type FileStat, fstat, openat } from "../sys/libc.ts";
import { type FileHasher, JsFileHasher } from "./file_hasher.ts";
import type { HashList } from "./hash_list.ts";
import {
  type DescriptorScanner,
  type OpenFile,
  type PipelineOptions,
  ScanPipeline,
  type VerdictMemory,
} from "./pipeline.ts";
import type { FileVerdict, Verdict } from "./verdict.ts";

/** Hashes for real (node:crypto over pread) and counts the calls. */
class CountingHasher implements FileHasher {
  calls = 0;
  readonly #inner = new JsFileHasher();
  sha256(fd: number): Promise<string> {
    this.calls++;
    return this.#inner.sha256(fd);
  }
}

/** Answers every scan with one verdict and counts the calls. */
class FakeScanner implements DescriptorScanner {
  calls = 0;
  constructor(public verdict: Verdict) {}
  scan(_fd: number): Promise<Verdict> {
    this.calls++;
    return Promise.resolve(this.verdict);
  }
}

/** Remembers verdicts by inode. */
class MapMemory implements VerdictMemory {
  readonly saved = new Map<bigint, FileVerdict>();
  gets = 0;
  get(stat: FileStat): FileVerdict | undefined {
    this.gets++;
    return this.saved.get(stat.ino);
  }
  remember(stat: FileStat, verdict: FileVerdict): void {
    this.saved.set(stat.ino, verdict);
  }
}

function hashList(entries: Record<string, string>): HashList {
  const map = new Map(Object.entries(entries));
  return { lookup: (h) => map.get(h), size: map.size, problems: [], fingerprint: "test" };
}

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** A temp dir whose files are opened with openat and closed at the end. */
class Files {
  readonly #fds: number[] = [];
  private constructor(readonly dir: string) {}
  static async create(): Promise<Files> {
    return new Files(await Deno.makeTempDir({ prefix: "amp-pipeline-" }));
  }
  async open(name: string, data: Uint8Array): Promise<OpenFile> {
    const path = `${this.dir}/${name}`;
    await Deno.writeFile(path, data);
    const fd = openat(AT.FDCWD, bytePath(path), O.RDONLY | O.CLOEXEC);
    this.#fds.push(fd);
    return { fd, path: bytePath(path), stat: fstat(fd) };
  }
  async dispose(): Promise<void> {
    for (const fd of this.#fds) close(fd);
    await Deno.remove(this.dir, { recursive: true });
  }
}

async function withFiles(fn: (files: Files) => Promise<void>): Promise<void> {
  const files = await Files.create();
  try {
    await fn(files);
  } finally {
    await files.dispose();
  }
}

function pipeline(
  over: Omit<Partial<PipelineOptions>, "scanner"> & { scanner?: FakeScanner } = {},
): { pipeline: ScanPipeline; hasher: CountingHasher; factoryCalls: () => number } {
  const hasher = new CountingHasher();
  let factoryCalls = 0;
  const { scanner, ...rest } = over;
  const p = new ScanPipeline({
    maxFileSize: 1000,
    maxArchiveSize: 5000,
    hasher,
    scanner: () => {
      factoryCalls++;
      return Promise.resolve(scanner);
    },
    ...rest,
  });
  return { pipeline: p, hasher, factoryCalls: () => factoryCalls };
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("ScanPipeline.scanFile() skips a file over maxFileSize without hashing or scanning it", async () => {
  await withFiles(async (files) => {
    const scanner = new FakeScanner({ kind: "clean", engine: "clamav" });
    const { pipeline: p, hasher } = pipeline({ scanner });
    const big = await files.open("big.bin", new Uint8Array(1500).fill(0x41));
    const result = await p.scanFile(big);
    assert.deepEqual(result, {
      verdict: { kind: "skipped", reason: "too-large", detail: "1500 bytes > 1000" },
      size: 1500,
    });
    assert.equal(hasher.calls, 0);
    assert.equal(scanner.calls, 0);
  });
});

Deno.test("ScanPipeline.scanFile() scans an archive between maxFileSize and maxArchiveSize", async () => {
  await withFiles(async (files) => {
    const scanner = new FakeScanner({ kind: "malicious", name: "Zipped.Bad", engine: "clamav" });
    const { pipeline: p, hasher } = pipeline({ scanner });
    const data = new Uint8Array(3000);
    data.set([0x1f, 0x8b, 0x08, 0x00]);
    const gz = await files.open("big.gz", data);
    const result = await p.scanFile(gz);
    assert.deepEqual(result.verdict, {
      kind: "malicious",
      name: "Zipped.Bad",
      engine: "clamav",
    });
    assert.equal(result.sha256, sha256(data));
    assert.equal(result.size, 3000);
    assert.equal(hasher.calls, 1);
    assert.equal(scanner.calls, 1);
  });
});

Deno.test("ScanPipeline.scanFile() skips an archive over maxArchiveSize, naming that limit", async () => {
  await withFiles(async (files) => {
    const scanner = new FakeScanner({ kind: "clean", engine: "clamav" });
    const { pipeline: p, hasher } = pipeline({ scanner });
    const data = new Uint8Array(6000);
    data.set([0x50, 0x4b, 0x03, 0x04]);
    const result = await p.scanFile(await files.open("huge.zip", data));
    assert.deepEqual(result.verdict, {
      kind: "skipped",
      reason: "too-large",
      detail: "6000 bytes > 5000",
    });
    assert.equal(hasher.calls, 0);
    assert.equal(scanner.calls, 0);
  });
});

Deno.test("ScanPipeline.scanFile() lets the allow list win over the block list and the scanner", async () => {
  await withFiles(async (files) => {
    const data = text("allowed tool");
    const h = sha256(data);
    const scanner = new FakeScanner({ kind: "malicious", name: "FP", engine: "clamav" });
    const memory = new MapMemory();
    const { pipeline: p } = pipeline({
      scanner,
      memory,
      allowList: hashList({ [h]: "Allowed" }),
      blockList: hashList({ [h]: "Blocked" }),
    });
    const file = await files.open("tool", data);
    const result = await p.scanFile(file);
    assert.deepEqual(result, {
      verdict: { kind: "clean", engine: "allowlist" },
      sha256: h,
      size: data.length,
    });
    assert.equal(scanner.calls, 0);
    assert.deepEqual(memory.saved.get(file.stat.ino), result);
  });
});

Deno.test("ScanPipeline.scanFile() convicts a block-listed hash with engine hashlist", async () => {
  await withFiles(async (files) => {
    const data = text("custom detection");
    const scanner = new FakeScanner({ kind: "clean", engine: "clamav" });
    const { pipeline: p } = pipeline({
      scanner,
      blockList: hashList({ [sha256(data)]: "Custom.Bad" }),
    });
    const result = await p.scanFile(await files.open("bad", data));
    assert.deepEqual(result.verdict, { kind: "malicious", name: "Custom.Bad", engine: "hashlist" });
    assert.equal(scanner.calls, 0);
  });
});

Deno.test("ScanPipeline.scanFile() keeps a scanner error as error, not remembered nor reused", async () => {
  await withFiles(async (files) => {
    const scanner = new FakeScanner({ kind: "error", error: "ClamAV: Can't read file" });
    const memory = new MapMemory();
    const { pipeline: p } = pipeline({ scanner, memory });
    const file = await files.open("flaky", text("content"));
    const first = await p.scanFile(file);
    assert.equal(first.verdict.kind, "error");
    assert.deepEqual(first.verdict, { kind: "error", error: "ClamAV: Can't read file" });
    assert.equal(memory.saved.size, 0);
    // Not kept by SHA-256 either: the next try scans again and may succeed.
    scanner.verdict = { kind: "clean", engine: "clamav" };
    const second = await p.scanFile(file);
    assert.deepEqual(second.verdict, { kind: "clean", engine: "clamav" });
    assert.equal(scanner.calls, 2);
    assert.equal(memory.saved.size, 1);
  });
});

Deno.test("ScanPipeline.scanFile() does not remember a scan-limit skip", async () => {
  await withFiles(async (files) => {
    const scanner = new FakeScanner({
      kind: "skipped",
      reason: "scan-limit",
      detail: "Heuristics.Limits.Exceeded.MaxFileSize",
    });
    const memory = new MapMemory();
    const { pipeline: p } = pipeline({ scanner, memory });
    const result = await p.scanFile(await files.open("deep.zip", text("x")));
    assert.equal(result.verdict.kind, "skipped");
    assert.equal(memory.saved.size, 0);
  });
});

Deno.test("ScanPipeline.scanFile() answers from VerdictMemory with no hashing and no scanner", async () => {
  await withFiles(async (files) => {
    const scanner = new FakeScanner({ kind: "clean", engine: "clamav" });
    const memory = new MapMemory();
    const { pipeline: p, hasher, factoryCalls } = pipeline({ scanner, memory });
    const file = await files.open("known", text("seen before"));
    memory.saved.set(file.stat.ino, {
      verdict: { kind: "malicious", name: "Old.Find", engine: "clamav" },
      sha256: "f".repeat(64),
    });
    const result = await p.scanFile(file);
    assert.deepEqual(result, {
      verdict: { kind: "malicious", name: "Old.Find", engine: "clamav" },
      sha256: "f".repeat(64),
      size: file.stat.size,
      cached: true,
    });
    assert.equal(hasher.calls, 0);
    assert.equal(factoryCalls(), 0);
    assert.equal(scanner.calls, 0);
  });
});

Deno.test("ScanPipeline.scanFile() scans identical content once per run", async () => {
  await withFiles(async (files) => {
    const scanner = new FakeScanner({ kind: "malicious", name: "Dup", engine: "clamav" });
    const { pipeline: p, hasher } = pipeline({ scanner });
    const a = await p.scanFile(await files.open("a", text("same bytes")));
    const b = await p.scanFile(await files.open("b", text("same bytes")));
    assert.deepEqual(a.verdict, b.verdict);
    assert.equal(a.sha256, b.sha256);
    assert.equal(hasher.calls, 2);
    assert.equal(scanner.calls, 1);
    await p.scanFile(await files.open("c", text("other bytes")));
    assert.equal(scanner.calls, 2);
  });
});

Deno.test("ScanPipeline.scanFile() calls a file clean with no engine when there is no scanner", async () => {
  await withFiles(async (files) => {
    const { pipeline: p, factoryCalls } = pipeline({ scanner: undefined });
    const result = await p.scanFile(await files.open("f", text("abc")));
    assert.deepEqual(result.verdict, { kind: "clean" });
    assert.equal(result.sha256, sha256(text("abc")));
    assert.equal(factoryCalls(), 1);
  });
});

Deno.test("ScanPipeline.scanFile() turns a thrown error into an error verdict and leaves the fd open", async () => {
  await withFiles(async (files) => {
    const failing: FileHasher = { sha256: () => Promise.reject(new Error("disk on fire")) };
    const scanner = new FakeScanner({ kind: "clean", engine: "clamav" });
    const { pipeline: p } = pipeline({ scanner, hasher: failing });
    const file = await files.open("f", text("abc"));
    const result = await p.scanFile(file);
    assert.deepEqual(result, { verdict: { kind: "error", error: "disk on fire" }, size: 3 });
    assert.equal(scanner.calls, 0);
    // The pipeline never closes the caller's descriptor.
    assert.equal(fstat(file.fd).size, 3);
  });
});
