"""Listing executions newest first, a page at a time, with cursors that stay put (`GET /v1/executions`, `platform
executions list`).

An index (`executions`, `active` or a tag's, each split in shards: store/shards.py) is a sorted set of execution
ids scored by creation time (ms). A page is read from a **position**, an entry (ms, id), strictly past it in one
direction: older (the next page) or newer (the previous one), in the order one set of every shard's entries would
have (ms, then id, both descending). Executions created later are newer than any position, and a position need
not be an entry any more, so a page read again with the same cursor shows the same executions, whatever was
created or removed meanwhile (an offset would shift by each of them). A newer page that reaches the top is the
newest page, full, with no `previous`: the page a user goes back to is the one they started from.

The filters other than the index's own are checked on each execution's state, read in one round trip per batch.
A page ends at `limit` matches, at the end of the index, or, when the caller bounds it (`scan`), after that many
entries were read: a filter that few executions pass (an outcome, say) then answers a **partial** page, maybe
empty, with a cursor that searches on from where it stopped, instead of reading the whole index in one request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..surface import CLI, Surface
from ..tags import matches as tag_matches, member as tag_member
from . import keys
from .connection import Redis, map_redis_errors
from .outcomes import OUTCOMES, outcome_matches
from .records import STATUSES, ExecutionState, Status
from .shards import Shards, tag_kind


# A child's id is its parent's and a position: `E_...3.1` (platform/ids.py); a root's has no dot.
_CHILD_MARK = "."
# How many index entries a bounded page may pass over (children in a tree listing) per state it may read.
INDEX_PER_STATE = 10


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """An index entry: an execution's creation time (ms) and id. Pages go on strictly past it."""

    created_at: int
    execution_id: str

    @classmethod
    def of(cls, state: ExecutionState) -> Position:
        """The index entry of `state`: (`created_at`, `id`)."""
        return cls(state.created_at, state.id)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next (`newer` False: older executions) or previous (`newer` True) page starts."""

    position: Position
    newer: bool = False

    def token(self) -> str:
        """The cursor as the API and the CLI hand it out: opaque, URL-safe text.

        base64url without padding (RFC 4648 §5) of the JSON `{"t": ms, "id": execution id, "d": "o"|"n"}`.
        """
        data = {"t": self.position.created_at, "id": self.position.execution_id, "d": "n" if self.newer else "o"}
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, text: str, surface: Surface = CLI) -> Cursor:
        """A cursor from its `token()`; raises `UsageError` (path `cursor`) for anything else."""
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            created_at, execution_id, direction = data["t"], data["id"], data["d"]
            if not isinstance(created_at, int) or isinstance(created_at, bool) or created_at < 0:
                raise ValueError(created_at)
            if not isinstance(execution_id, str) or not execution_id or direction not in ("o", "n"):
                raise ValueError(data)
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            where = "a page's `next` or `previous`" if surface.http else "the `--cursor` value a listing printed"
            raise UsageError(
                f"the cursor {_shown(text)} is not one a listing gave: pass {where} as it is, or leave the cursor out "
                "to start from the newest executions",
                path="cursor",
            ) from None
        return cls(Position(created_at, execution_id), direction == "n")


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Which executions a listing keeps. Every field set must match; `tags` (KEY, VALUE) all of them.

    `outcome` (one of `outcomes.OUTCOMES`) keeps finished executions that ended so. `roots_only` leaves out
    children (executions a workflow started); `active_only` keeps the unfinished ones (and those that continued
    as new). Raises `UsageError` naming the bad field and the values it takes.
    """

    ffqn: str | None = None
    status: Status | None = None
    outcome: str | None = None
    digest: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    roots_only: bool = False
    active_only: bool = False
    surface: Surface = field(default=CLI, compare=False)

    def __post_init__(self) -> None:
        status, outcome, surface = self.status, self.outcome, self.surface
        if status is not None and status not in STATUSES:
            hint = f" ('{status}' is an outcome: {_option(surface, 'outcome', status)})" if status in OUTCOMES else ""
            raise UsageError(f"unknown status '{status}'; use one of {', '.join(STATUSES)}{hint}", path="status")
        if outcome is not None and outcome not in OUTCOMES:
            raise UsageError(f"unknown outcome '{outcome}'; use one of {', '.join(OUTCOMES)}", path="outcome")
        if outcome is not None and status not in (None, "finished"):
            raise UsageError(
                f"{_option(surface, 'outcome', outcome)} lists finished executions only, and "
                f"{_option(surface, 'status', status or '')} none of those: leave the status out",
                path="outcome",
            )

    @property
    def index_kind(self) -> str:
        """The index read (`Shards.every`): the first tag's, else `active` when only unfinished ones can match."""
        if self.tags:
            return tag_kind(tag_member(*self.tags[0]))
        unfinished = self.status is not None and self.status != "finished"
        return "active" if self.active_only or unfinished else "executions"

    def matches(self, state: ExecutionState) -> bool:
        """Whether `state` passes every filter set (the index read, `index_kind`, may have passed over it already)."""
        if self.ffqn and state.ffqn != self.ffqn:
            return False
        if self.status and state.status != self.status:
            return False
        if self.outcome and not (state.status == "finished" and outcome_matches(state.outcome, self.outcome)):
            return False
        if self.digest and state.digest != self.digest:
            return False
        if self.roots_only and state.parent:
            return False
        if self.tags and not tag_matches(state.tags, self.tags):
            return False
        # What the `active` index would have listed, had it been read.
        return not (self.tags and self.active_only and not state.live)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a listing, newest first, and the cursors to the pages around it (None: nothing there).

    `partial`: the scan bound ended the page before `limit` executions matched; `next` searches on.
    """

    states: list[ExecutionState]
    next: Cursor | None
    previous: Cursor | None
    partial: bool = False

    def paging(self) -> dict[str, Any]:
        """`next`, `previous` (cursor tokens or None) and `partial`, as the API and `--json` write them."""
        return {
            "next": self.next.token() if self.next else None,
            "previous": self.previous.token() if self.previous else None,
            "partial": self.partial,
        }


def read_page(
    client: Redis, shards: Shards, selection: ListFilter, cursor: Cursor | None, limit: int, scan: int | None = None
) -> Page:
    """The page of `selection` past `cursor` (the newest page without one): at most `limit` executions, and at most
    `scan` execution states read (unbounded when None).

    Raises `UsageError` for a `limit` below 1 and `StoreError` when the store cannot be read.
    """
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}", path="limit")
    index = shards.every(selection.index_kind)
    with map_redis_errors():
        if cursor is not None and cursor.newer:
            found = _scan(client, index, selection, cursor.position, True, limit, scan)
            page = newer_page(found, cursor, limit)
            if page is not None:
                return page
            cursor = None  # at the top: the newest page
        return older_page(_scan(client, index, selection, cursor.position if cursor else None, False, limit, scan), cursor, limit)


@dataclass(frozen=True, slots=True)
class Found:
    """What a scan read: the matches in reading order (up to `limit` + 1), the last entry read, and whether the
    index ended there."""

    matches: list[tuple[Position, ExecutionState]]
    last: Position | None
    ended: bool


def older_page(found: Found, cursor: Cursor | None, limit: int) -> Page:
    """The page of a scan towards older executions, from `cursor` (None: from the newest), and its cursors. Pure."""
    matches = found.matches
    if len(matches) > limit:
        following: Cursor | None = Cursor(matches[limit - 1][0])
    else:
        # Past the last match, up to the last entry read: those did not match.
        following = None if found.ended or found.last is None else Cursor(found.last)
    previous = None
    if cursor is not None:
        # The page before this one ends at this one's newest execution (or, with none, where the search started).
        previous = Cursor(matches[0][0] if matches else cursor.position, newer=True)
    return Page([state for _, state in matches[:limit]], following, previous, partial=not found.ended and len(matches) < limit)


def newer_page(found: Found, cursor: Cursor, limit: int) -> Page | None:
    """The page of a scan towards newer executions from `cursor`, newest first, and its cursors; None when the
    scan reached the newest execution within a page (the newest page is shown instead). Pure."""
    matches = found.matches
    if found.ended and len(matches) <= limit:
        return None
    shown = matches[:limit]
    if len(matches) > limit:
        previous = Cursor(shown[-1][0], newer=True)
    else:
        previous = Cursor(found.last or cursor.position, newer=True)
    # The next page starts right below this one: below its oldest match, or where the search started.
    following = Cursor(shown[0][0]) if shown else Cursor(found.last or cursor.position)
    return Page([state for _, state in reversed(shown)], following, previous, partial=len(matches) < limit)


def _scan(
    client: Redis,
    index: list[str],
    selection: ListFilter,
    start: Position | None,
    newer: bool,
    limit: int,
    scan: int | None,
) -> Found:
    """Read entries past `start` until `limit` + 1 match (one more tells whether a next page holds any), the index
    ends, or `scan` states were read.

    With `roots_only`, a child is passed over by its id (`E_...3.1`) without reading its state, so a tree listing
    is not slowed by fan-outs; such entries count against `scan` only by INDEX_PER_STATE.
    """
    found: list[tuple[Position, ExecutionState]] = []
    last = start
    states_read = entries_read = 0
    batch = max(limit * 2, 100) * (INDEX_PER_STATE if selection.roots_only else 1)
    while True:
        want = batch
        if scan is not None:
            want = min(want, scan - states_read, scan * INDEX_PER_STATE - entries_read)
        if want <= 0:
            return Found(found, last, False)
        # One entry more than is read tells whether the index ends here: a page that uses up its bound right at the
        # end then has no `next` that finds nothing.
        entries = entries_past(client, index, last, newer, want + 1)
        more = len(entries) > want
        entries = entries[:want]
        wanted = [e.execution_id for e in entries if not (selection.roots_only and _CHILD_MARK in e.execution_id)]
        pipe = client.pipeline(transaction=False)
        for execution_id in wanted:
            pipe.hgetall(keys.state(execution_id))
        read: dict[str, dict[bytes, bytes]] = dict(zip(wanted, pipe.execute())) if wanted else {}
        states_read += len(wanted)
        entries_read += len(entries)
        for entry in entries:
            last = entry
            raw = read.get(entry.execution_id)
            if raw and selection.matches(state := ExecutionState.from_hash(raw)):
                found.append((entry, state))
                if len(found) > limit:
                    return Found(found, last, False)
        if not more:
            return Found(found, last, True)


def entries_past(client: Redis, index: Sequence[str], start: Position | None, newer: bool, count: int) -> list[Position]:
    """Up to `count` entries of the union of the sorted sets `index` strictly past `start` (from the newest without
    one), newest first (`newer` False) or oldest first.

    Each set is read from `start`'s score on, plus every entry at that very score, whose ids decide which are
    past it (executions created in the same millisecond: a fan-out's children). One round trip for all sets
    (ZREVRANGEBYSCORE / ZRANGEBYSCORE, the scores being creation times in ms). Raises redis-py's exceptions
    untranslated: its caller (`read_page`) maps them.
    """
    pipe = client.pipeline(transaction=False)
    for key in index:
        if start is None:
            pipe.zrevrangebyscore(key, "+inf", "-inf", start=0, num=count, withscores=True)
        elif newer:
            pipe.zrangebyscore(key, f"({start.created_at}", "+inf", start=0, num=count, withscores=True)
            pipe.zrangebyscore(key, start.created_at, start.created_at, withscores=True)
        else:
            pipe.zrevrangebyscore(key, f"({start.created_at}", "-inf", start=0, num=count, withscores=True)
            pipe.zrangebyscore(key, start.created_at, start.created_at, withscores=True)
    replies: list[list[tuple[bytes, float]]] = pipe.execute()
    rows = {Position(int(score), raw.decode()) for reply in replies for raw, score in reply}
    if start is not None:
        rows = {row for row in rows if (row > start if newer else row < start)}
    return sorted(rows, reverse=not newer)[:count]


def _option(surface: Surface, name: str, value: str) -> str:
    """A filter as the user gives it: `outcome=failed` to the API, `--outcome failed` to the CLI."""
    return f"{name}={value}" if surface.http else f"--{name} {value}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


__all__ = ["Cursor", "Found", "ListFilter", "Page", "Position", "entries_past", "newer_page", "older_page", "read_page"]
