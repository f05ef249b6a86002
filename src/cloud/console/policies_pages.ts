/**
 * Policies: the list (the two built-ins first), the editor (every field of
 * the policy schema, checked by the same zod schema, its messages beside the
 * fields), create, copy, delete (not a policy in use or a built-in) and
 * assignment to computers.
 *
 * @module
 */

import { builtinPolicy } from "../../policy/builtin.ts";
import { PolicySchema } from "../../policy/schema.ts";
import { CloudStoreError, type PolicyView } from "../server/cloud_store.ts";
import { type Html, html, type HtmlValue } from "./html.ts";
import { CONSOLE_PREFIX, csrfField, page, redirect, timeCell } from "./layout.ts";
import { computerStatus, type ConsoleContext, idParam, messageOf, takeFlash } from "./_context.ts";
import {
  CHECKBOXES,
  type FieldErrors,
  policyToForm,
  readPolicyForm,
  SPARE_DFC_ROWS,
} from "./policy_form.ts";
import { IP_LIST_PATH } from "./detections_pages.ts";

async function policyOr404(ctx: ConsoleContext): Promise<PolicyView | undefined> {
  const id = idParam(ctx.params.id);
  if (id === undefined) return undefined;
  try {
    return await ctx.store.getPolicy(id);
  } catch (error) {
    if (error instanceof CloudStoreError && error.code === "not-found") return undefined;
    throw error;
  }
}

/** GET /console/policies */
export async function policiesPage(ctx: ConsoleContext): Promise<Response> {
  const policies = await ctx.store.listPolicies();
  const rows = policies.map((p) =>
    html`
      <tr>
        <th scope="row"><a href="${CONSOLE_PREFIX}/policies/${p.id}">${p.name}</a>${p.builtin
          ? html`
            <span class="muted">(built-in)</span>
          `
          : ""}</th>
        <td class="num">${p.id}</td>
        <td class="num">${p.serial}</td>
        <td>${p.document.mode.file}</td>
        <td class="num">${p.computers}</td>
        <td>${timeCell(p.updatedAt)}</td>
        <td><form method="post" action="${CONSOLE_PREFIX}/policies/${p
          .id}/copy" class="inline">${csrfField(
            ctx.session,
          )}<button type="submit" class="secondary" aria-label="Copy ${p.name}">Copy</button></form>
      ${p.builtin || p.computers > 0
        ? html`<span class="muted">${p.builtin ? "built-in" : "in use"}</span>`
        : html`
          <form method="post" action="${CONSOLE_PREFIX}/policies/${p.id}/delete"
            class="inline">${csrfField(
              ctx.session,
            )}<button type="submit" class="danger" aria-label="Delete ${p
              .name}">Delete</button></form>
        `}</td>
      </tr>
    `
  );
  return page({
    title: "Policies",
    section: "policies",
    session: ctx.session,
    flash: takeFlash(ctx.session),
    body: html`
      <p><a href="${CONSOLE_PREFIX}/policies/new">New policy</a></p>
      <table>
        <caption>${policies.length} policies</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col" class="num">Id</th>
            <th scope="col" class="num">Serial</th>
            <th scope="col">File conviction</th>
            <th scope="col" class="num">Computers</th>
            <th scope="col">Updated</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    `,
  });
}

