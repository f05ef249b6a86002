/**
 * amp's entry point: builds the CLI from src/cli/ and runs it.
 *
 * @module
 */

import { runCli } from "./src/cli/cli.ts";

if (import.meta.main) {
  await runCli(Deno.args);
}
