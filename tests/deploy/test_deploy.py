"""`platform deploy` of local files: revisions, rollback, listings, and bad deployments that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.client import Client
from dolmen.platform.deploy.pipeline import deploy
from dolmen.platform.deploy.spec import load_spec
from dolmen.platform.errors import DeploymentError
from dolmen.platform.store.connection import connect
from tests.deploy.conftest import F, Cli, active_revision, deployment, write
from tests.support.guests import DATA_DIR, build_guest
from tests.support.platform import Processes


def deploy_file(redis_url: str, path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    client = connect(redis_url)
    try:
        return deploy(load_spec(path), client, DATA_DIR, **kwargs)  # type: ignore[arg-type]
    finally:
        client.close()


def test_deploy_stores_revisions_and_rollback_reactivates_one(workdir: Path, cli: Cli, client: Client) -> None:
    """Each deploy is a new active revision (old ones kept); --rollback makes an old one active again."""
    first = cli("deploy", str(write(workdir, "v1.yaml", deployment("wf1"))))
    assert first.returncode == 0, first.stderr
    assert "component wf (workflow) sha256:" in first.stdout and f"{F}.serial: func(n: u32) -> u64" in first.stdout
    assert "revision 1 'test' is active" in first.stdout
    # Each component's settings are shown as the YAML names them.
    assert "  timeout 120s; memory 512 MiB; retry 5 attempts, backoff 100ms-30s; instances fresh; allowed_hosts 127.0.0.1:*\n" in first.stdout
    assert "; upgrade verified; blocking unload (10s); history 20000 events, 16 MiB\n" in first.stdout
    second = cli.json("deploy", str(write(workdir, "v2.yaml", deployment("wf2"))))
    assert (second["revision"], second["previous"]) == (2, 1)
    listing = cli.json("deployments", "list")
    assert listing["active"] == 2 and [r["revision"] for r in listing["revisions"]] == [2, 1]
    shown = cli.json("deployments", "show", "1")
    assert shown["active"] is False and shown["source"].endswith("v1.yaml")
    (wf_v1,) = [c for c in shown["components"] if c["name"] == "wf"]
    assert wf_v1["source"] == str((workdir / "build" / "wf1.wasm").resolve())
    functions = cli.json("functions")["functions"]
    serial = next(f for f in functions if f["ffqn"] == f"{F}.serial")
    assert serial["kind"] == "workflow" and serial["signature"] == "func(n: u32) -> u64"
    assert serial["digest"] != wf_v1["digest"]
    reused = deployment("wf1").replace("timeout: 120s", "timeout: 120s\n    instances: reuse\n    max_instance_uses: 50")
    third = cli("deploy", str(write(workdir, "v3.yaml", reused)))
    assert third.returncode == 0, third.stderr
    assert "; instances reuse (max 50 uses); allowed_hosts 127.0.0.1:*\n" in cli("deployments", "show").stdout
    back = cli("deploy", "--rollback", "1")
    assert back.returncode == 0 and "revision 1 'test' is active again (was 3)" in back.stdout
    assert active_revision(cli.redis_url) == (1, [1, 2, 3])
    assert client.submit(f"{F}.serial", [1]).route.component.digest == wf_v1["digest"]


def test_rollback_to_an_unknown_revision_is_refused(cli: Cli) -> None:
    """A revision that does not exist is named, with exit status 3."""
    done = cli("deploy", "--rollback", "7")
    assert done.returncode == 3 and "deployment revision 7 does not exist" in done.stderr


BAD = [
    (
        "unknown key",
        deployment("wf1", wf_settings="blocking: unload\n    retries: 3"),
        "bad.yaml:12: components[1].retries: unknown key 'retries'",
    ),
    (
        "bad duration",
        deployment("wf1", wf_settings="blocking_timeout: 10"),
        "bad.yaml:11: components[1].blocking_timeout: 10 has no unit; write e.g. 10ms, 10s or 10d",
    ),
    (
        "missing file",
        deployment("missing"),
        "bad.yaml:10: components[1].source: component 'wf': component file './build/missing.wasm' does not exist",
    ),
    (
        "unsatisfied import",
        "name: test\ncomponents:\n  - {name: wf, kind: workflow, source: ./build/wf1.wasm}\n",
        "bad.yaml:3: components[0]: workflow 'wf' imports testing:act/basic@1.0.0, but no component in this deployment exports testing:act/basic@1.0.0",
    ),
    (
        "duplicate ffqn",
        deployment("wf1", extra="  - {name: next, kind: workflow, source: ./build/wf2.wasm}\n"),
        f"bad.yaml:12: components[2]: component 'next' exports {F}.abandon, which component 'wf'",
    ),
    (
        "route to unknown function",
        deployment("wf1") + "routes:\n  - {method: POST, path: \"/serial/{n}\", function: testing:wf/flows@3.0.0.serial}\n",
        "bad.yaml:13: routes[0].function: route POST /serial/{n} names testing:wf/flows@3.0.0.serial, which no component",
    ),
    (
        "route with unknown parameter",
        deployment("wf1") + "routes:\n  - {method: POST, path: \"/serial/{count}\", function: testing:wf/flows@1.0.0.serial}\n",
        "routes[0].path: path parameter '{count}' is not a parameter of testing:wf/flows@1.0.0.serial (its parameters: n)",
    ),
    (
        "activity with a foreign import",
        deployment("wf1", extra="  - {name: greeter, kind: activity, source: ./build/greeter2.wasm}\n"),
        "activity 'greeter' imports test:greeter/audit@2.0.0, which no host provides",
    ),
    (
        "workflow declared as activity",
        "name: test\ncomponents:\n  - {name: wf, kind: activity, source: ./build/wf1.wasm}\n",
        "activity 'wf' imports dolmen:workflow/",
    ),
    (
        "not a component",
        deployment("wf1", extra="  - {name: junk, kind: activity, source: ./v1.yaml}\n"),
        "components[2].source: component 'junk' (./v1.yaml) cannot be loaded: this file is not a WebAssembly binary",
    ),
]


@pytest.mark.parametrize(("what", "text", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_deployments_change_nothing(workdir: Path, redis_url: str, what: str, text: str, expected: str) -> None:
    """A bad deployment is refused with a message naming file, line, key and fix; the active revision stays."""
    (workdir / "build" / "greeter2.wasm").write_bytes(build_guest("greeter-v2", "greeter").read_bytes())
    deploy_file(redis_url, write(workdir, "v1.yaml", deployment("wf1")))
    with pytest.raises(DeploymentError) as caught:
        deploy_file(redis_url, write(workdir, "bad.yaml", text))
    assert expected in str(caught.value), what
    assert "nothing was deployed" in str(caught.value)
    assert active_revision(redis_url) == (1, [1])


def test_cli_exit_status_for_a_bad_deployment(workdir: Path, cli: Cli) -> None:
    """`platform deploy` prints the problem on one line and exits 2, storing nothing."""
    done = cli("deploy", str(write(workdir, "bad.yaml", deployment("wf1", wf_settings="upgrade: later"))))
    assert done.returncode == 2
    assert "bad.yaml:11: components[1].upgrade: 'later' is not one of: verified, pinned, force" in done.stderr
    assert active_revision(cli.redis_url) == (None, [])


def test_unset_variable_is_an_error_and_set_one_is_used(workdir: Path, cli: Cli, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`${NAME}` must be set; when it is, its value is deployed."""
    text = deployment("${WF_BUILD}")
    with pytest.raises(DeploymentError, match="environment variable WF_BUILD is not set"):
        deploy_file(redis_url, write(workdir, "env.yaml", text))
    monkeypatch.setenv("WF_BUILD", "wf2")
    result = deploy_file(redis_url, workdir / "env.yaml")
    (wf,) = [c for c in result.plan.components if c.config.name == "wf"]
    assert wf.config.source.endswith("wf2.wasm")