/** The editor's fields, filled from `values`, with `errors` beside them. */
function policyForm(
  ctx: ConsoleContext,
  values: URLSearchParams,
  errors: FieldErrors,
  action: string,
  submit: string,
  cloudLists: string[],
): Html {
  const v = (name: string) => values.get(name) ?? "";
  const ids = (name: string) => `p-${name.replaceAll(".", "-")}`;
  const err = (name: string): HtmlValue => {
    const list = errors.get(name);
    return list
      ? html`<div id="${ids(name)}-error">${
        list.map((m) => html`<p class="error-text">${m}</p>`)
      }</div>`
      : "";
  };
  const invalid = (name: string): HtmlValue =>
    errors.has(name)
      ? html`
        aria-invalid="true" aria-describedby="${ids(name)}-error"
      `
      : "";
  const text = (name: string, label: string, hint?: string, type = "text") =>
    html`<div class="field"><label for="${ids(name)}">${label}</label>${
      hint ? html`<span class="hint" id="${ids(name)}-hint">${hint}</span>` : ""
    }
<input type="${type}" id="${ids(name)}" name="${name}" value="${v(name)}"${invalid(name)}>${
      err(name)
    }</div>`;
  const area = (name: string, label: string, hint: string, rows = 3) =>
    html`<div class="field"><label for="${
      ids(name)
    }">${label}</label><span class="hint">${hint}</span>
<textarea id="${ids(name)}" name="${name}" rows="${rows}" spellcheck="false"${invalid(name)}>${
      v(name)
    }</textarea>${err(name)}</div>`;
  const select = (name: string, label: string, options: Array<[string, string]>) =>
    html`<div class="field"><label for="${ids(name)}">${label}</label>
<select id="${ids(name)}" name="${name}"${invalid(name)}>${
      options.map(([value, text]) =>
        html`
          <option value="${value}" ${v(name) === value
            ? html`
              selected
            `
            : ""}>${text}</option>
        `
      )
    }</select>${err(name)}</div>`;
  const box = (name: (typeof CHECKBOXES)[number], label: string) =>
    html`
      <div
        class="field"><input type="checkbox" id="${ids(name)}" name="${name}"${values.has(name)
          ? html`
            checked
          `
          : ""}${invalid(name)}> <label for="${ids(
            name,
          )}" class="inline-label">${label}</label>${err(name)}</div>
    `;
  const rows = Math.max(Number(v("dfc.rows")) || 0, SPARE_DFC_ROWS);
  const dfcRows: Html[] = [];
  for (let i = 0; i < rows; i++) {
    const cell = (col: string, size: number, label: string) => {
      const name = `dfc.${i}.${col}`;
      return html`<td><input type="text" name="${name}" id="${ids(name)}" size="${size}" value="${
        v(name)
      }" aria-label="List ${i + 1} ${label}"${invalid(name)}>${err(name)}</td>`;
    };
    const formatName = `dfc.${i}.format`;
    dfcRows.push(
      html`<tr>${cell("name", 14, "name")}${cell("url", 34, "URL")}${
        cell("file", 22, "file")
      }<td><select name="${formatName}" aria-label="List ${i + 1} format"${invalid(formatName)}>${
        [["lines", "lines"], ["csv", "csv"]].map(([value, label]) =>
          html`
            <option value="${value}" ${(v(formatName) || "lines") === value
              ? html`
                selected
              `
              : ""}>${label}</option>
          `
        )
      }</select>${err(formatName)}</td>${cell("column", 6, "CSV column")}${
        cell("delimiter", 2, "CSV delimiter")
      }</tr>`,
    );
  }
  const formErrors = errors.get("_form");
  const count = [...errors.values()].reduce((n, l) => n + l.length, 0);
  return html`${
    count > 0
      ? html`
        <div class="errors" role="alert" tabindex="-1"
          id="errors"><p><strong>The policy was not saved: ${count} problem(s).</strong> Each is shown beside its field.</p>${formErrors
            ? html`<ul>${formErrors.map((m) => html`<li>${m}</li>`)}</ul>`
            : ""}</div>
      `
      : ""
  }
<form method="post" action="${action}" novalidate>
${csrfField(ctx.session)}
<input type="hidden" name="dfc.rows" value="${rows}">
<fieldset><legend>General</legend>
${text("name", "Name")}
${area("description", "Description", "Optional.", 2)}
</fieldset>
<fieldset><legend>Modes</legend>
${
    select("mode.file", "File conviction", [["audit", "Audit (record only)"], [
      "quarantine",
      "Quarantine",
    ]])
  }
${
    select("mode.execute", "On execute", [["passive", "Passive (kill if malicious)"], [
      "active",
      "Active (hold the exec until a verdict)",
    ]])
  }
${
    select("mode.network", "Network (DFC)", [["audit", "Audit (record only)"], [
      "block",
      "Block (close the connection)",
    ]])
  }
</fieldset>
<fieldset><legend>Scanning</legend>
${text("scan.maxFileSize", "Maximum file size", 'Bytes, or with a unit: "5MB", "512k".')}
${text("scan.maxArchiveSize", "Maximum archive size", 'Bytes, or with a unit: "50MB".')}
${text("scan.maxRecursion", "Maximum archive depth", undefined, "number")}
${text("scan.maxFiles", "Maximum files in an archive", undefined, "number")}
${box("scan.scanArchives", "Scan inside archives")}
</fieldset>
<fieldset><legend>Engines</legend>
${box("engines.clamav", "ClamAV")}
${box("engines.hashList", "Local lists (custom detections and allow list files)")}
${box("engines.cloud", "Cloud lookups (this cloud's custom detections)")}
</fieldset>
<fieldset><legend>Local list files</legend>
${area("lists.blockFiles", "Custom detection files", "Absolute paths, one per line.")}
${area("lists.allowFiles", "Allow list files", "Absolute paths, one per line.")}
</fieldset>
<fieldset><legend>Exclusions</legend>
${area("exclusions.path", "Paths", "Absolute path prefixes, one per line.", 4)}
${
    area(
      "exclusions.wildcard",
      "Wildcards",
      "Patterns over the whole path, one per line (/tmp/*.log).",
    )
  }
${area("exclusions.extension", "Extensions", "One per line (.log).")}
${
    area(
      "processExclusions",
      "Process exclusions",
      "One per line: EXECUTABLE [user=NAME or UID] [children].",
    )
  }
</fieldset>
<fieldset><legend>Device Flow Correlation: IP lists</legend>
<p class="hint">A list needs a name and a URL or a file. Lists kept by this cloud: ${
    cloudLists.length === 0
      ? "none yet"
      : cloudLists.map((n, i) =>
        html`${
          i > 0 ? ", " : ""
        }<code>${n}</code> (URL <code>${ctx.url.origin}${IP_LIST_PATH}/${n}</code>)`
      )
  }. Empty rows are ignored.</p>
<table><thead><tr><th scope="col">Name</th><th scope="col">URL</th><th scope="col">File</th>
<th scope="col">Format</th><th scope="col">CSV column</th><th scope="col">Delimiter</th></tr></thead>
<tbody>${dfcRows}</tbody></table>
</fieldset>
<fieldset><legend>Real-time monitor</legend>
${box("monitor.onAccess", "Scan files when written (on access)")}
${box("monitor.onExecute", "Scan files when executed")}
${text("monitor.permissionTimeoutMs", "Active mode: verdict timeout (ms)", undefined, "number")}
${
    select("monitor.timeoutAnswer", "Active mode: answer after the timeout", [
      ["allow", "Allow (fail open)"],
      ["deny", "Deny (fail closed)"],
    ])
  }
</fieldset>
<button type="submit">${submit}</button>
</form>`;
}

