import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CL,
  CL_DB_STDOPT,
  CL_ENGINE,
  CL_INIT_DEFAULT,
  CL_SCAN_GENERAL,
  CL_SCAN_HEURISTIC,
  CL_SCAN_OPTIONS,
  CL_SCAN_PARSE_ALL,
} from "../../../ffi/libclamav.ts";
import { O } from "../../../ffi/libc.ts";
import { bytePath } from "../../sys/byte_path.ts";
import { AT, close, openat } from "../../sys/libc.ts";
import { ClamavError, NativeEngine, openLibclamav, sha256Descriptor } from "./_native.ts";
import { hasCompiler, IN_CI, libclamavProblem, runC } from "../../../tests/fixtures/native.ts";

function hasHeader(): boolean {
  try {
    return Deno.statSync("/usr/include/clamav.h").isFile;
  } catch {
    return false;
  }
}

/** Outside CI, missing tools skip the tests that need them (reason printed); in CI they run and fail. */
const layoutSkip = IN_CI
  ? undefined
  : !hasCompiler()
  ? "no `cc` on PATH"
  : !hasHeader()
  ? "no /usr/include/clamav.h (install libclamav-dev)"
  : undefined;
const libSkip = IN_CI ? undefined : libclamavProblem();
if (layoutSkip) console.log(`_native_test: skipping clamav.h layout test: ${layoutSkip}`);
if (libSkip) console.log(`_native_test: skipping libclamav tests: ${libSkip}`);

Deno.test({
  name: "ffi/libclamav.ts constants and CL_SCAN_OPTIONS match clamav.h",
  ignore: layoutSkip !== undefined,
  async fn() {
    const c = await runC(`
#include <stdio.h>
#include <stddef.h>
#include <clamav.h>
#define OFF(f) printf(#f " %zu\\n", offsetof(struct cl_scan_options, f))
#define VAL(n, v) printf(n " %lld\\n", (long long)(v))
int main(void) {
  printf("size %zu\\n", sizeof(struct cl_scan_options));
  OFF(general); OFF(parse); OFF(heuristic); OFF(mail); OFF(dev);
  VAL("MAX_SCANSIZE", CL_ENGINE_MAX_SCANSIZE);
  VAL("MAX_FILESIZE", CL_ENGINE_MAX_FILESIZE);
  VAL("MAX_RECURSION", CL_ENGINE_MAX_RECURSION);
  VAL("MAX_FILES", CL_ENGINE_MAX_FILES);
  VAL("TMPDIR", CL_ENGINE_TMPDIR);
  VAL("MAX_SCANTIME", CL_ENGINE_MAX_SCANTIME);
  VAL("CL_CLEAN", CL_CLEAN);
  VAL("CL_SUCCESS", CL_SUCCESS);
  VAL("CL_VIRUS", CL_VIRUS);
  VAL("CL_EOPEN", CL_EOPEN);
  VAL("CL_EMAXREC", CL_EMAXREC);
  VAL("CL_EMAXSIZE", CL_EMAXSIZE);
  VAL("CL_EMAXFILES", CL_EMAXFILES);
  VAL("CL_DB_STDOPT", CL_DB_STDOPT);
  VAL("CL_INIT_DEFAULT", CL_INIT_DEFAULT);
  VAL("GENERAL_ALLMATCHES", CL_SCAN_GENERAL_ALLMATCHES);
  VAL("GENERAL_HEURISTICS", CL_SCAN_GENERAL_HEURISTICS);
  VAL("HEURISTIC_BROKEN", CL_SCAN_HEURISTIC_BROKEN);
  VAL("HEURISTIC_EXCEEDS_MAX", CL_SCAN_HEURISTIC_EXCEEDS_MAX);
  VAL("PARSE_ALL", CL_SCAN_PARSE_ARCHIVE | CL_SCAN_PARSE_ELF | CL_SCAN_PARSE_PDF |
      CL_SCAN_PARSE_SWF | CL_SCAN_PARSE_HWP3 | CL_SCAN_PARSE_XMLDOCS | CL_SCAN_PARSE_MAIL |
      CL_SCAN_PARSE_OLE2 | CL_SCAN_PARSE_HTML | CL_SCAN_PARSE_PE | CL_SCAN_PARSE_ONENOTE |
      CL_SCAN_PARSE_IMAGE);
  VAL("PARSE_ARCHIVE", CL_SCAN_PARSE_ARCHIVE);
  VAL("PARSE_IMAGE_FUZZY_HASH", CL_SCAN_PARSE_IMAGE_FUZZY_HASH);
  VAL("sizeof_scanned", sizeof(unsigned long));
  return 0;
}
`);
    for (const [field, offset] of Object.entries(CL_SCAN_OPTIONS)) {
      assert.equal(offset, c.get(field), `struct cl_scan_options ${field}`);
    }
    for (const [name, value] of Object.entries(CL_ENGINE)) {
      assert.equal(value, c.get(name), `CL_ENGINE_${name}`);
    }
    for (const [name, value] of Object.entries(CL)) {
      assert.equal(value, c.get(`CL_${name}`), `CL_${name}`);
    }
    assert.equal(CL_DB_STDOPT, c.get("CL_DB_STDOPT"));
    assert.equal(CL_INIT_DEFAULT, c.get("CL_INIT_DEFAULT"));
    assert.equal(CL_SCAN_GENERAL.ALLMATCHES, c.get("GENERAL_ALLMATCHES"));
    assert.equal(CL_SCAN_GENERAL.HEURISTICS, c.get("GENERAL_HEURISTICS"));
    assert.equal(CL_SCAN_HEURISTIC.BROKEN, c.get("HEURISTIC_BROKEN"));
    assert.equal(CL_SCAN_HEURISTIC.EXCEEDS_MAX, c.get("HEURISTIC_EXCEEDS_MAX"));
    assert.equal(CL_SCAN_PARSE_ALL, c.get("PARSE_ALL"));
    // clamav_engine.ts hard-codes these two bits.
    assert.equal(0x1, c.get("PARSE_ARCHIVE"));
    assert.equal(0x1000, c.get("PARSE_IMAGE_FUZZY_HASH"));
    // cl_scandesc's `unsigned long *scanned` is written into an 8-byte buffer.
    assert.equal(c.get("sizeof_scanned"), 8);
  },
});

