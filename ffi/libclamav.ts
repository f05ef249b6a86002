/**
 * libclamav (ClamAV 1.x, soname libclamav.so.12): the symbols amp calls, the
 * constants it needs and the layout of `struct cl_scan_options`. Symbols and
 * layouts only; the typed engine is `src/engine/clamav/`.
 *
 * @module
 */

/** Library names tried in order by the loader. */
export const LIBCLAMAV_NAMES = ["libclamav.so.12", "libclamav.so"] as const;

/** The symbols amp uses. */
export const LIBCLAMAV_SYMBOLS = {
  /** cl_error_t cl_init(unsigned int initoptions) */
  cl_init: { parameters: ["u32"], result: "i32" },
  /** const char *cl_retver(void) */
  cl_retver: { parameters: [], result: "pointer" },
  /** const char *cl_strerror(cl_error_t clerror) */
  cl_strerror: { parameters: ["i32"], result: "pointer" },
  /** struct cl_engine *cl_engine_new(void) */
  cl_engine_new: { parameters: [], result: "pointer" },
  /** cl_error_t cl_engine_free(struct cl_engine *engine) */
  cl_engine_free: { parameters: ["pointer"], result: "i32" },
  /** cl_error_t cl_engine_set_num(struct cl_engine *, enum cl_engine_field, long long) */
  cl_engine_set_num: { parameters: ["pointer", "i32", "i64"], result: "i32" },
  /** cl_error_t cl_engine_set_str(struct cl_engine *, enum cl_engine_field, const char *) */
  cl_engine_set_str: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  /** cl_error_t cl_load(const char *path, struct cl_engine *, unsigned int *signo, unsigned int dboptions) */
  cl_load: { parameters: ["buffer", "pointer", "buffer", "u32"], result: "i32", nonblocking: true },
  /** cl_error_t cl_engine_compile(struct cl_engine *engine) */
  cl_engine_compile: { parameters: ["pointer"], result: "i32", nonblocking: true },
  /**
   * cl_error_t cl_scandesc(int desc, const char *filename, const char **virname,
   *   unsigned long *scanned, const struct cl_engine *, struct cl_scan_options *)
   */
  cl_scandesc: {
    parameters: ["i32", "pointer", "buffer", "buffer", "pointer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  /** unsigned char *cl_hash_file_fd(int fd, const char *alg, unsigned int *olen): malloc'd */
  cl_hash_file_fd: {
    parameters: ["i32", "buffer", "buffer"],
    result: "pointer",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** `cl_error_t` values amp tells apart. */
export const CL = {
  CLEAN: 0,
  SUCCESS: 0,
  VIRUS: 1,
  EOPEN: 8,
  EMAXREC: 23,
  EMAXSIZE: 24,
  EMAXFILES: 25,
} as const;

/** `cl_init` option. */
export const CL_INIT_DEFAULT = 0x0;

/** `cl_load` options: CL_DB_STDOPT = PHISHING | PHISHING_URLS | BYTECODE. */
export const CL_DB_STDOPT = 0x200a;

/** `enum cl_engine_field` members amp sets. */
export const CL_ENGINE = {
  MAX_SCANSIZE: 0,
  MAX_FILESIZE: 1,
  MAX_RECURSION: 2,
  MAX_FILES: 3,
  TMPDIR: 13,
  MAX_SCANTIME: 31,
} as const;

/**
 * `struct cl_scan_options`: five `uint32_t` fields, 20 bytes.
 * `general`, `parse`, `heuristic`, `mail`, `dev` at these byte offsets.
 */
export const CL_SCAN_OPTIONS = {
  size: 20,
  general: 0,
  parse: 4,
  heuristic: 8,
  mail: 12,
  dev: 16,
} as const;

/** `CL_SCAN_GENERAL_*` bits. */
export const CL_SCAN_GENERAL = { ALLMATCHES: 0x1, HEURISTICS: 0x4 } as const;

/** All `CL_SCAN_PARSE_*` bits (archive, ELF, PDF, SWF, HWP3, XML docs, mail, OLE2, HTML, PE, OneNote, images). */
export const CL_SCAN_PARSE_ALL = 0xfff;

/** `CL_SCAN_HEURISTIC_*` bits. */
export const CL_SCAN_HEURISTIC = { BROKEN: 0x2, EXCEEDS_MAX: 0x4 } as const;
