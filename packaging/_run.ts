/**
 * Runs the packaging tools (dpkg-deb, rpmbuild) and turns a failure into an
 * error that carries the tool's own output.
 *
 * @module
 */

/** Runs `command args…`; throws with its stderr when it fails or is missing. */
export async function runTool(
  command: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(command, {
      args,
      cwd: options.cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot run ${command}: not installed (${toolPackage(command)})`, {
        cause: error,
      });
    }
    throw error;
  }
  const decoder = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `${command} failed (exit ${output.code}): ${
        decoder.decode(output.stderr).trim() || decoder.decode(output.stdout).trim()
      }`,
    );
  }
  return decoder.decode(output.stdout);
}

/** Where a missing tool comes from, for the error message. */
export function toolPackage(command: string): string {
  return command === "rpmbuild" ? "apt-get install rpm" : "apt-get install dpkg";
}
