/**
 * Computers: the list (status, facts, policy) and one computer's page (facts,
 * faults, policy assignment, quarantined files with a restore action carried
 * out by the connector at its next heartbeat, commands, recent events).
 *
 * @module
 */

import { CloudStoreError } from "../server/cloud_store.ts";
import { html } from "./html.ts";
import {
  CONSOLE_PREFIX,
  csrfField,
  eventsHref,
  formatBytes,
  page,
  redirect,
  shortHash,
  timeCell,
} from "./layout.ts";
import { computerStatus, type ConsoleContext, idParam, messageOf, takeFlash } from "./_context.ts";
import { eventRows, EVENTS_TABLE_HEAD } from "./events_pages.ts";
import { positiveInt } from "./form.ts";

function statusBadge(status: string) {
  return html`<span class="status-${status.toLowerCase()}">${status}</span>`;
}

/** GET /console/computers */
export async function computersPage(ctx: ConsoleContext): Promise<Response> {
  const computers = await ctx.store.listComputers();
  const rows = computers.map((c) => {
    const status = computerStatus(c, ctx.now, ctx.heartbeatSeconds);
    return html`
      <tr>
        <th scope="row"><a href="${CONSOLE_PREFIX}/computers/${c.id}">${c.hostname}</a></th>
        <td>${statusBadge(status)}</td>
        <td>${c.os}<br><span class="muted">${c.kernel} ${c.arch}</span></td>
        <td>${c.status?.version ?? c.version}</td>
        <td><a href="${CONSOLE_PREFIX}/policies/${c.policy.id}">${c.policy
          .name}</a>${c.status && c.status.policy.serial !== c.policy.serial ||
            c.status && c.status.policy.id !== c.policy.id
          ? html`
            <span class="muted">(applying)</span>
          `
          : ""}</td>
        <td>${timeCell(c.lastSeen)}</td>
        <td class="num">${c.status?.faults.length ?? ""}</td>
        <td>${c.status?.monitor ?? ""}</td>
        <td>${c.status?.signatures ?? ""}</td>
      </tr>
    `;
  });
  return page({
    title: "Computers",
    section: "computers",
    session: ctx.session,
    flash: takeFlash(ctx.session),
    body: computers.length === 0
      ? html`<p>No computer has registered yet. On each host: <code>amp cloud register --token TOKEN</code>
(the token is in the cloud's <code>registration.token</code>).</p>`
      : html`
        <table>
          <caption>${computers.length} computer(s)</caption>
          <thead>
            <tr>
              <th scope="col">Hostname</th>
              <th scope="col">Status</th>
              <th scope="col">OS and kernel</th>
              <th scope="col">amp version</th>
              <th scope="col">Policy</th>
              <th scope="col">Last seen</th>
              <th scope="col" class="num">Faults</th>
              <th scope="col">Monitor</th>
              <th scope="col">Signatures</th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      `,
  });
}

/** GET /console/computers/:id */
export async function computerPage(ctx: ConsoleContext): Promise<Response | undefined> {
  const id = idParam(ctx.params.id);
  if (id === undefined) return undefined;
  let c;
  try {
    c = await ctx.store.getComputer(id);
  } catch (error) {
    if (error instanceof CloudStoreError && error.code === "not-found") return undefined;
    throw error;
  }
  const [policies, commands, events] = await Promise.all([
    ctx.store.listPolicies(),
    ctx.store.listCommands(id, 20),
    ctx.store.listEvents({ computerId: id, limit: 20 }),
  ]);
  const status = computerStatus(c, ctx.now, ctx.heartbeatSeconds);
  const s = c.status;
  const waiting = new Set(
    commands.filter((k) => k.status === "pending" || k.status === "sent").map((k) =>
      k.quarantineId
    ),
  );
  const quarantine = c.quarantine ?? [];
  const facts = html`
    <dl class="facts">
      <dt>Status</dt>
      <dd>${statusBadge(status)}</dd>
      <dt>Last seen</dt>
      <dd>${timeCell(c.lastSeen)}</dd>
      <dt>Registered</dt>
      <dd>${timeCell(c.registeredAt)}</dd>
      <dt>Operating system</dt>
      <dd>${c.os}</dd>
      <dt>Kernel</dt>
      <dd>${c.kernel} (${c.arch})</dd>
      <dt>amp version</dt>
      <dd>${s?.version ?? c.version}</dd>
      <dt>Policy</dt>
      <dd><a href="${CONSOLE_PREFIX}/policies/${c.policy.id}">${c.policy.name}</a> (#${c.policy
        .id}, serial ${c.policy.serial})${s
        ? html`; in force: #${s.policy.id} serial ${s.policy.serial}`
        : ""}</dd>
      <dt>Monitor backend</dt>
      <dd>${s?.monitor ?? "unknown"}</dd>
      <dt>Signatures</dt>
      <dd>${s?.signatures ?? "unknown"}</dd>
      <dt>Counts</dt>
      <dd>${s
        ? `${s.counts.quarantined} quarantined, ${s.counts.detections} detections, ` +
          `${s.counts.queuedEvents} events queued, ${s.counts.cacheEntries} cache entries`
        : "unknown"}</dd>
      <dt>GUID</dt>
      <dd><code>${c.guid}</code></dd>
    </dl>
  `;
  const faults = s && s.faults.length > 0
    ? html`<ul>${s.faults.map((f) => html`<li>${f}</li>`)}</ul>`
    : html`<p>None reported.</p>`;
  const assign =
    html`<form method="post" action="${CONSOLE_PREFIX}/computers/${id}/policy" class="row">
