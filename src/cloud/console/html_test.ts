import assert from "node:assert/strict";
import { barChart, niceMax } from "./chart.ts";
import { escapeHtml, href, html, trusted } from "./html.ts";
import { formatBytes, formatTime, page, timeCell } from "./layout.ts";

Deno.test("escapeHtml() escapes the five characters that matter in text and attributes", () => {
  assert.equal(
    escapeHtml(`<a href="x" title='y'>&</a>`),
    "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
  );
  assert.equal(escapeHtml("plain text"), "plain text");
});

Deno.test("html`` escapes interpolated text, keeps nested html and renders lists", () => {
  const name = `<img src=x onerror=alert(1)>`;
  const inner = html`<b>${name}</b>`;
  const out = html`<p title="${'"quoted"'}">${inner}${[
    "<i>",
    html`<br>`,
  ]}${null}${undefined}${false}${0}</p>`;
  assert.equal(
    out.value,
    `<p title="&quot;quoted&quot;"><b>&lt;img src=x onerror=alert(1)&gt;</b>&lt;i&gt;<br>0</p>`,
  );
  assert.equal(trusted("<hr>").value, "<hr>");
});

Deno.test("href() encodes query values and leaves empty ones out", () => {
  assert.equal(
    href("/console/events", { type: "Threat Detected", sha256: "", computer: 3, x: undefined }),
    "/console/events?type=Threat+Detected&computer=3",
  );
  assert.equal(href("/console/events"), "/console/events");
  assert.equal(href("/p", { q: `a&b="c"` }), "/p?q=a%26b%3D%22c%22");
});

Deno.test("page() frames content with headings, landmarks and security headers", async () => {
  const response = page({ title: "T <1>", body: html`<p>${"<x>"}</p>` });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  const text = await response.text();
  assert.match(text, /<html lang="en">/);
  assert.match(text, /<h1>T &lt;1&gt;<\/h1>/);
  assert.match(text, /<main id="main"/);
  assert.match(text, /<p>&lt;x&gt;<\/p>/);
  assert.doesNotMatch(text, /<nav/, "no navigation without a session");
});

Deno.test("formatTime() and formatBytes() give UTC times and binary units", () => {
  assert.equal(formatTime(Date.UTC(2025, 0, 2, 3, 4, 5, 678)), "2025-01-02 03:04:05 UTC");
  assert.equal(formatTime(undefined), "");
  // Beyond the range of Date (a connector may send any number): the raw number, no exception.
  assert.equal(formatTime(9e15), "9000000000000000");
  assert.equal(timeCell(9e15).value, "9000000000000000");
  assert.equal(
    timeCell(0).value,
    '<time datetime="1970-01-01T00:00:00.000Z">1970-01-01 00:00:00 UTC</time>',
  );
  assert.equal(formatBytes(68), "68 bytes");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(5 * 1024 * 1024), "5 MiB");
});

Deno.test("barChart() draws stacked bars with an accessible summary and a data table", () => {
  assert.equal(niceMax(0), 1);
  assert.equal(niceMax(7), 10);
  assert.equal(niceMax(11), 20);
  assert.equal(niceMax(40), 50);
  const chart = barChart({
    title: "Detections <per day>",
    series: [{ key: "a", label: "Files", color: "#00f" }, {
      key: "b",
      label: "DFC",
      color: "#f00",
    }],
    bars: [{ label: "11-25", values: { a: 2, b: 1 } }, { label: "11-26", values: {} }],
  }).value;
  assert.match(
    chart,
    /role="img" aria-label="Detections &lt;per day&gt;: 3 in all over 2 days, at most 3 in a day"/,
  );
  assert.equal((chart.match(/<rect x=/g) ?? []).length, 2, "one rect per non-zero value");
  assert.match(chart, /<th scope="row">11-25<\/th><td class="num">2<\/td><td class="num">1<\/td>/);
  assert.doesNotMatch(chart, /style=/, "no inline style (the CSP forbids it)");
});
