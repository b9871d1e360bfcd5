"""The dashboard's views in headless Chromium against the real platform: the execution tree, the timeline,
the filters, the deployments with an upgrade dry run, the admin actions, and escaping of user data.

Each test drives the page with a script that waits for conditions (no sleeps), checks the DOM's text, and
checks a screenshot's pixels where the view draws something (tests/support/png.py decodes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dolmen.gateway.settings import Token
from dolmen.platform.model import Revision
from tests.gateway.dashboard_pages import GREEN, PINK, RED, box, finished, page, run, sleeping
from tests.gateway.helpers import ACT, WF, GatewayThread
from tests.support.polling import wait_for

pytestmark = pytest.mark.browser

ADMIN = "admin-dash-0123"
INVOKER = "invoke-dash-4567"

TREE = """
  const row = await until(() => document.querySelector(`tr.execution[data-id="${ROOT}"]`));
  const roots = [...document.querySelectorAll('tr.execution[data-depth="0"]')].map((r) => r.dataset.id);
  row.querySelector("button.toggle").click();
  await until(() => document.querySelectorAll('tr.execution[data-depth="1"]').length >= 3);
  const rows = [...document.querySelectorAll("#executions tbody tr.execution")];
  const at = rows.findIndex((r) => r.dataset.id === ROOT);
  const under = rows.slice(at + 1, at + 4).map((r) => ({ id: r.dataset.id, depth: r.dataset.depth, text: r.textContent }));
  const table = document.getElementById("executions").getBoundingClientRect().toJSON();
  return { roots, under, mode: document.getElementById("listing-mode").textContent, table,
           expanded: rows[at].querySelector("button.toggle").getAttribute("aria-expanded") };
"""


def test_the_tree_lists_roots_and_shows_a_workflow_s_children_under_it(gateway: GatewayThread, http: httpx.Client, tmp_path: Path) -> None:
    """Only roots are listed; ▸ on a workflow puts its three children right under it, indented, with their results' status."""
    root = finished(http, f"{WF}.serial", {"n": 3})
    children = [c["execution_id"] for c in http.get(f"/v1/executions/{root}/children").json()["children"]]
    seen, image = run(f"{gateway.url}/", tmp_path, page(TREE, ROOT=root), shot="tree.png")
    assert root in seen["roots"] and not set(children) & set(seen["roots"])
    assert [r["id"] for r in seen["under"]] == children
    assert {r["depth"] for r in seen["under"]} == {"1"}
    assert all("double" in r["text"] and "finished" in r["text"] for r in seen["under"])
    assert seen["expanded"] == "true" and seen["mode"].startswith("Trees")
    assert image is not None and image.colors() > 50
    # The finished badges of the root and its children are drawn in the table.
    assert image.count(GREEN, box(seen["table"])) > 200


TIMELINE = """
  const lanes = () => [...document.querySelectorAll("#chart g.lane")].map((g) => ({
    label: g.dataset.lane, bars: [...g.querySelectorAll("rect.bar")].map((r) => r.getAttribute("class")) }));
  const show = async (id, check) => {
    location.hash = id;
    await until(() => document.getElementById("detail-id").textContent === id && check());
    return lanes();
  };
  const sleepy = await show(SLEEPY, () => document.querySelector("#chart rect.bar-delay"));
  const serial = await show(SERIAL, () => document.querySelectorAll("#chart g.child-lane rect.bar-finished").length === 3);
  document.querySelector("#chart g.child-lane rect").dispatchEvent(new MouseEvent("click", { bubbles: true }));
  const child = await until(() => document.getElementById("detail-id").textContent.startsWith(SERIAL + ".") &&
                                  document.getElementById("detail-id").textContent);
  await show(SERIAL, () => document.querySelectorAll("#chart g.child-lane").length === 3);
  return { sleepy, serial, child, chart: document.getElementById("chart").getBoundingClientRect().toJSON() };
"""