${csrfField(ctx.session)}
<div class="field"><label for="policy">Policy</label>
<select id="policy" name="policyId">${
      policies.map((p) =>
        html`
          <option value="${p.id}" ${p.id === c.policy.id
            ? html`
              selected
            `
            : ""}>${p.name} (#${p.id})</option>
        `
      )
    }</select></div>
<button type="submit">Assign policy</button>
</form>`;
  const quarantineTable = c.quarantine === null
    ? html`<p>The connector has not reported its quarantine yet.</p>`
    : quarantine.length === 0
    ? html`<p>No file in quarantine.</p>`
    : html`
      <table>
        <caption>${quarantine.length} quarantined file(s)</caption>
        <thead>
          <tr>
            <th scope="col">Path</th>
            <th scope="col">Detection</th>
            <th scope="col">SHA-256</th>
            <th scope="col" class="num">Size</th>
            <th scope="col">Quarantined</th>
            <th scope="col">Action</th>
          </tr>
        </thead>
        <tbody>${quarantine.map((q) =>
          html`
            <tr>
              <th scope="row"><code>${q.pathText}</code></th>
              <td>${q.detection} <span class="muted">(${q.engine})</span></td>
              <td>${shortHash(q.sha256)}</td>
              <td class="num">${formatBytes(q.size)}</td>
              <td>${timeCell(q.time)}</td>
              <td>${waiting.has(q.id)
                ? html`<span class="muted">Restore requested</span>`
                : html`<form method="post" action="${CONSOLE_PREFIX}/computers/${id}/restore" class="inline">
${csrfField(ctx.session)}<input type="hidden" name="quarantineId" value="${q.id}">
<input type="hidden" name="sha256" value="${q.sha256}">
<button type="submit" class="secondary" aria-label="Restore ${q.pathText}">Restore</button></form>`}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `;
  const commandTable = commands.length === 0 ? html`` : html`
    <h2>Commands</h2>
    <table>
      <caption>Actions sent to this computer, newest first</caption>
      <thead>
        <tr>
          <th scope="col">#</th>
          <th scope="col">Action</th>
          <th scope="col">Status</th>
          <th scope="col">Result</th>
          <th scope="col">Requested</th>
          <th scope="col">Updated</th>
        </tr>
      </thead>
      <tbody>${commands.map((k) =>
        html`
          <tr>
            <td>${k.id}</td>
            <td>Restore quarantined file #${k.quarantineId}</td>
            <td>${k.status}</td>
            <td>${k.message ?? ""}</td>
            <td>${timeCell(k.createdAt)}</td>
            <td>${timeCell(k.updatedAt)}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
  return page({
    title: c.hostname,
    section: "computers",
    session: ctx.session,
    flash: takeFlash(ctx.session),
    body: html`
      <p><a href="${CONSOLE_PREFIX}/computers">All computers</a></p>
      ${facts}
      <h2>Faults</h2>${faults}
      <h2>Policy</h2>${assign}
      <h2>Quarantined files</h2>
      <p
        class="muted">A restore is carried out by the connector at its next heartbeat (every ${ctx
          .heartbeatSeconds} s).</p>
      ${quarantineTable}
      ${commandTable}
      <h2>Recent events</h2>
      ${events.length === 0
        ? html`<p>No event yet.</p>`
        : html`<table><caption>The last ${events.length} events</caption>${EVENTS_TABLE_HEAD}<tbody>${
          eventRows(events, new Map([[c.id, c.hostname]]))
        }</tbody></table>`}
      <p><a href="${eventsHref({ computer: id })}">All events of ${c.hostname}</a></p>
    `,
  });
}

/** POST /console/computers/:id/policy */
export async function assignComputerPolicy(ctx: ConsoleContext): Promise<Response | undefined> {
  const id = idParam(ctx.params.id);
  if (id === undefined) return undefined;
  const policyId = positiveInt(ctx.form.get("policyId"));
  try {
    if (policyId === undefined) throw new Error("Choose a policy");
    await ctx.store.assignPolicy(id, policyId);
    const policy = await ctx.store.getPolicy(policyId);
    ctx.log?.info(`Console: policy #${policyId} assigned to computer #${id}`);
    ctx.session.flash = {
      kind: "ok",
      text: `Assigned "${policy.name}": the computer applies it at its next heartbeat.`,
    };
  } catch (error) {
    ctx.session.flash = { kind: "error", text: messageOf(error) };
  }
  return redirect(`${CONSOLE_PREFIX}/computers/${id}`);
}

/** POST /console/computers/:id/restore */
export async function restoreQuarantined(ctx: ConsoleContext): Promise<Response | undefined> {
  const id = idParam(ctx.params.id);
  if (id === undefined) return undefined;
  const quarantineId = positiveInt(ctx.form.get("quarantineId"));
  const sha256 = (ctx.form.get("sha256") ?? "").toLowerCase();
  try {
    if (quarantineId === undefined || !/^[0-9a-f]{64}$/.test(sha256)) {
      throw new Error("Invalid restore request");
    }
    const command = await ctx.store.queueRestore(id, quarantineId, sha256);
    ctx.log?.info(`Console: restore of quarantined file #${quarantineId} on computer #${id}`);
    ctx.session.flash = {
      kind: "ok",
      text:
        `Restore requested (command #${command.id}): the connector carries it out at its next heartbeat.`,
    };
  } catch (error) {
    ctx.session.flash = { kind: "error", text: messageOf(error) };
  }
  return redirect(`${CONSOLE_PREFIX}/computers/${id}`);
}
