/**
 * The dashboard: computers by status, detections over the last 14 days (an
 * inline SVG chart), the top detections of the last 30 days, and DFC hits of
 * the last 7 days.
 *
 * @module
 */

import { barChart } from "./chart.ts";
import { html } from "./html.ts";
import { CONSOLE_PREFIX, eventsHref, page, timeCell } from "./layout.ts";
import { computerStatus, type ConsoleContext, takeFlash } from "./_context.ts";

const DAY = 86_400_000;

/** Event types counted as file detections. */
export const FILE_DETECTIONS = ["Threat Detected", "Retrospective Detection"] as const;

/** The event type of DFC hits. */
export const DFC_HIT = "DFC Threat Detected";

/** GET /console/ */
export async function dashboardPage(ctx: ConsoleContext): Promise<Response> {
  const today = Math.floor(ctx.now / DAY) * DAY;
  const since14 = today - 13 * DAY;
  const [computers, perDay, top, dfcCount, dfcLatest] = await Promise.all([
    ctx.store.listComputers(),
    ctx.store.countEventsByDay(since14, [...FILE_DETECTIONS, DFC_HIT]),
    ctx.store.topDetections(today - 29 * DAY, FILE_DETECTIONS, 10),
    ctx.store.countEventsSince(today - 6 * DAY, [DFC_HIT]),
    ctx.store.listEvents({ type: DFC_HIT, since: today - 6 * DAY, limit: 10 }),
  ]);
  const hosts = new Map(computers.map((c) => [c.id, c.hostname]));
  const byStatus = { Connected: 0, Disconnected: 0, Registered: 0 };
  let faulty = 0;
  for (const c of computers) {
    byStatus[computerStatus(c, ctx.now, ctx.heartbeatSeconds)]++;
    if ((c.status?.faults.length ?? 0) > 0) faulty++;
  }
  const bars = [];
  for (let d = since14; d <= today; d += DAY) {
    const files = perDay.filter((r) => r.day === d && r.type !== DFC_HIT)
      .reduce((n, r) => n + r.count, 0);
    const dfc = perDay.find((r) => r.day === d && r.type === DFC_HIT)?.count ?? 0;
    bars.push({ label: new Date(d).toISOString().slice(5, 10), values: { files, dfc } });
  }
  const chart = barChart({
    title: "Detections per day, last 14 days (UTC)",
    series: [
      { key: "files", label: "File detections", color: "#0a4fa3" },
      { key: "dfc", label: "DFC hits", color: "#c2410c" },
    ],
    bars,
  });
  const statusCard = html`
    <section class="card" aria-labelledby="h-computers">
      <h2 id="h-computers">Computers by status</h2>
      <p class="big">${computers.length}</p>
      <table>
        <caption class="visually-hidden">Computers by status</caption>
        <thead>
          <tr>
            <th scope="col">Status</th>
            <th scope="col" class="num">Computers</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <th scope="row"><span class="status-connected">Connected</span></th>
            <td class="num">${byStatus.Connected}</td>
          </tr>
          <tr>
            <th scope="row"><span class="status-disconnected">Disconnected</span></th>
            <td class="num">${byStatus.Disconnected}</td>
          </tr>
          <tr>
            <th scope="row"><span class="status-registered">Registered, never connected</span></th>
            <td class="num">${byStatus.Registered}</td>
          </tr>
          <tr>
            <th scope="row">With faults</th>
            <td class="num">${faulty}</td>
          </tr>
        </tbody>
      </table>
      <p><a href="${CONSOLE_PREFIX}/computers">All computers</a></p>
    </section>
  `;
  const topCard = html`<section class="card" aria-labelledby="h-top">
<h2 id="h-top">Top detections, last 30 days</h2>
${
    top.length === 0 ? html`<p>No detection.</p>` : html`
      <table>
        <caption class="visually-hidden">Top detections</caption>
        <thead>
          <tr>
            <th scope="col">Detection</th>
            <th scope="col" class="num">Events</th>
            <th scope="col" class="num">Computers</th>
          </tr>
        </thead>
        <tbody>${top.map((t) =>
          html`
            <tr>
              <th scope="row">${t.detection}</th>
              <td class="num">${t.count}</td>
              <td class="num">${t.computers}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `
  }
<p><a href="${eventsHref({ type: "Threat Detected" })}">Threat Detected events</a></p>
</section>`;
  const dfcCard = html`<section class="card" aria-labelledby="h-dfc">
<h2 id="h-dfc">DFC hits, last 7 days</h2>
<p class="big">${dfcCount}</p>
${
    dfcLatest.length === 0 ? html`<p>No flow to a listed address.</p>` : html`
      <table>
        <caption>The latest</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Computer</th>
            <th scope="col">Remote</th>
            <th scope="col">Process</th>
          </tr>
        </thead>
        <tbody>${dfcLatest.map((e) =>
          html`
            <tr>
              <td><a href="${CONSOLE_PREFIX}/events/${e.id}">${timeCell(e.time)}</a></td>
              <td>${hosts.get(e.computerId) ?? `#${e.computerId}`}</td>
              <td><code>${e.remoteAddress ?? ""}${e.remotePort !== undefined
                ? `:${e.remotePort}`
                : ""}</code></td>
              <td><code>${e.executableText ?? ""}</code></td>
            </tr>
          `
        )}</tbody>
      </table>
    `
  }
<p><a href="${eventsHref({ type: DFC_HIT })}">All DFC events</a></p>
</section>`;
  return page({
    title: "Dashboard",
    section: "dashboard",
    session: ctx.session,
    flash: takeFlash(ctx.session),
    body: html`<div class="cards">${statusCard}${dfcCard}</div>
<section aria-labelledby="h-chart"><h2 id="h-chart">Detections over time</h2>${chart}</section>
<div class="cards">${topCard}</div>`,
  });
}
