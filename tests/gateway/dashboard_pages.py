"""What the dashboard's browser tests share: page scripts, running them in Chromium, pixel boxes, the colours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.helpers import WF
from tests.support.browser import UNTIL_IN_PAGE, evaluate_in_page
from tests.support.png import Image, decode
from tests.support.polling import wait_for

# The dashboard's colours (dashboard.css): a finished bar or badge, a sleep, a retry wait, a failure.
GREEN = (0x2E, 0x8A, 0x4F)
AMBER = (0xB0, 0x80, 0x1F)
PINK = (0xE3, 0xB1, 0xB1)
RED = (0xB2, 0x3B, 0x3B)


# `fits()`: what does not fit in the page as shown: a table wider than its card's content box, a card that
# scrolls sideways, or a listing's Created or Took cut (`[]` when everything fits).
FITS_IN_PAGE = """
  const fits = () => {
    const out = [];
    for (const table of document.querySelectorAll("main section:not([hidden]) table")) {
      const card = table.closest("section");
      const inner = card.getBoundingClientRect().right - parseFloat(getComputedStyle(card).paddingRight);
      const right = table.getBoundingClientRect().right;
      if (right > inner + 1) out.push(`${table.id}: right edge ${Math.round(right)} past its card's ${Math.round(inner)}`);
      if (card.scrollWidth > card.clientWidth) out.push(`${card.id} scrolls: ${card.scrollWidth} in ${card.clientWidth}`);
    }
    for (const cell of document.querySelectorAll("#executions tr.execution td:nth-child(4), #executions tr.execution td:nth-child(5)")) {
      if (cell.scrollWidth > cell.clientWidth) out.push(`cut: ${cell.textContent}`);
    }
    return [...new Set(out)];
  };
"""


def page(body: str, **values: str) -> str:
    """An async page script: `until` and `fits` plus `body`, with `values` bound as JS constants (JSON-quoted)."""
    consts = "".join(f"  const {name} = {json.dumps(value)};\n" for name, value in values.items())
    return "(async () => {\n" + UNTIL_IN_PAGE + FITS_IN_PAGE + consts + body + "\n})()"


def run(url: str, tmp_path: Path, script: str, shot: str | None = None) -> tuple[Any, Image | None]:
    """Evaluate `script` at `url`; with `shot`, also decode the screenshot taken once it is done."""
    path = tmp_path / shot if shot else None
    result = evaluate_in_page(url, tmp_path, script, timeout=90.0, screenshot=path)
    return result, decode(path.read_bytes()) if path else None


def box(rect: dict[str, float]) -> tuple[int, int, int, int]:
    """A DOMRect (from the page) as a pixel box (left, top, right, bottom)."""
    return int(rect["left"]), int(rect["top"]), int(rect["right"]), int(rect["bottom"])


def finished(http: httpx.Client, ffqn: str, params: Any) -> str:
    """The id of a new execution of `ffqn`, once it finished."""
    response = http.post(f"/v1/functions/{ffqn}?wait=30", json=params)
    assert response.status_code == 200 and response.json()["status"] == "finished", response.text
    return response.json()["execution_id"]


def sleeping(http: httpx.Client) -> str:
    """A workflow blocked in a long durable sleep (cancel it after the test)."""
    execution_id = http.post(f"/v1/functions/{WF}.sleepy", json={"ms": 3_600_000}).json()["execution_id"]
    wait_for(lambda: http.get(f"/v1/executions/{execution_id}").json()["status"] == "blocked", what="the sleep")
    return execution_id
