/**
 * The only code that calls fanotify and its companions through FFI. Every call
 * here but {@linkcode Poller.wait} is an ordinary call on the JS thread, so
 * errno is read straight after it; `poll` is `nonblocking` (another thread,
 * errno unreadable) and only reports readiness. Failures throw
 * {@linkcode SysError}.
 *
 * @module
 */

import {
  EFD,
  FANOTIFY_LIBRARY,
  FANOTIFY_RESPONSE,
  FANOTIFY_SYMBOLS,
  POLL,
  POLLFD,
  STATFS,
} from "../../../ffi/fanotify.ts";
import { type BytePath, bytePath } from "../../sys/byte_path.ts";
import { errno, readlink, strerror } from "../../sys/libc.ts";
import { SysError } from "../../sys/sys_error.ts";

type Symbols = Deno.DynamicLibrary<typeof FANOTIFY_SYMBOLS>["symbols"];

const EINTR = 4;
const EAGAIN = 11;

let symbols: Symbols | undefined;

function lib(): Symbols {
  if (!symbols) symbols = Deno.dlopen(FANOTIFY_LIBRARY, FANOTIFY_SYMBOLS).symbols;
  return symbols;
}

function fail(syscall: string, detail?: string): never {
  const e = errno();
  throw new SysError(syscall, e, detail, strerror(e));
}

/** `fanotify_init(2)`: a new group's descriptor, owned by the caller. */
export function fanotifyInit(flags: number, eventFlags: number): number {
  const fd = lib().fanotify_init(flags, eventFlags);
  if (fd < 0) fail("fanotify_init");
  return fd;
}

/**
 * `fanotify_mark(2)` on the object `dirfd` refers to (the path argument is
 * NULL). `detail` names it in errors.
 */
export function fanotifyMark(
  group: number,
  flags: number,
  mask: number,
  dirfd: number,
  detail: string,
): void {
  if (lib().fanotify_mark(group, flags, BigInt(mask), dirfd, null) !== 0) {
    fail("fanotify_mark", detail);
  }
}

/**
 * Reads events from a non-blocking fanotify descriptor into `buf`. Returns
 * the bytes read, 0 when there is nothing to read (EAGAIN); retries EINTR.
 */
export function readEvents(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  for (;;) {
    const n = Number(lib().read(fd, buf, BigInt(buf.length)));
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return 0;
    throw new SysError("read", e, "fanotify", strerror(e));
  }
}

const response = new Uint8Array(FANOTIFY_RESPONSE.size);
const responseView = new DataView(response.buffer);

/** Writes a `struct fanotify_response` for the permission event holding `eventFd`. */
export function writeResponse(group: number, eventFd: number, answer: number): void {
  responseView.setInt32(FANOTIFY_RESPONSE.fd, eventFd, true);
  responseView.setUint32(FANOTIFY_RESPONSE.response, answer, true);
  for (;;) {
    const n = Number(lib().write(group, response, BigInt(response.length)));
    if (n === response.length) return;
    const e = n < 0 ? errno() : 0;
    if (e === EINTR) continue;
    throw new SysError("write", e, `fanotify response for fd ${eventFd}`, strerror(e));
  }
}

/** `open_by_handle_at(2)`: opens what a `struct file_handle` names on the file system of `mountFd`. */
export function openByHandle(
  mountFd: number,
  handle: Uint8Array<ArrayBuffer>,
  flags: number,
): number {
  const fd = lib().open_by_handle_at(mountFd, handle, flags);
  if (fd < 0) fail("open_by_handle_at");
  return fd;
}

/** The `f_fsid` of the file system `fd` is on, as fanotify reports it (one little-endian u64). */
export function fsidOf(fd: number): bigint {
  const buf = new Uint8Array(STATFS.size);
  if (lib().fstatfs(fd, buf) !== 0) fail("fstatfs");
  return new DataView(buf.buffer).getBigUint64(STATFS.f_fsid, true);
}

/** A non-blocking, close-on-exec `eventfd(2)` for waking a {@linkcode Poller}. */
export function createWakeFd(): number {
  const fd = lib().eventfd(0, EFD.CLOEXEC | EFD.NONBLOCK);
  if (fd < 0) fail("eventfd");
  return fd;
}

const one = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

/** Makes a wake descriptor readable (adds 1 to the eventfd counter). */
export function signalWakeFd(fd: number): void {
  lib().write(fd, one, 8n);
}

/** Closes a descriptor; errors are ignored (the descriptor is gone either way). */
export function closeFd(fd: number): void {
  lib().close(fd);
}

/** The path of an open descriptor, as bytes: `readlink("/proc/self/fd/<fd>")`. */
export function fdPath(fd: number): BytePath {
  return readlink(bytePath(`/proc/self/fd/${fd}`));
}

/** Readiness of one polled descriptor. */
export interface PollReady {
  fd: number;
  /** `POLLIN` set. */
  readable: boolean;
  /** `POLLERR`, `POLLHUP` or `POLLNVAL` set. */
  broken: boolean;
}

/**
 * Waits, off the JS thread, until some of a fixed set of descriptors is
 * readable. One wait at a time; the descriptors must stay open until it
 * resolves (close them only after, or a reused number could be polled).
 */
export class Poller {
  readonly #fds: number[];
  readonly #buf: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;

  /** @param fds the descriptors to watch for `POLLIN` */
  constructor(fds: number[]) {
    this.#fds = [...fds];
    this.#buf = new Uint8Array(POLLFD.size * fds.length);
    this.#view = new DataView(this.#buf.buffer);
    fds.forEach((fd, i) => {
      this.#view.setInt32(i * POLLFD.size + POLLFD.fd, fd, true);
      this.#view.setInt16(i * POLLFD.size + POLLFD.events, POLL.IN, true);
    });
  }

  /**
   * Polls for up to `timeoutMs` (-1: no limit). Resolves to the descriptors
   * with anything to report ([] on timeout), or undefined when `poll` failed
   * (errno cannot be known: the call ran on another thread).
   */
  async wait(timeoutMs: number): Promise<PollReady[] | undefined> {
    for (let i = 0; i < this.#fds.length; i++) {
      this.#view.setInt16(i * POLLFD.size + POLLFD.revents, 0, true);
    }
    const n = await lib().poll(this.#buf, BigInt(this.#fds.length), timeoutMs);
    if (n < 0) return undefined;
    const out: PollReady[] = [];
    for (let i = 0; i < this.#fds.length; i++) {
      const revents = this.#view.getInt16(i * POLLFD.size + POLLFD.revents, true);
      if (revents === 0) continue;
      out.push({
        fd: this.#fds[i],
        readable: (revents & POLL.IN) !== 0,
        broken: (revents & (POLL.ERR | POLL.HUP | POLL.NVAL)) !== 0,
      });
    }
    return out;
  }
}
