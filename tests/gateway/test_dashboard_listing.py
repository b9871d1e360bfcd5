"""The dashboard's listing in headless Chromium against the real platform: a status or outcome filter finds executions
wherever they are in their trees, and Older/Newer page through more than one page, partial pages included.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from dolmen.gateway import api, listing
from dolmen.platform.store.outcomes import OUTCOMES
from tests.gateway.dashboard_pages import RED, box, page, run
from tests.gateway.helpers import ACT, WF, GatewayThread
from tests.support.polling import wait_for

pytestmark = pytest.mark.browser

STATIC = Path(api.__file__).parent / "static"


def rows_of(http: httpx.Client, **params: str) -> list[str]:
    """The ids the API lists, newest first (what the page must show)."""
    return [e["execution_id"] for e in http.get("/v1/executions", params={**params, "limit": "50"}).json()["executions"]]


FIND = """
  const rows = () => [...document.querySelectorAll("#executions tbody tr.execution")];
  const shown = () => rows().map((r) => ({ id: r.dataset.id, depth: r.dataset.depth, text: r.textContent }));
  await until(() => rows().length === ROOTS.length);
  const tree = { ids: rows().map((r) => r.dataset.id), mode: document.getElementById("listing-mode").textContent };
  const choose = async (value, count) => {
    document.getElementById("status-filter").value = value;
    document.getElementById("filter-form").requestSubmit();
    await until(() => location.search.includes(value.replace("outcome:", "outcome=")) && rows().length === count);
    return { rows: shown(), mode: document.getElementById("listing-mode").textContent, search: location.search };
  };
  const cancelled = await choose("outcome:cancelled", CANCELLED.length);
  const failed = await choose("outcome:failed", FAILED.length);
  const table = document.getElementById("executions").getBoundingClientRect().toJSON();
  const link = rows().find((r) => r.dataset.id === CANCELLED[0]).querySelector("a.lineage");
  link.click();
  const detail = await until(() => document.getElementById("detail-id").textContent === PARENT && document.getElementById("detail-id").textContent);
  return { tree, cancelled, failed, detail, table, selected: document.getElementById("status-filter").value };
"""


def test_a_status_filter_in_tree_mode_lists_matching_executions_wherever_they_are_in_their_trees(
    gateway: GatewayThread, http: httpx.Client, tmp_path: Path
) -> None:
    """Trees list only roots; filtered by outcome, the page lists every match newest first, children of trees that
    succeeded included, each child naming its parent, a link that opens it; the failures are badged red."""
    run_id = uuid.uuid4().hex
    tag = f"run={run_id}"
    abandoned = http.post(f"/v1/functions/{WF}.abandon?wait=30&tag={tag}", json={"ms": 20_000}).json()["execution_id"]
    failing = http.post(f"/v1/functions/{WF}.failing-child?wait=60&tag={tag}", json={}).json()["execution_id"]
    http.post(f"/v1/functions/{ACT}.maybe?wait=30&tag={tag}", json=[True])
    children = [c["execution_id"] for c in http.get(f"/v1/executions/{abandoned}/children").json()["children"]]
    wait_for(lambda: set(rows_of(http, tag=tag, outcome="cancelled")) == set(children), what="both children cancelled")
    roots = rows_of(http, tag=tag, root="true")
    cancelled = rows_of(http, tag=tag, outcome="cancelled")
    failed = rows_of(http, tag=tag, outcome="failed")
    assert len(roots) == 3 and len(failed) == 4 and failing in failed

    values = {"ROOTS": roots, "CANCELLED": cancelled, "FAILED": failed, "PARENT": abandoned}
    seen, image = run(f"{gateway.url}/?tag={tag}", tmp_path, page(FIND, **values), shot="find.png")  # type: ignore[arg-type]
    assert seen["tree"]["ids"] == roots and seen["tree"]["mode"].startswith("Trees")
    assert [r["id"] for r in seen["cancelled"]["rows"]] == cancelled
    assert all(r["depth"] == "0" and f"child of {abandoned}" in r["text"] and "failed: cancelled" in r["text"] for r in seen["cancelled"]["rows"])
    assert seen["cancelled"]["mode"].startswith("Every matching execution, wherever it is in its tree")
    assert [r["id"] for r in seen["failed"]["rows"]] == failed
    assert seen["failed"]["search"] == f"?outcome=failed&tag=run%3D{run_id}"
    assert seen["detail"] == abandoned and seen["selected"] == "outcome:failed"
    assert image is not None
    # Four red "failed: ..." badges in the table.
    assert image.count(RED, box(seen["table"]), tolerance=30) > 400


PAGES = """
  const ids = () => [...document.querySelectorAll("#executions tbody tr.execution")].map((r) => r.dataset.id);
  const state = () => ({ older: !document.getElementById("page-older").disabled, newer: !document.getElementById("page-newer").disabled,
                         newest: !document.getElementById("page-newest").hidden, pager: !document.getElementById("pager").hidden,
                         cursor: new URLSearchParams(location.search).get("cursor") });
  await until(() => ids().length === 50);
  const first = { ids: ids(), ...state() };
  document.getElementById("page-older").click();
  await until(() => ids().length === 6);
  const second = { ids: ids(), ...state() };
  // Page 2 with an execution open beside it (1280 px): no table wider than its card, no Took or Created cut.
  location.hash = second.ids[0];
  await until(() => document.getElementById("detail-id").textContent === second.ids[0]);
  second.fits = fits();
  // One more execution: newer than any page, so the page shown stays as it is through the next two refreshes.
  await fetch("/v1/functions/" + DOUBLE + "?wait=30&tag=" + TAG, { method: "POST", body: "[1]" });
  let refreshes = 0;
  const watch = new MutationObserver(() => { refreshes += 1; });
  watch.observe(document.querySelector("#executions tbody"), { childList: true });
  await until(() => refreshes >= 2);
  watch.disconnect();
  const kept = ids();
  document.getElementById("page-newer").click();
  await until(() => ids().join() === first.ids.join() && state().cursor);
  const back = { ids: ids(), ...state() };
  document.getElementById("page-newer").click();
  await until(() => !state().cursor && ids().length === 50 && ids()[1] === first.ids[0]);
  const top = { ids: ids(), ...state() };
  return { first, second, kept, back, top };
