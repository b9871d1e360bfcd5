// The admin actions on the selected execution: cancel, rerun, fork. They need an admin token when the
// gateway has tokens (the header's Token field); the API's refusal is shown next to the buttons.
"use strict";

import { api, el, showError } from "./common.js";

let current = null;
// Set while "Cancellation requested." is shown: the message goes once the execution has finished.
let cancelAsked = false;
let onSelect = () => {};
let refresh = async () => {};

/**
 * The largest `at` the fork API accepts for this log: "fork at event N" copies events #0 to #N-1 and the fork
 * goes on from there, so N runs from 1 to the index of the `finished` event (the log's length if none).
 */
export function forkLimit(events) {
  const finished = events.find((e) => e.type === "finished");
  return finished ? finished.index : events.length;
}

/** Update the actions for `execution`; what the user typed in the fork field survives refreshes of the same execution,
 * while a field left at the last event follows the log as it grows. */
export function showActions(execution, events) {
  const box = document.getElementById("actions");
  const changed = !current || current.execution_id !== execution.execution_id;
  current = execution;
  box.hidden = false;
  document.getElementById("cancel-button").hidden = execution.status === "finished";
  const fork = document.getElementById("fork-at");
  document.getElementById("fork-part").hidden = execution.kind !== "workflow";
  const limit = Math.max(1, forkLimit(events));
  // Left at its end (the default), the field follows a running execution's log as it grows; a number typed stays.
  const atEnd = fork.value === fork.max;
  fork.max = String(limit);
  if (changed) {
    // The last event it may be forked at: the fork copies everything before the end (or before `finished`).
    fork.value = String(limit);
    showError("action-error", "");
    document.getElementById("action-result").replaceChildren();
    cancelAsked = false;
  } else if (atEnd || Number(fork.value) > limit) {
    fork.value = String(limit);
  }
  forkNote();
  if (cancelAsked && execution.status === "finished") {
    cancelAsked = false;
    document.getElementById("action-result").replaceChildren();
  }
}

/** Say what the fork copies for the number in the field. */
function forkNote() {
  const n = Number(document.getElementById("fork-at").value);
  document.getElementById("fork-copies").textContent = Number.isInteger(n) && n >= 1
    ? n === 1 ? "copies event #0" : "copies events #0–#" + (n - 1)
    : "";
}

function started(what, id) {
  const open = el("a", { href: "#" + encodeURIComponent(id), onclick: (event) => { event.preventDefault(); onSelect(id); } }, el("code", {}, id));
  document.getElementById("action-result").replaceChildren(what + " ", open);
}

async function run(action) {
  if (!current) return;
  const id = encodeURIComponent(current.execution_id);
  showError("action-error", "");
  document.getElementById("action-result").replaceChildren("…");
  try {
    if (action === "cancel") {
      const answer = await api("/v1/executions/" + id + "/cancel", "POST");
      const requested = answer.cancel !== "cancelled";
      document.getElementById("action-result").replaceChildren(requested ? "Cancellation requested." : "Cancelled.");
      // The status (failed: cancelled) says it once the execution has finished; either message then goes.
      cancelAsked = true;
    } else if (action === "rerun") {
      const answer = await api("/v1/executions/" + id + "/rerun", "POST");
      started("Rerun started:", answer.execution_id);
    } else {
      const at = Number(document.getElementById("fork-at").value);
      const answer = await api("/v1/executions/" + id + "/fork", "POST", { at });
      started("Fork of the first " + answer.events_copied + " events started:", answer.execution_id);
    }
    await refresh();
  } catch (error) {
    document.getElementById("action-result").replaceChildren();
    showError("action-error", action + " refused: " + error.message);
  }
}

export function initActions(select, refreshAll) {
  onSelect = select;
  refresh = refreshAll;
  document.getElementById("cancel-button").addEventListener("click", () => run("cancel"));
  document.getElementById("rerun-button").addEventListener("click", () => run("rerun"));
  document.getElementById("fork-at").addEventListener("input", forkNote);
  document.getElementById("fork-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("fork");
  });
}
