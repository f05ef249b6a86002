/**
 * The only code that calls netlink sockets through FFI, for the proc
 * connector.
 *
 * Reading runs in a dedicated worker (`_proc_reader.ts`), not on the JS
 * thread: an exec event is only useful if /proc/<pid> is read before the
 * process exits, often within a millisecond, and a reply from a
 * `nonblocking` poll has to wait for the main event loop. The worker's thread
 * does nothing else, so it blocks in an ordinary `poll` on [socket, wake
 * eventfd], then `recv`s (errno read at once: same thread), parses, reads
 * /proc for each exec, and posts the records. Socket setup (`open`) is
 * ordinary calls on the JS thread, so its errors throw at once.
 *
 * Descriptor ownership: the worker owns the socket and the eventfd once it
 * has them; `close()` writes the eventfd, the worker sends IGNORE, closes
 * both and says "done". Should the worker die first, the main side closes
 * them.
 *
 * @module
 */

import {
  AF_NETLINK,
  CN_IDX_PROC,
  CN_MSG,
  CN_VAL_PROC,
  EFD,
  MSG_DONTWAIT,
  NETLINK_CONNECTOR,
  NETLINK_LIBRARY,
  NETLINK_SYMBOLS,
  NLMSG,
  NLMSGHDR,
  POLL,
  POLLFD,
  PROC_CN_MCAST,
  SO,
  SOCK,
  SOCKADDR_NL,
  SOL_SOCKET,
} from "../../../ffi/netlink.ts";
import { formatCommandLine, type ProcessInfo, readExe } from "../../protect/process_info.ts";
import { errno, strerror } from "../../sys/libc.ts";
import { SysError } from "../../sys/sys_error.ts";
import { parseProcEvents, type ProcEventSource, type ProcRecord } from "./proc_events.ts";
import { BatchQueue } from "../batch_queue.ts";

type Symbols = Deno.DynamicLibrary<typeof NETLINK_SYMBOLS>["symbols"];

const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;

let symbols: Symbols | undefined;

function lib(): Symbols {
  if (!symbols) symbols = Deno.dlopen(NETLINK_LIBRARY, NETLINK_SYMBOLS).symbols;
  return symbols;
}

function fail(syscall: string, detail?: string): never {
  const e = errno();
  throw new SysError(syscall, e, detail, strerror(e));
}

/** Options of {@linkcode NativeProcEventSource.open}. */
export interface NativeProcEventOptions {
  /** Receive buffer to ask for, in bytes (`SO_RCVBUFFORCE`, else `SO_RCVBUF`). Default 8 MiB. */
  receiveBufferBytes?: number;
  /** Where procfs is mounted, for the reads at exec. Default "/proc". */
  proc?: string;
}

/** What the reader worker posts. */
export type ReaderMessage =
  | { type: "records"; records: ProcRecord[] }
  | { type: "error"; message: string }
  | { type: "ready" }
  | { type: "done" };

/** What the reader worker is started with. */
export interface ReaderStart {
  sock: number;
  wake: number;
  proc: string;
}

function sockaddr(groups: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(SOCKADDR_NL.size);
  const v = new DataView(buf.buffer);
  v.setUint16(SOCKADDR_NL.nl_family, AF_NETLINK, true);
  v.setUint32(SOCKADDR_NL.nl_pid, 0, true); // bind: let the kernel pick; sendto: the kernel
  v.setUint32(SOCKADDR_NL.nl_groups, groups, true);
  return buf;
}

/** The message that turns process events on (LISTEN) or off (IGNORE) for this socket. */
function mcastMessage(op: number): Uint8Array<ArrayBuffer> {
  const len = NLMSGHDR.size + CN_MSG.size + 4;
  const buf = new Uint8Array(len);
  const v = new DataView(buf.buffer);
  v.setUint32(NLMSGHDR.nlmsg_len, len, true);
  v.setUint16(NLMSGHDR.nlmsg_type, NLMSG.DONE, true);
  v.setUint32(NLMSGHDR.nlmsg_pid, Deno.pid, true);
  const cn = NLMSGHDR.size;
  v.setUint32(cn + CN_MSG.idx, CN_IDX_PROC, true);
  v.setUint32(cn + CN_MSG.val, CN_VAL_PROC, true);
  v.setUint16(cn + CN_MSG.len, 4, true);
  v.setUint32(cn + CN_MSG.size, op, true);
  return buf;
}

