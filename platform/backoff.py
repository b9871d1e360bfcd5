"""Exponential backoff: the one formula behind every retry, restart and wait-again delay.

Its users pick their own numbers: deployment retry policies (milliseconds, no
jitter, since the retry time is decided once and written to the log), the
supervisor's restarts, the registry client's retries, and the store's waits for
a server that does not answer or is full (seconds, the async links with jitter).
`Backoff.delay` is a pure function of the failure count and of the random draw
it is given; `Backoff.delays` is the iterator a retry loop takes its pauses from.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays from `initial`, times `factor` after each further failure, never above `cap` (any one unit).

    `jitter` spreads each delay evenly over [d * (1 - jitter), d * (1 + jitter)], so that
    clients that failed together do not all try again at the same moment; 0 keeps it exact.
    Raises ValueError for a negative `initial` or `cap`, a `factor` below 1, or a
    `jitter` outside [0, 1].
    """

    initial: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.cap < 0:
            raise ValueError(f"backoff delays cannot be negative (initial {self.initial}, cap {self.cap})")
        if self.factor < 1:
            raise ValueError(f"a backoff factor below 1 ({self.factor}) would shrink the delays")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"backoff jitter is a fraction from 0 to 1, got {self.jitter}")

    def delay(self, failures: int, draw: float = 0.5) -> float:
        """The delay after `failures` (≥ 1) failures in a row: `initial` after the first.

        `draw`, in [0, 1), places it within the jitter (a random number from the
        caller; 0.5 is the middle, the delay without jitter). ValueError when
        `failures` < 1.
        """
        if failures < 1:
            raise ValueError(f"a backoff delay follows at least one failure, got {failures}")
        try:
            grown = self.initial * self.factor ** (failures - 1)
        except OverflowError:  # a float power past 1e308: long past the cap anyway
            grown = self.cap
        return min(grown, self.cap) * (1 - self.jitter + 2 * self.jitter * draw)

    def delays(self, draw: Callable[[], float] = random.random) -> Iterator[float]:
        """The delays after the 1st, 2nd, ... failure, without end (`draw` is called only with jitter)."""
        failures = 0
        while True:
            failures += 1
            yield self.delay(failures, draw() if self.jitter else 0.5)


__all__ = ["Backoff"]
