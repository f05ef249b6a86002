import assert from "node:assert/strict";
import {
  fsTypeByDev,
  makedev,
  parseMountInfo,
  readMounts,
  skipFsType,
  unescapeMountField,
} from "./mounts.ts";

const enc = (s: string) => new TextEncoder().encode(s);

const MOUNTINFO = [
  "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro",
  "35 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
  "40 22 8:1 /srv/data /mnt/my\\040disk rw,relatime shared:1 master:2 propagate_from:3 - ext4 /dev/sda1 rw",
  "41 22 0:50 / /mnt/remote rw - nfs4 server:/export rw,vers=4.2",
  "42 22 0:51 / /home/u/sshfs rw,nosuid - fuse.sshfs user@host:/ rw,user_id=0",
  "43 22 259:65536 / /data rw - xfs /dev/nvme0n1p1 rw",
  "this line is not mountinfo",
  "44 22 8:2 / /nosep rw shared:3 ext4 /dev/sda2 rw",
  "45 22 x:y / /baddev rw - ext4 /dev/sda3 rw",
  "",
].join("\n");

Deno.test("parseMountInfo() parses the fields around the '-' separator, with or without optional fields", () => {
  const mounts = parseMountInfo(enc(MOUNTINFO));
  assert.deepEqual(mounts.map((m) => m.id), [22, 35, 40, 41, 42, 43]);
  const [root, proc, bind, nfs, sshfs, xfs] = mounts;
  assert.deepEqual(root, {
    id: 22,
    dev: 2049n,
    root: enc("/"),
    mountPoint: enc("/"),
    fsType: "ext4",
    source: "/dev/sda1",
  });
  assert.equal(proc.fsType, "proc");
  assert.equal(proc.dev, 5n);
  assert.equal(nfs.fsType, "nfs4");
  assert.equal(nfs.source, "server:/export");
  assert.deepEqual(nfs.mountPoint, enc("/mnt/remote"));
  assert.equal(sshfs.fsType, "fuse.sshfs");
  assert.equal(sshfs.source, "user@host:/");
  assert.equal(xfs.dev, makedev(259, 65536));
  // The bind mount: a subtree root, three optional fields, an escaped space.
  assert.deepEqual(bind.root, enc("/srv/data"));
  assert.deepEqual(bind.mountPoint, enc("/mnt/my disk"));
  assert.equal(bind.fsType, "ext4");
  assert.equal(bind.source, "/dev/sda1");
});

Deno.test("parseMountInfo() keeps non-UTF-8 bytes of a mount point and handles no final newline", () => {
  const line = new Uint8Array([
    ...enc("50 22 8:3 / /mnt/x"),
    0xff,
    ...enc("\\012y rw - ext4 /dev/sdb1 rw"),
  ]);
  const [m] = parseMountInfo(line);
  assert.deepEqual(m.mountPoint, new Uint8Array([...enc("/mnt/x"), 0xff, 0x0a, 0x79]));
  assert.equal(m.fsType, "ext4");
});

Deno.test("unescapeMountField() undoes octal escapes and leaves others alone", () => {
  assert.deepEqual(unescapeMountField(enc("a\\040b\\011c\\134d")), enc("a b\tc\\d"));
  assert.deepEqual(unescapeMountField(enc("\\377")), new Uint8Array([0xff]));
  // Not three octal digits: kept as they are.
  assert.deepEqual(unescapeMountField(enc("a\\09b")), enc("a\\09b"));
  assert.deepEqual(unescapeMountField(enc("end\\04")), enc("end\\04"));
  assert.deepEqual(unescapeMountField(enc("end\\040")), enc("end "));
});

Deno.test("makedev() matches glibc for small and large major and minor numbers", () => {
  assert.equal(makedev(8, 1), 2049n);
  assert.equal(makedev(0, 21), 21n);
  // Values from Python's os.makedev (glibc gnu_dev_makedev).
  assert.equal(makedev(259, 65536), 268501760n);
  assert.equal(makedev(0x12345, 0x6789ab), 0x12006789345abn);
});

Deno.test("skipFsType() classifies pseudo, network and FUSE file systems; fuseblk and ext4 are local", () => {
  assert.equal(skipFsType("proc"), "pseudo");
  assert.equal(skipFsType("sysfs"), "pseudo");
  assert.equal(skipFsType("cgroup2"), "pseudo");
  assert.equal(skipFsType("nfs4"), "network");
  assert.equal(skipFsType("cifs"), "network");
  assert.equal(skipFsType("fuse.sshfs"), "network");
  assert.equal(skipFsType("fuse"), "network");
  assert.equal(skipFsType("fuseblk"), undefined);
  assert.equal(skipFsType("ext4"), undefined);
  assert.equal(skipFsType("tmpfs"), undefined);
});

Deno.test("fsTypeByDev() lets the last mount of a device win", () => {
  const text = [
    "1 0 8:1 / / rw - ext4 /dev/sda1 rw",
    "2 1 8:1 / /over rw - overlay overlay rw",
    "3 1 0:9 / /proc rw - proc proc rw",
  ].join("\n");
  const map = fsTypeByDev(parseMountInfo(enc(text)));
  assert.equal(map.get(2049n), "overlay");
  assert.equal(map.get(9n), "proc");
  assert.equal(map.size, 2);
});

Deno.test("readMounts() finds the proc mount of /proc by its device number", () => {
  const dev = BigInt(Deno.statSync("/proc").dev);
  const mounts = readMounts();
  assert.ok(mounts.length > 0);
  assert.equal(fsTypeByDev(mounts).get(dev), "proc");
});
