import assert from "node:assert/strict";
import {
  ACK_PROC_EVENT,
  AF,
  AF_NETLINK,
  CLONE_NEWNET,
  CN_IDX_PROC,
  CN_MSG,
  CN_VAL_PROC,
  COMM_PROC_EVENT,
  COREDUMP_PROC_EVENT,
  CTA,
  CTA_IP,
  CTA_PROTO,
  CTA_TUPLE,
  EFD,
  EXEC_PROC_EVENT,
  EXIT_PROC_EVENT,
  FORK_PROC_EVENT,
  ID_PROC_EVENT,
  INET_DIAG_MSG,
  INET_DIAG_NOCOOKIE,
  INET_DIAG_REQ_V2,
  INET_DIAG_SOCKID,
  IPCTNL_MSG,
  IPPROTO,
  MSG_DONTWAIT,
  NETLINK_CONNECTOR,
  NETLINK_NETFILTER,
  NETLINK_SOCK_DIAG,
  NF_INET,
  NF_NETLINK_CONNTRACK,
  NFGENMSG,
  NFNETLINK_V0,
  NFNL_MSG,
  NFNL_SUBSYS,
  NFPROTO,
  NFT_CT_STATE,
  NFT_MSG,
  NFT_REG_1,
  NFTA_CHAIN,
  NFTA_CT,
  NFTA_EXPR,
  NFTA_HOOK,
  NFTA_LIST_ELEM,
  NFTA_RULE,
  NFTA_TABLE,
  NLA_F,
  NLATTR,
  NLM_F,
  NLM_F_DUMP,
  NLMSG,
  NLMSG_ALIGNTO,
  NLMSGERR,
  NLMSGHDR,
  O,
  POLL,
  POLLFD,
  PROC_CN_MCAST,
  PROC_EVENT,
  PROC_EVENT_HEADER,
  PTRACE_PROC_EVENT,
  SID_PROC_EVENT,
  SO,
  SOCK,
  SOCK_DIAG,
  SOCK_RAW,
  SOCKADDR_NL,
  SOL_SOCKET,
} from "./netlink.ts";
import { hasCompiler, IN_CI, runC } from "../tests/fixtures/native.ts";

/** Outside CI a missing C compiler skips the layout test (with the reason printed); in CI it runs and fails. */
const noCompiler = !hasCompiler() && !IN_CI;
if (noCompiler) console.log("netlink_test: skipping layout test: no `cc` on PATH (CI != true)");

/** Every TypeScript value, under the name the C program prints it with. */
function expected(): Map<string, number> {
  const m = new Map<string, number>();
  for (const [k, v] of Object.entries(PROC_EVENT)) m.set(`PROC_EVENT_${k}`, v);
  for (const [k, v] of Object.entries(PROC_CN_MCAST)) m.set(`PROC_CN_MCAST_${k}`, v);
  for (const [k, v] of Object.entries(NLMSG)) m.set(`NLMSG_${k}`, v);
  for (const [k, v] of Object.entries(SOCK)) m.set(`SOCK_${k}`, v);
  for (const [k, v] of Object.entries(SO)) m.set(`SO_${k}`, v);
  for (const [k, v] of Object.entries(POLL)) m.set(`POLL${k}`, v);
  for (const [k, v] of Object.entries(EFD)) m.set(`EFD_${k}`, v);
  m.set("AF_NETLINK", AF_NETLINK);
  m.set("NETLINK_CONNECTOR", NETLINK_CONNECTOR);
  m.set("CN_IDX_PROC", CN_IDX_PROC);
  m.set("CN_VAL_PROC", CN_VAL_PROC);
  m.set("SOL_SOCKET", SOL_SOCKET);
  m.set("MSG_DONTWAIT", MSG_DONTWAIT);
  m.set("NLMSG_ALIGNTO", NLMSG_ALIGNTO);
  const layouts = {
    sockaddr_nl: SOCKADDR_NL,
    nlmsghdr: NLMSGHDR,
    nlmsgerr: NLMSGERR,
    cn_msg: CN_MSG,
    proc_event: PROC_EVENT_HEADER,
    fork: FORK_PROC_EVENT,
    exec: EXEC_PROC_EVENT,
    id: ID_PROC_EVENT,
    sid: SID_PROC_EVENT,
    ptrace: PTRACE_PROC_EVENT,
    comm: COMM_PROC_EVENT,
    coredump: COREDUMP_PROC_EVENT,
    exit: EXIT_PROC_EVENT,
    pollfd: POLLFD,
  };
  for (const [struct, layout] of Object.entries(layouts)) {
    for (const [field, value] of Object.entries(layout)) m.set(`${struct}.${field}`, value);
  }
  return m;
}