async function cloudListNames(ctx: ConsoleContext): Promise<string[]> {
  return (await ctx.store.listIpLists()).map((l) => l.name);
}

/** GET /console/policies/:id */
export async function policyPage(
  ctx: ConsoleContext,
  posted?: { values: URLSearchParams; errors: FieldErrors },
): Promise<Response | undefined> {
  const p = await policyOr404(ctx);
  if (!p) return undefined;
  const computers = await ctx.store.listComputers();
  const values = posted?.values ?? policyToForm(PolicySchema.parse(p.document));
  const form = policyForm(
    ctx,
    values,
    posted?.errors ?? new Map(),
    `${CONSOLE_PREFIX}/policies/${p.id}`,
    "Save policy",
    await cloudListNames(ctx),
  );
  const assigned = computers.filter((c) => c.policy.id === p.id);
  const others = computers.filter((c) => c.policy.id !== p.id);
  const assign = html`<h2 id="assign">Computers</h2>
${
    assigned.length === 0
      ? html`<p>No computer has this policy.</p>`
      : html`<p>This policy is assigned to: ${
        assigned.map((c, i) =>
          html`${i > 0 ? ", " : ""}<a href="${CONSOLE_PREFIX}/computers/${c.id}">${c.hostname}</a>`
        )
      }.</p>`
  }
${
    others.length === 0
      ? html``
      : html`<form method="post" action="${CONSOLE_PREFIX}/policies/${p.id}/assign">
${csrfField(ctx.session)}
<fieldset><legend>Assign to computers</legend>
${
        others.map((c) =>
          html`
            <div
              class="field"><input type="checkbox" id="assign-${c.id}" name="computer" value="${c
                .id}">
            <label for="assign-${c.id}" class="inline-label">${c
              .hostname} <span class="muted">(now: ${c.policy.name}; ${computerStatus(
                c,
                ctx.now,
                ctx.heartbeatSeconds,
              ).toLowerCase()})</span></label></div>
          `
        )
      }
<button type="submit">Assign</button>
</fieldset></form>`
  }
<h2>Copy</h2>
<form method="post" action="${CONSOLE_PREFIX}/policies/${p.id}/copy" class="row">
${csrfField(ctx.session)}
<div class="field"><label for="copy-name">Name of the copy</label>
<input type="text" id="copy-name" name="name" value="Copy of ${p.name}"></div>
<button type="submit" class="secondary">Copy policy</button>
</form>`;
  return page({
    title: p.name,
    section: "policies",
    session: ctx.session,
    flash: takeFlash(ctx.session),
    status: posted ? 422 : 200,
    body:
      html`<p><a href="${CONSOLE_PREFIX}/policies">All policies</a> · Policy #${p.id}, serial ${p.serial}${
        p.builtin ? ", built-in" : ""
      } · used by ${p.computers} computer(s)</p>
${form}
${assign}`,
  });
}

