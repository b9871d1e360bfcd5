// The executions as a tree: roots newest first, a workflow's children under it when it is expanded
// (GET /v1/executions/{id}/children), and the filters by status or outcome, function, digest and tag; a filter by
// status, outcome, function or digest lists the matching executions wherever they are in their trees instead.
// The filters and the page live in the page's own URL (`?status=&outcome=&ffqn=&digest=&tag=K=V&cursor=`), so a
// filtered view can be shared; Older and Newer follow the API's `next` and `previous` cursors.
"use strict";

import { access, api, el, notice, shortFfqn, statusBadge, tagChips, time, took } from "./common.js";

const PAGE = 50;
// The single-valued filters, as the page's URL and the API name them.
const NAMES = ["status", "outcome", "ffqn", "digest", "cursor"];
const expanded = new Set();
let filters = readFilters();
// The cursors of the page shown (the API's `next` and `previous`).
let paging = { next: null, previous: null };
let generation = 0;
let onSelect = () => {};

function readFilters() {
  const query = new URLSearchParams(location.search);
  const out = { tags: query.getAll("tag") };
  for (const name of NAMES) out[name] = query.get(name) || "";
  return out;
}

function writeFilters() {
  const query = new URLSearchParams();
  for (const name of NAMES) if (filters[name]) query.set(name, filters[name]);
  for (const tag of filters.tags) query.append("tag", tag);
  const text = query.toString();
  history.replaceState(null, "", (text ? "?" + text : location.pathname) + location.hash);
}

/** A tree needs the roots; a filter by status, outcome, function or digest lists the matching executions wherever
 * they are in their trees (a failed child of a tree that succeeded, say), each child naming its parent and root. */
function treeMode() {
  return !filters.status && !filters.outcome && !filters.ffqn && !filters.digest;
}

function listingQuery() {
  const query = new URLSearchParams({ limit: String(PAGE) });
  for (const name of NAMES) if (filters[name]) query.set(name, filters[name]);
  for (const tag of filters.tags) query.append("tag", tag);
  if (treeMode()) query.set("root", "true");
  return query.toString();
}

function describeFilters() {
  const parts = [];
  if (filters.status) parts.push("status " + filters.status);
  if (filters.outcome) parts.push("outcome " + filters.outcome);
  if (filters.ffqn) parts.push("function " + filters.ffqn);
  if (filters.digest) parts.push("digest " + filters.digest.slice(0, 19));
  if (filters.tags.length) parts.push("tags " + filters.tags.join(" "));
  return parts.join(", ");
}

function toggle(id) {
  if (expanded.has(id)) expanded.delete(id);
  else expanded.add(id);
  loadExecutions();
}

function row(x, depth, selected) {
  const canExpand = x.kind === "workflow";
  const open = expanded.has(x.execution_id);
  const button = canExpand
    ? el(
        "button",
        {
          type: "button",
          class: "toggle",
          "aria-expanded": String(open),
          title: open ? "hide its children" : "show its children",
          onclick: (event) => {
            event.stopPropagation();
            toggle(x.execution_id);
          },
        },
        open ? "▾" : "▸"
      )
    : el("span", { class: "toggle-space" });
  const orphan = depth === 0 && x.parent_id ? lineage(x) : null;
  return el(
    "tr",
    {
      class: "execution depth-" + Math.min(depth, 6) + (x.execution_id === selected ? " selected" : ""),
      "data-id": x.execution_id,
      "data-depth": String(depth),
      onclick: () => onSelect(x.execution_id),
    },
    el("td", { class: "id", title: x.execution_id, style: "padding-left: " + (0.5 + depth * 1.2) + "rem" }, button, el("code", {}, x.execution_id), orphan),
    el("td", { title: x.ffqn }, el("code", {}, shortFfqn(x.ffqn)), x.tags ? el("span", { class: "row-tags", title: Object.entries(x.tags).map(([k, v]) => k + "=" + v).join(" ") }, ...tagChips(x.tags)) : null),
    el("td", {}, statusBadge(x)),
    el("td", { class: "nowrap", title: x.created_at }, time(x.created_at)),
    el("td", { class: "nowrap", title: took(x) }, took(x))
  );
}

/** Where a child listed on its own sits: its parent, and its tree's root when that is another execution (links). */
function lineage(x) {
  const root = x.execution_id.split(".")[0];
  const link = (id) =>
    el("a", { href: "#" + encodeURIComponent(id), class: "lineage", onclick: (event) => { event.preventDefault(); event.stopPropagation(); onSelect(id); } }, el("code", {}, id));
  const inTree = root !== x.parent_id ? [" in the tree of ", link(root)] : [];
  return el("div", { class: "muted small" }, "child of ", link(x.parent_id), ...inTree);
}

/** A child a fork copied answered from its source: never created, so no row to open; it names the original. */
function copiedRow(copy, depth) {
  const original = copy.original_id
    ? el("a", { href: "#" + encodeURIComponent(copy.original_id), onclick: (event) => { event.preventDefault(); onSelect(copy.original_id); } }, el("code", {}, copy.original_id))
    : "the original run";
  return el(
    "tr",
    { class: "copied", "data-id": copy.child_id, "data-depth": String(depth) },
    el("td", { class: "id", title: copy.child_id, style: "padding-left: " + (0.5 + depth * 1.2) + "rem" }, el("span", { class: "toggle-space" }), el("code", { class: "muted" }, copy.child_id)),
    el("td", { title: copy.ffqn }, el("code", {}, shortFfqn(copy.ffqn))),
    el("td", { colspan: "3", class: "muted small" }, "copied from ", original)
  );
}

