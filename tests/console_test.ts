/**
 * The web console end to end, in a real headless Chromium (Debian's
 * chromium driven by playwright-core) against a real `amp cloud serve` on
 * loopback HTTPS (test CA) with SQLite:
 *
 * - with a connector harness (a real CloudLink, events.db and quarantine):
 *   login, cookies and CSRF; the Protect policy assigned and edited (zod's
 *   messages shown beside the fields, then saved) and the change applied by
 *   the connector; a policy copied and assigned; a custom detection added
 *   and imported, convicting a file at its lookup; the allow list; events
 *   filtered, shown and exported; an IP list kept by the cloud and fetched by
 *   `amp update`'s downloader with the connector's key; a quarantined file
 *   restored from the console at the next heartbeat;
 * - with the real `amp daemon` (root; CI): the same policy, copy, detection,
 *   event filter and restore paths through fanotify, ClamAV and the
 *   daemon's own quarantine.
 *
 * Screenshots of each main page are saved (the directory is printed).
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { O } from "../ffi/libc.ts";
import { loadIdentity } from "../src/cloud/connector_identity.ts";
import { startCloudServer } from "../src/cloud/server/cloud_server.ts";
import type { StatusReport } from "../src/daemon/status_report.ts";
import { IpListSourceSchema } from "../src/policy/schema.ts";
import { bytePath } from "../src/sys/byte_path.ts";
import { AT, close, fstat, openat } from "../src/sys/libc.ts";
import { downloadIpLists } from "../src/update/ip_list_download.ts";
import { startTestConnector, type TestConnector } from "./fixtures/cloud_connector.ts";
import { startTestCloud, type TestCloud } from "./fixtures/cloud_server.ts";
import {
  browserSkip,
  flash,
  login,
  openBrowser,
  SCREENSHOT_DIR,
  spkiHash,
  type TestBrowser,
} from "./fixtures/console_browser.ts";
import { daemonSkip, events, startDaemon, type TestDaemon, waitFor } from "./fixtures/daemon.ts";
import { sha256 } from "./fixtures/samples.ts";

const noBrowser = browserSkip("console_test") !== undefined;
const noDaemon = noBrowser || daemonSkip("console_test (daemon)") !== undefined;

const shots: string[] = [];
async function shot(b: TestBrowser, name: string): Promise<void> {
  shots.push(await b.screenshot(name));
}

/** Times each page load in the browser (ms, navigation to load event). */
const renderTimes = new Map<string, number>();
async function visit(b: TestBrowser, url: string, name: string): Promise<void> {
  const started = performance.now();
  const response = await b.page.goto(url);
  renderTimes.set(name, performance.now() - started);
  assert.equal(response?.status(), 200, `${url}: ${response?.status()}`);
}

async function withBrowserCloud(
  fn: (cloud: TestCloud, b: TestBrowser) => Promise<void>,
): Promise<void> {
  const cloud = await startTestCloud({ backend: "sqlite", heartbeatSeconds: 1 });
  let browser: TestBrowser | undefined;
  try {
    browser = await openBrowser({ trustSpki: await spkiHash(cloud.ca.certFile) });
    await fn(cloud, browser);
  } finally {
    await browser?.close();
    await cloud.close();
  }
}