# Unquoted values YAML reads as something else: false, true, 1.1, 493, 750, true, null, null, infinity, 1000.0 (YAML 1.2), 31, a date.
TRICKY_ENV = {
    "FLAG": "NO", "ANSWER": "yes", "VERSION": "1.10", "MODE": "0755", "AT": "12:30", "SWITCH": "on",
    "TILDE": "~", "NIL": "null", "BIG": ".inf", "SCI": "1e3", "HEX": "0x1F", "DAY": "2026-01-02",
}  # fmt: skip


def test_env_values_reach_the_revision_and_the_guest_as_written(workdir: Path, redis_url: str, processes: Processes, client: Client) -> None:
    """Unquoted env values are stored in the revision, and read by the activity, exactly as the file writes them."""
    lines = "".join(f"      {name}: {value}\n" for name, value in TRICKY_ENV.items())
    text = "name: test\ncomponents:\n  - name: act\n    kind: activity\n    source: ./build/act.wasm\n    env:\n" + lines
    deploy_file(redis_url, write(workdir, "env.yaml", text))
    (act,) = client.revision(fresh=True).components
    assert act.env == TRICKY_ENV
    processes.runner()
    submitted = {name: client.submit("testing:act/basic@1.0.0.env", [name]).execution_id for name in TRICKY_ENV}
    seen = {name: client.wait(execution_id, 60.0).outcome for name, execution_id in submitted.items()}
    assert {name: outcome.value if outcome is not None else None for name, outcome in seen.items()} == TRICKY_ENV


def test_deploy_output_shows_secret_references_never_values(workdir: Path, cli: Cli) -> None:
    """`platform deploy` and `deployments show`, with or without --json, name the secret; no value exists to show."""
    text = deployment("wf1").replace(
        "    timeout: 120s\n", "    timeout: 120s\n    env:\n      API_URL: https://example.com\n      API_TOKEN: {secret: payments-token}\n", 1
    )
    path = write(workdir, "secret.yaml", text)
    shown = cli("deploy", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "; instances fresh; env API_TOKEN (secret payments-token), API_URL; allowed_hosts 127.0.0.1:*\n" in shown.stdout
    (act,) = [c for c in cli.json("deploy", str(path))["components"] if c["name"] == "act"]
    assert act["env"] == {"API_URL": "https://example.com", "API_TOKEN": {"secret": "payments-token"}}
    (stored,) = [c for c in cli.json("deployments", "show")["components"] if c["name"] == "act"]
    assert stored["env"] == act["env"]


def test_dry_run_of_a_first_deployment_stores_nothing(workdir: Path, cli: Cli) -> None:
    """A dry run checks everything but stores no revision and no component blob."""
    done = cli.json("deploy", "--dry-run", str(write(workdir, "v1.yaml", deployment("wf1"))))
    assert done["revision"] is None and done["upgrades"] == []
    assert active_revision(cli.redis_url) == (None, [])
    blobs = connect(cli.redis_url).keys("dolmen:blob:*")
    assert blobs == []