/** How the C program computes each struct's offsets: the C type and a prefix of the member path. */
const C_STRUCTS: Record<string, { type: string; member: (field: string) => string }> = {
  sockaddr_nl: { type: "struct sockaddr_nl", member: (f) => f },
  nlmsghdr: { type: "struct nlmsghdr", member: (f) => f },
  nlmsgerr: { type: "struct nlmsgerr", member: (f) => f },
  cn_msg: {
    type: "struct cn_msg",
    member: (f) => f === "idx" || f === "val" ? `id.${f}` : f,
  },
  proc_event: { type: "struct proc_event", member: (f) => f },
  fork: { type: "struct fork_proc_event", member: (f) => f },
  exec: { type: "struct exec_proc_event", member: (f) => f },
  id: {
    type: "struct id_proc_event",
    member: (f) => f === "ruid" ? "r.ruid" : f === "euid" ? "e.euid" : f,
  },
  sid: { type: "struct sid_proc_event", member: (f) => f },
  ptrace: { type: "struct ptrace_proc_event", member: (f) => f },
  comm: { type: "struct comm_proc_event", member: (f) => f },
  coredump: { type: "struct coredump_proc_event", member: (f) => f },
  exit: { type: "struct exit_proc_event", member: (f) => f },
  pollfd: { type: "struct pollfd", member: (f) => f },
};

Deno.test({
  name: "ffi/netlink.ts constants and struct layouts match <linux/netlink.h>, <linux/cn_proc.h>",
  ignore: noCompiler,
  async fn() {
    const names = [...expected().keys()];
    const lines: string[] = [];
    for (const name of names) {
      const dot = name.indexOf(".");
      if (dot < 0) {
        lines.push(`  V(${name});`);
        continue;
      }
      const struct = C_STRUCTS[name.slice(0, dot)];
      const field = name.slice(dot + 1);
      const expr = field === "size"
        ? `sizeof(${struct.type})`
        : `offsetof(${struct.type}, ${struct.member(field)})`;
      lines.push(`  printf("%s %lu\\n", "${name}", (unsigned long)(${expr}));`);
    }
    const c = await runC(`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/connector.h>
#include <linux/cn_proc.h>
#define V(n) printf("%s %lu\\n", #n, (unsigned long)(n))
int main(void) {
  /* proc_event.what, cpu, timestamp_ns: the union follows at the header size. */
  printf("proc_event.event_data %lu\\n", (unsigned long)offsetof(struct proc_event, event_data));
  printf("ack.size %lu\\n", (unsigned long)sizeof(((struct proc_event *)0)->event_data.ack));
  printf("ack.err %lu\\n", (unsigned long)(offsetof(struct proc_event, event_data.ack.err) -
    offsetof(struct proc_event, event_data)));
${lines.join("\n")}
  return 0;
}
`);
    // The union members of event_data are anonymous struct types inside
    // struct proc_event; check the header size against where the union starts.
    assert.equal(c.get("proc_event.event_data"), PROC_EVENT_HEADER.size);
    for (const [name, value] of expected()) {
      if (name === "proc_event.size") continue; // sizeof includes the union
      assert.equal(c.get(name), value, name);
    }
    assert.equal(c.get("proc_event.size")! > PROC_EVENT_HEADER.size, true);
    // The ack member is an anonymous struct: measured inside struct proc_event.
    assert.equal(c.get("ack.size"), ACK_PROC_EVENT.size);
    assert.equal(c.get("ack.err"), ACK_PROC_EVENT.err);
  },
});

/** The netfilter additions, under the names the C headers give them. */
function expectedNetfilter(): Map<string, number> {
  const m = new Map<string, number>();
  const groups: [string, Record<string, number>][] = [
    ["NLM_F_", NLM_F],
    ["NLA_F_", { NESTED: NLA_F.NESTED, NET_BYTEORDER: NLA_F.NET_BYTEORDER }],
    ["NFNL_SUBSYS_", NFNL_SUBSYS],
    ["NFNL_MSG_", NFNL_MSG],
    ["IPCTNL_MSG_", IPCTNL_MSG],
    ["NF_NETLINK_CONNTRACK_", NF_NETLINK_CONNTRACK],
    ["CTA_", CTA],
    ["CTA_TUPLE_", CTA_TUPLE],
    ["CTA_IP_", CTA_IP],
    ["CTA_PROTO_", CTA_PROTO],
    ["NFPROTO_", NFPROTO],
    ["NF_INET_", NF_INET],
    ["NFT_MSG_", NFT_MSG],
    ["NFTA_TABLE_", NFTA_TABLE],
    ["NFTA_CHAIN_", NFTA_CHAIN],
    ["NFTA_HOOK_", NFTA_HOOK],
    ["NFTA_RULE_", NFTA_RULE],
    ["NFTA_EXPR_", NFTA_EXPR],
    ["NFTA_CT_", NFTA_CT],
    ["O_", O],
  ];
  for (const [prefix, values] of groups) {
    for (const [k, v] of Object.entries(values)) m.set(`${prefix}${k}`, v);
  }
  m.set("SOCK_RAW", SOCK_RAW);
  m.set("NETLINK_NETFILTER", NETLINK_NETFILTER);
  m.set("NFNETLINK_V0", NFNETLINK_V0);
  m.set("NFTA_LIST_ELEM", NFTA_LIST_ELEM);
  m.set("NFT_CT_STATE", NFT_CT_STATE);
  m.set("NFT_REG_1", NFT_REG_1);
  m.set("CLONE_NEWNET", CLONE_NEWNET);
  return m;
}

