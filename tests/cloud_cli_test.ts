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
