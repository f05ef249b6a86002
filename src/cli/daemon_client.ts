/**
 * How commands reach the daemon: the socket named by amp.json under
 * `--root` (default /run/amp/ampd.sock).
 *
 * @module
 */

import { loadConfig } from "../config/amp_config.ts";
import { IpcClient } from "../ipc/ipc_client.ts";
import { resolveUnderRoot } from "../policy/load_policy.ts";

/** The daemon's socket path for a host root. */
export async function socketPath(root: string): Promise<string> {
  try {
    const { config } = await loadConfig({ root });
    return resolveUnderRoot(root, config.socket);
  } catch {
    return resolveUnderRoot(root, "/run/amp/ampd.sock");
  }
}

/** Connects to the daemon of `root`; throws the IPC errors the caller presents. */
export async function connectDaemon(root: string): Promise<IpcClient> {
  return await IpcClient.connect(await socketPath(root));
}