def test_the_timeline_draws_children_and_sleeps(gateway: GatewayThread, http: httpx.Client, tmp_path: Path) -> None:
    """Per execution: a lane per sleep, a lane per child (clickable); one attempt draws no attempt lane."""
    sleepy = finished(http, f"{WF}.sleepy", {"ms": 300})
    serial = finished(http, f"{WF}.serial", {"n": 3})
    url = f"{gateway.url}/#{serial}"
    seen, image = run(url, tmp_path, page(TIMELINE, SLEEPY=sleepy, SERIAL=serial), shot="timeline.png")
    assert [lane["label"] for lane in seen["sleepy"]] == ["run", "sleep 300 ms"]
    assert seen["sleepy"][1]["bars"] == ["bar bar-delay"] and seen["sleepy"][0]["bars"] == ["bar bar-finished"]
    assert [lane["label"] for lane in seen["serial"]] == ["run", "basic.double", "basic.double", "basic.double"]
    assert seen["child"] == f"{serial}.1" or seen["child"].startswith(f"{serial}.")
    assert image is not None
    chart = box(seen["chart"])
    assert chart[3] - chart[1] > 60 and image.colors(chart) > 10
    # Four green bars (the run and three children) fill part of the chart.
    assert image.count(GREEN, chart) > 400


ATTEMPTS = """
  const { lanes } = await import("/static/timeline.js");
  await until(() => document.getElementById("detail-id").textContent === CRASH && document.querySelectorAll("#chart g.lane").length === 6);
  const drawn = [...document.querySelectorAll("#chart g.lane")].map((g) => ({
    label: g.dataset.lane, bars: [...g.querySelectorAll("rect.bar")].map((r) => r.getAttribute("class")),
    tips: [...g.querySelectorAll("rect.bar title")].map((t) => t.textContent) }));
  const log = [
    { index: 0, type: "created", at: 1000 },
    { index: 1, type: "attempt_lost", at: 2000, attempt: 1, owner: "runner-a", lock_until: 1500 },
    { index: 2, type: "attempt_failed", at: 2400, attempt: 2, error: { kind: "trap", message: "boom" }, retry_at: 2600 },
    { index: 3, type: "finished", at: 3000, result: 7 },
  ];
  const x = { execution_id: "E_x", ffqn: "a:b/c@1.0.0.d", status: "finished", created_at: new Date(1000).toISOString(), result: 7 };
  const shape = (model) => model.lanes.map((l) => ({ label: l.label, bars: l.bars.map((b) => [b.kind, b.from, b.to, !!b.approx]),
                                                      marks: l.marks.map((m) => [m.kind, m.at]) }));
  const lost = shape(lanes(x, log, [], 5000, []));
  const once = shape(lanes(x, [log[0], log[3]], [], 5000, [])).map((l) => l.label);
  document.getElementById("chart").scrollIntoView();
  return { drawn, lost, once, chart: document.getElementById("chart").getBoundingClientRect().toJSON() };
"""


def test_the_timeline_draws_every_attempt_of_a_retried_execution_as_far_as_its_log_tells(
    gateway: GatewayThread, http: httpx.Client, tmp_path: Path
) -> None:
    """An activity that trapped five times: a lane per attempt, each failed attempt red (drawn from when it could
    start at the earliest: the log has no start) with its wait for the retry; a lost attempt ends at its lease's end
    and the takeover starts the next one exactly; a single attempt draws no lane of its own."""
    crash = http.post(f"/v1/functions/{ACT}.crash", json=["boom"]).json()["execution_id"]
    wait_for(lambda: http.get(f"/v1/executions/{crash}").json()["status"] == "finished", what="five failed attempts")
    seen, image = run(f"{gateway.url}/#{crash}", tmp_path, page(ATTEMPTS, CRASH=crash), shot="attempts.png")
    drawn = seen["drawn"]
    assert [lane["label"] for lane in drawn] == ["run", *(f"attempt {n}" for n in range(1, 6))]
    assert all(lane["bars"] == ["bar bar-failed approx", "bar bar-retry"] for lane in drawn[1:5]), drawn
    assert drawn[5]["bars"] == ["bar bar-failed approx"]
    assert "(from its retry time (when it could start at the earliest))" in drawn[2]["tips"][0]
    assert drawn[1]["tips"][0].startswith("attempt 1: at most ")
    assert seen["lost"] == [
        {"label": "run", "bars": [["finished", 1000, 3000, False]], "marks": [["finished", 3000]]},
        {"label": "attempt 1", "bars": [["lost", 1000, 1500, True]], "marks": [["lost", 2000]]},
        {"label": "attempt 2", "bars": [["failed", 2000, 2400, False], ["retry", 2400, 2600, False]], "marks": [["failed", 2400]]},
        {"label": "attempt 3", "bars": [["finished", 2600, 3000, True]], "marks": []},
    ]
    assert seen["once"] == ["run"]
    assert image is not None
    chart = box(seen["chart"])
    # Six red bars (the failed run and five attempts) and four pink retry waits.
    assert image.count(RED, chart, tolerance=30) > 300 and image.count(PINK, chart) > 40


