/**
 * Reading the console's form posts: `application/x-www-form-urlencoded`
 * bodies with a size limit, and small typed accessors.
 *
 * @module
 */

import { readBodyAtMost } from "../read_body.ts";

/** Largest form body accepted by default (1 MiB); imports allow more. */
export const MAX_FORM_BYTES = 1024 * 1024;

/** A form the console cannot read (wrong type, too large). */
export class FormError extends Error {
  /** The HTTP status to answer with. */
  readonly status: number;

  /**
   * @param status 400, 413 or 415
   * @param message for people
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "FormError";
    this.status = status;
  }
}

/**
 * Reads a url-encoded form body of at most `maxBytes`.
 *
 * @throws {FormError} 415 for another content type, 413 when too large
 */
export async function readForm(
  request: Request,
  maxBytes = MAX_FORM_BYTES,
): Promise<URLSearchParams> {
  const type = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    await request.body?.cancel();
    throw new FormError(415, "Expected a form (application/x-www-form-urlencoded)");
  }
  const bytes = await readBodyAtMost(request, maxBytes);
  if (!bytes) throw new FormError(413, `The form is larger than ${maxBytes} bytes`);
  return new URLSearchParams(new TextDecoder().decode(bytes));
}

/** A field's value, trimmed; "" when absent. */
export function field(form: URLSearchParams, name: string): string {
  return (form.get(name) ?? "").trim();
}

/** A checkbox: true when present with any value. */
export function checked(form: URLSearchParams, name: string): boolean {
  return form.has(name);
}

/** A textarea's non-empty lines, trimmed. */
export function lines(form: URLSearchParams, name: string): string[] {
  return (form.get(name) ?? "").split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "");
}

/**
 * A positive whole number from a field, or undefined.
 *
 * @example
 * ```ts
 * import { positiveInt } from "./form.ts";
 * positiveInt("42"); // 42
 * positiveInt("4.2"); // undefined
 * ```
 */
export function positiveInt(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined || !/^\d{1,15}$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return n > 0 ? n : undefined;
}
