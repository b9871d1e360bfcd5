// One execution drawn over time, from its event log's timestamps: the run, each attempt once there was more than
// one (attemptLanes: what the log records of them) and its wait before the retry, each durable sleep, and each
// child from its submission to its response.
// Pure: lanes() turns a log into bars and marks; draw() turns those into an SVG (text as text nodes only).
"use strict";

import { duration, isErr, shortFfqn, svg } from "./common.js";

const WIDTH = 520;
const LABEL = 120;
const LANE = 22;
const AXIS = 22;
// One event each, drawn as a tick on the run's lane.
const MARKS = new Set(["cancel_requested", "paused", "resumed", "upgraded", "upgrade_rejected", "finished"]);

/** The lanes of an execution: [{label, title, bars: [{from, to, kind, open}], marks: [{at, kind, title}]}].
 * `copied` lists the children a fork copied answered from its source (GET .../children): never created, their
 * lanes carry `copied` instead of `child`. */
export function lanes(execution, events, children, now, copied) {
  // A fork's log starts with events copied from its source, at the source's times: the fork's timeline starts
  // when the fork was made, with the copied events drawn there (marked `copied`).
  const copiedCount = copiedEvents(execution, events);
  const start = copiedCount ? Date.parse(execution.created_at) : events.length ? events[0].at : Date.parse(execution.created_at);
  const at = (e) => (e.index < copiedCount ? Math.max(start, e.at) : e.at);
  const finished = events.find((e) => e.type === "finished");
  const end = finished ? finished.at : now;
  const runKind = execution.failure ? "failed" : finished ? (isErr(execution.result) ? "err" : "finished") : execution.paused ? "paused" : "running";
  const run = { label: "run", title: execution.ffqn, bars: [{ from: start, to: end, kind: runKind, open: !finished }], marks: [] };
  const out = [run, ...attemptLanes(execution, events, start, now, at)];
  const responses = new Map();
  for (const e of events) {
    if (e.type === "response") responses.set(e.child_id || e.delay_id, e);
  }
  const states = new Map((children || []).map((c) => [c.execution_id, c]));
  const copies = new Map((copied || []).map((c) => [c.child_id, c]));
  for (const e of events) {
    if (MARKS.has(e.type)) {
      const kind = e.type === "finished" ? (e.failure ? "failed" : "finished") : e.type;
      const what = e.failure ? e.failure.kind + ": " + e.failure.message : "";
      run.marks.push({ at: at(e), kind, title: "#" + e.index + " " + e.type + (what ? " " + what : "") });
    } else if (e.type === "delay_requested") {
      const fired = responses.get(e.delay_id);
      const to = fired ? at(fired) : Math.max(now, e.until || e.at);
      const planned = "sleep " + duration(e.duration_ms || 0);
      out.push({ label: planned, title: e.delay_id, bars: [{ from: at(e), to, kind: "delay", open: !fired, copied: e.index < copiedCount }], marks: [] });
    } else if (e.type === "child_submitted" && copies.has(e.child_id)) {
      const answer = responses.get(e.child_id);
      const copy = copies.get(e.child_id);
      const from = copy.original_id ? " " + copy.original_id : "";
      out.push({
        label: shortFfqn(e.ffqn),
        title: e.child_id + ": copied from the original run" + from + ", never started again",
        copied: copy,
        bars: [{ from: at(e), to: answer ? at(answer) : at(e), kind: "copied", open: false, title: "copied from the original run" }],
        marks: [],
      });
    } else if (e.type === "child_submitted") {
      const answer = responses.get(e.child_id);
      const state = states.get(e.child_id);
      const failed = (answer && answer.failure) || (state && state.failure);
      const err = (answer && isErr(answer.result)) || (state && isErr(state.result));
      const kind = failed ? "failed" : err ? "err" : answer || (state && state.status === "finished") ? "finished" : "running";
      const to = answer ? at(answer) : state && state.finished_at ? Date.parse(state.finished_at) : now;
      out.push({
        label: shortFfqn(e.ffqn),
        title: e.child_id,
        child: e.child_id,
        bars: [{ from: at(e), to, kind, open: !answer && kind === "running", copied: e.index < copiedCount }],
        marks: [],
      });
    }
  }
  if (finished) {
    // Nothing of a finished execution goes on past its finish: a sleep it never woke from (cancelled, say) ends there.
    for (const bar of out.flatMap((l) => l.bars)) {
      bar.to = Math.min(bar.to, end);
      bar.from = Math.min(bar.from, end);
      bar.open = false;
    }
    return { start, end, lanes: out, copied: copiedCount };
  }
  return { start, end: Math.max(end, ...out.flatMap((l) => l.bars.map((b) => b.to))), lanes: out, copied: copiedCount };
}

/** One lane per attempt once the log shows more than one (an `attempt_failed` or `attempt_lost`), else none: the
 * run's bar is its only attempt. The log records when an attempt ended (`attempt_failed`, `finished`) but not when a
 * runner took it, except after a takeover (`attempt_lost` is written by the lock that starts the next one). So an
 * attempt's bar starts when it could start at the earliest (the execution's creation or schedule, the previous
 * failure's retry time) and is marked `approx`, or at a takeover, exactly; a lost attempt's bar ends when its lease
 * ran out (the latest it can have run). A failed attempt's lane goes on with its wait for the retry. */
