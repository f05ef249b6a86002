/**
 * `amp cloud serve` and `amp cloud register` as an administrator runs them:
 * real processes, HTTPS on loopback with a test CA, tokens made on first
 * start, a clean stop on SIGTERM.
 */

import assert from "node:assert/strict";
import { amp } from "./amp_cli.ts";
import { makeTestCa } from "./fixtures/cloud_tls.ts";
import { waitFor } from "./fixtures/daemon.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test({
  name:
    "amp cloud serve makes its tokens on first start, serves HTTPS, and amp cloud register uses it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const ca = await makeTestCa();
    const state = await Deno.makeTempDir({ prefix: "amp-cloud-cli-" });
    const root = await Deno.makeTempDir({ prefix: "amp-cloud-root-" });
    const port = freePort();
    const server = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        "--no-check",
        MAIN,
        "cloud",
        "serve",
        "--listen",
        `127.0.0.1:${port}`,
        "--state",
        state,
        "--tls-cert",
        ca.certFile,
        "--tls-key",
        ca.keyFile,
        "--heartbeat",
        "5",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const output = Promise.all([
      new Response(server.stdout).text(),
      new Response(server.stderr).text(),
    ]);
    const client = Deno.createHttpClient({ caCerts: [ca.caPem] });
    try {
      const health = await waitFor("the cloud to listen", async () => {
        try {
          const r = await fetch(`https://localhost:${port}/health`, { client });
          return await r.json() as { ok: boolean; protocol: number };
        } catch {
          return undefined;
        }
      }, 20_000);
      assert.deepEqual(health, { ok: true, protocol: 1 });
      for (const name of ["admin.token", "registration.token", "cloud.db"]) {
        assert.equal((await Deno.stat(`${state}/${name}`)).mode! & 0o777, 0o600, name);
      }
      const admin = (await Deno.readTextFile(`${state}/admin.token`)).trim();
      const token = (await Deno.readTextFile(`${state}/registration.token`)).trim();
      assert.match(admin, /^ampadm_/);
      assert.match(token, /^ampreg_/);

      await Deno.mkdir(`${root}/etc/amp`, { recursive: true });
      await Deno.writeTextFile(`${root}/etc/amp/ca.pem`, ca.caPem);
      await Deno.writeTextFile(
        `${root}/etc/amp/amp.json`,
        JSON.stringify({ cloud: { url: `https://localhost:${port}`, ca: "/etc/amp/ca.pem" } }),
      );
      const refused = await amp([
        "cloud",
        "register",
        "--token",
        "ampreg_not_a_real_token_0000",
        "--root",
        root,
      ]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /cannot register: .*401/);
      const ok = await amp(["cloud", "register", "--token", token, "--root", root]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(
        ok.stdout,
        /^Registered with https:\/\/localhost:\d+ as computer #1 \(GUID [0-9a-f-]{36}\)\.$/m,
      );
      const identity = JSON.parse(
        await Deno.readTextFile(`${root}/var/lib/amp/cloud_identity.json`),
      );
      assert.equal(identity.computerId, 1);
      assert.equal(identity.heartbeatSeconds, 5);

      const computers = await fetch(`https://localhost:${port}/admin/v1/computers`, {
        headers: { authorization: `Bearer ${admin}` },
        client,
      });
      const body = await computers.json() as { computers: Array<{ guid: string }> };
      assert.deepEqual(body.computers.map((c) => c.guid), [identity.guid]);

      // The token from a file, or from standard input, rather than on the command line (ps).
      const tokenFile = `${root}/registration.token`;
      await Deno.writeTextFile(tokenFile, `${token}\n`, { mode: 0o600 });
      const fromFile = await amp(["cloud", "register", "--token-file", tokenFile, "--root", root]);
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.match(
        fromFile.stdout,
        /^Registered again with https:\/\/localhost:\d+ as computer #1 /m,
      );
      const piped = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--quiet", "--no-check", MAIN, "cloud", "register"]
          .concat(["--token-file", "-", "--root", root]),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).spawn();
      const writer = piped.stdin.getWriter();
      await writer.write(new TextEncoder().encode(token));
      await writer.close();
      const fromStdin = await piped.output();
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      assert.equal(fromStdin.code, 0, decode(fromStdin.stderr));
      assert.match(decode(fromStdin.stdout), /^Registered again .* as computer #1 /m);
      const neither = await amp(["cloud", "register", "--root", root]);
      assert.equal(neither.code, 2);
      assert.match(neither.stderr, /--token or --token-file/);
      const empty = await amp(["cloud", "register", "--token-file", "/dev/null", "--root", root]);
      assert.equal(empty.code, 2);
      assert.match(empty.stderr, /No registration token in \/dev\/null/);

      const later = await amp(["cloud", "register", "--token", token, "--later", "--root", root]);
      assert.equal(later.code, 0);
      assert.equal(
        (await Deno.readTextFile(`${root}/etc/amp/cloud_registration.token`)).trim(),
        token,
      );
    } finally {
      client.close();
      try {
        server.kill("SIGTERM");
      } catch {
        // already gone
      }
      const status = await server.status;
      const [, stderr] = await output;
      await ca.remove();
      await Deno.remove(state, { recursive: true });
      await Deno.remove(root, { recursive: true });
      assert.equal(status.code, 0, stderr);
      assert.match(stderr, /Created built-in policy "Audit Policy for Linux"/);
      assert.match(stderr, /amp cloud stopped/);
    }
  },
});

Deno.test("amp cloud serve refuses to serve without TLS unless told (exit 2)", async () => {
  const run = await amp(["cloud", "serve", "--listen", "127.0.0.1:0", "--state", "/nonexistent"]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /HTTPS needs --tls-cert and --tls-key/);
});

Deno.test("amp cloud serve refuses a --public-url that is not an http(s) origin (exit 2)", async () => {
  for (const url of ["ftp://cloud.example.org", "https://cloud.example.org/amp"]) {
    const run = await amp([
      "cloud",
      "serve",
      "--listen",
      "127.0.0.1:0",
      "--state",
      "/nonexistent",
      "--plain-http",
      "--public-url",
      url,
    ]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /Invalid --public-url/);
  }
});
