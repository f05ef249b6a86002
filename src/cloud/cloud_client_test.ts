import assert from "node:assert/strict";
import { cloudUrl, isLoopbackHost } from "./cloud_client.ts";

Deno.test("cloudUrl() takes https, and plain http only for this machine", () => {
  assert.equal(cloudUrl("https://cloud.example.org/amp").pathname, "/amp");
  for (
    const local of [
      "http://127.0.0.1:8080",
      "http://127.9.8.7",
      "http://[::1]:80",
      "http://localhost:1",
    ]
  ) {
    assert.equal(cloudUrl(local).protocol, "http:", local);
  }
  for (const remote of ["http://cloud.example.org", "http://10.0.0.1:8080", "http://[::2]"]) {
    assert.throws(() => cloudUrl(remote), /use https:\/\/ \(plain http is only for this machine/);
  }
  assert.throws(() => cloudUrl("ftp://cloud.example.org"), /expected https:\/\//);
  assert.throws(() => cloudUrl("https://cloud.example.org/?x=1"), /no query or fragment/);
});

Deno.test("isLoopbackHost() knows 127.0.0.0/8, ::1 and localhost only", () => {
  assert.equal(isLoopbackHost("LOCALHOST"), true);
  assert.equal(isLoopbackHost("[::1]"), true);
  assert.equal(isLoopbackHost("127.255.0.1"), true);
  assert.equal(isLoopbackHost("128.0.0.1"), false);
  assert.equal(isLoopbackHost("127.0.0.1.example.org"), false);
  assert.equal(isLoopbackHost("localhost.example.org"), false);
});
