import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { O } from "../../../ffi/libc.ts";
import { bytePath } from "../../sys/byte_path.ts";
import { AT, close, openat } from "../../sys/libc.ts";
import { ClamavEngine, type ClamavLimits, readSignatureSet } from "./clamav_engine.ts";
import { openLibclamav, sha256Descriptor } from "./_native.ts";
import { libclamavSkip } from "../../../tests/fixtures/native.ts";

/** Outside CI a missing libclamav skips these tests (reason printed); in CI they run and fail. */
const skip = libclamavSkip("clamav_engine_test");

// The EICAR test string, assembled at run time so no file holds it whole.
const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-" + "ANTIVIRUS-TEST-FILE!$H+H*";
const HASH_SAMPLE = new TextEncoder().encode("amp hash-signature sample, not EICAR\n");
const LIMITS: ClamavLimits = {
  maxFileSize: 10_000_000,
  maxScanSize: 10_000_000,
  maxRecursion: 16,
  maxFiles: 1000,
};

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

interface Fixture {
  dir: string;
  dbDir: string;
  tmpDir: string;
  /** Writes a file into the fixture and returns its path. */
  write(name: string, data: Uint8Array | string): Promise<string>;
  /** Runs a command in the fixture directory. */
  run(cmd: string, args: string[]): Promise<void>;
  /** Loads an engine over the fixture's signatures. */
  load(limits?: Partial<ClamavLimits>, scanArchives?: boolean): Promise<ClamavEngine>;
  /** Scans a fixture file with an engine through an openat descriptor. */
  scan(engine: ClamavEngine, name: string): Promise<Awaited<ReturnType<ClamavEngine["scan"]>>>;
}

async function withFixture(fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "amp-clamav-engine-" });
  const engines: ClamavEngine[] = [];
  try {
    const dbDir = `${dir}/db`;
    const tmpDir = `${dir}/tmp`;
    await Deno.mkdir(dbDir);
    await Deno.mkdir(tmpDir);
    await Deno.writeTextFile(
      `${dbDir}/amp.ndb`,
      `AmpTest.Eicar:0:*:${hex(new TextEncoder().encode(EICAR))}\n`,
    );
    const sha = createHash("sha256").update(HASH_SAMPLE).digest("hex");
    await Deno.writeTextFile(`${dbDir}/amp.hsb`, `${sha}:${HASH_SAMPLE.length}:AmpTest.Hash\n`);
    const f: Fixture = {
      dir,
      dbDir,
      tmpDir,
      async write(name, data) {
        const path = `${dir}/${name}`;
        if (typeof data === "string") await Deno.writeTextFile(path, data);
        else await Deno.writeFile(path, data);
        return path;
      },
      async run(cmd, args) {
        const out = await new Deno.Command(cmd, { args, cwd: dir }).output();
        assert.ok(out.success, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
      },
      async load(limits = {}, scanArchives) {
        const engine = await ClamavEngine.load({
          dbDir,
          tmpDir,
          limits: { ...LIMITS, ...limits },
          scanArchives,
        });
        engines.push(engine);
        return engine;
      },
      async scan(engine, name) {
        const fd = openat(AT.FDCWD, bytePath(`${dir}/${name}`), O.RDONLY | O.CLOEXEC);
        try {
          return await engine.scan(fd);
        } finally {
          close(fd);
        }
      },
    };
    await fn(f);
  } finally {
    for (const engine of engines) engine.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "ClamavEngine.load() loads .ndb and .hsb signatures and reports version and count",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      const engine = await f.load();
      assert.equal(engine.signatures, 2);
      assert.equal(engine.version, openLibclamav().version);
      assert.ok(engine.loadMs >= 0);
    });
  },
});

Deno.test({
  name: "ClamavEngine.scan() convicts the EICAR file by the .ndb body signature",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      await f.write("eicar.com", EICAR);
      const engine = await f.load();
      const verdict = await f.scan(engine, "eicar.com");
      assert.equal(verdict.kind, "malicious");
      if (verdict.kind === "malicious") {
        assert.match(verdict.name, /^AmpTest\.Eicar\b/);
        assert.equal(verdict.engine, "clamav");
      }
    });
  },
});

Deno.test({
  name: "ClamavEngine.scan() convicts a file by its .hsb SHA-256 signature",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      await f.write("sample.bin", HASH_SAMPLE);
      // One byte more: a different hash, so clean.
      await f.write("near.bin", new Uint8Array([...HASH_SAMPLE, 0x0a]));
      const engine = await f.load();
      const verdict = await f.scan(engine, "sample.bin");
      assert.equal(verdict.kind, "malicious");
      if (verdict.kind === "malicious") assert.match(verdict.name, /^AmpTest\.Hash\b/);
      assert.deepEqual(await f.scan(engine, "near.bin"), { kind: "clean", engine: "clamav" });
    });
  },
});

Deno.test({
  name: "ClamavEngine.scan() calls an ordinary file clean",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      await f.write("readme.txt", "Nothing to see here.\n".repeat(100));
      await f.write("empty", "");
      const engine = await f.load();
      assert.deepEqual(await f.scan(engine, "readme.txt"), { kind: "clean", engine: "clamav" });
      assert.deepEqual(await f.scan(engine, "empty"), { kind: "clean", engine: "clamav" });
    });
  },
});

