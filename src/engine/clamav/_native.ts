/**
 * The only code that calls libclamav. Loads the library once per process,
 * runs `cl_init` once, and exposes the calls the engine needs with plain
 * TypeScript types. Long calls (`cl_load`, `cl_engine_compile`, `cl_scandesc`,
 * hashing) are `nonblocking`: they run on Deno's blocking thread pool, so
 * several scans are in flight at once and the JS thread stays free.
 *
 * Memory: a virus name returned by `cl_scandesc` belongs to the engine and is
 * copied at once; a hash from `cl_hash_file_fd` is malloc'd and freed here.
 *
 * @module
 */

import {
  CL,
  CL_DB_STDOPT,
  CL_ENGINE,
  CL_INIT_DEFAULT,
  CL_SCAN_OPTIONS,
  LIBCLAMAV_NAMES,
  LIBCLAMAV_SYMBOLS,
} from "../../../ffi/libclamav.ts";
import { free, limitMallocArenas } from "../../sys/libc.ts";

type Symbols = Deno.DynamicLibrary<typeof LIBCLAMAV_SYMBOLS>["symbols"];

/** A libclamav call that failed: the call, its `cl_error_t` and libclamav's text. */
export class ClamavError extends Error {
  /** The `cl_error_t` value. */
  readonly code: number;
  /**
   * @param call the function that failed
   * @param code its `cl_error_t`
   * @param text `cl_strerror(code)`
   */
  constructor(call: string, code: number, text: string, options?: ErrorOptions) {
    super(`${call} failed: ${text} (cl_error_t ${code})`, options);
    this.name = "ClamavError";
    this.code = code;
  }
}

/** The five `uint32_t` fields of `struct cl_scan_options`. */
export interface ScanOptionBits {
  general: number;
  parse: number;
  heuristic: number;
  mail: number;
  dev: number;
}

/** What `cl_scandesc` said about one descriptor. */
export type RawScanResult =
  | { kind: "clean" }
  | { kind: "virus"; virname: string }
  | { kind: "limit"; detail: string }
  | { kind: "error"; code: number; error: string };

let loaded: { symbols: Symbols; version: string } | undefined;
const SHA256 = new TextEncoder().encode("sha256\0");

/**
 * Opens libclamav and runs `cl_init` (once per process).
 * Throws an Error listing the names tried when the library is missing.
 */
export function openLibclamav(): { version: string } {
  if (loaded) return { version: loaded.version };
  const failures: string[] = [];
  // Before libclamav allocates anything from the thread pool (see limitMallocArenas).
  limitMallocArenas(1);
  for (const name of LIBCLAMAV_NAMES) {
    let symbols: Symbols;
    try {
      symbols = Deno.dlopen(name, LIBCLAMAV_SYMBOLS).symbols;
    } catch (error) {
      failures.push(`${name}: ${error instanceof Error ? error.message : error}`);
      continue;
    }
    const rc = symbols.cl_init(CL_INIT_DEFAULT);
    if (rc !== CL.SUCCESS) throw new ClamavError("cl_init", rc, strerror(symbols, rc));
    const version = Deno.UnsafePointerView.getCString(symbols.cl_retver()!);
    loaded = { symbols, version };
    return { version };
  }
  throw new Error(
    `Cannot load libclamav (install the libclamav12 package): tried ${failures.join("; ")}`,
  );
}

function lib(): Symbols {
  if (!loaded) openLibclamav();
  return loaded!.symbols;
}

function strerror(symbols: Symbols, code: number): string {
  const p = symbols.cl_strerror(code);
  return p ? Deno.UnsafePointerView.getCString(p) : `error ${code}`;
}

function check(call: string, code: number): void {
  if (code !== CL.SUCCESS) throw new ClamavError(call, code, strerror(lib(), code));
}

/** A `struct cl_engine *` with the calls made on it. `free()` is safe to call twice. */
export class NativeEngine {
  #engine: Deno.PointerValue;