FORKED = """
  await until(() => document.getElementById("detail-id").textContent === FORK && document.querySelector("#chart g.copied-lane"));
  const lanes = [...document.querySelectorAll("#chart g.lane")].map((g) => ({ cls: g.getAttribute("class"), bars: [...g.querySelectorAll("rect.bar")].map((r) => r.getAttribute("class")) }));
  document.querySelector("#chart g.copied-lane rect").dispatchEvent(new MouseEvent("click", { bubbles: true }));
  const note = await until(() => !document.getElementById("chart-note").hidden && document.getElementById("chart-note").textContent);
  await new Promise((resolve) => setTimeout(resolve, 2500));  // a refresh later: still no error, the note stays
  const row = await until(() => document.querySelector(`tr.execution[data-id="${FORK}"]`));
  row.querySelector("button.toggle").click();
  const copiedRow = await until(() => { const r = document.querySelector(`tr.copied[data-id="${FORK}.1"]`); return r && r.textContent; });
  return { lanes, note, copiedRow, detail: document.getElementById("detail-id").textContent,
           notice: document.getElementById("notice").hidden ? "" : document.getElementById("notice").textContent,
           noteShown: !document.getElementById("chart-note").hidden };
"""


def test_a_fork_shows_the_children_it_copied_as_copied_without_an_error(gateway: GatewayThread, http: httpx.Client, tmp_path: Path) -> None:
    """A child a fork copied answered is drawn as copied; clicking it says so (naming the original), not an error banner."""
    serial = finished(http, f"{WF}.serial", {"n": 3})
    events = http.get(f"/v1/executions/{serial}/events").json()["events"]
    at = next(e["index"] for e in events if e["type"] == "response") + 1
    fork = http.post(f"/v1/executions/{serial}/fork", json={"at": at}).json()["execution_id"]
    assert http.get(f"/v1/executions/{fork}/result?wait=30").status_code == 200
    seen, _ = run(f"{gateway.url}/#{fork}", tmp_path, page(FORKED, FORK=fork))
    copied = [lane for lane in seen["lanes"] if "copied-lane" in lane["cls"]]
    assert len(copied) == 1 and copied[0]["bars"] == ["bar bar-copied"]
    assert sum("child-lane" in lane["cls"] and "copied" not in lane["cls"] for lane in seen["lanes"]) == 2
    assert seen["note"].startswith(f"{fork}.1 was copied from the original run ({serial}.1)")
    assert seen["noteShown"] and seen["detail"] == fork and seen["notice"] == ""
    assert f"copied from {serial}.1" in seen["copiedRow"]


ENDS = """
  const { lanes } = await import("/static/timeline.js");
  const model = async (id) => {
    const [x, log, family] = await Promise.all(["", "/events", "/children"].map((p) => fetch("/v1/executions/" + id + p).then((r) => r.json())));
    return { x, m: lanes(x, log.events, family.children, Date.now(), family.copied) };
  };
  const cancelled = await model(CANCELLED);
  const fork = await model(FORK);
  location.hash = FORK;
  await until(() => document.getElementById("detail-id").textContent === FORK && document.querySelector("#timeline li"));
  const bars = (m) => m.lanes.flatMap((l) => l.bars);
  return {
    cancelledEnd: cancelled.m.end, cancelledFinish: Date.parse(cancelled.x.finished_at),
    cancelledBars: bars(cancelled.m).map((b) => [b.to, b.open]), cancelledLanes: cancelled.m.lanes.map((l) => l.label),
    forkStart: fork.m.start, forkCreated: Date.parse(fork.x.created_at), forkFroms: bars(fork.m).map((b) => b.from),
    forkCopiedBars: bars(fork.m).filter((b) => b.copied || b.kind === "copied").length,
    detail: document.getElementById("detail").textContent,
    copiedItems: document.querySelectorAll("#timeline li.copied").length,
    firstAt: document.querySelector("#timeline li .at").textContent,
  };
"""


