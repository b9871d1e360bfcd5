// One execution: its facts, its timeline (timeline.js), its event log, and what can be done to it:
// supply a stub's result, pause or resume, and the admin actions (actions.js).
"use strict";

import { showActions } from "./actions.js";
import { api, el, short, shortDigest, statusBadge, tagChips, took, showError } from "./common.js";
import { copiedEvents, draw, lanes } from "./timeline.js";

let onSelect = () => {};

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

function link(id) {
  return el("a", { href: "#" + encodeURIComponent(id), onclick: (event) => { event.preventDefault(); onSelect(id); } }, el("code", {}, id));
}

function facts(execution, events) {
  const out = [
    ["Function", el("code", {}, execution.ffqn)],
    ["Status", statusBadge(execution)],
    ["Component", el("code", { title: execution.component_digest }, shortDigest(execution.component_digest) + "…")],
    ["Created", execution.created_at],
  ];
  if (execution.parent_id) out.push(["Parent", link(execution.parent_id)]);
  const created = events.length && events[0].type === "created" ? events[0] : {};
  if (created.forked_from) {
    const source = created.forked_from;
    out.push(["Forked from", link(source.execution_id), " (its first " + source.at + " events; copied events are marked in the log)"]);
  }
  if (created.rerun_of) out.push(["Rerun of", link(created.rerun_of)]);
  if (execution.continued_from) out.push(["Continues", link(execution.continued_from)]);
  if (execution.continued_as) out.push(["Continued as", link(execution.continued_as)]);
  if (execution.tags) out.push(["Tags", el("span", {}, ...tagChips(execution.tags))]);
  if (execution.priority) out.push(["Priority", execution.priority]);
  if (execution.attempt > 1) out.push(["Attempt", String(execution.attempt)]);
  if (execution.waiting_for === "result") {
    out.push([
      "Supply",
      el("code", {}, "PUT /v1/executions/" + execution.execution_id + "/result"),
      " or ",
      el("code", {}, "platform executions complete " + execution.execution_id + " VALUE"),
      " or the form below",
    ]);
  }
  if (execution.finished_at) out.push(["Took", took(execution)]);
  if (execution.result !== undefined) out.push(["Result", el("code", {}, short(execution.result))]);
  if (execution.failure) out.push(["Failure", el("pre", { class: "failure-text" }, execution.failure.kind + ": " + execution.failure.message)]);
  return out;
}

export async function loadDetail(selected) {
  const section = document.getElementById("detail-section");
  const main = document.querySelector("main");
  if (!selected) {
    section.hidden = true;
    main.classList.remove("has-detail");
    return;
  }
  const id = encodeURIComponent(selected);
  const [execution, log] = await Promise.all([api("/v1/executions/" + id), api("/v1/executions/" + id + "/events")]);
  const family = execution.kind === "workflow" ? await api("/v1/executions/" + id + "/children") : { children: [], copied: [] };
  const opened = section.hidden || document.getElementById("detail-id").textContent !== execution.execution_id;
  section.hidden = false;
  main.classList.add("has-detail");
  // Where the detail goes above the lists (a narrow window), show it when another execution is opened.
  if (opened && getComputedStyle(section).position !== "sticky") section.scrollIntoView({ block: "nearest" });
  document.getElementById("detail-id").textContent = execution.execution_id;
  document.getElementById("detail").replaceChildren(...facts(execution, log.events).flatMap(([k, ...v]) => [el("dt", {}, k), el("dd", {}, ...v)]));
  showCompleteForm(execution);
  showPauseForm(execution);
  showActions(execution, log.events);
  const model = lanes(execution, log.events, family.children, Date.now(), family.copied);
  document.getElementById("chart").replaceChildren(draw(model, onSelect, showCopied));
  const note = document.getElementById("chart-note");
  if (note.dataset.id !== execution.execution_id) note.hidden = true;
  const copied = copiedEvents(execution, log.events);
  const start = model.start;
  const items = log.events.map((event) =>
    el(
      "li",
      { class: "event event-" + event.type + (event.failure ? " failed" : "") + (event.index < copied ? " copied" : "") },
      el("span", { class: "type" }, "#" + event.index + " " + event.type),
      el("span", { class: "at" }, event.index < copied ? "copied from the original run" : "+" + (event.at - start) + " ms"),
      el("span", { class: "data mono" }, describeEvent(event))
    )
  );
  document.getElementById("timeline").replaceChildren(...items);
}

/** What a click on a child a fork copied shows (there is no execution to open): where its result came from. */
function showCopied(copy) {
  const note = document.getElementById("chart-note");
  note.dataset.id = document.getElementById("detail-id").textContent;
  const original = copy.original_id ? [" (", link(copy.original_id), ")"] : [];
  note.replaceChildren(
    el("code", {}, copy.child_id), " was copied from the original run", ...original,
    ": the fork copied its submission and response, so it was never started again. Its response: ",
    el("code", {}, short(copy.response.result !== undefined ? copy.response.result : copy.response.failure))
  );
  note.hidden = false;
}

// The form stays outside the refreshed detail, so what the user types survives a refresh.
async function showCompleteForm(execution) {
  const form = document.getElementById("complete-form");
  const waiting = execution.waiting_for === "result";
  if (!waiting || form.dataset.id !== execution.execution_id) {
    document.getElementById("complete-value").value = "";
    showError("complete-error", "");
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

async function supplyResult(event, refresh) {
  event.preventDefault();
  const form = document.getElementById("complete-form");
  const text = document.getElementById("complete-value").value.trim();
  try {
    JSON.parse(text);
  } catch (error) {
    showError("complete-error", "not valid JSON: " + error.message);
    return;
  }
  try {
    await api("/v1/executions/" + encodeURIComponent(form.dataset.id) + "/result", "PUT", text);
    showError("complete-error", "");
    await refresh();
  } catch (error) {
    showError("complete-error", error.message);
  }
}

// Pause or resume the selected execution (stubs never run: nothing to pause).
function showPauseForm(execution) {
  const form = document.getElementById("pause-form");
  const pausable = !execution.finished_at && execution.status !== "finished" && execution.kind !== "stub";
  if (form.dataset.id !== execution.execution_id) showError("pause-error", "");
  form.dataset.id = execution.execution_id;
  form.dataset.action = execution.paused ? "resume" : "pause";
  form.hidden = !pausable;
  document.getElementById("pause-button").textContent = execution.paused ? "Resume" : "Pause";
}

async function pauseOrResume(event, refresh) {
  event.preventDefault();
  const form = document.getElementById("pause-form");
  try {
    await api("/v1/executions/" + encodeURIComponent(form.dataset.id) + "/" + form.dataset.action, "POST");
    showError("pause-error", "");
    await refresh();
  } catch (error) {
    showError("pause-error", error.message);
  }
}

export function initDetail(select, refresh) {
  onSelect = select;
  document.getElementById("complete-form").addEventListener("submit", (event) => supplyResult(event, refresh));
  document.getElementById("pause-form").addEventListener("submit", (event) => pauseOrResume(event, refresh));
}
