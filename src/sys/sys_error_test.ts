import assert from "node:assert/strict";
import { ERRNO_NAMES, SysError } from "./sys_error.ts";

Deno.test("SysError names the errno and puts the detail before the colon", () => {
  const e = new SysError("openat", 13, "/root/secret", "Permission denied");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "SysError");
  assert.equal(e.errno, 13);
  assert.equal(e.code, "EACCES");
  assert.equal(e.syscall, "openat");
  assert.equal(e.message, "openat /root/secret: EACCES (Permission denied)");
});

Deno.test("SysError without detail or description, and with an unknown errno", () => {
  assert.equal(new SysError("fstat", 9).message, "fstat: EBADF");
  const unknown = new SysError("ioctl", 9999);
  assert.equal(unknown.code, "errno 9999");
  assert.equal(unknown.message, "ioctl: errno 9999");
});

Deno.test("ERRNO_NAMES uses Linux numbering for the values amp reacts to", () => {
  assert.equal(ERRNO_NAMES[1], "EPERM");
  assert.equal(ERRNO_NAMES[2], "ENOENT");
  assert.equal(ERRNO_NAMES[40], "ELOOP");
  assert.equal(ERRNO_NAMES[95], "EOPNOTSUPP");
});