Deno.test({
  name:
    "ffi/netlink.ts netfilter constants and layouts match <linux/netfilter/nfnetlink*.h>, <linux/netfilter/nf_tables.h>",
  ignore: noCompiler,
  async fn() {
    const names = [...expectedNetfilter().keys()];
    const c = await runC(`
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_compat.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_tables.h>
#define V(n) printf("%s %lu\\n", #n, (unsigned long)(n))
int main(void) {
${names.map((n) => `  V(${n});`).join("\n")}
  /* NLA_TYPE_MASK is ~(flags) in an int: its low 16 bits are the mask of nla_type. */
  printf("NLA_TYPE_MASK %lu\\n", (unsigned long)(NLA_TYPE_MASK & 0xffff));
  printf("nlattr.size %lu\\n", (unsigned long)sizeof(struct nlattr));
  printf("nlattr.nla_len %lu\\n", (unsigned long)offsetof(struct nlattr, nla_len));
  printf("nlattr.nla_type %lu\\n", (unsigned long)offsetof(struct nlattr, nla_type));
  printf("nfgenmsg.size %lu\\n", (unsigned long)sizeof(struct nfgenmsg));
  printf("nfgenmsg.nfgen_family %lu\\n", (unsigned long)offsetof(struct nfgenmsg, nfgen_family));
  printf("nfgenmsg.version %lu\\n", (unsigned long)offsetof(struct nfgenmsg, version));
  printf("nfgenmsg.res_id %lu\\n", (unsigned long)offsetof(struct nfgenmsg, res_id));
  return 0;
}
`);
    for (const [name, value] of expectedNetfilter()) assert.equal(c.get(name), value, name);
    assert.equal(c.get("NLA_TYPE_MASK"), NLA_F.TYPE_MASK);
    for (const [field, value] of Object.entries(NLATTR)) {
      assert.equal(c.get(`nlattr.${field}`), value, `nlattr.${field}`);
    }
    for (const [field, value] of Object.entries(NFGENMSG)) {
      assert.equal(c.get(`nfgenmsg.${field}`), value, `nfgenmsg.${field}`);
    }
  },
});

Deno.test({
  name:
    "ffi/netlink.ts sock_diag constants and layouts match <linux/inet_diag.h>, <linux/sock_diag.h>",
  ignore: noCompiler,
  async fn() {
    const structs: [string, string, Record<string, number>][] = [
      ["inet_diag_sockid", "struct inet_diag_sockid", INET_DIAG_SOCKID],
      ["inet_diag_req_v2", "struct inet_diag_req_v2", INET_DIAG_REQ_V2],
      ["inet_diag_msg", "struct inet_diag_msg", INET_DIAG_MSG],
    ];
    const lines: string[] = [];
    for (const [name, type, layout] of structs) {
      for (const field of Object.keys(layout)) {
        const expr = field === "size" ? `sizeof(${type})` : `offsetof(${type}, ${field})`;
        lines.push(`  printf("%s %lu\\n", "${name}.${field}", (unsigned long)(${expr}));`);
      }
    }
    const c = await runC(`
#include <stdio.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#define V(n) printf("%s %lu\\n", #n, (unsigned long)(n))
int main(void) {
  V(NETLINK_SOCK_DIAG); V(SOCK_DIAG_BY_FAMILY); V(SOCK_DESTROY); V(AF_INET); V(AF_INET6);
  V(IPPROTO_TCP); V(IPPROTO_UDP); V(INET_DIAG_NOCOOKIE); V(NLM_F_DUMP);
${lines.join("\n")}
  return 0;
}
`);
    assert.equal(c.get("NETLINK_SOCK_DIAG"), NETLINK_SOCK_DIAG);
    assert.equal(c.get("SOCK_DIAG_BY_FAMILY"), SOCK_DIAG.BY_FAMILY);
    assert.equal(c.get("SOCK_DESTROY"), SOCK_DIAG.DESTROY);
    assert.equal(c.get("AF_INET"), AF.INET);
    assert.equal(c.get("AF_INET6"), AF.INET6);
    assert.equal(c.get("IPPROTO_TCP"), IPPROTO.TCP);
    assert.equal(c.get("IPPROTO_UDP"), IPPROTO.UDP);
    assert.equal(c.get("INET_DIAG_NOCOOKIE"), INET_DIAG_NOCOOKIE);
    assert.equal(c.get("NLM_F_DUMP"), NLM_F_DUMP);
    for (const [name, , layout] of structs) {
      for (const [field, value] of Object.entries(layout)) {
        assert.equal(c.get(`${name}.${field}`), value, `${name}.${field}`);
      }
    }
  },
});
