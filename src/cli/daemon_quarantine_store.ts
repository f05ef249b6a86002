/**
 * `amp quarantine` through the daemon. While the daemon runs it holds the
 * quarantine's lock, and a restore must be done by the daemon anyway: its own
 * writes are not scanned, and it remembers that the administrator restored
 * that SHA-256, so the file is not convicted again. Listing works on the
 * database directly (read-only), daemon or not.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { resolve } from "node:path";
import type { RestoreOptions, RestoreResult } from "../protect/quarantine.ts";
import type { IpcClient } from "../ipc/ipc_client.ts";
import { DaemonAccessError, DaemonUnavailableError } from "../ipc/ipc_errors.ts";
import { fromWire, fromWireError, type WireRecord } from "../daemon/quarantine_wire.ts";
import { connectDaemon } from "./daemon_client.ts";
import { openQuarantineHere, type QuarantineStore } from "./quarantine_command.ts";

const SUFFIX = "/var/lib/amp/quarantine";

/** Opens the store: through the daemon of the root when one runs and a change is asked. */
export async function openQuarantineStore(
  dir: string,
  options: { readOnly: boolean },
): Promise<QuarantineStore> {
  if (!options.readOnly && dir.endsWith(SUFFIX)) {
    const root = dir.slice(0, -SUFFIX.length) || "/";
    try {
      return new DaemonQuarantineStore(await connectDaemon(root));
    } catch (error) {
      if (!(error instanceof DaemonUnavailableError || error instanceof DaemonAccessError)) {
        throw error;
      }
    }
  }
  return await openQuarantineHere(dir, options);
}

/** The quarantine as the daemon serves it. */
class DaemonQuarantineStore implements QuarantineStore {
  readonly #client: IpcClient;

  constructor(client: IpcClient) {
    this.#client = client;
  }

  async #call(method: string, params?: unknown): Promise<unknown> {
    try {
      return await this.#client.request(method, params);
    } catch (error) {
      throw fromWireError(error);
    }
  }

  async list() {
    return ((await this.#call("quarantine.list")) as WireRecord[]).map(fromWire);
  }

  async get(id: number) {
    const w = (await this.#call("quarantine.get", { id })) as WireRecord | null;
    return w ? fromWire(w) : undefined;
  }

  async restore(id: number, options: RestoreOptions = {}): Promise<RestoreResult> {
    // The daemon has its own working directory: send an absolute path.
    const to = options.to
      ? resolve(new TextDecoder("utf-8", { fatal: true }).decode(options.to))
      : undefined;
    const r = (await this.#call("quarantine.restore", { id, to, force: options.force })) as {
      record: WireRecord;
      path: string;
    };
    return { record: fromWire(r.record), path: new Uint8Array(Buffer.from(r.path, "base64")) };
  }

  async delete(id: number): Promise<void> {
    await this.#call("quarantine.delete", { id });
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
