/**
 * Detections: the custom detection list (SHA-256 the cloud calls malicious,
 * with a name: add, import a list, remove), the allow list (SHA-256 the cloud
 * calls clean), and IP lists for DFC, which the cloud serves to connectors at
 * `/v1/ip-lists/NAME` (their key required) for a policy's DFC list `url`.
 *
 * Connectors learn of every change through the disposition change log (cache
 * updated, retrospective detection of files seen earlier); a custom detection
 * convicts a file at its next lookup.
 *
 * @module
 */

import { parseHashList } from "../../engine/hash_list.ts";
import { IpListNameSchema, PATHS } from "../protocol.ts";
import { checkIpList, type DispositionView } from "../server/cloud_store.ts";
import { href, html } from "./html.ts";
import { CONSOLE_PREFIX, csrfField, eventsHref, page, redirect, timeCell } from "./layout.ts";
import { type ConsoleContext, messageOf, takeFlash } from "./_context.ts";

/** Where connectors fetch the cloud's IP lists. */
export const IP_LIST_PATH = PATHS.ipLists;

/** Hashes on one page of a list. */
const PAGE = 200;

/** Which list a disposition page shows. */
type Kind = "malicious" | "clean";

const KIND = {
  malicious: {
    path: "detections",
    title: "Custom detections",
    what: "custom detection",
    intro:
      "Files with these SHA-256 are convicted by every connector whose policy has cloud lookups on, at their next lookup; files seen earlier are detected retrospectively (and quarantined under a quarantine policy).",
    defaultName: "Custom.Detection",
  },
  clean: {
    path: "allow-list",
    title: "Allow list",
    what: "allow-list entry",
    intro:
      "The cloud answers clean for these SHA-256 (a hash here is never a cloud detection). It does not overrule a connector's offline engines: for that, use the policy's allow list files.",
    defaultName: "Allowed",
  },
} as const;

/** GET /console/detections and /console/allow-list */
export async function dispositionsPage(ctx: ConsoleContext, kind: Kind): Promise<Response> {
  const k = KIND[kind];
  const after = ctx.url.searchParams.get("after") ?? undefined;
  const list = await ctx.store.listDispositions({
    disposition: kind,
    limit: PAGE + 1,
    after: after && /^[0-9a-f]{64}$/.test(after) ? after : undefined,
  });
  const more = list.length > PAGE;
  const shown: DispositionView[] = list.slice(0, PAGE);
  const path = `${CONSOLE_PREFIX}/${k.path}`;
  const rows = shown.map((d) =>
    html`
      <tr>
        <th scope="row"><code>${d.sha256}</code></th>
        <td>${d.name ?? ""}</td>
        <td>${timeCell(d.updatedAt)}</td>
        <td><a href="${eventsHref({ sha256: d.sha256 })}">Events</a></td>
        <td>
          <form method="post" action="${CONSOLE_PREFIX}/dispositions/remove" class="inline">${csrfField(
            ctx.session,
          )}
      <input type="hidden" name="sha256" value="${d
        .sha256}"><input type="hidden" name="back" value="${kind}">
      <button type="submit" class="danger" aria-label="Remove ${d.sha256}">Remove</button></form>
        </td>
      </tr>
    `
  );
  return page({
    title: k.title,
    section: k.path,
    session: ctx.session,
    flash: takeFlash(ctx.session),
    body: html`<p>${k.intro}</p>
<h2>Add a hash</h2>
<form method="post" action="${CONSOLE_PREFIX}/dispositions/add" class="row">
${csrfField(ctx.session)}<input type="hidden" name="disposition" value="${kind}">
<div class="field"><label for="add-sha">SHA-256</label>
<input type="text" id="add-sha" name="sha256" size="66" required pattern="[0-9a-fA-F]{64}" spellcheck="false" autocomplete="off"></div>
<div class="field"><label for="add-name">Name</label>
<input type="text" id="add-name" name="name" size="30" value="${k.defaultName}"></div>
<button type="submit">Add</button>
</form>
<h2>Import a list</h2>
<form method="post" action="${CONSOLE_PREFIX}/dispositions/import">
${csrfField(ctx.session)}<input type="hidden" name="disposition" value="${kind}">
<div class="field"><label for="import-text">SHA-256 list</label>
<span class="hint">One per line: a SHA-256, then a name (optional); # starts a comment.</span>
<textarea id="import-text" name="text" rows="6" spellcheck="false"></textarea></div>
<div class="field"><label for="import-name">Name for lines without one</label>
<input type="text" id="import-name" name="defaultName" value="${k.defaultName}"></div>
<button type="submit">Import</button>
</form>
<h2>The list</h2>
${
      shown.length === 0 ? html`<p>The list is empty.</p>` : html`
        <table>
          <caption>${shown.length}${more ? "+" : ""} ${k.what}(s)${after
            ? " (continued)"
            : ""}</caption>
          <thead>
            <tr>
              <th scope="col">SHA-256</th>
              <th scope="col">Name</th>
              <th scope="col">Updated</th>
              <th scope="col">Events</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      `
    }
${
      more
        ? html`<p><a href="${href(path, { after: shown[shown.length - 1].sha256 })}">More</a></p>`
        : ""
    }`,
  });
}

