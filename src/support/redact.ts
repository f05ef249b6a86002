/**
 * Removing secrets from what amp shows or bundles: values of fields whose
 * name says they hold a secret (token, key, secret, password, credentials …)
 * and the user information of URLs (`https://user:pass@host` →
 * `https://REDACTED@host`), wherever a URL appears in a string.
 *
 * @module
 */

/** What replaces a secret. */
export const REDACTED = "REDACTED";

const SECRET_FIELD = /token|key|secret|passw|pwd|credential|auth|cookie|private/i;
// scheme://userinfo@ — userinfo has no "/", "@" or whitespace.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@"']+@/gi;

/** Whether a field of this name holds a secret. */
export function isSecretField(name: string): boolean {
  return SECRET_FIELD.test(name);
}

/**
 * Replaces the user information of every URL in `text`.
 *
 * @example
 * ```ts
 * import { redactUrl } from "./redact.ts";
 * redactUrl("https://amp:hunter2@mirror.example/clamav"); // "https://REDACTED@mirror.example/clamav"
 * ```
 */
export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, `$1${REDACTED}@`);
}

/**
 * A deep copy of a JSON value with secret fields replaced by `"REDACTED"`
 * (when they hold a value) and credentials removed from URLs in strings.
 *
 * @example
 * ```ts
 * import { redactSecrets } from "./redact.ts";
 * redactSecrets({ cloud: { url: "https://u:p@c.example", apiToken: "abc" } });
 * // { cloud: { url: "https://REDACTED@c.example", apiToken: "REDACTED" } }
 * ```
 */
export function redactSecrets(value: unknown): unknown {
  if (typeof value === "string") return redactUrl(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = isSecretField(key) && v !== null && v !== "" && typeof v !== "boolean"
        ? REDACTED
        : redactSecrets(v);
    }
    return out;
  }
  return value;
}

/**
 * Redacts a configuration file's text: as JSON when it parses (secret
 * fields and URLs), else line by line (`key = value` / `"key": value` whose
 * key names a secret, and URLs).
 */
export function redactConfigText(text: string): string {
  try {
    return JSON.stringify(redactSecrets(JSON.parse(text.replace(/^\uFEFF/, ""))), null, 2) + "\n";
  } catch {
    return text.split("\n").map((line) => {
      const m = /^(\s*"?([A-Za-z0-9_.-]+)"?\s*[:=]\s*)(.+)$/.exec(line);
      if (m && isSecretField(m[2])) return `${m[1]}${REDACTED}`;
      return redactUrl(line);
    }).join("\n");
  }
}
