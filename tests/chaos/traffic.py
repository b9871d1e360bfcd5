"""The load: the planned top-level executions (`Job`, `plan`) and the `Traffic` that submits them through
the gateway or the `Client`, retrying through the chaos, and cancels some of them once they run."""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from dolmen.platform.client import Client
from dolmen.platform.errors import ConflictError, NotFoundError, UsageError
from dolmen.platform.ids import ExecutionId
from tests.chaos.servers import FlakyServer
from tests.chaos.settings import MIX, SEED, SUBMIT_GIVE_UP_S, SUBMITTERS, A, F, P, Size


@dataclass
class Job:
    """One top-level execution to submit, and what became of it."""

    index: int
    kind: str
    ffqn: str
    params: list[Any]
    via: str  # "http" (gateway, Idempotency-Key) or "client" (Client.submit with a chosen id)
    at: float  # seconds after the chaos began
    key: str  # the idempotency key, or the execution id chosen up front
    cancel_after: float | None = None
    cancel_via: str = "http"
    execution_id: str | None = None
    attempts: int = 0
    error: str | None = None
    cancel_result: str | None = None
    cancel_attempts: int = 0


def plan(rng: random.Random, flaky: FlakyServer, size: Size) -> list[Job]:
    kinds, weights = list(MIX), list(MIX.values())
    jobs = []
    for i in range(size.executions):
        kind = rng.choices(kinds, weights)[0]
        cancel_after = None
        if kind == "double":
            ffqn, params = f"{A}.double", [rng.randrange(1, 10**6)]
        elif kind == "flaky":
            ffqn, params = f"{A}.fetch", [flaky.url(f"j{i}", rng.randint(1, 3))]
        elif kind == "slow":
            ffqn, params = f"{A}.slow", [rng.randint(50, 500), f"tag-{i}"]
        elif kind == "serial":
            ffqn, params = f"{F}.serial", [rng.randint(2, 8)]
        elif kind == "fan-out":
            ffqn, params = f"{F}.fan-out", [rng.randint(2, 12)]
        elif kind == "sleepy":
            ffqn, params = f"{F}.sleepy", [rng.choice([rng.randint(50, 1500), rng.randint(2500, 5000)])]
        elif kind == "schedule":
            ffqn, params = f"{F}.schedule-then-sleep", [rng.randrange(1, 10**6), rng.randint(0, 2000), rng.randint(50, 2500)]
        elif kind == "later":
            ffqn, params = f"{P}.later", [rng.randint(1, 4), rng.randint(100, 3000)]
        elif kind == "nested":
            ffqn, params = f"{P}.nested", [rng.randint(1, 4)]
        elif kind == "race":
            ffqn, params = f"{F}.race", list(rng.choice([(100, 2000), (3000, 100)]))
        elif kind == "serial-cancel":
            ffqn, params, cancel_after = f"{F}.serial", [rng.randint(6, 12)], rng.uniform(0.0, 1.5)
        elif kind == "cancellable":
            ffqn, params, cancel_after = f"{F}.cancellable", [rng.randint(200, 3000)], rng.uniform(0.2, 3.0)
        else:
            ffqn, params, cancel_after = f"{P}.hold", [rng.randint(200, 3000)], rng.uniform(0.2, 3.0)
        via = "http" if rng.random() < 0.5 else "client"
        key = f"chaos-{SEED}-{i}" if via == "http" else ExecutionId.new().value
        jobs.append(
            Job(i, kind, ffqn, params, via, size.submit_s * i / size.executions, key, cancel_after,
                "http" if rng.random() < 0.5 else "client")
        )  # fmt: skip
    return jobs


