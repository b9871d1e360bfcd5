"""Activities on real runner processes: results, retries, timeouts, output, environment.

The tests on one runner thread share one runner and scheduler on a Valkey of the module's own
(tests/support/shared.py); each deploys what it runs on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dolmen.platform.client import Client
from dolmen.platform.model import RetryPolicy
from dolmen.platform.errors import InvalidValueError, NotFoundError, PayloadTooLargeError, UsageError
from tests.support.platform import Processes, activity, deploy
from tests.support.polling import wait_for
from tests.support import indexes
from tests.support.servers import LocalHttp
from tests.support.shared import SharedPlatform, shared_platform


A = "testing:act/basic@1.0.0"
# The test servers listen on loopback, which an activity reaches only when its deployment lists it.
LOCAL = ("127.0.0.1:*",)


class FlakyServer(LocalHttp):
    """A local HTTP server that answers 500 for the first `failures` requests, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests = 0
        super().__init__(self._answer, "/greeting")

    def _answer(self, path: str) -> tuple[int, bytes]:
        self.requests += 1
        ok = self.requests > self.failures
        return 200 if ok else 500, f"{'hello' if ok else 'try again'} #{self.requests}".encode()


@pytest.fixture
def flaky() -> Iterator[FlakyServer]:
    server = FlakyServer(failures=2)
    yield server
    server.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedPlatform]:
    """One runner (one thread) and a scheduler on a Valkey of the module's own, for the tests that need nothing else;
    each deploys what it runs. The runner's environment has a variable no deployment grants (SECRET_OF_THE_HOST)."""
    env = {"SECRET_OF_THE_HOST": "leak"}
    with shared_platform(tmp_path_factory.mktemp("activities"), [activity()], env=env, gateway=False) as platform:
        yield platform


