"""Secrets: resolved on the runner for each attempt, masked in what is written, never stored in a revision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from dolmen.platform.client import Client
from dolmen.platform.model import ComponentConfig, RetryPolicy, SecretRef
from dolmen.platform.errors import SecretUnavailableError
from dolmen.platform.runner.secrets import MASK, Masker, RunnerSecrets, resolve_env, secret_env_var
from dolmen.platform.store import keys
from tests.support.cli import run_platform
from tests.support.platform import Processes, activity, deploy

A = "testing:act/basic@1.0.0"
TOKEN = "tok-9f2c-Very-Secret"  # the value of secret `payments-token`
ENV = {"API_URL": "https://example.com", "API_TOKEN": SecretRef("payments-token")}


def _stored_text(client: redis.Redis) -> str:
    """Every string, hash, list, set, sorted set and stream in Redis, as text (DUMP would compress long strings)."""
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            parts.append(repr(client.get(key)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(client.smembers(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1)))
        elif kind == "stream":
            parts.append(repr(client.xrange(key)))
    return "\n".join(parts)


def _revisions_text(client: redis.Redis) -> str:
    numbers = [int(n) for n in client.zrange(keys.DEPLOY_REVS, 0, -1)]
    return "\n".join(repr(client.get(keys.deployment(n))) for n in numbers)


# ----------------------------------------------------------------- the module alone


def test_secret_names_map_to_runner_variables() -> None:
    """`payments-token` is read from DOLMEN_SECRET_PAYMENTS_TOKEN."""
    assert secret_env_var("payments-token") == "DOLMEN_SECRET_PAYMENTS_TOKEN"
    assert RunnerSecrets({"DOLMEN_SECRET_PAYMENTS_TOKEN": TOKEN}).lookup("payments-token") == TOKEN


def test_the_environment_comes_before_the_file_and_the_file_is_read_as_written(tmp_path: Path) -> None:
    """A file value is its text (`0755`, `no`), the runner's variable wins over it, and a changed file is read again."""
    file = tmp_path / "secrets.yaml"
    file.write_text("payments-token: from-file\nmode: 0755\nflag: no\n")
    secrets = RunnerSecrets({"DOLMEN_SECRETS_FILE": str(file), "DOLMEN_SECRET_FLAG": "from-env"})
    secrets.check()
    assert (secrets.lookup("payments-token"), secrets.lookup("mode"), secrets.lookup("flag")) == ("from-file", "0755", "from-env")
    file.write_text("payments-token: rotated-and-longer\n")
    assert secrets.lookup("payments-token") == "rotated-and-longer"


def test_a_missing_secret_names_how_to_provide_it(tmp_path: Path) -> None:
    """The error names the secret, the runner's variable and the file (or the variable that names one)."""
    with pytest.raises(SecretUnavailableError) as caught:
        RunnerSecrets({}).lookup("payments-token")
    message = str(caught.value)
    assert "secret 'payments-token' is not available on this runner" in message
    assert "set DOLMEN_SECRET_PAYMENTS_TOKEN in the runner's environment" in message and "DOLMEN_SECRETS_FILE" in message
    assert caught.value.retryable and caught.value.secret == "payments-token"
    file = tmp_path / "secrets.yaml"
    file.write_text("other: x\n")
    with pytest.raises(SecretUnavailableError, match=f"add `payments-token: ...` to {file}"):
        RunnerSecrets({"DOLMEN_SECRETS_FILE": str(file)}).lookup("payments-token")
    with pytest.raises(SecretUnavailableError, match="is empty in the runner's environment variable DOLMEN_SECRET_PAYMENTS_TOKEN"):
        RunnerSecrets({"DOLMEN_SECRET_PAYMENTS_TOKEN": ""}).lookup("payments-token")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("payments-token: [a, b]\n", "the value of 'payments-token' is not one piece of text"),
        ("payments-token: ''\n", "the value of 'payments-token' is empty"),
        ("Payments_Token: x\n", "the key 'Payments_Token' is not a secret name"),
        ("- just a list\n", "must be a YAML mapping of `name: value` lines"),
        ("payments-token: \"tok-9f2c-Very-Secret\n", "is not valid YAML at line 2"),
    ],
)
def test_a_bad_secrets_file_is_named_without_quoting_it(tmp_path: Path, text: str, fragment: str) -> None:
    """A malformed file fails with its path and the problem, never with its text (which holds secrets)."""
    file = tmp_path / "secrets.yaml"
    file.write_text(text)
    with pytest.raises(SecretUnavailableError) as caught:
        RunnerSecrets({"DOLMEN_SECRETS_FILE": str(file)}).check()
    assert fragment in str(caught.value) and str(file) in str(caught.value)
    assert TOKEN not in str(caught.value)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SecretUnavailableError, match=f"cannot read the secrets file {missing} .*No such file"):
        RunnerSecrets({"DOLMEN_SECRETS_FILE": str(missing)}).check()