"""

PARTIAL = """
  const ids = () => [...document.querySelectorAll("#executions tbody tr.execution")].map((r) => r.dataset.id);
  await until(() => document.querySelector("#executions tbody td.muted"));
  const empty = { text: document.querySelector("#executions tbody").textContent, note: document.getElementById("page-note").textContent,
                  older: !document.getElementById("page-older").disabled };
  let clicks = 0;
  while (!ids().includes(ERR) && clicks < 5) {
    // The rows shown go once the next page is in (a refresh begun before the click is never painted after it).
    const shown = document.querySelector("#executions tbody tr");
    document.getElementById("page-older").click();
    clicks += 1;
    await until(() => !shown.isConnected);
  }
  await until(() => ids().includes(ERR));
  return { empty, clicks, ids: ids(), older: !document.getElementById("page-older").disabled };
"""


def test_older_and_newer_page_through_more_than_one_page_and_a_partial_page_says_so(
    gateway: GatewayThread, http: httpx.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """56 roots: 50 on the first page, 6 on the next (Older), a page that stays put while executions are created,
    Newer back (twice, past the new one) to the newest page, whose URL has no cursor. Bounded to 20 executions a
    request, a filter for one old `err` first shows an empty partial page that says so, and Older finds it."""
    run_id = uuid.uuid4().hex
    tag = f"run={run_id}"
    err = http.post(f"/v1/functions/{ACT}.maybe?wait=30&tag={tag}", json=[True]).json()["execution_id"]
    for i in range(55):
        assert http.post(f"/v1/functions/{ACT}.double?tag={tag}", json=[i]).status_code == 202
    wait_for(lambda: len(rows_of(http, tag=tag, status="finished")) == 50, what="the executions finished")
    newest = rows_of(http, tag=tag, root="true")
    assert len(newest) == 50

    values = {"TAG": tag, "DOUBLE": f"{ACT}.double"}
    seen, _ = run(f"{gateway.url}/?tag={tag}", tmp_path, page(PAGES, **values))
    first, second = seen["first"], seen["second"]
    assert first["ids"] == newest and first["older"] and not first["newer"] and not first["newest"] and first["pager"]
    assert len(set(first["ids"] + second["ids"])) == 56 and err == second["ids"][-1]
    assert second["cursor"] and not second["older"] and second["newer"] and second["newest"]
    assert second["fits"] == [], second["fits"]
    assert seen["kept"] == second["ids"]
    assert seen["back"]["ids"] == first["ids"] and seen["back"]["newer"]  # the new one is above them
    assert seen["top"]["cursor"] is None and not seen["top"]["newer"] and seen["top"]["ids"][1:] == first["ids"][:49]

    monkeypatch.setattr(listing, "SCAN_LIMIT", 20)
    seen, _ = run(f"{gateway.url}/?outcome=err&tag={tag}", tmp_path, page(PARTIAL, ERR=err))
    assert "No executions with outcome err, tags " in seen["empty"]["text"] and "among those searched" in seen["empty"]["text"]
    assert seen["empty"]["note"].startswith("0 found before the gateway stopped searching") and seen["empty"]["older"]
    assert seen["ids"] == [err] and 1 <= seen["clicks"] <= 3 and not seen["older"]


def test_the_status_menu_offers_every_status_and_outcome_the_api_takes() -> None:
    """The menu's values are the API's statuses and, as `outcome:X`, its outcomes: none missing, none extra."""
    html = (STATIC / "index.html").read_text()
    menu = html[html.index('<select id="status-filter">') : html.index("</select>", html.index('<select id="status-filter">'))]
    values = re.findall(r'<option value="([^"]*)"', menu)
    assert values == ["", "pending", "running", "blocked", "finished", *(f"outcome:{o}" for o in OUTCOMES)]