/** Quarantines a file under the harness's root, as a conviction would. */
async function quarantineFile(c: TestConnector, name: string, content: string) {
  const path = `${c.root}/files/${name}`;
  await Deno.writeTextFile(path, content);
  const fd = openat(AT.FDCWD, bytePath(path), O.RDONLY | O.CLOEXEC);
  try {
    const record = await c.quarantine.quarantine(
      { fd, path: bytePath(path), stat: fstat(fd) },
      { name: "Amp.Test.Console", engine: "clamav", sha256: sha256(content) },
    );
    return { path, record };
  } finally {
    close(fd);
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test({
  name:
    "console behind a TLS proxy (--plain-http --public-url https://…): forms pass, cookies Secure",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const state = await Deno.makeTempDir({ prefix: "amp-console-proxy-" });
    const log: string[] = [];
    const sink = (level: string) => (m: string) => log.push(`${level}: ${m}`);
    const server = await startCloudServer({
      listen: "127.0.0.1:0",
      stateDir: state,
      plainHttp: true,
      publicUrl: "https://cloud.example.org",
      log: {
        error: sink("error"),
        warning: sink("warning"),
        notice: sink("notice"),
        info: sink("info"),
      },
    });
    try {
      const adminToken = (await Deno.readTextFile(`${state}/admin.token`)).trim();
      // What the proxy passes on: the browser's https Origin, over plain HTTP.
      const base = server.url;
      const form = await fetch(`${base}/console/login`);
      await form.body?.cancel();
      const [loginCookie] = form.headers.getSetCookie();
      assert.match(loginCookie, /; Secure$/, "the login cookie is Secure: browsers use https");
      const csrf = /^amp_console_login=([^;]+)/.exec(loginCookie)![1];
      const login = (origin: string, token: string) =>
        fetch(`${base}/console/login`, {
          method: "POST",
          redirect: "manual",
          headers: {
            origin,
            cookie: `amp_console_login=${csrf}`,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: new URLSearchParams({ csrf, token, next: "/console/" }),
        });
      const wrong = await login("https://cloud.example.org", "ampadm_wrong_token_0000000000");
      await wrong.body?.cancel();
      assert.equal(wrong.status, 401);
      // The log names the client's address, not what the request says its host is.
      assert.ok(
        log.includes("warning: Console: failed login from 127.0.0.1"),
        log.join("\n"),
      );
      const ok = await login("https://cloud.example.org", adminToken);
      await ok.body?.cancel();
      assert.equal(ok.status, 303);
      const session = ok.headers.getSetCookie().find((c) => c.startsWith("amp_console="));
      assert.match(session ?? "", /HttpOnly; SameSite=Strict; Secure$/);
      // The server's own origin is not the console's: a form from it is refused.
      const other = await login(base, adminToken);
      await other.body?.cancel();
      assert.equal(other.status, 403);
    } finally {
      await server.close();
      await Deno.remove(state, { recursive: true });
    }
  },
});

Deno.test({
  name: "console: login, policies, detections, events, IP lists and restore, with a connector",
  ignore: noBrowser,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withBrowserCloud(async (cloud, b) => {
      const { page } = b;
      const base = cloud.url;
      const connector = await startTestConnector({
        cloud: { url: cloud.url },
        caPem: cloud.ca.caPem,
        token: cloud.registrationToken,
      });
      try {
        const computer = await waitFor("the connector's registration", async () => {
          const id = (await loadIdentity(connector.root))?.computerId;
          return id !== undefined && connector.link.status === "Connected" &&
              connector.policy().serial === 1
            ? id
            : undefined;
        }, 15_000);
        const hostname = (await cloud.store().getComputer(computer)).hostname;

        // ---- login: a wrong token is refused; the cookie is HttpOnly, Secure, SameSite=Strict.
        await page.goto(`${base}/console/computers`);
        assert.match(page.url(), /\/console\/login\?next=%2Fconsole%2Fcomputers$/);
        await shot(b, "01-login");
        await page.getByLabel("Admin token").fill("ampadm_wrong_token_0000000000");
        await page.getByRole("button", { name: "Log in" }).click();
        assert.equal(await page.getByRole("alert").textContent(), "Wrong admin token.");
        await login(page, base, cloud.adminToken);
        const session = (await b.context.cookies()).find((c) => c.name === "amp_console");
        assert.ok(session, "no session cookie");
        assert.equal(session.httpOnly, true);
        assert.equal(session.secure, true);
        assert.equal(session.sameSite, "Strict");
        await shot(b, "02-dashboard");

        // ---- computers: the connector is listed as connected.
        await visit(b, `${base}/console/computers`, "computers");
        const row = page.getByRole("row", { name: new RegExp(hostname) });
        assert.match(await row.textContent() ?? "", /Connected/);
        await shot(b, "03-computers");

        // ---- assign Protect on the computer's page; the connector applies it.
        await page.getByRole("link", { name: hostname }).click();
        await page.getByLabel("Policy", { exact: true }).selectOption({
          label: "Protect Policy for Linux (#2)",
        });
        await page.getByRole("button", { name: "Assign policy" }).click();
        assert.match(await flash(page), /Assigned "Protect Policy for Linux"/);
        await waitFor("Protect on the connector", () => connector.policy().id === 2 || undefined);

        // ---- edit Protect: the schema's message beside the field, then a good value.
        await visit(b, `${base}/console/policies/2`, "policy");
        await page.getByLabel("Maximum file size").fill("lots");
        await page.getByLabel("Maximum archive depth").fill("0");
        await page.getByRole("button", { name: "Save policy" }).click();
        assert.match(
          await page.locator("#p-scan-maxFileSize-error").textContent() ?? "",
          /Invalid size "lots": expected a positive number of bytes/,
        );
        assert.match(
          await page.locator("#p-scan-maxRecursion-error").textContent() ?? "",
          /Too small: expected number to be >0/,
        );
        assert.equal(
          await page.getByLabel("Maximum file size").getAttribute("aria-invalid"),
          "true",
        );
        await shot(b, "05-policy-validation");
        assert.equal((await cloud.store().getPolicy(2)).serial, 1, "saved despite errors");
        await page.getByLabel("Maximum file size").fill("6MB");
        await page.getByLabel("Maximum archive depth").fill("12");
        await page.getByRole("checkbox", { name: "Scan files when executed" }).uncheck();
        const saved = performance.now();
        await page.getByRole("button", { name: "Save policy" }).click();
        assert.match(await flash(page), /Saved "Protect Policy for Linux" \(serial 2\)/);
        await waitFor("the edited Protect policy on the connector", () => {
          const p = connector.policy();
          return p.serial === 2 && p.scan.maxFileSize === 6 * 1024 * 1024 ? p : undefined;
        }, 5_000);
        const reached = performance.now() - saved;
        assert.equal(connector.policy().scan.maxRecursion, 12);
        assert.equal(connector.policy().monitor.onExecute, false);
        assert.ok(reached < 3_000, `the policy took ${reached.toFixed(0)} ms (heartbeat 1 s)`);
        await shot(b, "06-policy-saved");

        // ---- copy Protect and assign the copy.
        await visit(b, `${base}/console/policies`, "policies");
        await shot(b, "04-policies");
        await page.getByRole("button", { name: "Copy Protect Policy for Linux" }).click();
        assert.equal(
          await page.getByRole("heading", { level: 1 }).textContent(),
          "Copy of Protect Policy for Linux",
        );
        const copyId = Number(/\/policies\/(\d+)$/.exec(page.url())?.[1]);
        assert.ok(copyId > 2);
        await page.getByRole("checkbox", { name: new RegExp(hostname) }).check();
        await page.getByRole("button", { name: "Assign", exact: true }).click();
        assert.match(await flash(page), /Assigned "Copy of Protect Policy for Linux"/);
        await waitFor("the copy on the connector", () => {
          const p = connector.policy();
          return p.id === copyId && p.scan.maxFileSize === 6 * 1024 * 1024 ? p : undefined;
        }, 5_000);
        // In use: it cannot be deleted; a new policy can be created and deleted.
        await visit(b, `${base}/console/policies/new`, "new policy");
        await page.getByLabel("Name", { exact: true }).fill("Scratch");
        await page.getByRole("button", { name: "Create policy" }).click();
        assert.match(await flash(page), /Created "Scratch"/);
        await page.goto(`${base}/console/policies`);
        assert.equal(
          await page.getByRole("button", { name: "Delete Copy of Protect Policy for Linux" })
            .count(),
          0,
        );
        await page.getByRole("button", { name: "Delete Scratch" }).click();
        assert.match(await flash(page), /Deleted "Scratch"/);

        // ---- a custom detection convicts a file at its lookup.
        const bad = `console custom detection ${crypto.randomUUID()}\n`;
        await visit(b, `${base}/console/detections`, "detections");
        await page.getByLabel("SHA-256", { exact: true }).fill(sha256(bad).toUpperCase());
        await page.getByLabel("Name", { exact: true }).fill("Amp.Test.ConsoleDetection");
        await page.getByRole("button", { name: "Add" }).click();
        assert.match(await flash(page), /Added [0-9a-f]{64} \(Amp\.Test\.ConsoleDetection\)/);
        const convicted = await connector.scan("payload.sh", bad);
        assert.deepEqual(convicted.result.verdict, {
          kind: "malicious",
          name: "Amp.Test.ConsoleDetection",
          engine: "cloud",
        });
        const one = sha256("imported one\n"), two = sha256("imported two\n");
        await page.getByLabel("SHA-256 list").fill(
          `# from a feed\n${one} Amp.Test.One\n${two}\nnot-a-hash Bad\n`,
        );
        await page.getByRole("button", { name: "Import" }).click();
        assert.match(
          await flash(page),
          /Imported 2 hash\(es\), 2 new or changed\. 1 line\(s\) skipped/,
        );
        await page.getByRole("button", { name: `Remove ${two}` }).click();
        assert.match(await flash(page), /Removed/);
        const listed = (await cloud.store().listDispositions({ disposition: "malicious" }))
          .map((d) => [d.sha256, d.name]);
        assert.deepEqual(
          listed.sort(),
          [[sha256(bad), "Amp.Test.ConsoleDetection"], [one, "Amp.Test.One"]].sort(),
        );
        await shot(b, "08-detections");
        await visit(b, `${base}/console/allow-list`, "allow list");
        await page.getByLabel("SHA-256", { exact: true }).fill(sha256("known good\n"));
        await page.getByRole("button", { name: "Add" }).click();
        assert.match(await flash(page), /to the allow list/);
        await shot(b, "09-allow-list");

        // ---- CSRF: a post without the token, or from another origin, is refused
        // (sent with the browser's session cookie, as a forged cross-site post would be).
        const cookieHeader = (await b.context.cookies()).map((c) => `${c.name}=${c.value}`)
          .join("; ");
        const http = Deno.createHttpClient({ caCerts: [cloud.ca.caPem] });
        const request = (path: string, init: RequestInit = {}) =>
          fetch(`${base}${path}`, {
            ...init,
            client: http,
            redirect: "manual",
            headers: { cookie: cookieHeader, ...init.headers },
          });
        const forged = await request("/console/dispositions/add", {
          method: "POST",
          body: new URLSearchParams({ sha256: sha256("forged\n"), disposition: "malicious" }),
        });
        assert.equal(forged.status, 403);
        assert.match(await forged.text(), /security token is missing or stale/);
        const csrf = await page.locator("input[name=csrf]").first().getAttribute("value");
        const foreign = await request("/console/dispositions/add", {
          method: "POST",
          body: new URLSearchParams({
            sha256: sha256("forged\n"),
            disposition: "malicious",
            csrf: csrf ?? "",
          }),
          headers: { origin: "https://evil.example" },
        });
        assert.equal(foreign.status, 403);
        await foreign.body?.cancel();
        const allowed = await request("/console/dispositions/add", {
          method: "POST",
          body: new URLSearchParams({
            sha256: sha256("same origin\n"),
            disposition: "malicious",
            csrf: csrf ?? "",
          }),
          headers: { origin: base },
        });
        assert.equal(allowed.status, 303, "the same post with its token is accepted");
        await allowed.body?.cancel();
        assert.equal((await cloud.store().lookup([sha256("forged\n")]))[0].disposition, "unknown");

        // ---- IP lists: kept by the cloud, served with the connector's key.
        await visit(b, `${base}/console/ip-lists`, "ip lists");
        await page.getByLabel("Name", { exact: true }).fill("console-drop");
        await page.getByLabel("Description").fill("Test list");
        await page.getByLabel("Addresses and networks").fill("198.51.100.0/24\nbogus\n");
        await page.getByRole("button", { name: "Save IP list" }).click();
        assert.match(await page.getByRole("alert").textContent() ?? "", /1 malformed line/);
        await page.getByLabel("Addresses and networks").fill(
          "# test\n198.51.100.0/24\n2001:db8:100::/48\n",
        );
        await page.getByRole("button", { name: "Save IP list" }).click();
        assert.match(await flash(page), /Saved IP list console-drop \(2 entries\)/);
        const listUrl = `${cloud.url}/v1/ip-lists/console-drop`;
        assert.match(await page.locator("table").textContent() ?? "", new RegExp(listUrl));
        await shot(b, "10-ip-lists");
        const identity = (await loadIdentity(connector.root))!;
        {
          const got = await fetch(listUrl, {
            client: http,
            headers: { authorization: `Bearer ${identity.key}` },
          });
          assert.equal(got.status, 200);
          assert.equal(await got.text(), "# test\n198.51.100.0/24\n2001:db8:100::/48\n");
          const again = await fetch(listUrl, {
            client: http,
            headers: {
              authorization: `Bearer ${identity.key}`,
              "if-none-match": got.headers.get("etag")!,
            },
          });
          assert.equal(again.status, 304);
          await again.body?.cancel();
          const stranger = await fetch(listUrl, { client: http });
          assert.equal(stranger.status, 401);
          await stranger.body?.cancel();
        }
        const source = IpListSourceSchema.parse({ name: "console-drop", url: listUrl });
        const [download] = await downloadIpLists([source], { root: connector.root });
        assert.equal(download.status, "updated", download.detail);
        assert.equal(download.entries, 2);
        assert.match(
          await Deno.readTextFile(`${connector.root}/var/lib/amp/dfc/console-drop.list`),
          /198\.51\.100\.0\/24/,
        );

        // ---- restore a quarantined file from the console.
        const content = `quarantined for the console ${crypto.randomUUID()}\n`;
        const q = await quarantineFile(connector, "evil.sh", content);
        assert.equal(await exists(q.path), false);
        await waitFor("the quarantine list in the cloud", async () => {
          const c = await cloud.store().getComputer(computer);
          return c.quarantine?.some((i) => i.id === q.record.id) ? true : undefined;
        });
        await visit(b, `${base}/console/computers/${computer}`, "computer");
        await shot(b, "11-computer-quarantine");
        await page.getByRole("button", { name: `Restore ${q.path}` }).click();
        assert.match(await flash(page), /Restore requested \(command #\d+\)/);
        await waitFor("the restored file", () => exists(q.path).then((e) => e || undefined));
        assert.equal(await Deno.readTextFile(q.path), content);
        await waitFor("the command's result", async () => {
          await page.reload();
          const text = await page.locator("table", { hasText: "Restore quarantined file" })
            .textContent();
          return /done\s*Restored to/.test(text ?? "") ? true : undefined;
        });
        assert.equal(
          await page.getByRole("button", { name: `Restore ${q.path}` }).count(),
          0,
          "the file is no longer listed as quarantined",
        );
        assert.ok(connector.raised.some((e) => e.type === "Quarantine Restored"));
        const again = await connector.scan("evil.sh", content, {
          kind: "malicious",
          name: "Amp.Test.Console",
          engine: "clamav",
        });
        assert.equal(again.result.verdict.kind, "clean", "a restored file is not convicted again");
        await shot(b, "12-computer-restored");

        // ---- events: filter by type and by file hash; detail; export.
        await waitFor("the restore event in the cloud", async () => {
          const e = await cloud.store().listEvents({
            computerId: computer,
            type: "Quarantine Restored",
          });
          return e.length > 0 ? true : undefined;
        });
        await visit(b, `${base}/console/events`, "events");
        await page.getByLabel("Type").selectOption("Policy Update");
        await page.getByLabel("Computer").selectOption({ label: hostname });
        await page.getByRole("button", { name: "Filter" }).click();
        assert.match(page.url(), /type=Policy\+Update/);
        const types = await page.locator("table tbody tr td:nth-child(2)").allTextContents();
        assert.ok(types.length >= 3, `${types.length} Policy Update events`);
        assert.ok(types.every((t) => t === "Policy Update"), types.join());
        await shot(b, "07-events-filtered");
        await page.getByLabel("Type").selectOption("");
        await page.getByLabel("File SHA-256").fill(sha256(content));
        await page.getByRole("button", { name: "Filter" }).click();
        const byHash = await page.locator("table tbody tr td:nth-child(2)").allTextContents();
        assert.deepEqual(byHash, ["Quarantine Restored"]);
        await page.getByRole("link", { name: /^Event \d+: Quarantine Restored$/ }).click();
        assert.equal(
          await page.getByRole("heading", { level: 1 }).textContent(),
          "Quarantine Restored",
        );
        assert.match(await page.locator("main").textContent() ?? "", new RegExp(sha256(content)));
        await shot(b, "13-event-detail");
        const csv = await request(`/console/events.csv?type=Policy+Update&computer=${computer}`);
        assert.equal(csv.status, 200);
        assert.match(csv.headers.get("content-type") ?? "", /^text\/csv/);
        assert.match(
          csv.headers.get("content-disposition") ?? "",
          /attachment; filename="amp-events-/,
        );
        const csvLines = (await csv.text()).trimEnd().split("\r\n");
        assert.match(csvLines[0], /^id,time,received,computer_id,hostname,type,detection,/);
        assert.equal(csvLines.length - 1, types.length);
        assert.ok(csvLines.slice(1).every((l) => l.includes(",Policy Update,")));
        const json = await request(`/console/events.json?sha256=${sha256(content)}`);
        const exported = await json.json() as Array<{ type: string; hostname: string }>;
        assert.deepEqual(exported.map((e) => [e.type, e.hostname]), [[
          "Quarantine Restored",
          hostname,
        ]]);
        const badFilter = await request("/console/events.csv?sha256=xyz");
        assert.equal(badFilter.status, 400);
        await badFilter.body?.cancel();
        http.close();

        // ---- the dashboard counts the detection and the computer.
        await visit(b, `${base}/console/`, "dashboard");
        assert.match(
          await page.locator("section", { hasText: "Computers by status" }).textContent() ?? "",
          /Connected\s*1/,
        );
        await shot(b, "02-dashboard");

        // ---- logout ends the session.
        await page.getByRole("button", { name: "Log out" }).click();
        assert.match(page.url(), /\/console\/login$/);
        await page.goto(`${base}/console/computers`);
        assert.match(page.url(), /\/console\/login\?next=/);
      } finally {
        await connector.close();
      }
      console.log(`console_test: screenshots in ${SCREENSHOT_DIR}`);
      console.log(
        `console_test: page loads (ms): ${
          [...renderTimes].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")
        }`,
      );
    });
  },
});

async function daemonStatus(d: TestDaemon): Promise<StatusReport> {
  const out = await d.amp(["status", "--json"]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout) as StatusReport;
}

Deno.test({
  name: "console with the real amp daemon: Protect edited and applied, a copy assigned, " +
    "a custom detection quarantining a file, events filtered, the file restored",
  ignore: noDaemon,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withBrowserCloud(async (cloud, b) => {
      const { page } = b;
      const base = cloud.url;
      const d = await startDaemon({
        config: { cloud: { url: cloud.url, ca: "/etc/amp/cloud_ca.pem" } },
        prepare: async (watched) => {
          const etc = `${dirname(watched)}/etc/amp`;
          await Deno.mkdir(etc, { recursive: true });
          await Deno.writeTextFile(`${etc}/cloud_ca.pem`, cloud.ca.caPem);
          await Deno.writeTextFile(`${etc}/cloud_registration.token`, cloud.registrationToken);
        },
      });
      try {
        const connected = await waitFor("Connected", async () => {
          const s = await daemonStatus(d);
          return s.status === "Connected" && s.policy.serial === 1 ? s : undefined;
        }, 15_000);
        const computer = connected.cloud!.computerId!;
        await login(page, base, cloud.adminToken);

        // Protect, assigned on the computer's page, then edited: the daemon applies both.
        await page.goto(`${base}/console/computers/${computer}`);
        await page.getByLabel("Policy", { exact: true }).selectOption({
          label: "Protect Policy for Linux (#2)",
        });
        await page.getByRole("button", { name: "Assign policy" }).click();
        await waitFor("Protect in the daemon", async () => {
          return (await daemonStatus(d)).policy.id === 2 || undefined;
        }, 10_000);
        await page.goto(`${base}/console/policies/2`);
        await page.getByLabel("Maximum file size").fill("7MB");
        await page.getByRole("button", { name: "Save policy" }).click();
        assert.match(await flash(page), /Saved "Protect Policy for Linux" \(serial 2\)/);
        await waitFor("Protect serial 2 in the daemon", async () => {
          const s = await daemonStatus(d);
          return s.policy.id === 2 && s.policy.serial === 2 ? s : undefined;
        }, 10_000);
        const applied = await Deno.readTextFile(`${d.root}/etc/amp/policy.json`);
        assert.equal(JSON.parse(applied).scan.maxFileSize, 7 * 1024 * 1024);
        assert.ok((await events(d)).some((e) => e.type === "Policy Update"));

        // A copy of Protect, assigned from the policy's page.
        await page.goto(`${base}/console/policies`);
        await page.getByRole("button", { name: "Copy Protect Policy for Linux" }).click();
        const copyId = Number(/\/policies\/(\d+)$/.exec(page.url())?.[1]);
        await page.getByRole("checkbox", { name: /now: Protect Policy for Linux/ }).check();
        await page.getByRole("button", { name: "Assign", exact: true }).click();
        assert.match(await flash(page), /Assigned "Copy of Protect Policy for Linux"/);
        const onCopy = await waitFor("the copy in the daemon", async () => {
          const s = await daemonStatus(d);
          return s.policy.id === copyId ? s : undefined;
        }, 10_000);
        assert.equal(onCopy.policy.name, "Copy of Protect Policy for Linux");
        assert.equal(onCopy.mode.file, "quarantine");

        // A custom detection added in the console: the file is convicted and quarantined.
        const bad = `console daemon detection ${crypto.randomUUID()}\n`;
        await page.goto(`${base}/console/detections`);
        await page.getByLabel("SHA-256", { exact: true }).fill(sha256(bad));
        await page.getByLabel("Name", { exact: true }).fill("Amp.Test.ConsoleDaemon");
        await page.getByRole("button", { name: "Add" }).click();
        const badPath = `${d.watched}/dropper.sh`;
        await Deno.writeTextFile(badPath, bad);
        await waitFor("the quarantine", async () => (await exists(badPath)) ? undefined : true);
        const quarantined = await waitFor(
          "Threat Quarantined",
          async () =>
            (await events(d)).find((e) => e.type === "Threat Quarantined" && e.path === badPath),
        );
        assert.equal(quarantined.engine, "cloud");
        assert.equal(quarantined.detection, "Amp.Test.ConsoleDaemon");

        // Events in the console, filtered by type.
        await waitFor("the event in the cloud", async () => {
          const e = await cloud.store().listEvents({ type: "Threat Quarantined" });
          return e.length > 0 ? true : undefined;
        });
        await page.goto(`${base}/console/events`);
        await page.getByLabel("Type").selectOption("Threat Quarantined");
        await page.getByRole("button", { name: "Filter" }).click();
        const rows = await page.locator("table tbody tr").allTextContents();
        assert.equal(rows.length, 1, rows.join("\n"));
        assert.match(rows[0], /Threat Quarantined/);
        assert.match(rows[0], /Amp\.Test\.ConsoleDaemon/);
        assert.ok(rows[0].includes(badPath));
        await shot(b, "20-daemon-events");

        // Restore from the console: the daemon puts the file back and leaves it there.
        await waitFor("the quarantine list in the cloud", async () => {
          const c = await cloud.store().getComputer(computer);
          return c.quarantine?.some((q) => q.pathText === badPath) ? true : undefined;
        }, 10_000);
        await page.goto(`${base}/console/computers/${computer}`);
        await page.getByRole("button", { name: `Restore ${badPath}` }).click();
        assert.match(await flash(page), /Restore requested/);
        await waitFor(
          "the restored file",
          () => exists(badPath).then((e) => e || undefined),
          10_000,
        );
        assert.equal(await Deno.readTextFile(badPath), bad);
        await new Promise((r) => setTimeout(r, 1_500));
        assert.ok(await exists(badPath), "the restored file was quarantined again");
        const restored = await waitFor(
          "Quarantine Restored",
          async () => (await events(d)).find((e) => e.type === "Quarantine Restored"),
        );
        assert.equal(restored.path, badPath);
        await waitFor("the command's result", async () => {
          const [command] = await cloud.store().listCommands(computer);
          return command?.status === "done" ? command : undefined;
        }, 10_000);
        await page.reload();
        await shot(b, "21-daemon-computer-restored");
      } finally {
        await d.stop();
      }
    });
  },
});