def test_resolving_gives_the_guest_environment_and_a_masker() -> None:
    """Literals pass through, secrets are looked up, and every secret value is masked, the longest first."""
    env, masker = resolve_env({**ENV, "OTHER": SecretRef("other")}, RunnerSecrets({
        "DOLMEN_SECRET_PAYMENTS_TOKEN": TOKEN, "DOLMEN_SECRET_OTHER": "tok-9f2c",
    }))  # fmt: skip
    assert env == {"API_URL": "https://example.com", "API_TOKEN": TOKEN, "OTHER": "tok-9f2c"}
    assert masker.text(f"a {TOKEN} b tok-9f2c c") == f"a {MASK} b {MASK} c"
    assert masker.output({"stdout": TOKEN, "stderr": ""}) == {"stdout": MASK, "stderr": ""}
    assert TOKEN not in repr(masker)
    with pytest.raises(SecretUnavailableError, match="^env API_TOKEN: secret 'payments-token' is not available"):
        resolve_env(ENV, RunnerSecrets({}))
    assert Masker().text("nothing to hide") == "nothing to hide"


def test_a_revision_stores_the_reference_only() -> None:
    """A component's JSON holds `{"secret": NAME}` and reads back as the same reference."""
    config = ComponentConfig("act", "activity", "sha256:0", "x", {}, env=dict(ENV))
    data = config.to_json()
    assert data["env"] == {"API_URL": "https://example.com", "API_TOKEN": {"secret": "payments-token"}}
    assert ComponentConfig.from_json(json.loads(json.dumps(data))) == config


# ------------------------------------------------------------- on a real runner


def _wait(client: Client, execution_id: str):  # type: ignore[no-untyped-def]
    state = client.wait(execution_id, 60.0)
    assert state.status == "finished", f"{execution_id} is {state.status}"
    assert state.outcome is not None
    return state.outcome


def test_a_runner_gives_the_secret_from_its_environment(redis_url: str, processes: Processes, client: Client) -> None:
    """The guest reads the value the runner's DOLMEN_SECRET_ variable holds; no revision holds it."""
    deploy(redis_url, [activity(env=dict(ENV))])
    processes.env["DOLMEN_SECRET_PAYMENTS_TOKEN"] = TOKEN
    processes.runner()
    token = client.submit(f"{A}.env", ["API_TOKEN"])
    url = client.submit(f"{A}.env", ["API_URL"])
    doubled = client.submit(f"{A}.double", [21])
    assert _wait(client, token.execution_id).value == TOKEN  # a result is the guest's data, stored as returned
    assert _wait(client, url.execution_id).value == "https://example.com"
    assert _wait(client, doubled.execution_id).value == 42
    assert "payments-token" in _revisions_text(client.redis) and TOKEN not in _revisions_text(client.redis)
    # Only the result of the call that returned it holds the value: not the revision, params, output or state.
    client.redis.delete(keys.log(token.execution_id), keys.state(token.execution_id))
    assert TOKEN not in _stored_text(client.redis)


