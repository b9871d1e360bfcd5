// The dashboard: the execution trees with filters (listing.js), one execution's facts, timeline, log and
// actions (detail.js, timeline.js, actions.js), the deployments and versions (deployments.js) and the
// functions. Plain ES modules, no build step; data comes from the API v1 with the token the user gave.
"use strict";

import { initActions } from "./actions.js";
import { TOKEN_KEY, access, api, el, notice, token } from "./common.js";
import { initDeployments, loadDeployments } from "./deployments.js";
import { initDetail, loadDetail } from "./detail.js";
import { initListing, loadExecutions, setChoices } from "./listing.js";

const REFRESH_MS = 2000;
let selected = decodeURIComponent(location.hash.slice(1)) || null;

function limitsText(limits) {
  const parts = [];
  if (limits.max_running != null) parts.push("at most " + limits.max_running + " running");
  if (limits.starts_per_second != null) parts.push(limits.starts_per_second + " starts/s");
  return "limits: " + parts.join(", ");
}

async function loadFunctions() {
  let data;
  try {
    data = await api("/v1/functions");
  } catch (error) {
    const header = document.getElementById("deployment");
    if (error.status === 401) header.textContent = token() ? "this token is not one the gateway knows: enter another under Token" : "this gateway needs a token: enter it under Token";
    else header.textContent = "not loaded: " + error.message;
    throw error;
  }
  document.getElementById("deployment").textContent = "deployment " + data.deployment + ", revision " + data.revision;
  const rows = data.functions.map((f) =>
    el(
      "tr",
      {},
      el(
        "td",
        {},
        el("code", {}, f.ffqn),
        f.paused ? el("span", {}, " ", el("span", { class: "status status-paused" }, "paused")) : null,
        f.limits ? el("div", { class: "limits" }, limitsText(f.limits)) : null
      ),
      el("td", { class: "nowrap" }, f.kind),
      el("td", { title: f.signature }, el("code", {}, f.signature))
    )
  );
  document.querySelector("#functions tbody").replaceChildren(...rows);
  return data.functions.map((f) => f.ffqn);
}

function select(id) {
  selected = id;
  history.replaceState(null, "", location.pathname + location.search + "#" + encodeURIComponent(id));
  for (const row of document.querySelectorAll("tr.execution")) row.classList.toggle("selected", row.dataset.id === id);
  refresh();
}

async function refresh() {
  const [ffqns, digests, ...rest] = await Promise.allSettled([loadFunctions(), loadDeployments(), loadExecutions(selected), loadDetail(selected)]);
  showAccess();
  const failed = [ffqns, digests, ...rest].find((r) => r.status === "rejected");
  if (failed) {
    notice(failed.reason.message);
    return;
  }
  setChoices(ffqns.value, digests.value);
  notice("");
}

/** "needs an admin token" next to the admin actions only when it is true: tokens are on and this one is not admin. */
function showAccess() {
  for (const hint of document.querySelectorAll(".admin-hint")) hint.hidden = access.admin !== false;
}

function showToken() {
  document.getElementById("token-state").textContent = token() ? "token set for this tab" : "no token";
  document.getElementById("token-forget").hidden = !token();
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = document.getElementById("token");
  // sessionStorage: the token lives as long as this tab, never in the URL or a cookie.
  sessionStorage.setItem(TOKEN_KEY, field.value.trim());
  field.value = "";
  access.admin = null;
  showToken();
  refresh();
});
document.getElementById("token-forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  access.admin = null;
  showToken();
  refresh();
});
window.addEventListener("hashchange", () => {
  selected = decodeURIComponent(location.hash.slice(1)) || null;
  refresh();
});

initListing(select);
initDetail(select, refresh);
initActions(select, refresh);
initDeployments();
showToken();
refresh();
setInterval(refresh, REFRESH_MS);
