"""A workflow's join set as one run sees it: its submissions, and which responses the code has taken."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class JoinSet:
    """A join set's submissions, and which of their responses the code has still to take.

    Both questions are asked at every join-next and every wait. A taken
    response stays taken, so each answer resumes where the previous one
    stopped: fronts into the submission lists and a heap of delays, O(1)
    amortized per question where a scan of all submissions made a fan-out of
    n children cost O(n²).
    """

    name: str
    closing: str
    submitted: list[str] = field(default_factory=list)  # child and delay ids, in order
    delays: dict[str, int] = field(default_factory=dict)  # delay id -> when it fires (ms)
    _children: list[str] = field(default_factory=list, init=False, repr=False)  # child ids, in order
    _front: int = field(default=0, init=False, repr=False)  # every id in submitted[:_front] is taken
    _child_front: int = field(default=0, init=False, repr=False)  # every id in _children[:_child_front] is taken
    # (fires at, delay id) of the delays, a heap; taken ones are dropped when they reach the top.
    _timers: list[tuple[int, str]] = field(default_factory=list, init=False, repr=False)

    def add_child(self, child_id: str) -> None:
        """A child was submitted into this join set."""
        self.submitted.append(child_id)
        self._children.append(child_id)

    def add_delay(self, delay_id: str, until: int) -> None:
        """A delay was submitted into this join set; it fires at `until` (ms)."""
        self.submitted.append(delay_id)
        self.delays[delay_id] = until
        heapq.heappush(self._timers, (until, delay_id))

    def all_taken(self, taken: Callable[[str], bool]) -> bool:
        """Whether the response of every submission was taken (`taken` never turns false again)."""
        while self._front < len(self.submitted) and taken(self.submitted[self._front]):
            self._front += 1
        return self._front == len(self.submitted)

    def earliest_response(self, taken: Callable[[str], bool]) -> int | None:
        """When the first pending response can arrive: a time if only delays are pending, else None."""
        if self.all_taken(taken):
            return None
        while self._child_front < len(self._children) and taken(self._children[self._child_front]):
            self._child_front += 1
        if self._child_front < len(self._children):
            return None
        # Only delays are pending, so the heap holds at least one untaken delay.
        while taken(self._timers[0][1]):
            heapq.heappop(self._timers)
        return self._timers[0][0]
