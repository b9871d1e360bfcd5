"""The one exponential backoff (platform/backoff.py) and the delays its callers get from it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dolmen.platform.backoff import Backoff
from dolmen.platform.model import RetryPolicy as ExecutionRetry
from dolmen.platform.supervisor import RestartPolicy, plan_restart
from dolmen.registry.transport import RetryPolicy as RegistryRetry


def test_delays_double_from_initial_up_to_the_cap() -> None:
    """Without jitter the delays are initial, initial * 2, ... and then the cap, exactly."""
    assert [Backoff(0.05, 1.0).delay(n) for n in range(1, 8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert list(itertools.islice(Backoff(0.1, 2.0).delays(), 7)) == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_another_factor_grows_by_it() -> None:
    """`factor` replaces the doubling."""
    assert [Backoff(1.0, 100.0, factor=3.0).delay(n) for n in range(1, 6)] == [1.0, 3.0, 9.0, 27.0, 81.0]


def test_a_failure_count_past_float_range_gives_the_cap() -> None:
    """Thousands of failures in a row neither overflow nor exceed the cap."""
    assert Backoff(0.5, 30.0).delay(5_000) == 30.0


def test_jitter_spreads_the_delay_around_its_middle() -> None:
    """The draw places the delay within ±jitter of the exact one: 0 at the low end, 0.5 in the middle."""
    backoff = Backoff(0.02, 0.5, jitter=0.5)
    assert backoff.delay(1, draw=0.0) == pytest.approx(0.01)
    assert backoff.delay(1, draw=0.5) == pytest.approx(0.02)
    assert backoff.delay(10, draw=0.999) == pytest.approx(0.5 * 1.499)


def test_delays_draw_only_when_jittered() -> None:
    """The iterator calls `draw` once per delay with jitter, never without."""
    draws = iter([0.0, 1.0 - 1e-9, 0.5])
    jittered = list(itertools.islice(Backoff(1.0, 10.0, jitter=0.5).delays(lambda: next(draws)), 3))
    assert jittered == pytest.approx([0.5, 3.0, 4.0])

    def never() -> float:
        raise AssertionError("drawn without jitter")

    assert list(itertools.islice(Backoff(1.0, 10.0).delays(never), 2)) == [1.0, 2.0]


@given(
    initial=st.floats(0, 10),
    extra=st.floats(0, 100),
    failures=st.integers(1, 10_000),
    jitter=st.floats(0, 1),
    draw=st.floats(0, 1, exclude_max=True),
)
def test_a_delay_stays_within_the_jittered_cap(initial: float, extra: float, failures: int, jitter: float, draw: float) -> None:
    """Every delay lies in [0, cap * (1 + jitter)]."""
    backoff = Backoff(initial, initial + extra, jitter=jitter)
    assert 0 <= backoff.delay(failures, draw) <= backoff.cap * (1 + jitter) + 1e-9


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"initial": -1, "cap": 1}, "negative"),
        ({"initial": 1, "cap": 2, "factor": 0.5}, "shrink"),
        ({"initial": 1, "cap": 2, "jitter": 1.5}, "fraction"),
    ],
)
def test_settings_that_make_no_backoff_are_refused(arguments: dict[str, float], problem: str) -> None:
    """A negative delay, a shrinking factor or jitter outside 0..1 is refused when the backoff is made."""
    with pytest.raises(ValueError, match=problem):
        Backoff(**arguments)


def test_a_delay_needs_a_failure() -> None:
    """There is no delay before the first failure."""
    with pytest.raises(ValueError, match="at least one failure"):
        Backoff(1, 2).delay(0)


def test_the_callers_keep_their_delays() -> None:
    """Execution retries (ms), supervisor restarts and registry retries give what they gave before the helper."""
    retry = ExecutionRetry(initial_backoff_ms=100, max_backoff_ms=30_000)
    assert [retry.backoff_ms(n) for n in (0, 1, 2, 3, 9, 10, 50)] == [100, 100, 200, 400, 25_600, 30_000, 30_000]
    assert all(isinstance(retry.backoff_ms(n), int) for n in range(1, 12))
    restarts = RestartPolicy(initial_delay_s=0.5, factor=2.0, max_delay_s=30.0, healthy_after_s=30.0)
    assert [plan_restart(restarts, n, uptime_s=1.0).delay_s for n in range(0, 8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert plan_restart(restarts, 6, uptime_s=60.0).delay_s == 0.5  # a healthy run forgives the earlier deaths
    assert [RegistryRetry().delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.6, 2.0]