Deno.test({
  name: "ClamavEngine.scan() finds EICAR inside a deflated zip, and not with scanArchives off",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      // Padding makes zip deflate the member, so the raw zip does not hold the string.
      await f.write("eicar.com", EICAR + "\n".repeat(4000));
      await f.run("zip", ["-q", "-9", "eicar.zip", "eicar.com"]);
      const zip = await Deno.readFile(`${f.dir}/eicar.zip`);
      assert.equal(new TextDecoder("latin1").decode(zip).includes("EICAR-STANDARD"), false);

      const engine = await f.load();
      const verdict = await f.scan(engine, "eicar.zip");
      assert.equal(verdict.kind, "malicious");
      if (verdict.kind === "malicious") assert.match(verdict.name, /^AmpTest\.Eicar\b/);

      const noArchives = await f.load({}, false);
      assert.deepEqual(await f.scan(noArchives, "eicar.zip"), { kind: "clean", engine: "clamav" });
    });
  },
});

Deno.test({
  name: "ClamavEngine.scan() turns ClamAV limits in an archive into scan-limit skips, never clean",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      for (let i = 0; i < 10; i++) await f.write(`m${i}.txt`, `member ${i}\n`);
      await f.run("zip", ["-q", "many.zip", ...Array.from({ length: 10 }, (_, i) => `m${i}.txt`)]);
      const fewFiles = await f.load({ maxFiles: 3 });
      assert.deepEqual(await f.scan(fewFiles, "many.zip"), {
        kind: "skipped",
        reason: "scan-limit",
        detail: "Heuristics.Limits.Exceeded.MaxFiles",
      });
      await f.write("big.txt", "z".repeat(20_000));
      await f.run("zip", ["-q", "big.zip", "big.txt"]);
      const smallScan = await f.load({ maxScanSize: 5_000 });
      assert.deepEqual(await f.scan(smallScan, "big.zip"), {
        kind: "skipped",
        reason: "scan-limit",
        detail: "Heuristics.Limits.Exceeded.MaxScanSize",
      });
    });
  },
});

Deno.test({
  name: "ClamavEngine.scan() scans from offset 0 whatever the descriptor's position",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      const path = await f.write("eicar.com", EICAR);
      const engine = await f.load();
      const fd = openat(AT.FDCWD, bytePath(path), O.RDONLY);
      try {
        await sha256Descriptor(fd); // leaves the offset at the end of the file
        const verdict = await engine.scan(fd);
        assert.equal(verdict.kind, "malicious");
      } finally {
        close(fd);
      }
    });
  },
});

Deno.test({
  name: "ClamavEngine.scan() runs several scans at once on one engine",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      await f.write("eicar.com", EICAR);
      await f.write("clean.txt", "hello\n".repeat(10_000));
      const engine = await f.load();
      const names = Array.from({ length: 12 }, (_, i) => i % 2 ? "clean.txt" : "eicar.com");
      const verdicts = await Promise.all(names.map((n) => f.scan(engine, n)));
      assert.deepEqual(
        verdicts.map((v) => v.kind),
        names.map((n) => n === "eicar.com" ? "malicious" : "clean"),
      );
    });
  },
});

Deno.test({
  name: "ClamavEngine.close() is safe twice and a later scan fails",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      await f.write("clean.txt", "x");
      const engine = await f.load();
      engine.close();
      engine.close();
      await assert.rejects(() => f.scan(engine, "clean.txt"), /already freed/);
    });
  },
});

Deno.test({
  name: "ClamavEngine.load() rejects a malformed database with ClamavError",
  ignore: skip !== undefined,
  async fn() {
    await withFixture(async (f) => {
      await Deno.writeTextFile(`${f.dbDir}/broken.ndb`, "Broken:0:*:zz\n");
      await assert.rejects(() => f.load(), { name: "ClamavError" });
    });
  },
});

Deno.test({
  name: "readSignatureSet() lists only signature files; empty or missing dirs give none",
  ignore: skip !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "amp-sigset-" });
    try {
      const empty = await readSignatureSet(dir);
      assert.deepEqual(empty.files, []);
      assert.equal(empty.dbDir, dir);
      assert.match(empty.fingerprint, /^[0-9a-f]{16}$/);
      const missing = await readSignatureSet(`${dir}/missing`);
      assert.deepEqual(missing.files, []);
      assert.equal(missing.fingerprint, empty.fingerprint);

      await Deno.writeTextFile(`${dir}/main.cvd`, "x");
      await Deno.writeTextFile(`${dir}/local.hsb`, "y");
      await Deno.writeTextFile(`${dir}/notes.txt`, "not a database");
      await Deno.mkdir(`${dir}/sub.ndb`);
      const set = await readSignatureSet(dir);
      assert.deepEqual(set.files, ["local.hsb", "main.cvd"]);
      assert.notEqual(set.fingerprint, empty.fingerprint);

      await Deno.writeTextFile(`${dir}/local.hsb`, "yy");
      assert.notEqual((await readSignatureSet(dir)).fingerprint, set.fingerprint);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
