import assert from "node:assert/strict";
import {
  EFD,
  FAN,
  FAN_ALLOW,
  FAN_DENY,
  FAN_EVENT_INFO_TYPE,
  FAN_INIT,
  FAN_MARK,
  FAN_NOFD,
  FAN_O,
  FANOTIFY_EVENT_INFO_FID,
  FANOTIFY_EVENT_INFO_HEADER,
  FANOTIFY_EVENT_METADATA,
  FANOTIFY_METADATA_VERSION,
  FANOTIFY_RESPONSE,
  FILE_HANDLE,
  POLL,
  POLLFD,
  STATFS,
} from "./fanotify.ts";
import { hasCompiler, IN_CI, runC } from "../tests/fixtures/native.ts";

/** Outside CI a missing C compiler skips the layout test (with the reason printed); in CI it runs and fails. */
const noCompiler = !hasCompiler() && !IN_CI;
if (noCompiler) console.log("fanotify_test: skipping layout test: no `cc` on PATH (CI != true)");

/**
 * Constants that the libc headers may not define yet (Debian 12's glibc
 * headers come with older kernel headers): compared only when the C program
 * prints them.
 */
const OPTIONAL: ReadonlySet<string> = new Set(["FAN_MARK_EVICTABLE"]);

/** Every TypeScript value, under the name the C program prints it with. */
function expected(): Map<string, number> {
  const m = new Map<string, number>();
  for (const [k, v] of Object.entries(FAN)) m.set(`FAN_${k}`, v);
  for (const [k, v] of Object.entries(FAN_INIT)) m.set(`FAN_${k}`, v);
  for (const [k, v] of Object.entries(FAN_MARK)) m.set(`FAN_MARK_${k}`, v);
  for (const [k, v] of Object.entries(FAN_EVENT_INFO_TYPE)) m.set(`FAN_EVENT_INFO_TYPE_${k}`, v);
  for (const [k, v] of Object.entries(FAN_O)) m.set(`O_${k}`, v);
  for (const [k, v] of Object.entries(POLL)) m.set(`POLL${k}`, v);
  for (const [k, v] of Object.entries(EFD)) m.set(`EFD_${k}`, v);
  m.set("FAN_ALLOW", FAN_ALLOW);
  m.set("FAN_DENY", FAN_DENY);
  m.set("FAN_NOFD", FAN_NOFD);
  m.set("FANOTIFY_METADATA_VERSION", FANOTIFY_METADATA_VERSION);
  const layouts = {
    meta: FANOTIFY_EVENT_METADATA,
    resp: FANOTIFY_RESPONSE,
    hdr: FANOTIFY_EVENT_INFO_HEADER,
    fid: FANOTIFY_EVENT_INFO_FID,
    fh: FILE_HANDLE,
    pollfd: POLLFD,
  };
  for (const [struct, layout] of Object.entries(layouts)) {
    for (const [field, value] of Object.entries(layout)) m.set(`${struct}.${field}`, value);
  }
  m.set("statfs.size", STATFS.size);
  m.set("statfs.f_fsid", STATFS.f_fsid);
  return m;
}

Deno.test({
  name: "ffi/fanotify.ts constants and struct layouts match <sys/fanotify.h>",
  ignore: noCompiler,
  async fn() {
    const names = [...expected().keys()];
    const constants = names.filter((n) => !n.includes("."));
    const print = (n: string) => OPTIONAL.has(n) ? `#ifdef ${n}\n  V(${n});\n#endif` : `  V(${n});`;
    const c = await runC(`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/vfs.h>
/* FAN_* names that this libc's headers may predate. */
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#endif
#define V(n) printf(#n " %lld\\n", (long long)(n))
#define OFF(name, t, f) printf(name " %zu\\n", offsetof(t, f))
#define SIZE(name, t) printf(name " %zu\\n", sizeof(t))
int main(void) {
${constants.map(print).join("\n")}
  SIZE("meta.size", struct fanotify_event_metadata);
  OFF("meta.event_len", struct fanotify_event_metadata, event_len);
  OFF("meta.vers", struct fanotify_event_metadata, vers);
  OFF("meta.metadata_len", struct fanotify_event_metadata, metadata_len);
  OFF("meta.mask", struct fanotify_event_metadata, mask);
  OFF("meta.fd", struct fanotify_event_metadata, fd);
  OFF("meta.pid", struct fanotify_event_metadata, pid);
  SIZE("resp.size", struct fanotify_response);
  OFF("resp.fd", struct fanotify_response, fd);
  OFF("resp.response", struct fanotify_response, response);
  SIZE("hdr.size", struct fanotify_event_info_header);
  OFF("hdr.info_type", struct fanotify_event_info_header, info_type);
  OFF("hdr.pad", struct fanotify_event_info_header, pad);
  OFF("hdr.len", struct fanotify_event_info_header, len);
  SIZE("fid.size", struct fanotify_event_info_fid);
  OFF("fid.fsid", struct fanotify_event_info_fid, fsid);
  OFF("fid.handle", struct fanotify_event_info_fid, handle);
  SIZE("fh.size", struct file_handle);
  OFF("fh.handle_bytes", struct file_handle, handle_bytes);
  OFF("fh.handle_type", struct file_handle, handle_type);
  OFF("fh.f_handle", struct file_handle, f_handle);
  SIZE("pollfd.size", struct pollfd);
  OFF("pollfd.fd", struct pollfd, fd);
  OFF("pollfd.events", struct pollfd, events);
  OFF("pollfd.revents", struct pollfd, revents);
  SIZE("statfs.size", struct statfs);
  OFF("statfs.f_fsid", struct statfs, f_fsid);
  return 0;
}
`);
    let skipped = 0;
    for (const [name, value] of expected()) {
      // Not defined by these headers: nothing to compare with (the kernel's own check is EINVAL).
      if (OPTIONAL.has(name) && !c.has(name)) {
        console.log(`fanotify_test: ${name} is not in these headers: not compared`);
        skipped++;
        continue;
      }
      assert.equal(value, c.get(name), `${name}: TypeScript ${value}, C ${c.get(name)}`);
    }
    assert.equal(c.size, expected().size - skipped);
  },
});

Deno.test("FAN_INIT.REPORT_DFID_NAME is REPORT_DIR_FID | REPORT_NAME", () => {
  assert.equal(FAN_INIT.REPORT_DFID_NAME, FAN_INIT.REPORT_DIR_FID | FAN_INIT.REPORT_NAME);
});
