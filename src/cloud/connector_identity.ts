/**
 * The connector's registration with a cloud: its GUID and its own key,
 * kept in /var/lib/amp/cloud_identity.json (0600, root only). A connector
 * registers once, with a registration token given by the cloud's
 * administrator (`amp cloud register --token …`, or a token placed in
 * /etc/amp/cloud_registration.token that the daemon uses by itself); every
 * later call carries the key. An identity belongs to one cloud URL: pointing
 * amp.json at another cloud needs a new registration.
 *
 * @module
 */

import { writeFileAtomic } from "../fs/write_atomic.ts";
import { z } from "zod";
import { resolveUnderRoot } from "../policy/load_policy.ts";
import { VERSION } from "../version.ts";
import type { CloudClient } from "./cloud_client.ts";
import type { RegisterRequest } from "./protocol.ts";

/** Where the identity is kept, relative to `--root`. */
export const IDENTITY_PATH = "/var/lib/amp/cloud_identity.json";

/** Where a registration token may wait for the daemon, relative to `--root`. */
export const REGISTRATION_TOKEN_PATH = "/etc/amp/cloud_registration.token";

/** The schema of cloud_identity.json. */
export const IdentitySchema = z.strictObject({
  /** The cloud it belongs to. */
  url: z.string(),
  guid: z.uuid(),
  computerId: z.number().int().positive(),
  key: z.string().min(32),
  registeredAt: z.number().int(),
  heartbeatSeconds: z.number().int().positive(),
});

/** A connector's registration. */
export type Identity = z.infer<typeof IdentitySchema>;

/** Reads the identity; undefined when there is none (or it is unreadable). */
export async function loadIdentity(root: string): Promise<Identity | undefined> {
  try {
    const text = await Deno.readTextFile(resolveUnderRoot(root, IDENTITY_PATH));
    const parsed = IdentitySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the identity atomically, 0600. */
export async function saveIdentity(root: string, identity: Identity): Promise<void> {
  const path = resolveUnderRoot(root, IDENTITY_PATH);
  await Deno.mkdir(resolveUnderRoot(root, "/var/lib/amp"), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, JSON.stringify(identity, null, 2) + "\n", 0o600);
}

/** The registration token waiting in /etc/amp/cloud_registration.token, if any. */
export async function waitingToken(root: string): Promise<string | undefined> {
  try {
    const token = (await Deno.readTextFile(resolveUnderRoot(root, REGISTRATION_TOKEN_PATH)))
      .trim();
    return token || undefined;
  } catch {
    return undefined;
  }
}

/** This host as a registration describes it (without the GUID). */
export function hostFacts(): Omit<RegisterRequest, "guid"> {
  let os = "Linux";
  try {
    const release = Deno.readTextFileSync("/etc/os-release");
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(release);
    if (m) os = m[1];
  } catch {
    // no os-release: "Linux"
  }
  return {
    hostname: Deno.hostname(),
    os,
    kernel: Deno.osRelease(),
    arch: Deno.build.arch,
    version: VERSION,
  };
}

/**
 * Registers with the cloud (keeping the GUID of an earlier registration, and
 * proving it with the earlier key when that registration is with the same
 * cloud) and saves the identity.
 *
 * @param client the cloud's client
 * @param token a registration token from the cloud's administrator
 * @param options the host root and the cloud URL the identity belongs to
 */
export async function registerConnector(
  client: CloudClient,
  token: string,
  options: { root: string; url: string },
): Promise<Identity> {
  const previous = await loadIdentity(options.root);
  const guid = previous?.guid ?? crypto.randomUUID();
  const request: RegisterRequest = { guid, ...hostFacts() };
  if (previous?.url === options.url) request.currentKey = previous.key;
  const answer = await client.register(token, request);
  const identity: Identity = {
    url: options.url,
    guid,
    computerId: answer.computerId,
    key: answer.key,
    registeredAt: Date.now(),
    heartbeatSeconds: answer.heartbeatSeconds,
  };
  await saveIdentity(options.root, identity);
  return identity;
}

/**
 * Reads amp.json's CA bundle (a path under the root) as PEM certificates.
 *
 * @param root the host root
 * @param ca the `cloud.ca` path, if set
 */
export async function readCaCerts(root: string, ca: string | undefined): Promise<string[]> {
  if (!ca) return [];
  const path = resolveUnderRoot(root, ca);
  try {
    return [await Deno.readTextFile(path)];
  } catch (error) {
    throw new Error(
      `Cannot read the cloud CA bundle ${path}: ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
}
