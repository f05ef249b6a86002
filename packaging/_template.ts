/**
 * The packaging templates (`*.in`, `scriptlets/functions.sh`) and how they
 * are filled: every `@NAME@` must have a value, and every value must be used,
 * so a renamed placeholder fails the build instead of shipping `@NAME@`.
 *
 * @module
 */

const HERE = new URL(".", import.meta.url);

/** Reads a file of packaging/ by its path relative to that folder. */
export function readTemplate(path: string): Promise<string> {
  return Deno.readTextFile(new URL(path, HERE));
}

/** Replaces each `@NAME@` in `template` by `values[NAME]`. */
export function fillTemplate(
  name: string,
  template: string,
  values: Record<string, string>,
): string {
  const unused = new Set(Object.keys(values));
  const text = template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    if (!(key in values)) throw new Error(`Template ${name} has no value for ${whole}`);
    unused.delete(key);
    return values[key];
  });
  if (unused.size > 0) {
    throw new Error(`Template ${name} does not use: ${[...unused].join(", ")}`);
  }
  return text;
}

/**
 * The shared scriptlet functions, filled in, with a trailing newline so a
 * template line `@FUNCTIONS@` stays a line of its own.
 */
export async function scriptletFunctions(version: string): Promise<string> {
  const text = await readTemplate("scriptlets/functions.sh");
  return fillTemplate("scriptlets/functions.sh", text, { VERSION: version }).trimEnd();
}
