// The admin actions on the selected execution: cancel, rerun, fork. They need an admin token when the
// gateway has tokens (the header's Token field); the API's refusal is shown next to the buttons.
"use strict";

import { api, el, showError } from "./common.js";

let current = null;
let onSelect = () => {};
let refresh = async () => {};

/** Update the actions for `execution`; what the user typed in the fork field survives refreshes of the same execution. */
export function showActions(execution, eventCount) {
  const box = document.getElementById("actions");
  const changed = !current || current.execution_id !== execution.execution_id;
  current = execution;
  box.hidden = false;
  document.getElementById("cancel-button").hidden = execution.status === "finished";
  const fork = document.getElementById("fork-at");
  document.getElementById("fork-part").hidden = execution.kind !== "workflow";
  fork.max = String(eventCount);
  if (changed) {
    fork.value = String(Math.max(1, Math.min(eventCount, 2)));
    showError("action-error", "");
    document.getElementById("action-result").replaceChildren();
  }
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
      document.getElementById("action-result").replaceChildren(answer.cancel === "cancelled" ? "Cancelled." : "Cancellation requested.");
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
  document.getElementById("fork-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run("fork");
  });
}