/** The rows of `executions` and, under each expanded one, its children's rows (recursively). */
async function rows(executions, depth, selected) {
  const out = [];
  const children = await Promise.all(
    executions.map((x) =>
      expanded.has(x.execution_id) ? api("/v1/executions/" + encodeURIComponent(x.execution_id) + "/children") : null
    )
  );
  for (const [i, x] of executions.entries()) {
    out.push(row(x, depth, selected));
    const found = children[i];
    if (!found) continue;
    const copied = found.copied || [];
    if (!found.children.length && !copied.length) {
      out.push(el("tr", { class: "none" }, el("td", { colspan: "5", class: "muted", style: "padding-left: " + (2 + depth * 1.2) + "rem" }, "no children")));
      continue;
    }
    out.push(...(await rows(found.children, depth + 1, selected)));
    for (const copy of copied) out.push(copiedRow(copy, depth + 1));
    if (found.total > found.children.length + copied.length) {
      const more = found.total - found.children.length - copied.length;
      out.push(el("tr", {}, el("td", { colspan: "5", class: "muted" }, more + " more children not shown")));
    }
  }
  return out;
}

export async function loadExecutions(selected) {
  const body = document.querySelector("#executions tbody");
  // A refresh that started before a click on Older must not show its page after the click's.
  const mine = ++generation;
  let data;
  try {
    data = await api("/v1/executions?" + listingQuery());
    if (mine !== generation) return;
    access.admin = true;  // listing executions is an admin request
  } catch (error) {
    if (error.status === 403 || error.status === 401) {
      access.admin = false;
      body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "Listing executions needs an admin token.")));
      showPaging({ next: null, previous: null, partial: false }, 0);
      return;
    }
    throw error;
  }
  if (filters.cursor && !data.previous) {
    // Back at the newest page: the URL says so by having no cursor.
    filters.cursor = "";
    writeFilters();
  }
  const current = selected === undefined ? decodeURIComponent(location.hash.slice(1)) : selected;
  const out = await rows(data.executions, 0, current);
  if (mine !== generation) return;
  if (!out.length) {
    const what = describeFilters() ? "No executions with " + describeFilters() : "No executions";
    const none = data.partial ? what + " among those searched; Older → searches further back." : describeFilters() || filters.cursor ? what + "." : "No executions yet.";
    out.push(el("tr", {}, el("td", { colspan: "5", class: "muted" }, none)));
  }
  document.getElementById("listing-mode").textContent = treeMode()
    ? "Trees: roots newest first; ▸ shows a workflow's children."
    : "Every matching execution, wherever it is in its tree (a child names its parent and root), newest first.";
  body.replaceChildren(...out);
  showPaging(data, data.executions.length);
}

/** Older/Newer/Newest under the listing, from the page's cursors; a partial page says the search stopped early. */
function showPaging(data, shown) {
  paging = { next: data.next, previous: data.previous };
  document.getElementById("page-older").disabled = !data.next;
  document.getElementById("page-newer").disabled = !data.previous;
  document.getElementById("page-newest").hidden = !filters.cursor;
  document.getElementById("pager").hidden = !data.next && !data.previous && !filters.cursor;
  const note = data.partial
    ? shown + " found before the gateway stopped searching (it reads a bounded number of executions per page); Older → searches further back."
    : "";
  document.getElementById("page-note").textContent = note;
}

function goTo(cursor) {
  filters.cursor = cursor || "";
  writeFilters();
  loadExecutions().then(() => notice(""), (error) => notice(error.message));
}

/** Offer the deployed functions and known digests as suggestions in the filter inputs. */
export function setChoices(ffqns, digests) {
  const options = (values) => values.map((value) => el("option", { value }));
  document.getElementById("ffqn-choices").replaceChildren(...options(ffqns));
  document.getElementById("digest-choices").replaceChildren(...options(digests));
}

/** Show the executions of one digest (the deployments section links its digests here). */
export function filterByDigest(digest) {
  filters = { status: "", outcome: "", ffqn: "", digest, cursor: "", tags: [] };
  fillForm();
  writeFilters();
  loadExecutions();
}

/** The status menu holds the statuses and, as `outcome:KIND`, the outcomes of finished executions. */
function fillForm() {
  document.getElementById("status-filter").value = filters.outcome ? "outcome:" + filters.outcome : filters.status;
  document.getElementById("ffqn-filter").value = filters.ffqn;
  document.getElementById("digest-filter").value = filters.digest;
  document.getElementById("tag-filter").value = filters.tags.join(" ");
}

export function initListing(select) {
  onSelect = select;
  fillForm();
  document.getElementById("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = document.getElementById("status-filter").value;
    const outcome = chosen.startsWith("outcome:") ? chosen.slice("outcome:".length) : "";
    filters = {
      status: outcome ? "" : chosen,
      outcome,
      ffqn: document.getElementById("ffqn-filter").value.trim(),
      digest: document.getElementById("digest-filter").value.trim(),
      cursor: "",
      tags: document.getElementById("tag-filter").value.split(/\s+/).filter(Boolean),
    };
    goTo("");
  });
  document.getElementById("filter-clear").addEventListener("click", () => filterByDigest(""));
  document.getElementById("page-older").addEventListener("click", () => goTo(paging.next));
  document.getElementById("page-newer").addEventListener("click", () => goTo(paging.previous));
  document.getElementById("page-newest").addEventListener("click", () => goTo(""));
}