Deno.test({
  name: "openLibclamav() loads once and reports a 1.x version",
  ignore: libSkip !== undefined,
  fn() {
    const first = openLibclamav();
    assert.match(first.version, /^1\.\d+\.\d+/);
    assert.deepEqual(openLibclamav(), first);
  },
});

Deno.test({
  name: "NativeEngine.load() throws ClamavError with the cl_error_t for a missing or bad database",
  ignore: libSkip !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "amp-clamav-native-" });
    const engine = new NativeEngine();
    try {
      // A directory with no signature files: CL_EOPEN.
      await assert.rejects(() => engine.load(dir), (error: unknown) => {
        assert.ok(error instanceof ClamavError);
        assert.equal(error.name, "ClamavError");
        assert.equal(error.code, CL.EOPEN);
        assert.match(error.message, /^cl_load failed: .*\(cl_error_t 8\)$/);
        return true;
      });
      // A path that does not exist: CL_ESTAT (11).
      await assert.rejects(() => engine.load(`${dir}/missing`), { name: "ClamavError", code: 11 });
      // A malformed signature file: CL_EMALFDB (4).
      await Deno.writeTextFile(`${dir}/bad.ndb`, "not a signature\n");
      await assert.rejects(() => engine.load(dir), { name: "ClamavError", code: 4 });
    } finally {
      engine.free();
      engine.free();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "NativeEngine methods throw once the engine is freed",
  ignore: libSkip !== undefined,
  async fn() {
    const engine = new NativeEngine();
    engine.free();
    assert.throws(() => engine.setNum(CL_ENGINE.MAX_FILES, 1), /already freed/);
    await assert.rejects(() => engine.compile(), /already freed/);
  },
});

Deno.test({
  name: "sha256Descriptor() hashes from the current offset to the end",
  ignore: libSkip !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "amp-clamav-native-" });
    try {
      const data = new TextEncoder().encode("abcdefghij".repeat(1000));
      await Deno.writeFile(`${dir}/f`, data);
      const fd = openat(AT.FDCWD, bytePath(`${dir}/f`), O.RDONLY);
      try {
        const digest = await sha256Descriptor(fd);
        assert.equal(digest.length, 32);
        assert.equal(
          Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
          createHash("sha256").update(data).digest("hex"),
        );
        // The offset is now at the end: a second call hashes nothing.
        const rest = await sha256Descriptor(fd);
        assert.deepEqual(rest, new Uint8Array(createHash("sha256").update("").digest()));
      } finally {
        close(fd);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