function send(sock: number, msg: Uint8Array<ArrayBuffer>, what: string): void {
  const to = sockaddr(0);
  for (;;) {
    const n = Number(lib().sendto(sock, msg, BigInt(msg.length), 0, to, to.length));
    if (n === msg.length) return;
    const e = n < 0 ? errno() : 0;
    if (e === EINTR) continue;
    throw new SysError("sendto", e, `netlink proc connector ${what}`, strerror(e));
  }
}

/** Asks for a larger receive buffer: forced as root, else up to `rmem_max`; failures are ignored. */
function setReceiveBuffer(sock: number, bytes: number): void {
  const v = new Uint8Array(4);
  new DataView(v.buffer).setInt32(0, bytes, true);
  if (lib().setsockopt(sock, SOL_SOCKET, SO.RCVBUFFORCE, v, 4) === 0) return;
  lib().setsockopt(sock, SOL_SOCKET, SO.RCVBUF, v, 4);
}

/**
 * Opens a non-blocking connector socket, joins `CN_IDX_PROC`, sends LISTEN,
 * and makes a wake eventfd. Both descriptors belong to the caller.
 */
function openProcSocket(receiveBufferBytes: number): { sock: number; wake: number } {
  const c = lib();
  const sock = c.socket(AF_NETLINK, SOCK.DGRAM | SOCK.NONBLOCK | SOCK.CLOEXEC, NETLINK_CONNECTOR);
  if (sock < 0) fail("socket", "AF_NETLINK/NETLINK_CONNECTOR");
  let wake = -1;
  try {
    setReceiveBuffer(sock, receiveBufferBytes);
    const addr = sockaddr(CN_IDX_PROC);
    if (c.bind(sock, addr, addr.length) !== 0) fail("bind", "netlink CN_IDX_PROC");
    wake = c.eventfd(0, EFD.CLOEXEC | EFD.NONBLOCK);
    if (wake < 0) fail("eventfd");
    send(sock, mcastMessage(PROC_CN_MCAST.LISTEN), "LISTEN");
    return { sock, wake };
  } catch (error) {
    c.close(sock);
    if (wake >= 0) c.close(wake);
    throw error;
  }
}

/**
 * What only /proc can say of a process that has just exec'd: its new
 * executable (first: a process that exits at once loses it first, with its
 * memory) and command line. Parent, user and the parent's executable are
 * not read: the table has them from the fork and uid events (an exec
 * changes none of them): a third less of the reader's time per exec.
 */
function readAtExec(pid: number, proc: string): ProcessInfo {
  const info: ProcessInfo = { pid, executable: readExe(pid, proc) };
  try {
    const cmdline = Deno.readFileSync(`${proc}/${pid}/cmdline`);
    if (cmdline.length > 0) info.commandLine = formatCommandLine(cmdline);
  } catch {
    // gone
  }
  return info;
}

/**
 * The reader worker's loop (blocks its thread): waits for the socket, reads
 * every queued datagram, reads /proc for each exec, posts the records; ends
 * when `wake` is readable, then sends IGNORE and closes both descriptors.
 */