def _finished(client: Client, execution_id: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    state = client.wait(execution_id, timeout)
    assert state.status == "finished", f"{execution_id} is {state.status}"
    return state


def _types(client: Client, execution_id: str) -> list[str]:
    return [e.type for e in client.executions.events(execution_id)]


def test_activity_returns_its_typed_result(shared_url: str, shared_client: Client) -> None:
    """A submitted activity runs on a runner process and finishes with its WIT result as JSON."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity()])
    ok = client.submit(f"{A}.maybe", {"fail": False})
    err = client.submit(f"{A}.maybe", [True])
    doubled = client.submit(f"{A}.double", [21])
    assert _finished(client, ok.execution_id).outcome.value == {"ok": 7}  # type: ignore[union-attr]
    assert _finished(client, err.execution_id).outcome.value == {"err": "asked to fail"}  # type: ignore[union-attr]
    assert _finished(client, doubled.execution_id).outcome.value == 42  # type: ignore[union-attr]
    assert _types(client, doubled.execution_id) == ["created", "finished"]


def test_retries_until_the_server_answers(shared_url: str, shared_client: Client, flaky: FlakyServer) -> None:
    """An HTTP activity failing twice with 500 finishes on the third attempt, attempts visible in the log."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=5, initial_backoff_ms=50, retry_on_err=True), allowed_hosts=LOCAL)])
    submitted = client.submit(f"{A}.fetch", [flaky.url])
    state = _finished(client, submitted.execution_id)
    assert state.outcome.value == {"ok": "hello #3"}  # type: ignore[union-attr]
    events = client.executions.events(submitted.execution_id)
    assert [e.type for e in events] == ["created", "attempt_failed", "attempt_failed", "finished"]
    assert events[1].data["result"] == {"err": "HTTP 500: try again #1"}
    assert events[2].data["attempt"] == 2
    assert state.attempt == 3


def test_exhausted_attempts_name_the_last_error(shared_url: str, shared_client: Client) -> None:
    """A trapping activity gives up after max_attempts with a failure that names the last error."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(retry=RetryPolicy(max_attempts=3, initial_backoff_ms=20))])
    submitted = client.submit(f"{A}.crash", ["disk on fire"])
    state = _finished(client, submitted.execution_id)
    failure = state.outcome.failure  # type: ignore[union-attr]
    assert failure is not None and failure.kind == "trap"
    assert "disk on fire" in failure.message and "gave up after 3 attempts" in failure.message
    assert _types(client, submitted.execution_id) == ["created", "attempt_failed", "attempt_failed", "finished"]


def test_err_results_are_final_by_default(shared_url: str, shared_client: Client, flaky: FlakyServer) -> None:
    """Without retry_on_err an `err` result finishes the execution at once."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(allowed_hosts=LOCAL)])
    submitted = client.submit(f"{A}.fetch", [flaky.url])
    state = _finished(client, submitted.execution_id)
    assert state.outcome.value == {"err": "HTTP 500: try again #1"}  # type: ignore[union-attr]
    assert flaky.requests == 1


def test_egress_follows_the_deployment(shared_url: str, shared_client: Client, flaky: FlakyServer) -> None:
    """A request to a loopback server is refused unless the component lists it; the refusal names the component's setting."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity("fetcher", retry=RetryPolicy(max_attempts=1))])
    submitted = client.submit(f"{A}.fetch", [flaky.url])
    outcome = _finished(client, submitted.execution_id).outcome
    port = flaky.url.split(":")[2].split("/")[0]
    refusal = (
        f"refused an outgoing request to 127.0.0.1:{port} (a loopback address): "
        f"list 127.0.0.1:{port} under allowed_hosts of component 'fetcher' in the deployment to allow it"
    )
    # act-basic returns the refused request (HTTP-request-denied) as `err`; the refusal is on its stderr.
    assert outcome is not None and "HttpRequestDenied" in outcome.value["err"], outcome
    finished = client.executions.events(submitted.execution_id)[-1]
    assert finished.data["output"]["stderr"].endswith(f"[dolmen] {refusal}\n")
    assert flaky.requests == 0
    deploy(redis_url, [activity("fetcher", allowed_hosts=LOCAL)])
    client.revision(fresh=True)
    allowed = client.submit(f"{A}.fetch", [flaky.url])
    assert _finished(client, allowed.execution_id).outcome.value == {"err": "HTTP 500: try again #1"}  # type: ignore[union-attr]
    assert flaky.requests == 1


def test_infinite_loop_is_stopped_and_the_runner_keeps_serving(redis_url: str, processes: Processes, client: Client) -> None:
    """A looping guest is interrupted at its timeout while the same runner finishes other work."""
    deploy(redis_url, [activity(timeout_ms=500, retry=RetryPolicy(max_attempts=1))])
    processes.runner("--concurrency", "2")
    looping = client.submit(f"{A}.spin", [])
    quick = [client.submit(f"{A}.double", [i]) for i in range(5)]
    for i, submitted in enumerate(quick):
        assert _finished(client, submitted.execution_id).outcome.value == 2 * i  # type: ignore[union-attr]
    state = _finished(client, looping.execution_id)
    failure = state.outcome.failure  # type: ignore[union-attr]
    assert failure is not None and failure.kind == "timeout"
    assert "500 ms" in failure.message
    after = client.submit(f"{A}.double", [50])
    assert _finished(client, after.execution_id).outcome.value == 100  # type: ignore[union-attr]


def test_output_is_captured_and_environment_is_only_what_is_granted(shared_url: str, shared_client: Client) -> None:
    """stdout/stderr land in the finished event; only deployment-granted variables are visible."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity(env={"GREETING": "hi"})])
    # (The shared runner has SECRET_OF_THE_HOST=leak in its environment.)
    shout = client.submit(f"{A}.shout", ["loud"])
    granted = client.submit(f"{A}.env", ["GREETING"])
    hidden = client.submit(f"{A}.env", ["SECRET_OF_THE_HOST"])
    assert _finished(client, shout.execution_id).outcome.value == 4  # type: ignore[union-attr]
    finished = client.executions.events(shout.execution_id)[-1]
    assert finished.data["output"] == {"stdout": "loud\n", "stderr": "stderr: loud\n"}
    assert _finished(client, granted.execution_id).outcome.value == "hi"  # type: ignore[union-attr]
    assert _finished(client, hidden.execution_id).outcome.value is None  # type: ignore[union-attr]


def test_bad_input_creates_nothing(redis_url: str, client: Client) -> None:
    """Unknown functions, ill-typed params and oversized params are refused before anything is written."""
    deploy(redis_url, [activity()])
    with pytest.raises(NotFoundError, match="not deployed"):
        client.submit(f"{A}.triple", [1])
    with pytest.raises(InvalidValueError, match=r"params\.x: expected u64, got \"ten\""):
        client.submit(f"{A}.double", {"x": "ten"})
    with pytest.raises(InvalidValueError, match=r"params\[0\]: -1 does not fit in u64"):
        client.submit(f"{A}.double", [-1])
    small = Client(client.redis, max_params_bytes=64)
    with pytest.raises(PayloadTooLargeError, match="over the limit of 64 bytes"):
        small.submit(f"{A}.shout", ["x" * 100])
    # The same idempotency-key rule as over HTTP, so a key given to the CLI can be repeated there.
    with pytest.raises(UsageError, match="printable ASCII, e.g. a UUID; it holds 'é'"):
        client.submit(f"{A}.double", [1], idempotency_key="clé")
    with pytest.raises(UsageError, match="1 to 256 characters, got 257"):
        client.submit(f"{A}.double", [1], idempotency_key="k" * 257)
    with pytest.raises(UsageError, match="1 to 256 characters, got 0"):
        client.submit(f"{A}.double", [1], idempotency_key="")
    assert indexes.zcard(client.redis, "executions") == 0


def test_idempotent_submission(shared_url: str, shared_client: Client) -> None:
    """The same idempotency key or explicit id gives the same execution, never two."""
    redis_url, client = shared_url, shared_client
    deploy(redis_url, [activity()])
    before = indexes.zcard(client.redis, "executions")  # (the module's earlier tests' executions)
    first = client.submit(f"{A}.double", [2], idempotency_key="order-17")
    second = client.submit(f"{A}.double", [2], idempotency_key="order-17")
    assert first.execution_id == second.execution_id and first.created and not second.created
    explicit = "E_01JD8X3K5QZ6V2N4M7P9R0S1T2"
    assert client.submit(f"{A}.double", [3], execution_id=explicit).created
    assert not client.submit(f"{A}.double", [3], execution_id=explicit).created
    wait_for(lambda: client.get(explicit).status == "finished", what="the explicit execution to finish")
    assert indexes.zcard(client.redis, "executions") == before + 2
