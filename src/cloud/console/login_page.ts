/**
 * The login form: the admin token (the cloud's `admin.token`), posted with a
 * double-submit CSRF token (a cookie and a hidden field that must match).
 *
 * @module
 */

import { html } from "./html.ts";
import { CONSOLE_PREFIX, page } from "./layout.ts";
import { cookie, newToken } from "./session.ts";

/** The cookie of the login form's CSRF token. */
export const LOGIN_COOKIE = "amp_console_login";

/** Options of {@linkcode loginPage}. */
export interface LoginPageOptions {
  secure: boolean;
  /** Where to go after logging in. */
  next?: string;
  /** Why the last attempt failed. */
  error?: string;
  status?: number;
}

/** GET /console/login: the form, with a fresh CSRF cookie. */
export function loginPage(options: LoginPageOptions): Response {
  const token = newToken();
  return page({
    title: "Log in",
    status: options.status,
    headers: {
      "set-cookie": cookie(LOGIN_COOKIE, token, { secure: options.secure, maxAgeSeconds: 3600 }),
    },
    body: html`<form method="post" action="${CONSOLE_PREFIX}/login" class="login">
<input type="hidden" name="csrf" value="${token}">
<input type="hidden" name="next" value="${options.next ?? `${CONSOLE_PREFIX}/`}">
${
      options.error
        ? html`<p class="error-text" role="alert" id="login-error">${options.error}</p>`
        : ""
    }
<input type="text" name="username" value="admin" autocomplete="username" hidden>
<div class="field"><label for="token">Admin token</label>
<span class="hint" id="token-hint">The content of <code>admin.token</code> in the cloud's state directory.</span>
<input type="password" id="token" name="token" size="50" required autocomplete="current-password" autofocus aria-describedby="token-hint${
      options.error ? " login-error" : ""
    }"${
      options.error
        ? html`
          aria-invalid="true"
        `
        : ""
    }></div>
<button type="submit">Log in</button>
</form>`,
  });
}
