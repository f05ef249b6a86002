import assert from "node:assert/strict";
import {
  AUDIT,
  AUDIT_ALWAYS,
  AUDIT_ARCH,
  AUDIT_BITMASK_SIZE,
  AUDIT_EQUAL,
  AUDIT_FIELD,
  AUDIT_FILTER,
  AUDIT_MAX_FIELDS,
  AUDIT_MAX_KEY_LEN,
  AUDIT_NLGRP,
  AUDIT_RULE_DATA,
  AUDIT_STATUS,
  AUDIT_STATUS_LAYOUT,
  NETLINK_AUDIT,
  SYS_CONNECT,
} from "./audit.ts";
import { hasCompiler, IN_CI, runC } from "../tests/fixtures/native.ts";

const noCompiler = !hasCompiler() && !IN_CI;
if (noCompiler) console.log("audit_test: skipping layout test: no `cc` on PATH (CI != true)");

Deno.test({
  name: "ffi/audit.ts constants and struct layouts match <linux/audit.h>",
  ignore: noCompiler,
  async fn() {
    const expected = new Map<string, number>();
    for (const [k, v] of Object.entries(AUDIT)) expected.set(`AUDIT_${k}`, v);
    for (const [k, v] of Object.entries(AUDIT_FILTER)) expected.set(`AUDIT_FILTER_${k}`, v);
    for (const [k, v] of Object.entries(AUDIT_FIELD)) expected.set(`AUDIT_${k}`, v);
    for (const [k, v] of Object.entries(AUDIT_STATUS)) expected.set(`AUDIT_STATUS_${k}`, v);
    for (const [k, v] of Object.entries(AUDIT_ARCH)) expected.set(`AUDIT_ARCH_${k}`, v);
    expected.set("AUDIT_NLGRP_READLOG", AUDIT_NLGRP.READLOG);
    expected.set("NETLINK_AUDIT", NETLINK_AUDIT);
    expected.set("AUDIT_ALWAYS", AUDIT_ALWAYS);
    expected.set("AUDIT_EQUAL", AUDIT_EQUAL);
    expected.set("AUDIT_BITMASK_SIZE", AUDIT_BITMASK_SIZE);
    expected.set("AUDIT_MAX_FIELDS", AUDIT_MAX_FIELDS);
    expected.set("AUDIT_MAX_KEY_LEN", AUDIT_MAX_KEY_LEN);
    expected.set("SYS_CONNECT_X86_64", SYS_CONNECT.X86_64);
    const lines = [...expected.keys()]
      .filter((n) => n !== "SYS_CONNECT_X86_64")
      .map((n) => `  V(${n});`);
    for (const [field, value] of Object.entries(AUDIT_STATUS_LAYOUT)) {
      expected.set(`audit_status.${field}`, value);
      lines.push(
        `  printf("audit_status.${field} %lu\\n", (unsigned long)${
          field === "size"
            ? "sizeof(struct audit_status)"
            : `offsetof(struct audit_status, ${field})`
        });`,
      );
    }
    for (const [field, value] of Object.entries(AUDIT_RULE_DATA)) {
      expected.set(`audit_rule_data.${field}`, value);
      lines.push(
        `  printf("audit_rule_data.${field} %lu\\n", (unsigned long)${
          field === "size"
            ? "sizeof(struct audit_rule_data)"
            : `offsetof(struct audit_rule_data, ${field})`
        });`,
      );
    }
    const c = await runC(`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <linux/netlink.h>
#include <linux/audit.h>
#define V(n) printf("%s %lu\\n", #n, (unsigned long)(n))
int main(void) {
${lines.join("\n")}
#ifdef __x86_64__
  printf("SYS_CONNECT_X86_64 %lu\\n", (unsigned long)SYS_connect);
#else
  printf("SYS_CONNECT_X86_64 %lu\\n", 42UL);
#endif
  return 0;
}
`);
    for (const [name, value] of expected) assert.equal(c.get(name), value, name);
  },
});