def test_a_finished_execution_s_bars_end_at_its_finish_and_a_fork_s_timeline_starts_at_the_fork(
    gateway: GatewayThread, http: httpx.Client, tmp_path: Path
) -> None:
    """A cancelled workflow's unfired sleep ends where the workflow finished; a fork's timeline starts at the fork's
    creation, not its source's, with the copied events marked and the source named."""
    execution_id = sleeping(http)
    http.post(f"/v1/executions/{execution_id}/cancel")
    wait_for(lambda: http.get(f"/v1/executions/{execution_id}").json()["status"] == "finished", what="the cancel")
    serial = finished(http, f"{WF}.serial", {"n": 3})
    events = http.get(f"/v1/executions/{serial}/events").json()["events"]
    at = next(e["index"] for e in events if e["type"] == "response") + 2
    forked = http.post(f"/v1/executions/{serial}/fork", json={"at": at}).json()
    assert http.get(f"/v1/executions/{forked['execution_id']}/result?wait=30").status_code == 200
    seen, _ = run(f"{gateway.url}/", tmp_path, page(ENDS, CANCELLED=execution_id, FORK=forked["execution_id"]))
    assert seen["cancelledLanes"][1].startswith("sleep")
    assert seen["cancelledEnd"] == seen["cancelledFinish"]
    assert all(to <= seen["cancelledFinish"] and not open_ for to, open_ in seen["cancelledBars"])
    assert seen["forkStart"] == seen["forkCreated"] and min(seen["forkFroms"]) >= seen["forkCreated"]
    assert seen["forkCopiedBars"] >= 1
    assert f"Forked from{serial} (its first {at} events" in seen["detail"]
    assert seen["copiedItems"] == forked["events_copied"] and seen["firstAt"] == "copied from the original run"


FILTERS = """
  const rows = () => [...document.querySelectorAll('#executions tbody tr.execution')];
  await until(() => rows().length);
  const byUrl = rows().map((r) => ({ ffqn: r.children[1].title, status: r.children[2].textContent }));
  const mode = document.getElementById("listing-mode").textContent;
  document.getElementById("ffqn-filter").value = "";
  document.getElementById("status-filter").value = "";
  document.getElementById("digest-filter").value = DIGEST;
  document.getElementById("filter-form").requestSubmit();
  await until(() => location.search.includes("digest=") && rows().length && rows().every((r) => r.children[1].title.startsWith(WF)));
  const byDigest = rows().map((r) => r.dataset.id);
  document.getElementById("digest-filter").value = "abc";
  document.getElementById("filter-form").requestSubmit();
  const refused = await until(() => document.getElementById("notice").textContent);
  return { byUrl, mode, byDigest, refused, search: location.search };
"""


def test_the_filters_narrow_the_listing_by_function_status_and_digest(gateway: GatewayThread, http: httpx.Client, tmp_path: Path) -> None:
    """`?ffqn=&status=` in the URL lists only those; the form's digest filter, given the short digest the dashboard
    shows, lists one component's executions; a prefix of no component shows the API's message."""
    finished(http, f"{ACT}.double", [21])
    serial = finished(http, f"{WF}.serial", {"n": 1})
    digest = http.get(f"/v1/executions/{serial}").json()["component_digest"]
    url = f"{gateway.url}/?ffqn={ACT}.double&status=finished"
    seen, _ = run(url, tmp_path, page(FILTERS, DIGEST=digest[:19], WF=WF))
    assert seen["byUrl"] and {r["ffqn"] for r in seen["byUrl"]} == {f"{ACT}.double"}
    assert {r["status"] for r in seen["byUrl"]} == {"finished"}
    assert seen["mode"].startswith("Every matching execution")
    assert serial in seen["byDigest"]
    assert "no deployed component has digest abc" in seen["refused"]
    assert "digest=abc" in seen["search"]


DEPLOYMENTS = """
  await until(() => document.querySelector(`#revisions tr[data-revision="${NEXT}"]`) &&
                    document.querySelector(`#versions tr[data-ffqn="${SLEEPY_FFQN}"]`));
  const revisions = [...document.querySelectorAll("#revisions tbody tr")].map((r) => r.textContent);
  const versions = [...document.querySelectorAll("#versions tbody tr")].map((r) => r.textContent);
  const buttons = [...document.querySelectorAll("#versions tbody tr")].map((r) => [r.dataset.ffqn, r.dataset.digest, !!r.querySelector("button")]);
  const ffqn = document.getElementById("upgrade-ffqn");
  ffqn.value = SLEEPY_FFQN;
  ffqn.dispatchEvent(new Event("change"));
  document.getElementById("upgrade-to").value = TARGET;
  document.getElementById("upgrade-form").requestSubmit();
  const outcome = await until(() => { const r = document.querySelector(`#upgrade-table tr[data-id="${SLEEPING}"]`); return r && r.textContent; });
  const head = document.getElementById("upgrade-report").textContent;
  document.getElementById("upgrade-report").scrollIntoView();
  const report = document.getElementById("upgrade-report").getBoundingClientRect().toJSON();
  return { revisions, versions, buttons, outcome, head, report, fits: fits() };
"""


