/**
 * What a command needs from its surroundings, replaced in tests.
 *
 * @module
 */

/** Output and exit of a command. */
export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => void;
}

/** The real console and `Deno.exit`. */
export const defaultIo: CommandIo = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
  exit: (code) => Deno.exit(code),
};
