// The dashboard: functions, recent executions, one execution's log as a timeline, a form
// that supplies a waiting stub's result, and a button that pauses or resumes an execution.
// Plain DOM, no build step. Data comes from the API v1 with the token the user typed (if any).
"use strict";

const REFRESH_MS = 2000;
const TOKEN_KEY = "dolmen-token";
let selected = decodeURIComponent(location.hash.slice(1)) || null;
// The listing's tag filter: `?tag=KEY=VALUE` (repeatable) in the page's own URL, as the API takes it.
let tagFilter = new URLSearchParams(location.search).getAll("tag");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function notice(text) {
  const box = document.getElementById("notice");
  box.hidden = !text;
  box.textContent = text || "";
}

async function api(path, method, payload) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const init = { headers, method: method || "GET" };
  if (payload !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = payload;
  }
  const response = await fetch(path, init);
  const body = await response.json().catch(() => null);
  if (response.status === 401) {
    document.getElementById("token-form").hidden = false;
    throw new Error("This gateway needs a bearer token: enter one above.");
  }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : response.statusText;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

function statusBadge(execution) {
  const failed = execution.failure !== undefined;
  if (!failed && execution.waiting_for === "result") {
    // A stub: never run, it waits until its result is supplied from outside.
    return el("span", { class: "status status-waiting", title: "a stub: supply its result to finish it" }, "waiting for result");
  }
  const label = failed ? "failed: " + execution.failure.kind : execution.status;
  const badge = el("span", { class: "status status-" + (failed ? "failed" : execution.status) }, label);
  if (!execution.paused) return badge;
  // Paused: no runner takes it until it is resumed (what arrives meanwhile waits in its log).
  return el("span", {}, badge, " ", el("span", { class: "status status-paused", title: "resume it to let it run" }, "paused"));
}

function took(execution) {
  if (!execution.finished_at) return "";
  const ms = Date.parse(execution.finished_at) - Date.parse(execution.created_at);
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
}

function time(iso) {
  return new Date(iso).toLocaleTimeString();
}

function short(value) {
  const text = JSON.stringify(value);
  return text.length > 160 ? text.slice(0, 157) + "…" : text;
}

async function loadFunctions() {
  const data = await api("/v1/functions");
  document.getElementById("deployment").textContent =
    "deployment " + data.deployment + ", revision " + data.revision;
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
      el("td", {}, el("code", {}, f.signature))
    )
  );
  document.querySelector("#functions tbody").replaceChildren(...rows);
}

function limitsText(limits) {
  const parts = [];
  if (limits.max_running != null) parts.push("at most " + limits.max_running + " running");
  if (limits.starts_per_second != null) parts.push(limits.starts_per_second + " starts/s");
  return "limits: " + parts.join(", ");
}

function tagChips(tags) {
  return Object.entries(tags || {}).map(([key, value]) => el("span", { class: "tag" }, key + "=" + value));
}

function listingQuery() {
  const query = new URLSearchParams({ limit: "25" });
  for (const tag of tagFilter) query.append("tag", tag);
  return query.toString();
}

async function loadExecutions() {
  let data;
  try {
    data = await api("/v1/executions?" + listingQuery());
  } catch (error) {
    if (error.status === 403) {
      document.querySelector("#executions tbody").replaceChildren(
        el("tr", {}, el("td", { colspan: "5", class: "muted" }, "Listing executions needs an admin token."))
      );
      return;
    }
    throw error;
  }
  const rows = data.executions.map((x) =>
    el(
      "tr",
      { class: "execution" + (x.execution_id === selected ? " selected" : ""), "data-id": x.execution_id, onclick: () => select(x.execution_id) },
      el("td", {}, el("code", {}, x.execution_id)),
      el("td", {}, el("code", {}, x.ffqn), x.tags ? el("div", {}, ...tagChips(x.tags)) : null),
      el("td", {}, statusBadge(x)),
      el("td", { class: "nowrap" }, time(x.created_at)),
      el("td", { class: "nowrap" }, took(x))
    )
  );
  if (!rows.length) {
    const none = tagFilter.length ? "No executions with tags " + tagFilter.join(" ") + "." : "No executions yet.";
    rows.push(el("tr", {}, el("td", { colspan: "5", class: "muted" }, none)));
  }
  document.querySelector("#executions tbody").replaceChildren(...rows);
}

function describeEvent(event) {
  const { index, type, at, ...data } = event;
  if (type === "created") return "params " + short(data.params);
  if (type === "finished") {
    if (data.failure) return data.failure.kind + ": " + data.failure.message;
    return (data.supplied ? "result supplied " : "result ") + short(data.result);
  }
  if (type === "child_submitted") return data.ffqn + " " + short(data.params) + " → " + data.child_id;
  if (type === "response") return data.child_id ? data.child_id + " → " + short(data.result !== undefined ? data.result : data.failure) : short(data);
  return Object.keys(data).length ? short(data) : "";
}

