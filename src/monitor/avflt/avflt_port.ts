/**
 * The narrow interface of /dev/ampavflt that {@linkcode AvfltSource} needs:
 * the native device (`_native.ts`) implements it, and tests give a fake.
 *
 * @module
 */

/** What a wait for the device ended with. */
export type AvfltWait = "ready" | "woken" | "failed" | "broken";

/** An open /dev/ampavflt (this process registered as its daemon). */
export interface AvfltPort {
  /** One non-blocking read of whole records into `buf`: bytes read, 0 when there is nothing. Throws `SysError`. */
  read(buf: Uint8Array<ArrayBuffer>): number;
  /** Writes encoded commands; throws `SysError` with the module's errno (ENOENT: no such waiting event). */
  write(commands: Uint8Array<ArrayBuffer>): void;
  /** Waits, off the JS thread, until the device is readable or `wake()` is called. */
  wait(): Promise<AvfltWait>;
  /** Ends the current (or next) `wait()` with "woken". */
  wake(): void;
  /** Closes a descriptor the device gave. */
  closeFd(fd: number): void;
  /** The path of a descriptor the device gave, as bytes. Throws `SysError`. */
  fdPath(fd: number): Uint8Array;
  /**
   * The protocol the module speaks (its sysfs `version` attribute), or
   * undefined when it does not say (a module older than protocol 2).
   */
  protocolVersion(): number | undefined;
  /** Closes the device: the module allows every exec still waiting. Safe twice. */
  close(): void;
}