class Traffic:
    """Submitter threads (paced by each job's `at`) and a canceller thread."""

    def __init__(self, jobs: list[Job], gateway_url: str, redis_url: str, t0: float, submit_s: float) -> None:
        self.jobs = jobs
        self.submit_s = submit_s
        self.gateway_url = gateway_url
        self.redis_url = redis_url
        self.t0 = t0
        self.next_job = 0
        self.lock = threading.Lock()
        self.cancels: list[tuple[float, int, Job]] = []
        self.cond = threading.Condition()
        self.submitting = True
        self.errors: list[str] = []

    def run(self) -> None:
        submitters = [threading.Thread(target=self._guard, args=(self.submitter,), name=f"submitter-{i}", daemon=True) for i in range(SUBMITTERS)]
        canceller = threading.Thread(target=self._guard, args=(self.canceller,), name="canceller", daemon=True)
        for thread in [*submitters, canceller]:
            thread.start()
        deadline = time.monotonic() + self.submit_s + SUBMIT_GIVE_UP_S + 60
        for thread in submitters:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self.cond:
            self.submitting = False
            self.cond.notify_all()
        canceller.join(timeout=max(10.0, deadline + SUBMIT_GIVE_UP_S + 10 - time.monotonic()))
        for thread in [*submitters, canceller]:
            if thread.is_alive():
                self.errors.append(f"{thread.name} still running at its deadline")

    def _guard(self, target: Any) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(f"{threading.current_thread().name}: {exc!r}")

    @contextmanager
    def _clients(self) -> Iterator[tuple[httpx.Client, Client]]:
        http = httpx.Client(base_url=self.gateway_url, timeout=10.0, trust_env=False)
        client = Client.connect(self.redis_url)
        try:
            yield http, client
        finally:
            http.close()
            client.close()

    def submitter(self) -> None:
        with self._clients() as (http, client):
            while True:
                with self.lock:
                    if self.next_job >= len(self.jobs):
                        return
                    job = self.jobs[self.next_job]
                    self.next_job += 1
                wait = self.t0 + job.at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.submit(job, http, client)
                if job.execution_id is not None and job.cancel_after is not None:
                    with self.cond:
                        heapq.heappush(self.cancels, (time.monotonic() + job.cancel_after, job.index, job))
                        self.cond.notify_all()


    def submit(self, job: Job, http: httpx.Client, client: Client) -> None:
        """Over HTTP with the job's Idempotency-Key, or by the Client with the id chosen up front, until answered."""

        def attempt() -> str | None:
            job.attempts += 1
            return _submit_over_http(job, http) if job.via == "http" else _submit_by_client(job, client)

        last = _retried(attempt)
        if last is not None:
            job.error = f"gave up after {job.attempts} attempts: {last}"

    def canceller(self) -> None:
        with self._clients() as (http, client):
            while True:
                with self.cond:
                    if not self.cancels:
                        if not self.submitting:
                            return
                        self.cond.wait(0.5)
                        continue
                    due, _, job = self.cancels[0]
                    if due > time.monotonic():
                        self.cond.wait(due - time.monotonic())
                        continue
                    heapq.heappop(self.cancels)
                self.cancel(job, http, client)

    def cancel_again(self, jobs: list[Job]) -> None:
        """Cancel these (already cancelled) jobs once more, as they say, now."""
        with self._clients() as (http, client):
            for job in jobs:
                self.cancel(job, http, client)

    def cancel(self, job: Job, http: httpx.Client, client: Client) -> None:
        """Over HTTP or by the Client (as the job says) until answered; cancelling twice answers `already`."""
        execution_id = job.execution_id
        assert execution_id is not None

        def attempt() -> str | None:
            job.cancel_attempts += 1
            if job.cancel_via == "http":
                return _cancel_over_http(job, execution_id, http)
            return _cancel_by_client(job, execution_id, client)

        last = _retried(attempt)
        if last is not None:
            job.cancel_result = f"gave up after {job.cancel_attempts} attempts: {last}"


def _retried(attempt: Callable[[], str | None]) -> str | None:
    """Call `attempt` every 0.2 s until it is answered (returns None) or SUBMIT_GIVE_UP_S has passed.

    `attempt` records any answer in its job itself, and returns why it should be tried again otherwise
    (Valkey restarting, a connection cut); the last such reason is returned when it never was answered.
    """
    deadline = time.monotonic() + SUBMIT_GIVE_UP_S
    while True:
        last = attempt()
        if last is None or time.monotonic() > deadline:
            return last
        time.sleep(0.2)


def _submit_over_http(job: Job, http: httpx.Client) -> str | None:
    try:
        answer = http.post(f"/v1/functions/{job.ffqn}", json=job.params, headers={"Idempotency-Key": job.key})
        if answer.status_code in (200, 202):
            job.execution_id = answer.json()["execution_id"]
            return None
        last = _complaint(answer)
        if 400 <= answer.status_code < 500 and answer.status_code != 429:
            job.error = last
            return None
        return last
    except httpx.HTTPError as exc:
        return repr(exc)


def _complaint(answer: httpx.Response) -> str:
    return f"HTTP {answer.status_code}: {answer.text[:300]}"


def _submit_by_client(job: Job, client: Client) -> str | None:
    try:
        job.execution_id = client.submit(job.ffqn, job.params, execution_id=job.key).execution_id
    except (ConflictError, UsageError, NotFoundError) as exc:
        job.error = repr(exc)
    except Exception as exc:  # noqa: BLE001 - Valkey restarting, connection cut: submit again, same id
        return repr(exc)
    return None


def _cancel_over_http(job: Job, execution_id: str, http: httpx.Client) -> str | None:
    try:
        answer = http.post(f"/v1/executions/{execution_id}/cancel")
        if answer.status_code in (200, 202):
            job.cancel_result = answer.json()["cancel"]
        elif answer.status_code == 409:
            job.cancel_result = "finished"
        elif 400 <= answer.status_code < 500:
            job.cancel_result = f"error: {_complaint(answer)}"
        else:
            return _complaint(answer)
        return None
    except httpx.HTTPError as exc:
        return repr(exc)


def _cancel_by_client(job: Job, execution_id: str, client: Client) -> str | None:
    try:
        job.cancel_result = client.cancel(execution_id)
    except NotFoundError as exc:
        job.cancel_result = f"error: {exc!r}"
    except Exception as exc:  # noqa: BLE001 - retried: cancelling twice answers `already`
        return repr(exc)
    return None
