/**
 * The only code that calls /dev/ampavflt through FFI: {@linkcode openAvfltDevice}
 * gives the {@linkcode AvfltPort} the avflt source reads and writes. Every call
 * but the `poll` in `wait` is an ordinary call on the JS thread, so errno is
 * read straight after it; `poll` is `nonblocking` (another thread) and only
 * reports readiness. Failures throw {@linkcode SysError}.
 *
 * Descriptors: the module installs one descriptor per event in this
 * process, so RLIMIT_NOFILE bounds how many events can be held at once
 * before the module must give paths instead. Opening the device raises
 * the soft limit to the hard one (Deno does so at start-up too, but a
 * compiled or embedded runtime may not).
 *
 * @module
 */

import {
  AMPAVFLT_DEVICE,
  AMPAVFLT_LIBRARY,
  AMPAVFLT_SYMBOLS,
  AVFLT_O,
  EFD,
  POLL,
  POLLFD,
  RLIMIT,
  RLIMIT_NOFILE,
} from "../../../ffi/ampavflt.ts";
import { bytePath, cPath } from "../../sys/byte_path.ts";
import { errno, readlink, strerror } from "../../sys/libc.ts";
import { SysError } from "../../sys/sys_error.ts";
import type { AvfltPort, AvfltWait } from "./avflt_port.ts";

type Symbols = Deno.DynamicLibrary<typeof AMPAVFLT_SYMBOLS>["symbols"];

const EINTR = 4;
const EAGAIN = 11;

let symbols: Symbols | undefined;

function lib(): Symbols {
  if (!symbols) symbols = Deno.dlopen(AMPAVFLT_LIBRARY, AMPAVFLT_SYMBOLS).symbols;
  return symbols;
}

function fail(syscall: string, detail?: string): never {
  const e = errno();
  throw new SysError(syscall, e, detail, strerror(e));
}

/**
 * Opens the device (non-blocking, close-on-exec) and registers this process
 * as its daemon. Throws {@linkcode SysError}: ENOENT (module not loaded),
 * EBUSY (another daemon has it), EPERM (not root).
 *
 * @param path the device node (default /dev/ampavflt)
 */
export function openAvfltDevice(path = AMPAVFLT_DEVICE): AvfltPort {
  raiseNofileLimit();
  const fd = lib().open(cPath(bytePath(path)), AVFLT_O.RDWR | AVFLT_O.NONBLOCK | AVFLT_O.CLOEXEC);
  if (fd < 0) fail("open", path);
  const wake = lib().eventfd(0, EFD.CLOEXEC | EFD.NONBLOCK);
  if (wake < 0) {
    const e = errno();
    lib().close(fd);
    throw new SysError("eventfd", e, undefined, strerror(e));
  }
  return new NativeAvfltPort(fd, wake, path);
}

/** Raises RLIMIT_NOFILE's soft limit to its hard limit (best effort: a failure leaves it). */
export function raiseNofileLimit(): void {
  const buf = new Uint8Array(RLIMIT.size);
  const view = new DataView(buf.buffer);
  if (lib().getrlimit(RLIMIT_NOFILE, buf) !== 0) return;
  const max = view.getBigUint64(RLIMIT.rlim_max, true);
  if (view.getBigUint64(RLIMIT.rlim_cur, true) >= max) return;
  view.setBigUint64(RLIMIT.rlim_cur, max, true);
  lib().setrlimit(RLIMIT_NOFILE, buf);
}

/**
 * The module's protocol from sysfs: the device's `version` attribute (found
 * through its device number, so any node of it works), else the `version`
 * line of `stats` (modules of protocol 1 had only that).
 *
 * @param path the device node
 */
export function avfltProtocolVersion(path: string): number | undefined {
  let dir: string;
  try {
    const rdev = BigInt(Deno.statSync(path).rdev ?? 0);
    // glibc's major() and minor().
    const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & 0xfffff000n);
    const minor = (rdev & 0xffn) | ((rdev >> 12n) & 0xffffff00n);
    dir = `/sys/dev/char/${major}:${minor}`;
  } catch {
    return undefined;
  }
  const read = (file: string) => {
    try {
      return Deno.readTextFileSync(`${dir}/${file}`);
    } catch {
      return undefined;
    }
  };
  const text = read("version")?.trim() ?? /^version (\d+)$/m.exec(read("stats") ?? "")?.[1];
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

const one = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

class NativeAvfltPort implements AvfltPort {
  readonly #fd: number;
  readonly #wake: number;
  readonly #path: string;
  readonly #pollBuf = new Uint8Array(POLLFD.size * 2);
  readonly #pollView = new DataView(this.#pollBuf.buffer);
  #closed = false;

  constructor(fd: number, wake: number, path: string) {
    this.#fd = fd;
    this.#wake = wake;
    this.#path = path;
    [fd, wake].forEach((d, i) => {
      this.#pollView.setInt32(i * POLLFD.size + POLLFD.fd, d, true);
      this.#pollView.setInt16(i * POLLFD.size + POLLFD.events, POLL.IN, true);
    });
  }

  read(buf: Uint8Array<ArrayBuffer>): number {
    for (;;) {
      const n = Number(lib().read(this.#fd, buf, BigInt(buf.length)));
      if (n >= 0) return n;
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) return 0;
      throw new SysError("read", e, this.#path, strerror(e));
    }
  }

  write(commands: Uint8Array<ArrayBuffer>): void {
    for (;;) {
      const n = Number(lib().write(this.#fd, commands, BigInt(commands.length)));
      if (n === commands.length) return;
      const e = n < 0 ? errno() : 0;
      if (e === EINTR) continue;
      throw new SysError("write", e, this.#path, strerror(e));
    }
  }

  async wait(): Promise<AvfltWait> {
    for (let i = 0; i < 2; i++) this.#pollView.setInt16(i * POLLFD.size + POLLFD.revents, 0, true);
    const n = await lib().poll(this.#pollBuf, 2n, -1);
    if (n < 0) return "failed";
    const dev = this.#pollView.getInt16(POLLFD.revents, true);
    const wake = this.#pollView.getInt16(POLLFD.size + POLLFD.revents, true);
    if (wake !== 0) return "woken";
    if (dev & POLL.IN) return "ready";
    if (dev & (POLL.ERR | POLL.HUP | POLL.NVAL)) return "broken";
    return "woken";
  }

  wake(): void {
    lib().write(this.#wake, one, 8n);
  }

  closeFd(fd: number): void {
    lib().close(fd);
  }

  fdPath(fd: number): Uint8Array {
    return readlink(bytePath(`/proc/self/fd/${fd}`));
  }

  protocolVersion(): number | undefined {
    return avfltProtocolVersion(this.#path);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    lib().close(this.#fd);
    lib().close(this.#wake);
  }
}