function back(form: URLSearchParams): { kind: Kind; path: string } {
  const kind: Kind = form.get("back") === "clean" || form.get("disposition") === "clean"
    ? "clean"
    : "malicious";
  return { kind, path: `${CONSOLE_PREFIX}/${KIND[kind].path}` };
}

/** POST /console/dispositions/add */
export async function addDisposition(ctx: ConsoleContext): Promise<Response> {
  const { kind, path } = back(ctx.form);
  const sha256 = (ctx.form.get("sha256") ?? "").trim().toLowerCase();
  const name = (ctx.form.get("name") ?? "").trim().slice(0, 255) || KIND[kind].defaultName;
  if (!/^[0-9a-f]{64}$/.test(sha256)) {
    ctx.session.flash = { kind: "error", text: "A SHA-256 is 64 hexadecimal digits." };
    return redirect(path);
  }
  const changed = await ctx.store.setDispositions([{ sha256, disposition: kind, name }]);
  ctx.log?.info(`Console: ${sha256} is now ${kind} (${name})`);
  ctx.session.flash = {
    kind: "ok",
    text: changed > 0
      ? `Added ${sha256} (${name}) to the ${KIND[kind].title.toLowerCase()}.`
      : `${sha256} was already there with that name.`,
  };
  return redirect(path);
}

/** POST /console/dispositions/import */
export async function importDispositions(ctx: ConsoleContext): Promise<Response> {
  const { kind, path } = back(ctx.form);
  const defaultName = (ctx.form.get("defaultName") ?? "").trim().slice(0, 255) ||
    KIND[kind].defaultName;
  const map = new Map<string, string>();
  const problems = parseHashList(ctx.form.get("text") ?? "", "import", defaultName, map);
  const changed = map.size === 0 ? 0 : await ctx.store.setDispositions(
    [...map].map(([sha256, name]) => ({ sha256, disposition: kind, name })),
  );
  ctx.log?.info(`Console: imported ${map.size} ${kind} hashes (${changed} changed)`);
  ctx.session.flash = {
    kind: problems.length > 0 || map.size === 0 ? "error" : "ok",
    text: `Imported ${map.size} hash(es), ${changed} new or changed.` +
      (problems.length > 0
        ? ` ${problems.length} line(s) skipped: ${problems.slice(0, 3).join("; ")}`
        : ""),
  };
  return redirect(path);
}

/** POST /console/dispositions/remove */
export async function removeDisposition(ctx: ConsoleContext): Promise<Response> {
  const { path } = back(ctx.form);
  const sha256 = (ctx.form.get("sha256") ?? "").trim().toLowerCase();
  const removed = /^[0-9a-f]{64}$/.test(sha256) ? await ctx.store.removeDispositions([sha256]) : 0;
  ctx.session.flash = removed > 0
    ? { kind: "ok", text: `Removed ${sha256}: the cloud calls it unknown again.` }
    : { kind: "error", text: `${sha256} was not in the list.` };
  return redirect(path);
}

