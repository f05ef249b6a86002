import assert from "node:assert/strict";
import {
  AMPAVFLT_ALLOW,
  AMPAVFLT_CMD,
  AMPAVFLT_COMMAND,
  AMPAVFLT_DENY,
  AMPAVFLT_EV,
  AMPAVFLT_EVENT,
  AMPAVFLT_EVF,
  AMPAVFLT_MASK,
  AMPAVFLT_MAX_TIMEOUT_MS,
  AMPAVFLT_VERSION,
  AVFLT_O,
  EFD,
  POLL,
  POLLFD,
  RLIMIT,
  RLIMIT_NOFILE,
} from "./ampavflt.ts";
import { hasCompiler, IN_CI, runC } from "../tests/fixtures/native.ts";

/** Outside CI a missing C compiler skips the layout test (with the reason printed); in CI it runs and fails. */
const noCompiler = !hasCompiler() && !IN_CI;
if (noCompiler) console.log("ampavflt_test: skipping layout test: no `cc` on PATH (CI != true)");

const HEADER = new URL("../kmod/ampavflt_uapi.h", import.meta.url).pathname;

/** Every TypeScript value, under the name the C program prints it with. */
function expected(): Map<string, number> {
  const m = new Map<string, number>();
  for (const [k, v] of Object.entries(AMPAVFLT_EV)) m.set(`AMPAVFLT_EV_${k}`, v);
  for (const [k, v] of Object.entries(AMPAVFLT_EVF)) m.set(`AMPAVFLT_EVF_${k}`, v);
  for (const [k, v] of Object.entries(AMPAVFLT_MASK)) m.set(`AMPAVFLT_MASK_${k}`, v);
  for (const [k, v] of Object.entries(AMPAVFLT_CMD)) m.set(`AMPAVFLT_CMD_${k}`, v);
  for (const [k, v] of Object.entries(AVFLT_O)) m.set(`O_${k}`, v);
  for (const [k, v] of Object.entries(POLL)) m.set(`POLL${k}`, v);
  for (const [k, v] of Object.entries(EFD)) m.set(`EFD_${k}`, v);
  m.set("AMPAVFLT_VERSION", AMPAVFLT_VERSION);
  m.set("AMPAVFLT_MAX_TIMEOUT_MS", AMPAVFLT_MAX_TIMEOUT_MS);
  m.set("RLIMIT_NOFILE", RLIMIT_NOFILE);
  m.set("AMPAVFLT_ALLOW", AMPAVFLT_ALLOW);
  m.set("AMPAVFLT_DENY", AMPAVFLT_DENY);
  for (const [field, value] of Object.entries(AMPAVFLT_EVENT)) m.set(`event.${field}`, value);
  for (const [field, value] of Object.entries(AMPAVFLT_COMMAND)) m.set(`command.${field}`, value);
  for (const [field, value] of Object.entries(POLLFD)) m.set(`pollfd.${field}`, value);
  for (const [field, value] of Object.entries(RLIMIT)) m.set(`rlimit.${field}`, value);
  return m;
}

/** Struct fields whose C name differs from the TypeScript key. */
const C_FIELD: Record<string, string> = { size_field: "size" };

Deno.test({
  name: "ffi/ampavflt.ts constants and struct layouts match kmod/ampavflt_uapi.h",
  ignore: noCompiler,
  async fn() {
    const names = [...expected().keys()];
    const constants = names.filter((n) => !n.includes("."));
    const layout = (struct: string, ctype: string, fields: Record<string, number>) =>
      Object.keys(fields).map((f) =>
        f === "size"
          ? `  SIZE("${struct}.size", ${ctype});`
          : `  OFF("${struct}.${f}", ${ctype}, ${C_FIELD[f] ?? f});`
      ).join("\n");
    const c = await runC(`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include "${HEADER}"
#define V(n) printf(#n " %lld\\n", (long long)(n))
#define OFF(name, t, f) printf(name " %zu\\n", offsetof(t, f))
#define SIZE(name, t) printf(name " %zu\\n", sizeof(t))
int main(void) {
${constants.map((n) => `  V(${n});`).join("\n")}
${layout("event", "struct ampavflt_event", AMPAVFLT_EVENT)}
${layout("command", "struct ampavflt_command", AMPAVFLT_COMMAND)}
${layout("pollfd", "struct pollfd", POLLFD)}
${layout("rlimit", "struct rlimit", RLIMIT)}
  return 0;
}
`);
    for (const [name, value] of expected()) {
      assert.equal(value, c.get(name), `${name}: TypeScript ${value}, C ${c.get(name)}`);
    }
    assert.equal(c.size, expected().size);
  },
});

Deno.test("AMPAVFLT_EVENT and AMPAVFLT_COMMAND sizes are multiples of 8 (explicit padding)", () => {
  assert.equal(AMPAVFLT_EVENT.size % 8, 0);
  assert.equal(AMPAVFLT_COMMAND.size % 8, 0);
  // The last field ends where the struct does: no hidden tail padding.
  assert.equal(AMPAVFLT_EVENT.lost + 8, AMPAVFLT_EVENT.size);
  assert.equal(AMPAVFLT_COMMAND.timeout_answer + 4, AMPAVFLT_COMMAND.size);
});
