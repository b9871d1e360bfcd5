// What every part of the dashboard shares: building DOM nodes (text always as text nodes, so params,
// results and tags from executions can never inject markup), the API call with the token, and formatting.
"use strict";

export const TOKEN_KEY = "dolmen-token";
const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** An HTML element; strings among `children` become text nodes. */
export function el(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element (the timeline); strings become text nodes as in `el`. */
export function svg(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function notice(text) {
  const box = document.getElementById("notice");
  box.hidden = !text;
  box.textContent = text || "";
}

/** What the dashboard has learnt of the gateway's tokens, from its answers: `auth` is true when it needs a token,
 * false when it is open, null until known; `admin` whether what the page sends (a token, or none on an open
 * gateway) may do the admin actions, null until known. Hints such as "needs an admin token" show only when true. */
export const access = { auth: null, admin: null };

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** Call the API v1 with the token the user gave (if any); a failure throws an Error with the API's message and `status`. */
export async function api(path, method, payload) {
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const init = { headers, method: method || "GET" };
  if (payload !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof payload === "string" ? payload : JSON.stringify(payload);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    access.auth = true;
    access.admin = false;
  } else if (response.ok && !token()) {
    // Answered without a token: the gateway has none, everything is open.
    access.auth = false;
    access.admin = true;
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    let message = body && body.error ? body.error.message : response.status + " " + response.statusText;
    if (response.status === 401) message = "This gateway needs a token: enter it under Token above. (" + message + ")";
    if (response.status === 403) message = "This needs an admin token: enter one under Token above. (" + message + ")";
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

export function short(value, max) {
  const text = JSON.stringify(value);
  const limit = max || 160;
  return text === undefined ? "" : text.length > limit ? text.slice(0, limit - 3) + "…" : text;
}

export function shortDigest(digest) {
  return (digest || "").slice(0, 19);
}

export function time(iso) {
  return new Date(iso).toLocaleTimeString();
}

export function duration(ms) {
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(1) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

export function took(execution) {
  if (!execution.finished_at) return "";
  return duration(Date.parse(execution.finished_at) - Date.parse(execution.created_at));
}

/** The function name of an ffqn, the part a row has room for: `testing:wf/flows@1.0.0.serial` -> `flows.serial`. */
export function shortFfqn(ffqn) {
  const iface = ffqn.slice(ffqn.lastIndexOf("/") + 1).split("@")[0];
  return iface + "." + ffqn.slice(ffqn.lastIndexOf(".") + 1);
}

/** Whether a result is the `err` case of a WIT `result` (`{"err": e}`): the function returned an error. */
export function isErr(result) {
  return result !== null && typeof result === "object" && !Array.isArray(result) && Object.keys(result).length === 1 && "err" in result;
}

export function statusBadge(execution) {
  const failed = execution.failure !== undefined;
  if (execution.status === "finished" && !failed && isErr(execution.result)) {
    return el("span", { class: "status status-err", title: "finished, returning an error: " + short(execution.result.err) }, "finished: err");
  }
  if (!failed && execution.waiting_for === "result") {
    // A stub: never run, it waits until its result is supplied from outside.
    return el("span", { class: "status status-waiting", title: "a stub: supply its result to finish it" }, "waiting for result");
  }
  const label = failed ? "failed: " + execution.failure.kind : execution.status;
  const badge = el("span", { class: "status status-" + (failed ? "failed" : execution.status), title: label }, label);
  if (!execution.paused) return badge;
  // Paused: no runner takes it until it is resumed (what arrives meanwhile waits in its log).
  return el("span", {}, badge, " ", el("span", { class: "status status-paused", title: "resume it to let it run" }, "paused"));
}

export function tagChips(tags) {
  return Object.entries(tags || {}).map(([key, value]) => el("span", { class: "tag" }, key + "=" + value));
}

/** Show `text` in the error box `id` (cleared with ""); boxes sit next to their form and survive refreshes. */
export function showError(id, text) {
  const box = document.getElementById(id);
  box.hidden = !text;
  box.textContent = text || "";
}