/** GET /console/ip-lists and /console/ip-lists/:name (the editor). */
export async function ipListsPage(
  ctx: ConsoleContext,
  posted?: { name: string; description: string; content: string; error: string },
): Promise<Response | undefined> {
  const lists = await ctx.store.listIpLists();
  const editing = ctx.params.name;
  const current = editing ? await ctx.store.getIpList(editing) : undefined;
  if (editing && !current) return undefined;
  const values = posted ?? {
    name: current?.name ?? "",
    description: current?.description ?? "",
    content: current?.content ?? "",
    error: "",
  };
  const url = (name: string) => `${ctx.url.origin}${IP_LIST_PATH}/${name}`;
  const table = lists.length === 0 ? html`<p>No IP list yet.</p>` : html`
    <table>
      <caption>${lists.length} IP list(s)</caption>
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col">Description</th>
          <th scope="col" class="num">Entries</th>
          <th scope="col">URL for policies</th>
          <th scope="col">Updated</th>
          <th scope="col">Action</th>
        </tr>
      </thead>
      <tbody>${lists.map((l) =>
        html`
          <tr>
            <th scope="row"><a href="${CONSOLE_PREFIX}/ip-lists/${l.name}">${l.name}</a></th>
            <td>${l.description}</td>
            <td class="num">${l.entries}</td>
            <td><code>${url(l.name)}</code></td>
            <td>${timeCell(l.updatedAt)}</td>
            <td>
              <form method="post" action="${CONSOLE_PREFIX}/ip-lists/${l.name}/delete"
                class="inline">${csrfField(
                  ctx.session,
                )}<button type="submit" class="danger" aria-label="Delete IP list ${l
                  .name}">Delete</button></form>
            </td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
  const error = values.error
    ? html`<p class="error-text" id="ip-error" role="alert">${values.error}</p>`
    : "";
  const invalid = values.error
    ? html`
      aria-invalid="true" aria-describedby="ip-error"
    `
    : "";
  const form = html`<h2>${current ? `Edit ${current.name}` : "New IP list"}</h2>
<form method="post" action="${CONSOLE_PREFIX}/ip-lists">
${csrfField(ctx.session)}
${error}
<div class="field"><label for="ip-name">Name</label>
<span class="hint">Letters, digits, dots, dashes, underscores. Saving under an existing name replaces that list.</span>
<input type="text" id="ip-name" name="name" value="${values.name}"${
    current
      ? html`
        readonly
      `
      : ""
  }></div>
<div class="field"><label for="ip-description">Description</label>
<input type="text" id="ip-description" name="description" size="60" value="${values.description}"></div>
<div class="field"><label for="ip-content">Addresses and networks</label>
<span class="hint">One IPv4 or IPv6 address or CIDR per line; # or ; starts a comment.</span>
<textarea id="ip-content" name="content" rows="10" spellcheck="false"${invalid}>${values.content}</textarea></div>
<button type="submit">Save IP list</button>
</form>`;
  return page({
    title: "IP lists",
    section: "ip-lists",
    session: ctx.session,
    flash: takeFlash(ctx.session),
    status: posted ? 422 : 200,
    body:
      html`<p>IP reputation lists for Device Flow Correlation, kept by this cloud. A policy uses one
through a DFC list whose URL is the list's URL below; <code>amp update</code> on each connector fetches it
with the connector's key.</p>
${table}
${current ? html`<p><a href="${CONSOLE_PREFIX}/ip-lists">New list</a></p>` : ""}
${form}`,
  });
}

/** POST /console/ip-lists */
export async function saveIpList(ctx: ConsoleContext): Promise<Response | undefined> {
  const name = (ctx.form.get("name") ?? "").trim();
  const description = (ctx.form.get("description") ?? "").trim().slice(0, 1000);
  const content = ctx.form.get("content") ?? "";
  try {
    const valid = IpListNameSchema.safeParse(name);
    if (!valid.success) throw new Error(`Invalid name: ${valid.error.issues[0].message}`);
    const checked = checkIpList(name, content);
    const saved = await ctx.store.putIpList({ name, description, ...checked });
    ctx.log?.info(`Console: IP list ${name} saved (${saved.entries} entries)`);
    ctx.session.flash = { kind: "ok", text: `Saved IP list ${name} (${saved.entries} entries).` };
    return redirect(`${CONSOLE_PREFIX}/ip-lists`);
  } catch (error) {
    return await ipListsPage({ ...ctx, params: {} }, {
      name,
      description,
      content,
      error: messageOf(error),
    });
  }
}

/** POST /console/ip-lists/:name/delete */
export async function deleteIpList(ctx: ConsoleContext): Promise<Response> {
  const name = ctx.params.name ?? "";
  try {
    await ctx.store.deleteIpList(name);
    ctx.session.flash = { kind: "ok", text: `Deleted IP list ${name}.` };
  } catch (error) {
    ctx.session.flash = { kind: "error", text: messageOf(error) };
  }
  return redirect(`${CONSOLE_PREFIX}/ip-lists`);
}
