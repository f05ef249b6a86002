import assert from "node:assert/strict";
import { safeNext, sameOrigin } from "./console.ts";
import { cookie, csrfValid, newToken, parseCookies, SessionStore, tokensEqual } from "./session.ts";

Deno.test("SessionStore: a session lives while used, ends when idle, too old, or destroyed", () => {
  let now = 1_000_000;
  const store = new SessionStore({ idleMs: 1000, maxAgeMs: 5000, now: () => now });
  const s = store.create();
  assert.notEqual(s.id, s.csrf);
  assert.equal(s.id.length, 43);
  assert.equal(store.get(s.id), s);
  now += 900;
  assert.equal(store.get(s.id), s, "used within the idle time");
  now += 1001;
  assert.equal(store.get(s.id), undefined, "idle too long");
  const t = store.create();
  for (let i = 0; i < 6; i++) {
    now += 900;
    store.get(t.id);
  }
  assert.equal(store.get(t.id), undefined, "older than maxAgeMs");
  const u = store.create();
  store.destroy(u.id);
  assert.equal(store.get(u.id), undefined);
  assert.equal(store.get(undefined), undefined);
  assert.equal(store.get("forged"), undefined);
});

Deno.test("SessionStore drops the least recently used session beyond its size", () => {
  const store = new SessionStore({ maxSessions: 2 });
  const a = store.create();
  const b = store.create();
  store.get(a.id);
  const c = store.create();
  assert.equal(store.size, 2);
  assert.equal(store.get(b.id), undefined);
  assert.ok(store.get(a.id));
  assert.ok(store.get(c.id));
});

Deno.test("csrfValid() accepts the session's token only", () => {
  const s = new SessionStore().create();
  assert.equal(csrfValid(s, s.csrf), true);
  assert.equal(csrfValid(s, null), false);
  assert.equal(csrfValid(s, ""), false);
  assert.equal(csrfValid(s, s.csrf.slice(1)), false);
  assert.equal(csrfValid(s, newToken()), false);
  assert.equal(tokensEqual("abc", "abc"), true);
  assert.equal(tokensEqual("abc", "abd"), false);
});

Deno.test("cookie() is HttpOnly and SameSite=Strict, Secure under TLS", () => {
  assert.equal(
    cookie("amp_console", "v", { secure: true }),
    "amp_console=v; Path=/console; HttpOnly; SameSite=Strict; Secure",
  );
  assert.equal(
    cookie("amp_console", "", { secure: false, maxAgeSeconds: 0 }),
    "amp_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
  );
});

Deno.test("parseCookies() reads a Cookie header, first value winning", () => {
  const c = parseCookies("a=1; amp_console=xyz==; b; amp_console=later");
  assert.equal(c.get("a"), "1");
  assert.equal(c.get("amp_console"), "xyz==");
  assert.equal(c.has("b"), false);
  assert.equal(parseCookies(null).size, 0);
});

Deno.test("safeNext() keeps console paths only; sameOrigin() refuses other sites", () => {
  assert.equal(safeNext("/console/events?type=x"), "/console/events?type=x");
  assert.equal(safeNext("https://evil.example/console/"), "/console/");
  assert.equal(safeNext("//evil.example"), "/console/");
  assert.equal(safeNext("/console/\\evil"), "/console/");
  assert.equal(safeNext(null), "/console/");
  const url = new URL("https://cloud.example:8443/console/x");
  const req = (origin?: string) =>
    new Request(url, { method: "POST", headers: origin ? { origin } : {} });
  assert.equal(sameOrigin(req("https://cloud.example:8443"), url.origin), true);
  assert.equal(sameOrigin(req("https://evil.example"), url.origin), false);
  assert.equal(sameOrigin(req(), url.origin), true);
});