def test_deployments_show_revisions_versions_and_an_upgrade_dry_run(
    gateway: GatewayThread, http: httpx.Client, next_revision: Revision, tmp_path: Path
) -> None:
    """The revisions (the active one badged), which digest runs which function, and a dry run naming what would move."""
    execution_id = sleeping(http)
    target = next_revision.components[0].digest
    values = {"NEXT": str(next_revision.number), "SLEEPY_FFQN": f"{WF}.sleepy", "TARGET": target, "SLEEPING": execution_id}
    try:
        seen, image = run(f"{gateway.url}/", tmp_path, page(DEPLOYMENTS, **values), shot="deployments.png")
    finally:
        http.post(f"/v1/executions/{execution_id}/cancel")
    active = http.get("/v1/functions").json()["revision"]
    assert any(text.startswith(f"{active} active") for text in seen["revisions"]), seen["revisions"]
    assert any(text.startswith(str(next_revision.number)) and "gateway-tests-next" in text for text in seen["revisions"])
    assert any("flows.sleepy" in text and "routed" in text for text in seen["versions"])
    # A dry-run button only where a workflow component of another digest exports the function: something to upgrade.
    deployed: dict[str, set[str]] = {}
    for revision in http.get("/v1/deployments").json()["revisions"]:
        for component in revision["components"]:
            if component["kind"] == "workflow":
                for ffqn in component["functions"]:
                    deployed.setdefault(ffqn, set()).add(component["digest"])
    for ffqn, digest, button in seen["buttons"]:
        assert button == bool(deployed.get(ffqn, set()) - {digest}), (ffqn, digest, button)
    assert any(button for _, _, button in seen["buttons"]) and not all(button for _, _, button in seen["buttons"])
    assert seen["fits"] == [], seen["fits"]
    assert "would-upgrade" in seen["outcome"] and "nothing was changed" in seen["head"]
    assert http.get(f"/v1/executions/{execution_id}").json()["component_digest"] != target
    # The report, scrolled into view for the screenshot: a table with the would-upgrade outcome in green.
    assert image is not None and image.colors(box(seen["report"])) > 20
    assert image.count(GREEN, box(seen["report"]), tolerance=40) > 20


ACTIONS = """
  await until(() => document.getElementById("notice").textContent.includes("needs a token"));
  const useToken = (value) => { document.getElementById("token").value = value; document.getElementById("token-form").requestSubmit(); };
  useToken(INVOKER);
  await until(() => document.getElementById("detail-id").textContent === SERIAL);
  const listing = await until(() => document.querySelector("#executions tbody").textContent.includes("needs an admin token") && "refused");
  document.getElementById("rerun-button").click();
  const refused = await until(() => document.getElementById("action-error").textContent);
  useToken(ADMIN);
  await until(() => document.querySelector("#executions tr.execution"));
  document.getElementById("rerun-button").click();
  const rerun = await until(() => { const t = document.getElementById("action-result").textContent; return t.startsWith("Rerun started") && t; });
  const forkAt = document.getElementById("fork-at");
  const forkBox = { value: forkAt.value, max: forkAt.max, copies: document.getElementById("fork-copies").textContent };
  forkAt.value = "3";
  forkAt.dispatchEvent(new Event("input"));
  forkBox.copiesAt3 = document.getElementById("fork-copies").textContent;
  document.getElementById("fork-form").requestSubmit();
  const fork = await until(() => { const t = document.getElementById("action-result").textContent; return t.startsWith("Fork") && t; });
  location.hash = SLEEPING;
  await until(() => document.getElementById("detail-id").textContent === SLEEPING && !document.getElementById("cancel-button").hidden);
  // The message may go again before a poll sees it: the refresh that follows the answer clears it once the
  // status says "cancelled". So every text the box is given is recorded as it is added.
  const shown = [];
  new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) => shown.push(n.textContent))))
    .observe(document.getElementById("action-result"), { childList: true });
  document.getElementById("cancel-button").click();
  const cancelled = await until(() => shown.find((t) => t.startsWith("Cancel")));
  // Once the status says it, the message next to the buttons goes.
  const afterCancel = await until(() => document.querySelector("#detail .status-failed") && document.getElementById("action-result").textContent === "" && "cleared");
  return { listing, refused, rerun, fork, cancelled, afterCancel, forkBox, stored: sessionStorage.getItem("dolmen-token"), href: location.href,
           errorShown: !document.getElementById("action-error").hidden };
"""