/** POST /console/policies/:id */
export async function savePolicy(ctx: ConsoleContext): Promise<Response | undefined> {
  const p = await policyOr404(ctx);
  if (!p) return undefined;
  const read = readPolicyForm(ctx.form, { id: p.id, serial: p.serial + 1 });
  if (!read.ok) return await policyPage(ctx, { values: ctx.form, errors: read.errors });
  try {
    const saved = await ctx.store.updatePolicy(p.id, read.input);
    ctx.log?.info(`Console: policy #${saved.id} (${saved.name}) is now serial ${saved.serial}`);
    ctx.session.flash = {
      kind: "ok",
      text:
        `Saved "${saved.name}" (serial ${saved.serial}): ${saved.computers} computer(s) apply it at their next heartbeat.`,
    };
    return redirect(`${CONSOLE_PREFIX}/policies/${p.id}`);
  } catch (error) {
    return await policyPage(ctx, {
      values: ctx.form,
      errors: new Map([["_form", [messageOf(error)]]]),
    });
  }
}

/** GET /console/policies/new (and the form again after a refused post). */
export async function newPolicyPage(
  ctx: ConsoleContext,
  posted?: { values: URLSearchParams; errors: FieldErrors },
): Promise<Response> {
  const start = builtinPolicy("audit");
  start.name = "New policy";
  start.engines.cloud.enabled = true;
  return page({
    title: "New policy",
    section: "policies",
    session: ctx.session,
    status: posted ? 422 : 200,
    body: html`<p><a href="${CONSOLE_PREFIX}/policies">All policies</a></p>${
      policyForm(
        ctx,
        posted?.values ?? policyToForm(start),
        posted?.errors ?? new Map(),
        `${CONSOLE_PREFIX}/policies/new`,
        "Create policy",
        await cloudListNames(ctx),
      )
    }`,
  });
}

/** POST /console/policies/new */
export async function createPolicy(ctx: ConsoleContext): Promise<Response> {
  const read = readPolicyForm(ctx.form, { id: 1, serial: 1 });
  if (!read.ok) return await newPolicyPage(ctx, { values: ctx.form, errors: read.errors });
  try {
    const created = await ctx.store.createPolicy(read.input);
    ctx.log?.info(`Console: policy #${created.id} (${created.name}) created`);
    ctx.session.flash = { kind: "ok", text: `Created "${created.name}" (#${created.id}).` };
    return redirect(`${CONSOLE_PREFIX}/policies/${created.id}`);
  } catch (error) {
    return await newPolicyPage(ctx, {
      values: ctx.form,
      errors: new Map([["_form", [messageOf(error)]]]),
    });
  }
}

/** POST /console/policies/:id/copy */
export async function copyPolicy(ctx: ConsoleContext): Promise<Response | undefined> {
  const p = await policyOr404(ctx);
  if (!p) return undefined;
  const name = (ctx.form.get("name") ?? "").trim() || undefined;
  try {
    const copy = await ctx.store.copyPolicy(p.id, name);
    ctx.log?.info(`Console: policy #${p.id} copied as #${copy.id} (${copy.name})`);
    ctx.session.flash = { kind: "ok", text: `Copied "${p.name}" as "${copy.name}" (#${copy.id}).` };
    return redirect(`${CONSOLE_PREFIX}/policies/${copy.id}`);
  } catch (error) {
    ctx.session.flash = { kind: "error", text: messageOf(error) };
    return redirect(`${CONSOLE_PREFIX}/policies/${p.id}`);
  }
}

/** POST /console/policies/:id/delete */
export async function deletePolicy(ctx: ConsoleContext): Promise<Response | undefined> {
  const p = await policyOr404(ctx);
  if (!p) return undefined;
  try {
    await ctx.store.deletePolicy(p.id);
    ctx.log?.info(`Console: policy #${p.id} (${p.name}) deleted`);
    ctx.session.flash = { kind: "ok", text: `Deleted "${p.name}".` };
  } catch (error) {
    ctx.session.flash = { kind: "error", text: messageOf(error) };
  }
  return redirect(`${CONSOLE_PREFIX}/policies`);
}

/** POST /console/policies/:id/assign */
export async function assignPolicy(ctx: ConsoleContext): Promise<Response | undefined> {
  const p = await policyOr404(ctx);
  if (!p) return undefined;
  const ids = ctx.form.getAll("computer").map((v) => idParam(v)).filter((v) => v !== undefined);
  if (ids.length === 0) {
    ctx.session.flash = { kind: "error", text: "Choose at least one computer." };
    return redirect(`${CONSOLE_PREFIX}/policies/${p.id}#assign`);
  }
  const done: string[] = [];
  try {
    for (const id of ids) {
      await ctx.store.assignPolicy(id, p.id);
      done.push((await ctx.store.getComputer(id)).hostname);
    }
    ctx.log?.info(`Console: policy #${p.id} assigned to computers ${ids.join(", ")}`);
    ctx.session.flash = {
      kind: "ok",
      text: `Assigned "${p.name}" to ${done.join(", ")}: applied at their next heartbeat.`,
    };
  } catch (error) {
    ctx.session.flash = { kind: "error", text: messageOf(error) };
  }
  return redirect(`${CONSOLE_PREFIX}/policies/${p.id}`);
}