async function loadDetail() {
  const section = document.getElementById("detail-section");
  if (!selected) {
    section.hidden = true;
    return;
  }
  const id = encodeURIComponent(selected);
  const [execution, log] = await Promise.all([api("/v1/executions/" + id), api("/v1/executions/" + id + "/events")]);
  section.hidden = false;
  document.getElementById("detail-id").textContent = execution.execution_id;
  const facts = [
    ["Function", el("code", {}, execution.ffqn)],
    ["Status", statusBadge(execution)],
    ["Component", el("code", {}, execution.component_digest.slice(0, 19) + "…")],
    ["Created", execution.created_at],
  ];
  if (execution.tags) facts.push(["Tags", el("span", {}, ...tagChips(execution.tags))]);
  if (execution.priority) facts.push(["Priority", execution.priority]);
  if (execution.waiting_for === "result") {
    facts.push([
      "Supply",
      el("code", {}, "PUT /v1/executions/" + execution.execution_id + "/result"),
      " or ",
      el("code", {}, "platform executions complete " + execution.execution_id + " VALUE"),
      " or the form below",
    ]);
  }
  showCompleteForm(execution);
  showPauseForm(execution);
  if (execution.finished_at) facts.push(["Took", took(execution)]);
  if (execution.result !== undefined) facts.push(["Result", el("code", {}, short(execution.result))]);
  if (execution.failure) facts.push(["Failure", execution.failure.kind + ": " + execution.failure.message]);
  document.getElementById("detail").replaceChildren(...facts.flatMap(([k, ...v]) => [el("dt", {}, k), el("dd", {}, ...v)]));
  const start = log.events.length ? log.events[0].at : 0;
  const items = log.events.map((event) =>
    el(
      "li",
      { class: "event event-" + event.type + (event.failure ? " failed" : "") },
      el("span", { class: "type" }, "#" + event.index + " " + event.type),
      el("span", { class: "at" }, "+" + (event.at - start) + " ms"),
      el("span", { class: "data mono" }, describeEvent(event))
    )
  );
  document.getElementById("timeline").replaceChildren(...items);
}

// The form stays outside the refreshed detail, so what the user types survives a refresh.
async function showCompleteForm(execution) {
  const form = document.getElementById("complete-form");
  const waiting = execution.waiting_for === "result";
  if (!waiting || form.dataset.id !== execution.execution_id) {
    document.getElementById("complete-value").value = "";
    completeError("");
  }
  form.dataset.id = waiting ? execution.execution_id : "";
  form.hidden = !waiting;
  if (waiting && form.dataset.ffqn !== execution.ffqn) {
    form.dataset.ffqn = execution.ffqn;
    const fn = await api("/v1/functions/" + execution.ffqn).catch(() => null);
    const type = fn && fn.result ? fn.result : "nothing (null)";
    document.getElementById("complete-value").placeholder = "JSON of " + type;
  }
}

// Shown next to the form until the next try: the page's notice is cleared by every refresh.
function completeError(text) {
  const box = document.getElementById("complete-error");
  box.hidden = !text;
  box.textContent = text;
}

async function supplyResult(event) {
  event.preventDefault();
  const form = document.getElementById("complete-form");
  const text = document.getElementById("complete-value").value.trim();
  try {
    JSON.parse(text);
  } catch (error) {
    completeError("not valid JSON: " + error.message);
    return;
  }
  try {
    await api("/v1/executions/" + encodeURIComponent(form.dataset.id) + "/result", "PUT", text);
    completeError("");
    await refresh();
  } catch (error) {
    completeError(error.message);
  }
}

// Pause or resume the selected execution (stubs never run: nothing to pause).
function showPauseForm(execution) {
  const form = document.getElementById("pause-form");
  const pausable = !execution.finished_at && execution.status !== "finished" && execution.kind !== "stub";
  if (form.dataset.id !== execution.execution_id) pauseError("");
  form.dataset.id = execution.execution_id;
  form.dataset.action = execution.paused ? "resume" : "pause";
  form.hidden = !pausable;
  document.getElementById("pause-button").textContent = execution.paused ? "Resume" : "Pause";
}

function pauseError(text) {
  const box = document.getElementById("pause-error");
  box.hidden = !text;
  box.textContent = text;
}

async function pauseOrResume(event) {
  event.preventDefault();
  const form = document.getElementById("pause-form");
  try {
    await api("/v1/executions/" + encodeURIComponent(form.dataset.id) + "/" + form.dataset.action, "POST");
    pauseError("");
    await refresh();
  } catch (error) {
    pauseError(error.message);
  }
}

function select(id) {
  selected = id;
  history.replaceState(null, "", "#" + encodeURIComponent(id));
  for (const row of document.querySelectorAll("tr.execution")) row.classList.toggle("selected", row.dataset.id === id);
  refresh();
}

async function refresh() {
  try {
    await Promise.all([loadFunctions(), loadExecutions(), loadDetail()]);
    notice("");
  } catch (error) {
    notice(error.message);
  }
}

document.getElementById("complete-form").addEventListener("submit", supplyResult);
document.getElementById("pause-form").addEventListener("submit", pauseOrResume);
document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token-form").hidden = true;
  refresh();
});
document.getElementById("tag-filter").value = tagFilter.join(" ");
document.getElementById("tag-form").addEventListener("submit", (event) => {
  event.preventDefault();
  tagFilter = document.getElementById("tag-filter").value.split(/\s+/).filter(Boolean);
  const query = new URLSearchParams();
  for (const tag of tagFilter) query.append("tag", tag);
  history.replaceState(null, "", (query.toString() ? "?" + query : location.pathname) + location.hash);
  refresh();
});
window.addEventListener("hashchange", () => {
  selected = decodeURIComponent(location.hash.slice(1)) || null;
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