def test_admin_actions_ask_for_the_admin_token_then_rerun_fork_and_cancel(
    start_gateway: Callable[..., GatewayThread], http: httpx.Client, tmp_path: Path
) -> None:
    """With tokens configured: an invoke token reads but its rerun is refused in words; the admin token reruns, forks and cancels."""
    secured = start_gateway(tokens=(Token(ADMIN, "admin"), Token(INVOKER, "invoke")))
    serial = finished(http, f"{WF}.serial", {"n": 3})
    execution_id = sleeping(http)
    values = {"SERIAL": serial, "SLEEPING": execution_id, "ADMIN": ADMIN, "INVOKER": INVOKER}
    seen, _ = run(f"{secured.url}/#{serial}", tmp_path, page(ACTIONS, **values))
    assert seen["listing"] == "refused"
    assert seen["refused"].startswith("rerun refused: This needs an admin token")
    assert seen["stored"] == ADMIN and ADMIN not in seen["href"] and seen["errorShown"] is False
    rerun_id = seen["rerun"].split()[-1]
    fork_id = seen["fork"].split()[-1]
    assert seen["fork"].startswith("Fork of the first 3 events started")
    # The box offers what the API accepts: 1 to the index of `finished` (the events before it), defaulting to that.
    events = http.get(f"/v1/executions/{serial}/events").json()["events"]
    last = next(e["index"] for e in events if e["type"] == "finished")
    assert seen["forkBox"] == {"value": str(last), "max": str(last), "copies": f"copies events #0–#{last - 1}", "copiesAt3": "copies events #0–#2"}
    too_far = http.post(f"/v1/executions/{serial}/fork", json={"at": last + 1})
    assert too_far.status_code == 400 and f"choose 1 to {last}" in too_far.text
    assert seen["afterCancel"] == "cleared"
    created = http.get(f"/v1/executions/{rerun_id}/events").json()["events"][0]
    assert created["type"] == "created" and created["rerun_of"] == serial
    assert http.get(f"/v1/executions/{fork_id}/result?wait=30").json()["result"] == 12
    assert seen["cancelled"] in ("Cancelled.", "Cancellation requested.")
    done = wait_for(lambda: (s := http.get(f"/v1/executions/{execution_id}").json())["status"] == "finished" and s, what="the cancel")
    assert done["failure"]["kind"] == "cancelled"


FORK_FOLLOWS = """
  await until(() => document.getElementById("detail-id").textContent === SERIAL);
  const { showActions } = await import("/static/actions.js");
  const fork = document.getElementById("fork-at");
  const log = (n) => Array.from({ length: n }, (_, index) => ({ index, type: index ? "response" : "created" }));
  const running = { execution_id: "E_RUNNING", kind: "workflow", status: "running" };
  const seen = [];
  showActions(running, log(4));
  seen.push(fork.value);
  showActions(running, log(6));  // the log grew: the default follows it
  seen.push(fork.value);
  fork.value = "2";  // typed by the user: it stays
  showActions(running, log(9));
  seen.push(fork.value);
  fork.value = "9";  // back at the end: it follows again
  showActions(running, log(11));
  seen.push(fork.value);
  return { seen, max: fork.max };
"""


def test_the_fork_box_follows_a_growing_log_until_a_number_is_typed(http: httpx.Client, tmp_path: Path, gateway: GatewayThread) -> None:
    """Its default, the last event, moves with a running execution's log; a number the user typed is kept."""
    serial = finished(http, f"{WF}.serial", {"n": 1})
    seen, _ = run(f"{gateway.url}/#{serial}", tmp_path, page(FORK_FOLLOWS, SERIAL=serial))
    assert seen == {"seen": ["4", "6", "2", "11"], "max": "11"}


