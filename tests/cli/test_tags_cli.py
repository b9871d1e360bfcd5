"""`platform call --tag` and `platform executions list --tag`, as a user runs them."""

from __future__ import annotations

import json

from tests.cli.test_executions_cli import A, platform
from tests.support.platform import activity, deploy


def test_call_tags_an_execution_and_list_filters_by_every_tag_given(redis_url: str) -> None:
    """Tags given to `call` show in `executions show`; `list --tag` (repeated: all must match) lists those executions only."""
    deploy(redis_url, [activity()])

    def call(*tags: str) -> str:
        done = platform(redis_url, "--json", "call", "--no-wait", f"{A}.double", "[1]", *(f"--tag={t}" for t in tags))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["execution_id"]

    acme = [call("customer=acme", "env=prod"), call("customer=acme", "env=test")]
    other = call("customer=globex", "env=prod")
    call()

    def listed(*tags: str) -> list[str]:
        done = platform(redis_url, "--json", "executions", "list", *(f"--tag={t}" for t in tags))
        assert done.returncode == 0, done.stderr
        return [e["execution_id"] for e in json.loads(done.stdout)["executions"]]

    assert sorted(listed("customer=acme")) == sorted(acme)
    assert listed("customer=acme", "env=prod") == [acme[0]]
    assert listed("env=prod", "customer=globex") == [other]
    assert listed("customer=initech") == []
    shown = json.loads(platform(redis_url, "--json", "executions", "show", acme[1]).stdout)
    assert shown["tags"] == {"customer": "acme", "env": "test"}
    table = platform(redis_url, "executions", "list", "--tag", "customer=globex").stdout.splitlines()
    assert table[0].split()[-1] == "tags" and acme[0] not in "".join(table)
    assert table[-1].split()[0] == other and table[-1].split()[-2:] == ["customer=globex", "env=prod"]


def test_a_bad_tag_is_a_usage_error_naming_the_fix(redis_url: str) -> None:
    """A malformed tag exits 2 with one line saying what is wrong and how to write it, and creates nothing."""
    deploy(redis_url, [activity()])
    empty = platform(redis_url, "call", "--no-wait", f"{A}.double", "[1]", "--tag", "customer=")
    assert empty.returncode == 2 and empty.stderr.strip() == (
        "error: the tag 'customer' has an empty value; give it one, as in customer=VALUE"
    ), empty.stderr
    no_equals = platform(redis_url, "executions", "list", "--tag", "customer")
    assert no_equals.returncode == 2 and "write tags as KEY=VALUE, e.g. customer=acme" in no_equals.stderr
    assert "Traceback" not in empty.stderr + no_equals.stderr
    assert json.loads(platform(redis_url, "--json", "executions", "list").stdout)["executions"] == []
