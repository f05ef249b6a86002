import assert from "node:assert/strict";
import { redactConfigText, redactSecrets, redactUrl } from "./redact.ts";

Deno.test("redactUrl() removes user information from every URL in a text", () => {
  assert.equal(
    redactUrl("got https://u:p@a.example/x and http://tok@b.example:8080/ ok"),
    "got https://REDACTED@a.example/x and http://REDACTED@b.example:8080/ ok",
  );
  assert.equal(redactUrl("mail me at root@example.com"), "mail me at root@example.com");
});

Deno.test("redactSecrets() replaces secret fields at any depth and keeps the rest", () => {
  assert.deepEqual(
    redactSecrets({
      a: { token: "t", apiKey: "k", clientSecret: "s", password: "p", keep: 5, name: "x" },
      list: [{ credentials: { user: "u" } }, "https://u:p@h/"],
      enabledAuth: true,
    }),
    {
      a: {
        token: "REDACTED",
        apiKey: "REDACTED",
        clientSecret: "REDACTED",
        password: "REDACTED",
        keep: 5,
        name: "x",
      },
      list: [{ credentials: "REDACTED" }, "https://REDACTED@h/"],
      enabledAuth: true,
    },
  );
});

Deno.test("redactConfigText() handles text that is not JSON line by line", () => {
  assert.equal(
    redactConfigText('password = hunter2\nurl = "https://a:b@h"\n{broken'),
    'password = REDACTED\nurl = "https://REDACTED@h"\n{broken',
  );
});
