// Deployments and versions: the revisions with their components, and per function which digests run
// (the active route and those with unfinished executions). A digest shows its executions in the listing;
// a workflow's digest offers an upgrade dry run (POST /v1/functions/{ffqn}/upgrade-check).
"use strict";

import { api, el, shortDigest, shortFfqn, showError, time } from "./common.js";
import { filterByDigest } from "./listing.js";

let kinds = new Map();
// Workflow ffqn -> the digests of every workflow component (in any revision) that exports it: upgrade targets.
let targets = new Map();

function digestLink(digest) {
  return el(
    "a",
    { href: "?digest=" + encodeURIComponent(digest), title: "the executions on " + digest, onclick: (event) => { event.preventDefault(); filterByDigest(digest); } },
    el("code", {}, shortDigest(digest))
  );
}

function revisionRows(data) {
  return data.revisions.map((r) =>
    el(
      "tr",
      { class: r.active ? "active-revision" : "", "data-revision": String(r.revision) },
      el("td", {}, String(r.revision), r.active ? el("span", {}, " ", el("span", { class: "status status-finished" }, "active")) : null),
      el("td", {}, r.name),
      el("td", { class: "nowrap" }, time(r.created_at)),
      el("td", {}, ...r.components.map((c) => el("div", { title: c.functions.join("\n") }, c.name + " (" + c.kind + ") ", digestLink(c.digest))))
    )
  );
}

function versionRows(data) {
  return data.versions.map((v) => {
    // Offered only where there is something to upgrade from: another digest of a workflow component exporting it.
    const others = (targets.get(v.ffqn) || []).filter((d) => d !== v.digest);
    const check = kinds.get(v.digest) === "workflow" && others.length
      ? el("button", { type: "button", class: "small-button", title: "replay the running executions of the other digests on this one", onclick: () => upgradeCheck(v.ffqn, v.digest) }, "dry-run upgrade to this")
      : null;
    return el(
      "tr",
      { "data-ffqn": v.ffqn, "data-digest": v.digest },
      el("td", { title: v.ffqn }, el("code", {}, shortFfqn(v.ffqn))),
      el("td", { title: v.digest }, digestLink(v.digest), v.active ? el("span", {}, " ", el("span", { class: "status status-running", title: "new executions start here" }, "routed")) : null),
      el("td", {}, String(v.unfinished)),
      el("td", { title: v.revisions.join(", ") }, v.revisions.join(", ")),
      el("td", {}, check)
    );
  });
}

export async function loadDeployments() {
  let data;
  try {
    data = await api("/v1/deployments");
  } catch (error) {
    if (error.status !== 401 && error.status !== 403) throw error;
    const needs = el("tr", {}, el("td", { colspan: "5", class: "muted" }, "Listing deployments needs an admin token."));
    document.querySelector("#revisions tbody").replaceChildren(needs);
    document.querySelector("#versions tbody").replaceChildren(needs.cloneNode(true));
    return [];
  }
  kinds = new Map(data.revisions.flatMap((r) => r.components.map((c) => [c.digest, c.kind])));
  targets = new Map();
  for (const c of data.revisions.flatMap((r) => r.components)) {
    if (c.kind !== "workflow") continue;
    for (const ffqn of c.functions) targets.set(ffqn, [...new Set([...(targets.get(ffqn) || []), c.digest])]);
  }
  fillUpgradeForm();
  document.querySelector("#revisions tbody").replaceChildren(...revisionRows(data));
  document.querySelector("#versions tbody").replaceChildren(...versionRows(data));
  return [...kinds.keys()];
}

async function upgradeCheck(ffqn, digest) {
  // The form above shows what this dry run is of, whichever way it was started (the form or a row's button).
  const ffqnSelect = document.getElementById("upgrade-ffqn");
  ffqnSelect.value = ffqn;
  fillUpgradeForm();
  document.getElementById("upgrade-to").value = digest;
  const out = document.getElementById("upgrade-report");
  showError("upgrade-error", "");
  out.replaceChildren(el("p", { class: "muted" }, "Replaying the running executions of " + ffqn + " on " + shortDigest(digest) + "…"));
  try {
    const report = await api("/v1/functions/" + ffqn + "/upgrade-check", "POST", { to: digest });
    const head = el("p", {}, "Dry run: ", el("code", {}, report.ffqn), " to ", el("code", {}, shortDigest(report.to_digest)), " — nothing was changed.");
    if (!report.executions.length) {
      out.replaceChildren(head, el("p", { class: "muted" }, "No running execution of it is on another digest."));
      return;
    }
    const rows = report.executions.map((e) =>
      el(
        "tr",
        { "data-id": e.execution_id },
        el("td", { class: "cut", title: e.execution_id }, el("code", {}, e.execution_id)),
        el("td", { class: "cut", title: e.from }, el("code", {}, shortDigest(e.from))),
        el("td", {}, el("span", { class: "outcome outcome-" + e.outcome }, e.outcome)),
        el("td", { class: "mono" }, e.detail || (e.verdict && e.verdict.message) || "")
      )
    );
    const table = el("table", { id: "upgrade-table" }, el("thead", {}, el("tr", {}, el("th", {}, "Execution"), el("th", {}, "From"), el("th", {}, "Outcome"), el("th", {}, "Detail"))), el("tbody", {}, ...rows));
    out.replaceChildren(head, table);
  } catch (error) {
    out.replaceChildren();
    showError("upgrade-error", "upgrade check refused: " + error.message);
  }
}

/** Keep the form's options in step with the revisions, and what the user chose while it is still offered. */
function setOptions(select, values, label) {
  const chosen = select.value;
  if ([...select.options].map((o) => o.value).join() !== values.join()) {
    select.replaceChildren(...values.map((value) => el("option", { value }, label(value))));
  }
  if (values.includes(chosen)) select.value = chosen;
}

function fillUpgradeForm() {
  const ffqnSelect = document.getElementById("upgrade-ffqn");
  setOptions(ffqnSelect, [...targets.keys()].sort(), (ffqn) => ffqn);
  setOptions(document.getElementById("upgrade-to"), targets.get(ffqnSelect.value) || [], shortDigest);
}

export function initDeployments() {
  document.getElementById("upgrade-ffqn").addEventListener("change", fillUpgradeForm);
  document.getElementById("upgrade-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const ffqn = document.getElementById("upgrade-ffqn").value;
    const to = document.getElementById("upgrade-to").value;
    if (!ffqn || !to) {
      showError("upgrade-error", "no workflow is deployed: nothing to check");
      return;
    }
    upgradeCheck(ffqn, to);
  });
}