export function attemptLanes(execution, events, start, now, at) {
  if (!events.some((e) => e.type === "attempt_failed" || e.type === "attempt_lost")) return [];
  const created = events.length && events[0].type === "created" ? events[0] : null;
  const out = [];
  let current = { n: 1, from: Math.max(start, (created && created.scheduled_at) || 0), exact: false, since: "its creation" };
  const close = (to, kind, title, retryAt) => {
    const lane = { label: "attempt " + current.n, title, bars: [], marks: [] };
    const how = current.exact ? "from its takeover" : "from " + current.since + " (when it could start at the earliest)";
    lane.bars.push({ from: Math.min(current.from, to), to, kind, open: false, approx: !current.exact, title: how });
    if (retryAt) lane.bars.push({ from: to, to: retryAt, kind: "retry", open: false, title: "waits for its retry" });
    out.push(lane);
    return lane;
  };
  for (const e of events) {
    if (e.type === "attempt_failed") {
      const error = e.error || {};
      const why = (error.kind || "failed") + (error.message ? ": " + error.message : "");
      const lane = close(at(e), "failed", "#" + e.index + " attempt " + (e.attempt || current.n) + " failed, " + why, e.retry_at);
      lane.marks.push({ at: at(e), kind: "failed", title: "#" + e.index + " attempt " + (e.attempt || current.n) + " failed: " + why });
      current = { n: current.n + 1, from: e.retry_at || at(e), exact: false, since: "its retry time" };
    } else if (e.type === "attempt_lost") {
      const leaseEnd = Math.max(current.from, Math.min(e.lock_until || at(e), at(e)));
      const lane = close(leaseEnd, "lost", "#" + e.index + " attempt " + (e.attempt || current.n) + " lost: " + (e.owner || "its runner") + " stopped renewing its lease");
      lane.marks.push({ at: at(e), kind: "lost", title: "#" + e.index + " taken over: attempt " + (current.n + 1) + " starts" });
      current = { n: current.n + 1, from: at(e), exact: true, since: "its takeover" };
    } else if (e.type === "finished") {
      // Finished (cancelled, say) before the attempt due could start: there was no such attempt.
      if (!current.exact && at(e) <= current.from) return out;
      const kind = e.failure ? "failed" : isErr(e.result) ? "err" : "finished";
      close(at(e), kind, "#" + e.index + " attempt " + current.n + (e.failure ? " failed, " + e.failure.kind + ": " + e.failure.message : " finished"));
      return out;
    }
  }
  if (execution.status === "running" && current.from <= now) {
    const lane = close(now, "running", "attempt " + current.n + " running");
    lane.bars[0].open = true;
  }
  return out;
}

/** How many events at the start of a fork's log are its source's (0 for an execution that is no fork). */
export function copiedEvents(execution, events) {
  const forked = events.length ? events[0].forked_from : null;
  if (!forked) return 0;
  if (Number.isInteger(forked.copied)) return forked.copied;
  // A fork made before `copied` was recorded: its copied events are those older than the fork itself.
  const made = Date.parse(execution.created_at);
  return events.filter((e) => e.at < made).length;
}

function ticks(span) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000, 600000, 3600000];
  const step = steps.find((s) => span / s <= 5) || span / 5;
  const out = [];
  for (let t = 0; t <= span; t += step) out.push(t);
  return out;
}

/** The SVG of `lanes(...)`; `onChild(id)` is called when a child's bar or label is clicked, `onCopied(copy)` when
 * a copied child's is. */
export function draw(model, onChild, onCopied) {
  const span = Math.max(1, model.end - model.start);
  const plot = WIDTH - LABEL - 10;
  const x = (at) => LABEL + ((at - model.start) / span) * plot;
  const height = AXIS + model.lanes.length * LANE + 4;
  const root = svg("svg", {
    viewBox: "0 0 " + WIDTH + " " + height,
    width: "100%",
    class: "timeline-chart",
    role: "img",
    "aria-label": "timeline of " + model.lanes.length + " lanes over " + duration(span),
  });
  for (const t of ticks(span)) {
    const at = x(model.start + t);
    root.append(svg("line", { x1: at, x2: at, y1: AXIS - 4, y2: height, class: "grid" }));
    // A label at the plot's right edge ends there instead of running past the picture.
    const anchor = at > WIDTH - 40 ? "end" : "middle";
    root.append(svg("text", { x: anchor === "end" ? WIDTH - 2 : at, y: AXIS - 8, class: "tick", "text-anchor": anchor }, "+" + duration(t)));
  }
  model.lanes.forEach((lane, i) => {
    const y = AXIS + i * LANE;
    const click = lane.child
      ? { onclick: () => onChild(lane.child), class: "lane child-lane" }
      : lane.copied
        ? { onclick: () => onCopied(lane.copied), class: "lane child-lane copied-lane" }
        : { class: "lane" };
    const group = svg("g", { ...click, "data-lane": lane.label });
    group.append(svg("text", { x: 4, y: y + 14, class: "lane-label" }, lane.label.length > 18 ? lane.label.slice(0, 17) + "…" : lane.label, svg("title", {}, lane.title || lane.label)));
    for (const bar of lane.bars) {
      const from = x(bar.from);
      const width = Math.max(2, x(bar.to) - from);
      const tip = lane.label + ": " + (bar.approx ? "at most " : "") + duration(bar.to - bar.from) + (bar.open ? " so far" : "") + (bar.title ? " (" + bar.title + ")" : "") + (bar.copied ? ", started in the original run" : "");
      const cls = "bar bar-" + bar.kind + (bar.open ? " open" : "") + (bar.copied ? " copied" : "") + (bar.approx ? " approx" : "");
      group.append(svg("rect", { x: from, y: y + 4, width, height: LANE - 8, rx: 3, class: cls }, svg("title", {}, tip)));
    }
    for (const mark of lane.marks) {
      const at = x(mark.at);
      group.append(svg("rect", { x: at - 2, y: y + 1, width: 4, height: LANE - 2, class: "mark mark-" + mark.kind }, svg("title", {}, mark.title)));
    }
    root.append(group);
  });
  return root;
}