HINTS = """
  const hints = () => [...document.querySelectorAll(".admin-hint")].map((h) => !h.hidden);
  const useToken = (value) => { document.getElementById("token").value = value; document.getElementById("token-form").requestSubmit(); };
  const header = () => document.getElementById("deployment").textContent;
  if (!ADMIN) {
    await until(() => document.querySelector("#executions tr.execution") && !header().startsWith("loading"));
    await until(() => document.getElementById("detail-id").textContent === SERIAL);
    return { open: hints(), header: header() };
  }
  const none = { header: await until(() => !header().startsWith("loading") && header()), hints: await until(() => hints().every(Boolean) && hints()) };
  useToken(INVOKER);
  await until(() => header().startsWith("deployment"));
  const invoker = await until(() => hints().every(Boolean) && hints());
  useToken(ADMIN);
  await until(() => document.querySelector("#executions tr.execution"));
  const admin = await until(() => hints().every((h) => !h) && hints());
  return { none, invoker, admin };
"""


def test_admin_hints_show_only_when_true_and_the_header_says_a_token_is_needed(
    gateway: GatewayThread, start_gateway: Callable[..., GatewayThread], http: httpx.Client, tmp_path: Path
) -> None:
    """No "needs an admin token" on an open gateway or with an admin token; shown with no token or an invoke one,
    where the header says to enter a token instead of staying at "loading…"."""
    serial = finished(http, f"{WF}.serial", {"n": 1})
    seen, _ = run(f"{gateway.url}/#{serial}", tmp_path, page(HINTS, ADMIN="", INVOKER="", SERIAL=serial))
    assert seen["open"] and not any(seen["open"]) and seen["header"].startswith("deployment")
    secured = start_gateway(tokens=(Token(ADMIN, "admin"), Token(INVOKER, "invoke")))
    seen, _ = run(f"{secured.url}/", tmp_path, page(HINTS, ADMIN=ADMIN, INVOKER=INVOKER, SERIAL=serial))
    assert seen["none"]["header"] == "this gateway needs a token: enter it under Token"
    assert len(seen["none"]["hints"]) == 3 and all(seen["none"]["hints"])
    assert all(seen["invoker"]) and not any(seen["admin"])


SMALL = """
  const row = await until(() => document.querySelector(`tr.execution[data-id="${WORKFLOW}"]`));
  const cell = row.querySelector("td.id");
  const [button, code] = [cell.querySelector("button.toggle").getBoundingClientRect(), cell.querySelector("code").getBoundingClientRect()];
  const middle = (button.top + button.bottom) / 2;
  const oneLine = { lines: cell.querySelector("code").getClientRects().length, beside: code.top < middle && middle < code.bottom && button.right <= code.left + 1,
                    title: cell.title };
  const badge = (await until(() => document.querySelector(`tr.execution[data-id="${ERR}"]`))).querySelector(".status");
  // Nothing selected: the lists take the page's width.
  const unselected = { fits: fits(), width: document.getElementById("executions-section").getBoundingClientRect().width, main: document.querySelector("main").clientWidth };
  location.hash = LONG;
  await until(() => document.getElementById("detail-id").textContent === LONG && document.querySelector("#timeline li .data"));
  const panel = document.getElementById("detail-section").getBoundingClientRect();
  const widest = Math.max(...[...document.querySelectorAll("#timeline li .data")].map((d) => d.getBoundingClientRect().right));
  location.hash = CANCELLED;
  const failure = await until(() => document.getElementById("detail-id").textContent === CANCELLED && document.querySelector("#detail .failure-text"));
  const versions = await until(() => { const rows = [...document.querySelectorAll("#versions tbody tr")].filter((r) => r.querySelector("button")); return rows.length >= 2 && rows; });
  const ffqn = document.getElementById("upgrade-ffqn");
  const target = versions.find((r) => r.dataset.ffqn !== versions[0].dataset.ffqn) || versions[1];
  ffqn.value = versions[0].dataset.ffqn === target.dataset.ffqn ? [...ffqn.options].map((o) => o.value).find((v) => v !== target.dataset.ffqn) : versions[0].dataset.ffqn;
  ffqn.dispatchEvent(new Event("change"));
  const before = ffqn.value;
  target.querySelector("button").click();
  await until(() => document.getElementById("upgrade-report").textContent.startsWith("Dry run"));
  const selected = { fits: fits(), detailShown: !document.getElementById("detail-section").hidden };
  return { unselected, selected, oneLine, badge: { text: badge.textContent, cls: badge.className }, panelRight: panel.right, widest,
           failureStyle: getComputedStyle(failure).whiteSpace,
           form: { before, ffqn: ffqn.value, to: document.getElementById("upgrade-to").value, wanted: target.dataset.ffqn, digest: target.dataset.digest } };
"""


