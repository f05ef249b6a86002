import assert from "node:assert/strict";
import { checked, field, FormError, lines, positiveInt, readForm } from "./form.ts";

function post(body: string, type = "application/x-www-form-urlencoded"): Request {
  return new Request("http://localhost/console/x", {
    method: "POST",
    headers: { "content-type": type },
    body,
  });
}

Deno.test("readForm() reads a url-encoded body", async () => {
  const form = await readForm(
    post("name=Copy+of+%3CProtect%3E&box=on&text=a%0D%0A%0D%0A+b+%0A&n=7"),
  );
  assert.equal(field(form, "name"), "Copy of <Protect>");
  assert.equal(checked(form, "box"), true);
  assert.equal(checked(form, "other"), false);
  assert.deepEqual(lines(form, "text"), ["a", "b"]);
  assert.equal(field(form, "missing"), "");
  assert.equal(positiveInt(form.get("n")), 7);
});

Deno.test("readForm() refuses another content type and a body over the limit", async () => {
  await assert.rejects(
    readForm(post("{}", "application/json")),
    (e: Error) => e instanceof FormError && e.status === 415,
  );
  await assert.rejects(
    readForm(post("x=" + "a".repeat(200)), 100),
    (e: Error) => e instanceof FormError && e.status === 413,
  );
  const charset = await readForm(post("a=1", "application/x-www-form-urlencoded; charset=UTF-8"));
  assert.equal(charset.get("a"), "1");
});

Deno.test("positiveInt() accepts positive whole numbers only", () => {
  assert.equal(positiveInt("12"), 12);
  assert.equal(positiveInt(" 3 "), 3);
  assert.equal(positiveInt("0"), undefined);
  assert.equal(positiveInt("-1"), undefined);
  assert.equal(positiveInt("1.5"), undefined);
  assert.equal(positiveInt("1e3"), undefined);
  assert.equal(positiveInt(""), undefined);
  assert.equal(positiveInt(null), undefined);
  assert.equal(positiveInt("9".repeat(20)), undefined);
});
