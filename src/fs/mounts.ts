/**
 * Mounted file systems, from `/proc/self/mountinfo`, and which of them a scan
 * should enter: local file systems yes, pseudo (proc, sysfs, cgroup …) and
 * network (nfs, cifs …) file systems no.
 *
 * @module
 */

/** One line of mountinfo. Mount points are bytes (octal escapes undone). */
export interface Mount {
  id: number;
  dev: bigint;
  /** The mounted directory (bytes). */
  mountPoint: Uint8Array;
  /** Root of the mount within its file system (bytes); "/" unless a bind mount of a subtree. */
  root: Uint8Array;
  fsType: string;
  source: string;
}

/** File systems that hold no files worth scanning (kernel views of state). */
export const PSEUDO_FS_TYPES: ReadonlySet<string> = new Set([
  "proc",
  "sysfs",
  "devtmpfs",
  "devpts",
  "cgroup",
  "cgroup2",
  "securityfs",
  "debugfs",
  "tracefs",
  "pstore",
  "bpf",
  "configfs",
  "fusectl",
  "mqueue",
  "hugetlbfs",
  "autofs",
  "binfmt_misc",
  "efivarfs",
  "rpc_pipefs",
  "nsfs",
  "selinuxfs",
  "nfsd",
  "sockfs",
  "pipefs",
]);

/** File systems whose files live on another host. */
export const NETWORK_FS_TYPES: ReadonlySet<string> = new Set([
  "nfs",
  "nfs4",
  "cifs",
  "smb3",
  "smbfs",
  "ceph",
  "glusterfs",
  "9p",
  "afs",
  "ncpfs",
  "davfs",
  "lustre",
  "gpfs",
  "ocfs2",
  "gfs2",
]);

/**
 * Whether a scan should skip a file system type, and why: `"pseudo"`,
 * `"network"`, or undefined for a local file system. FUSE file systems are
 * treated as network ones (sshfs, s3fs …) except `fuseblk`, which sits on a
 * local block device.
 */
export function skipFsType(fsType: string): "pseudo" | "network" | undefined {
  if (PSEUDO_FS_TYPES.has(fsType)) return "pseudo";
  if (NETWORK_FS_TYPES.has(fsType)) return "network";
  if (fsType.startsWith("fuse.") || fsType === "fuse") return "network";
  return undefined;
}

/** glibc's `makedev(major, minor)`. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) |
    ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** Undoes mountinfo's octal escapes (`\040` for a space …) into raw bytes. */
export function unescapeMountField(field: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < field.length; i++) {
    const b = field[i];
    if (
      b === 0x5c && i + 3 < field.length + 0 && isOctal(field[i + 1]) && isOctal(field[i + 2]) &&
      isOctal(field[i + 3])
    ) {
      out.push(((field[i + 1] - 0x30) << 6) | ((field[i + 2] - 0x30) << 3) | (field[i + 3] - 0x30));
      i += 3;
    } else {
      out.push(b);
    }
  }
  return new Uint8Array(out);
}

function isOctal(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x37;
}

/**
 * Parses the bytes of `/proc/self/mountinfo`. A line that does not parse is
 * left out.
 *
 * @example
 * ```ts
 * import { parseMountInfo } from "./mounts.ts";
 * const line = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n";
 * parseMountInfo(new TextEncoder().encode(line))[0].fsType; // "ext4"
 * ```
 */
export function parseMountInfo(bytes: Uint8Array): Mount[] {
  const mounts: Mount[] = [];
  const text = new TextDecoder("latin1");
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const line = bytes.subarray(start, end);
    start = end + 1;
    const fields = splitSpaces(line);
    const sep = fields.findIndex((f) => f.length === 1 && f[0] === 0x2d);
    if (fields.length < 10 || sep < 6 || fields.length < sep + 3) continue;
    const [major, minor] = text.decode(fields[2]).split(":").map(Number);
    if (!Number.isInteger(major) || !Number.isInteger(minor)) continue;
    mounts.push({
      id: Number(text.decode(fields[0])),
      dev: makedev(major, minor),
      root: unescapeMountField(fields[3]),
      mountPoint: unescapeMountField(fields[4]),
      fsType: text.decode(fields[sep + 1]),
      source: text.decode(unescapeMountField(fields[sep + 2])),
    });
  }
  return mounts;
}

function splitSpaces(line: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && line[i] === 0x20) i++;
    const s = i;
    while (i < line.length && line[i] !== 0x20) i++;
    if (i > s) out.push(line.subarray(s, i));
  }
  return out;
}

/** The mounts of this process's mount namespace. */
export function readMounts(): Mount[] {
  return parseMountInfo(Deno.readFileSync("/proc/self/mountinfo"));
}

/**
 * The file system type for each device number, from a mount list (the last
 * mount of a device wins, as the kernel shows the top of a stack last).
 */
export function fsTypeByDev(mounts: Mount[]): Map<bigint, string> {
  const map = new Map<bigint, string>();
  for (const m of mounts) map.set(m.dev, m.fsType);
  return map;
}