export function readLoop(start: ReaderStart, post: (message: ReaderMessage) => void): void {
  const { sock, wake, proc } = start;
  const c = lib();
  const pollfds = new Uint8Array(POLLFD.size * 2);
  const pv = new DataView(pollfds.buffer);
  [sock, wake].forEach((fd, i) => {
    pv.setInt32(i * POLLFD.size + POLLFD.fd, fd, true);
    pv.setInt16(i * POLLFD.size + POLLFD.events, POLL.IN, true);
  });
  const buf = new Uint8Array(64 * 1024);
  try {
    readAtExec(Deno.pid, proc); // loads what the reads at exec need, before the first event
    post({ type: "ready" });
    for (;;) {
      pv.setInt16(POLLFD.revents, 0, true);
      pv.setInt16(POLLFD.size + POLLFD.revents, 0, true);
      if (c.poll_blocking(pollfds, 2n, -1) < 0) {
        const e = errno();
        if (e === EINTR) continue;
        throw new SysError("poll", e, "netlink proc connector", strerror(e));
      }
      if (pv.getInt16(POLLFD.size + POLLFD.revents, true) !== 0) return;
      const records: ProcRecord[] = [];
      for (;;) {
        const n = Number(c.recv(sock, buf, BigInt(buf.length), MSG_DONTWAIT));
        if (n > 0) {
          for (const r of parseProcEvents(buf.subarray(0, n))) {
            if (r.kind === "exec") r.process = readAtExec(r.tgid, proc);
            records.push(r);
          }
          continue;
        }
        if (n === 0) break;
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) break;
        if (e === ENOBUFS) {
          records.push({ kind: "overflow" });
          continue;
        }
        throw new SysError("recv", e, "netlink proc connector", strerror(e));
      }
      if (records.length > 0) post({ type: "records", records });
    }
  } catch (error) {
    post({ type: "error", message: error instanceof Error ? error.message : String(error) });
  } finally {
    try {
      send(sock, mcastMessage(PROC_CN_MCAST.IGNORE), "IGNORE");
    } catch {
      // closing the socket leaves the group anyway
    }
    c.close(sock);
    c.close(wake);
    post({ type: "done" });
  }
}

/**
 * Process events from the kernel's proc connector (root only, initial
 * network namespace), read by a worker. Batches wait in a bounded queue for
 * `next()`; when it is full, or the kernel's socket buffer overflowed, an
 * "overflow" record says events were lost.
 */
export class NativeProcEventSource implements ProcEventSource {
  readonly #worker: Worker;
  readonly #wake: number;
  readonly #sock: number;
  readonly #queue: BatchQueue<ProcRecord>;
  readonly #finished: Promise<void>;
  /**
   * Resolves once the reader runs (or has ended). Events are queued by the
   * kernel from `open()` on, but /proc is read for them only from then on.
   */
  readonly ready: Promise<void>;

  private constructor(start: ReaderStart, maxQueue: number) {
    this.#sock = start.sock;
    this.#wake = start.wake;
    this.#queue = new BatchQueue<ProcRecord>(maxQueue, () => ({ kind: "overflow" }));
    this.#worker = new Worker(new URL("./_proc_reader.ts", import.meta.url), { type: "module" });
    let finish = () => {};
    this.#finished = new Promise<void>((resolve) => (finish = resolve));
    let ready = () => {};
    this.ready = Promise.race([new Promise<void>((resolve) => (ready = resolve)), this.#finished]);
    this.#worker.onmessage = (e: MessageEvent<ReaderMessage>) => {
      const m = e.data;
      if (m.type === "ready") ready();
      else if (m.type === "records") this.#queue.push(m.records);
      else if (m.type === "error") {
        this.#queue.fail(new Error(`Proc connector reader failed: ${m.message}`));
      } else {
        this.#queue.end();
        finish();
      }
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#queue.fail(new Error(`Proc connector reader died: ${e.message}`));
      if (!this.#queue.ended) {
        this.#queue.end();
        lib().close(this.#sock);
        lib().close(this.#wake);
      }
      finish();
    };
    this.#worker.postMessage(start);
  }

  /**
   * Opens the socket (throws {@linkcode SysError}: EPERM without
   * `CAP_NET_ADMIN`) and starts the reader.
   *
   * @param options receive buffer and procfs location
   */
  static open(options: NativeProcEventOptions = {}): NativeProcEventSource {
    const { sock, wake } = openProcSocket(options.receiveBufferBytes ?? 8 * 1024 * 1024);
    return new NativeProcEventSource({ sock, wake, proc: options.proc ?? "/proc" }, 4096);
  }

  /** The next batch of records; [] once closed or the reader ended; throws once if it failed. */
  next(): Promise<ProcRecord[]> {
    return this.#queue.next();
  }

  /** Stops the reader (it sends IGNORE and closes the socket) and waits for it; safe to call twice. */
  async close(): Promise<void> {
    if (!this.#queue.closed) {
      const ended = this.#queue.ended;
      this.#queue.close();
      if (!ended) lib().write(this.#wake, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), 8n);
    }
    await this.#finished;
    this.#worker.terminate();
  }
}
