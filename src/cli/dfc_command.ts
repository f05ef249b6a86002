/**
 * `amp dfc check ADDRESS…`: which of the policy's DFC lists hold each
 * address. Exit status as grep's opposite, like `amp scan`: 0 none listed,
 * 1 at least one listed, 2 a usage, policy or address error.
 *
 * @module
 */

import { Command } from "commander";
import { loadIpLists } from "../dfc/load_ip_lists.ts";
import { ConfigError, loadPolicy } from "../policy/load_policy.ts";
import { type CommandIo, defaultIo } from "./command_io.ts";
import { UsageError } from "./usage_error.ts";

/** Builds `amp dfc` with its `check` subcommand. */
export function makeDfcCommand(io: CommandIo = defaultIo): Command {
  const check = new Command("check")
    .summary("say which DFC lists hold each address")
    .description(
      "Load the IP reputation lists named in the policy (dfc.lists) and say, for\n" +
        "each address, which of them hold it. Malformed list lines are counted and\n" +
        "shown, never fatal.",
    )
    .argument("<address...>", "IPv4 or IPv6 addresses")
    .option("--json", "one JSON object: addresses with their lists, and the lists loaded")
    .option("--policy <file>", "policy file (default: <root>/etc/amp/policy.json)")
    .option("--root <dir>", "host root for amp's files (policy, list files)", "/")
    .addHelpText(
      "after",
      `
Policy example:
  "dfc": { "lists": [
    { "name": "spamhaus-drop", "file": "/etc/amp/lists/drop.txt" },
    { "name": "blocklist", "file": "/etc/amp/lists/ips.csv", "format": "csv", "column": "ip" }
  ] }

Exit status: 0 no address listed, 1 at least one listed, 2 errors.`,
    )
    .exitOverride()
    .action(
      async (addresses: string[], opts: { json?: boolean; policy?: string; root: string }) => {
        let policy;
        try {
          policy = (await loadPolicy({ root: opts.root, file: opts.policy })).policy;
        } catch (error) {
          if (error instanceof ConfigError) throw new UsageError(error.message, { cause: error });
          throw error;
        }
        const { matcher, lists } = await loadIpLists(policy.dfc.lists, opts.root);
        const results: Array<{ address: string; lists: readonly string[] }> = [];
        for (const address of addresses) {
          try {
            results.push({ address, lists: matcher.lookup(address) });
          } catch {
            throw new UsageError(`Not an IPv4 or IPv6 address: ${address}`);
          }
        }
        const listed = results.some((r) => r.lists.length > 0);
        if (opts.json) {
          io.stdout(JSON.stringify({ addresses: results, lists }, null, 2));
          return io.exit(listed ? 1 : 0);
        }
        if (lists.length === 0) io.stderr("amp: the policy names no DFC lists (dfc.lists)");
        for (const l of lists) {
          if (l.error) io.stderr(`amp: list ${l.name}: cannot read ${l.file}: ${l.error}`);
          else if (l.malformed > 0) {
            io.stderr(
              `amp: list ${l.name}: ${l.malformed} malformed line(s), e.g. line ${
                l.problems[0]?.line
              }: ${l.problems[0]?.text}`,
            );
          }
        }
        for (const r of results) {
          io.stdout(
            r.lists.length > 0
              ? `${r.address}: listed in ${r.lists.join(", ")}`
              : `${r.address}: not listed`,
          );
        }
        io.exit(listed ? 1 : 0);
      },
    );
  return new Command("dfc")
    .summary("Device Flow Correlation: IP reputation lists")
    .description("Device Flow Correlation tools. Flow monitoring in the daemon comes later.")
    .addCommand(check);
}