def test_rows_stay_on_one_line_details_stay_in_the_panel_err_results_show_and_the_upgrade_form_follows(
    gateway: GatewayThread, http: httpx.Client, next_revision: Revision, tmp_path: Path
) -> None:
    """An id is never broken and sits beside ▸; long log details wrap inside the panel; a failure keeps its newlines;
    an `err` result is badged "finished: err", not green; a row's dry-run button sets the form to its function."""
    err = http.post(f"/v1/functions/{ACT}.maybe?wait=30", json=[True]).json()
    assert err["status"] == "finished" and err["result"] == {"err": "asked to fail"}, err
    long_ = finished(http, f"{ACT}.slow", [1, "x" * 900])
    cancelled = sleeping(http)
    http.post(f"/v1/executions/{cancelled}/cancel")
    wait_for(lambda: http.get(f"/v1/executions/{cancelled}").json()["status"] == "finished", what="the cancel")
    workflow = finished(http, f"{WF}.serial", {"n": 1})
    values = {"ERR": err["execution_id"], "LONG": long_, "CANCELLED": cancelled, "WORKFLOW": workflow}
    seen, _ = run(f"{gateway.url}/", tmp_path, page(SMALL, **values))
    assert seen["oneLine"] == {"lines": 1, "beside": True, "title": workflow}
    # At 1280 px: the lists use the width until an execution is selected, and no table is wider than its card,
    # before or after (with the detail beside them and an upgrade report shown).
    assert seen["unselected"]["fits"] == [] and seen["unselected"]["width"] >= seen["unselected"]["main"] - 50, seen["unselected"]
    assert seen["selected"] == {"fits": [], "detailShown": True}
    assert seen["badge"] == {"text": "finished: err", "cls": "status status-err"}
    assert seen["widest"] <= seen["panelRight"] + 1
    assert seen["failureStyle"] == "pre-wrap"
    form = seen["form"]
    assert form["before"] != form["wanted"] and form["ffqn"] == form["wanted"] and form["to"] == form["digest"]


ESCAPED = """
  await until(() => document.getElementById("detail-id").textContent === ID && document.querySelector("#timeline li"));
  await until(() => document.querySelector(`tr.execution[data-id="${ID}"]`));
  const row = document.querySelector(`tr.execution[data-id="${ID}"]`);
  const [code, tags] = [row.querySelector("td:nth-child(2) code").getBoundingClientRect(), row.querySelector(".row-tags").getBoundingClientRect()];
  const tagLine = { sameLine: tags.top < code.bottom && code.top < tags.bottom, after: tags.left >= code.right - 1,
                    rowHeight: row.getBoundingClientRect().height, plain: document.querySelector("#executions tr.execution:not(:has(.row-tags))").getBoundingClientRect().height };
  return { tagLine, pwned: window.__pwned === true, images: document.querySelectorAll("main img, main script").length,
           log: document.getElementById("timeline").textContent, detail: document.getElementById("detail").textContent, row: document.querySelector(`tr.execution[data-id="${ID}"]`).textContent };
"""


def test_params_and_tags_from_executions_are_shown_as_text(gateway: GatewayThread, http: httpx.Client, tmp_path: Path) -> None:
    """Markup in params and tags shows literally in the listing and the log; it creates no element and runs nothing."""
    attack = '<img src=x onerror="window.__pwned=true">'
    # `slow` returns its `tag` param: the markup is in the params, the result and a tag. (Not `shout`:
    # test_invoke.py counts every `shout` execution of the shared platform.)
    response = http.post(f"/v1/functions/{ACT}.slow", params={"wait": 30, "tag": f"note={attack}"}, json=[1, attack])
    assert response.status_code == 200, response.text
    execution_id = response.json()["execution_id"]
    seen, _ = run(f"{gateway.url}/#{execution_id}", tmp_path, page(ESCAPED, ID=execution_id))
    assert seen["pwned"] is False and seen["images"] == 0
    # A row with tags is one line too: the chips follow the function, the row no taller than one without tags.
    line = seen["tagLine"]
    assert line["sameLine"] and line["after"] and line["rowHeight"] <= line["plain"] + 1, line
    assert attack.replace('"', '\\"') in seen["log"]  # the params, as JSON text
    assert f"note={attack}" in seen["row"]
    assert json.dumps(attack) in seen["detail"]  # the result