  constructor() {
    const engine = lib().cl_engine_new();
    if (!engine) throw new ClamavError("cl_engine_new", CL.EOPEN, "out of memory");
    this.#engine = engine;
  }

  #handle(): Deno.PointerObject {
    if (!this.#engine) throw new Error("ClamAV engine already freed");
    return this.#engine;
  }

  /** `cl_engine_set_num`. */
  setNum(field: number, value: number): void {
    check("cl_engine_set_num", lib().cl_engine_set_num(this.#handle(), field, BigInt(value)));
  }

  /** `cl_engine_set_str` (libclamav copies the string). */
  setStr(field: number, value: string): void {
    const str = new TextEncoder().encode(value + "\0");
    check("cl_engine_set_str", lib().cl_engine_set_str(this.#handle(), field, str));
  }

  /** Sets the directory where libclamav extracts archive members. */
  setTmpDir(dir: string): void {
    this.setStr(CL_ENGINE.TMPDIR, dir);
  }

  /** `cl_load(dir, engine, &signo, CL_DB_STDOPT)`; returns the number of signatures loaded. */
  async load(dir: string): Promise<number> {
    const signo = new Uint32Array(1);
    const path = new TextEncoder().encode(dir + "\0");
    const rc = await lib().cl_load(
      path,
      this.#handle(),
      new Uint8Array(signo.buffer),
      CL_DB_STDOPT,
    );
    check("cl_load", rc);
    return signo[0];
  }

  /** `cl_engine_compile`: after this the engine scans from several threads at once. */
  async compile(): Promise<void> {
    check("cl_engine_compile", await lib().cl_engine_compile(this.#handle()));
  }

  /** `cl_scandesc` on an open descriptor (nonblocking). */
  async scanDescriptor(fd: number, options: ScanOptionBits): Promise<RawScanResult> {
    const virname = new BigUint64Array(1);
    const scanned = new BigUint64Array(1);
    const opts = new Uint32Array(CL_SCAN_OPTIONS.size / 4);
    opts[CL_SCAN_OPTIONS.general / 4] = options.general;
    opts[CL_SCAN_OPTIONS.parse / 4] = options.parse;
    opts[CL_SCAN_OPTIONS.heuristic / 4] = options.heuristic;
    opts[CL_SCAN_OPTIONS.mail / 4] = options.mail;
    opts[CL_SCAN_OPTIONS.dev / 4] = options.dev;
    const code = await lib().cl_scandesc(
      fd,
      null,
      new Uint8Array(virname.buffer),
      new Uint8Array(scanned.buffer),
      this.#handle(),
      new Uint8Array(opts.buffer),
    );
    if (code === CL.CLEAN) return { kind: "clean" };
    if (code === CL.VIRUS) {
      const p = Deno.UnsafePointer.create(virname[0]);
      // libclamav answers CL_VIRUS with no name for a file over
      // CL_ENGINE_MAX_FILESIZE: a limit, not a detection.
      if (!p) return { kind: "limit", detail: "Heuristics.Limits.Exceeded.MaxFileSize" };
      return { kind: "virus", virname: Deno.UnsafePointerView.getCString(p) };
    }
    return { kind: "error", code, error: strerror(lib(), code) };
  }

  /** `cl_engine_free`. */
  free(): void {
    if (this.#engine) lib().cl_engine_free(this.#engine);
    this.#engine = null;
  }
}

/**
 * SHA-256 of everything from the descriptor's current offset to its end,
 * computed by libclamav (OpenSSL) off the JS thread. Moves the offset.
 */
export async function sha256Descriptor(fd: number): Promise<Uint8Array> {
  const olen = new Uint32Array(1);
  const p = await lib().cl_hash_file_fd(fd, SHA256, new Uint8Array(olen.buffer));
  if (!p) throw new Error("cl_hash_file_fd failed: cannot read the file");
  try {
    return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, olen[0])).slice();
  } finally {
    free(p);
  }
}
