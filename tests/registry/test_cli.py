"""`platform push` and `platform pull` against a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dolmen.platform.cli.main import cli, main
from dolmen.platform.wasm.cache import sha256_digest
from tests.registry.conftest import USERS
from tests.support.registry import RegistryForTests, free_port

pytestmark = pytest.mark.registry

PLATFORM = Path(sys.executable).with_name("platform")


@pytest.fixture
def wasm_file(tmp_path: Path, component_bytes: bytes) -> Path:
    """The test component written to a .wasm file."""
    path = tmp_path / "calc.wasm"
    path.write_bytes(component_bytes)
    return path


def _invoke(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], input=stdin, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_cli_push_then_pull_round_trip(
    registry: RegistryForTests, repo: str, wasm_file: Path, component_bytes: bytes, tmp_path: Path
) -> None:
    """`platform push` prints the pinned reference and `platform pull -o` writes identical bytes."""
    code, out = _invoke(tmp_path / "push-data", "push", str(wasm_file), registry.ref(repo, "1.0.0"))
    assert code == 0
    pinned = out.strip()
    assert pinned.startswith(f"oci://{registry.host}/{repo}@sha256:") and len(pinned.splitlines()) == 1
    output = tmp_path / "out" / "pulled.wasm"
    code, out = _invoke(tmp_path / "pull-data", "pull", registry.ref(repo, "1.0.0"), "-o", str(output))
    assert code == 0
    assert out.splitlines()[0] == pinned
    assert "downloaded and verified" in out
    assert output.read_bytes() == component_bytes
    cached = tmp_path / "pull-data" / "components" / "sha256" / sha256_digest(component_bytes).removeprefix("sha256:")
    assert cached.read_bytes() == component_bytes


def test_cli_json_output(registry: RegistryForTests, repo: str, wasm_file: Path, component_bytes: bytes, tmp_path: Path) -> None:
    """`--json` push and pull report the pinned reference, manifest digest, component digest and size."""
    code, out = _invoke(tmp_path / "d1", "--json", "push", str(wasm_file), registry.ref(repo, "v1"))
    assert code == 0
    pushed = json.loads(out)
    assert pushed["reference"] == f"oci://{registry.host}/{repo}@{pushed['digest']}"
    assert pushed["component_digest"] == sha256_digest(component_bytes)
    assert pushed["size"] == len(component_bytes)
    code, out = _invoke(tmp_path / "d2", "--json", "pull", pushed["reference"])
    pulled = json.loads(out)
    assert {k: pulled[k] for k in ("reference", "digest", "component_digest", "size")} == {
        k: pushed[k] for k in ("reference", "digest", "component_digest", "size")
    }
    assert pulled["cached"] is False and pulled["output"] is None


def test_cli_credentials_from_flags(
    auth_registry: RegistryForTests, repo: str, wasm_file: Path, tmp_path: Path
) -> None:
    """`--username` with `--password-stdin` authenticates push and pull."""
    password = USERS["alice"] + "\n"
    code, out = _invoke(
        tmp_path / "d", "push", str(wasm_file), auth_registry.ref(repo, "v1"), "--username", "alice", "--password-stdin",
        stdin=password,
    )
    assert code == 0 and out.startswith("oci://")
    code, out = _invoke(
        tmp_path / "d2", "pull", auth_registry.ref(repo, "v1"), "-u", "alice", "--password-stdin", stdin=password
    )
    assert code == 0


def _run_platform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOLMEN_HOME": str(cwd / "data")}
    return subprocess.run(
        [str(PLATFORM), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False
    )


def _run_main(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str]:
    """Run `platform` in-process through `main()`, which formats errors; return exit code and stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(data_dir), *args])
    return int(exit_info.value.code or 0), capsys.readouterr().err


def test_cli_errors_are_one_line(
    auth_registry: RegistryForTests, repo: str, wasm_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`platform` reports auth, registry-down and usage errors on one `error:` line with the right exit code."""
    code, err = _run_main(capsys, tmp_path, "push", str(wasm_file), auth_registry.ref(repo, "v1"))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and err.rstrip().endswith(errors[0])  # log lines may come first
    assert errors[0].startswith(f"error: the OCI registry {auth_registry.host} requires authentication")

    code, err = _run_main(capsys, tmp_path, "pull", f"oci://127.0.0.1:{free_port()}/demo/app:v1")
    assert code == 1 and err.startswith("error: cannot reach the OCI registry at http://127.0.0.1:")

    code, err = _run_main(capsys, tmp_path, "pull", "docker.io/library/app:v1")
    assert code == 2 and "must start with oci://" in err

    code, err = _run_main(capsys, tmp_path, "pull", auth_registry.ref(repo, "v1"), "--username", "alice")
    assert code == 2 and "--username needs --password-stdin" in err


def test_cli_pull_missing_tag_exit_code(registry: RegistryForTests, repo: str, tmp_path: Path) -> None:
    """The installed `platform` program exits with 3 (not found) for a missing tag and names it."""
    result = _run_platform("pull", registry.ref(repo, "nope"), cwd=tmp_path)
    assert result.returncode == 3
    assert "has no tag 'nope'" in result.stderr