def test_a_runner_gives_the_secret_from_its_secrets_file(redis_url: str, processes: Processes, client: Client, tmp_path: Path) -> None:
    """DOLMEN_SECRETS_FILE is read at attempt time: a value changed in the file reaches the next attempt."""
    deploy(redis_url, [activity(env=dict(ENV))])
    file = tmp_path / "secrets.yaml"
    file.write_text(f"payments-token: {TOKEN}\n")
    processes.env["DOLMEN_SECRETS_FILE"] = str(file)
    processes.runner()
    assert _wait(client, client.submit(f"{A}.env", ["API_TOKEN"]).execution_id).value == TOKEN
    file.write_text("payments-token: rotated-0755\n")
    assert _wait(client, client.submit(f"{A}.env", ["API_TOKEN"]).execution_id).value == "rotated-0755"


def test_output_and_failure_messages_are_masked(redis_url: str, processes: Processes, client: Client) -> None:
    """What a guest prints and the message of its failure hold `***` where the secret's value was."""
    deploy(redis_url, [activity(env=dict(ENV), retry=RetryPolicy(max_attempts=2, initial_backoff_ms=20))])
    processes.env["DOLMEN_SECRET_PAYMENTS_TOKEN"] = TOKEN
    runner = processes.runner()
    processes.scheduler()
    # The params hold the value here because the test passes it; they are the caller's data and are not masked.
    shout = client.submit(f"{A}.shout", [f"token={TOKEN}"])
    assert _wait(client, shout.execution_id).value == len(f"token={TOKEN}")
    finished = client.executions.events(shout.execution_id)[-1]
    assert finished.data["output"] == {"stdout": f"token={MASK}\n", "stderr": f"stderr: token={MASK}\n"}
    crash = client.submit(f"{A}.crash", [f"refused {TOKEN}"])
    failure = _wait(client, crash.execution_id).failure
    assert failure is not None and failure.kind == "trap"
    assert f"RuntimeError: refused {MASK}" in failure.message and TOKEN not in failure.message
    events = client.executions.events(crash.execution_id)
    assert [e.type for e in events] == ["created", "attempt_failed", "finished"]
    for event in events[1:]:
        written = json.dumps(event.data)
        assert TOKEN not in written and f"refused {MASK}" in written
    processes.stop()
    assert TOKEN not in processes.log_of(runner)


def test_a_missing_secret_fails_the_attempt_and_names_the_fix(redis_url: str, processes: Processes, client: Client) -> None:
    """Without the secret the guest never runs: attempts fail, retried per the policy, with a message naming the fix."""
    deploy(redis_url, [activity(env=dict(ENV), retry=RetryPolicy(max_attempts=2, initial_backoff_ms=20))])
    processes.runner()
    processes.scheduler()
    submitted = client.submit(f"{A}.shout", ["never printed"])
    failure = _wait(client, submitted.execution_id).failure
    assert failure is not None and failure.kind == "secret_unavailable"
    assert f"cannot run {A}.shout of component 'act': env API_TOKEN: secret 'payments-token' is not available" in failure.message
    assert "DOLMEN_SECRET_PAYMENTS_TOKEN" in failure.message and "DOLMEN_SECRETS_FILE" in failure.message
    assert "(gave up after 2 attempts)" in failure.message
    events = client.executions.events(submitted.execution_id)
    assert [e.type for e in events] == ["created", "attempt_failed", "finished"]
    assert events[1].data["error"]["kind"] == "secret_unavailable" and "output" not in events[1].data


def test_a_runner_refuses_to_start_on_a_bad_secrets_file(redis_url: str, tmp_path: Path) -> None:
    """`platform runner` exits 2 with one line naming the file and the problem, quoting none of its text."""
    file = tmp_path / "secrets.yaml"
    file.write_text(f"payments-token: {TOKEN}\nother: a: b\n")
    done = run_platform("--redis", redis_url, "--data-dir", str(tmp_path / "d"), "runner", env={"DOLMEN_SECRETS_FILE": str(file)})
    assert done.returncode == 2, done.stderr
    assert f"the secrets file {file} (named by DOLMEN_SECRETS_FILE) is not valid YAML at line 2" in done.stderr
    assert TOKEN not in done.stderr and "Traceback" not in done.stderr
