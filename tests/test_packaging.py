"""The package layout works in every mode: editable install, built wheel, and from the repository root.

`platform/`, `registry/` and `gateway/` become `dolmen.platform`, `dolmen.registry`
and `dolmen.gateway` through `package-dir`, and have no `__init__.py`, so that
the folder `platform` never shadows the standard library's `platform` module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_FOLDERS = ("platform", "registry", "gateway")
# What a wheel must carry besides Python modules (mirrors [tool.setuptools.package-data]).
DATA_SUFFIXES = (".wit", ".lua", ".wat")
IMPORT_ALL = "import dolmen.platform, dolmen.registry, dolmen.gateway, dolmen.platform.cli.main, dolmen.gateway.app"


def python(executable: str | Path, code: str, cwd: Path, timeout: float = 60) -> str:
    """Run `executable -c code` in `cwd` with no PYTHONPATH help; return its stdout or fail with its stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(
        [str(executable), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{executable} -c {code!r} in {cwd} failed:\n{result.stderr}"
    return result.stdout


def test_top_folders_have_no_init_py() -> None:
    """None of the three top folders is a regular package, so none can shadow a standard module."""
    for top in TOP_FOLDERS:
        assert (REPO / top).is_dir()
        assert not (REPO / top / "__init__.py").exists(), f"{top}/__init__.py would shadow the stdlib when on sys.path"


def test_editable_install_imports_every_package_from_outside_the_repo(tmp_path: Path) -> None:
    """The development install resolves dolmen.* to the repository folders from any directory."""
    out = python(
        sys.executable,
        f"{IMPORT_ALL}; import json, platform; print(json.dumps({{"
        "'platform': list(dolmen.platform.__path__), 'registry': list(dolmen.registry.__path__), "
        "'gateway': list(dolmen.gateway.__path__), 'stdlib': platform.__file__}))",
        cwd=tmp_path,
    )
    paths = json.loads(out)
    for top in TOP_FOLDERS:
        # The editable finder also lists a placeholder entry that is no folder.
        assert [Path(p).resolve() for p in paths[top] if Path(p).is_dir()] == [REPO / top]
    assert not Path(paths["stdlib"]).resolve().is_relative_to(REPO)


def test_stdlib_platform_is_not_shadowed_at_the_repository_root() -> None:
    """From the repository root, `import platform` is the standard library and dolmen.platform still imports."""
    machine = python(sys.executable, "import platform; print(platform.machine())", cwd=REPO)
    assert machine.strip() == os.uname().machine
    out = python(
        sys.executable,
        "import platform; import dolmen.platform; print(platform.__file__); print(platform.system())",
        cwd=REPO,
    )
    stdlib_file, system = out.splitlines()
    assert Path(stdlib_file).resolve() == Path(sysconfig.get_paths()["stdlib"], "platform.py").resolve()
    assert system == os.uname().sysname


def test_cli_runs_as_a_module_from_the_repository_root() -> None:
    """`python -m dolmen.platform.cli.main`, which `platform up` uses for its children, works at the root."""
    result = subprocess.run(
        [sys.executable, "-m", "dolmen.platform.cli.main", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("platform (dolmen) ")


def _copy_sources(dest: Path) -> Path:
    """What the build needs, copied, so the build neither sees nor leaves build/ leftovers in the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.cwasm")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for top in TOP_FOLDERS:
        shutil.copytree(REPO / top, dest / top, ignore=ignore)
    return dest


def _expected_files(src: Path) -> set[str]:
    """Every module and data file of the source folders, as wheel paths."""
    expected = set()
    for top in TOP_FOLDERS:
        for path in (src / top).rglob("*"):
            if path.is_file() and (path.suffix == ".py" or path.suffix in DATA_SUFFIXES):
                expected.add(f"dolmen/{top}/{path.relative_to(src / top).as_posix()}")
    return expected


def test_built_wheel_has_the_layout_and_imports_in_a_fresh_venv(tmp_path: Path) -> None:
    """A wheel built from the sources holds every module under dolmen/ without any top __init__.py and imports in a new venv."""
    src = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--wheel-dir", str(dist), "--quiet"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("dolmen-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "dolmen/__init__.py" not in names
    for top in TOP_FOLDERS:
        assert f"dolmen/{top}/__init__.py" not in names
    assert {n.split("/")[0] for n in names} == {"dolmen", wheel.name.split("-py")[0] + ".dist-info"}
    missing = _expected_files(src) - names
    assert not missing, f"not in the wheel (add the package to [tool.setuptools] packages): {sorted(missing)}"
    assert "platform = dolmen.platform.cli.main:main" in entry_points

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    venv_python = venv / "bin" / "python"
    install = subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    site = Path(python(venv_python, "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip())
    # Third-party dependencies come from the test environment (appended after the
    # venv's own site-packages, without its .pth files, so the editable install
    # stays out); dolmen itself must come from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    out = python(
        venv_python,
        # `dolmen.platform.cli.main` as an attribute is the `main` function the package exports.
        f"{IMPORT_ALL}; import json, platform, sys; print(json.dumps({{"
        "'main': sys.modules['dolmen.platform.cli.main'].__file__, 'app': dolmen.gateway.app.__file__, "
        "'stdlib': platform.__file__}))",
        cwd=tmp_path,
    )
    files = json.loads(out)
    assert Path(files["main"]).is_relative_to(site) and Path(files["app"]).is_relative_to(site)
    assert not Path(files["stdlib"]).is_relative_to(site)
    version = subprocess.run([str(venv / "bin" / "platform"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("platform (dolmen) "), version.stderr


@pytest.mark.skipif(not (REPO / ".ci" / "run").exists(), reason="no CI script in this checkout")
def test_ci_script_runs_the_readme_test_command() -> None:
    """`.ci/run` is executable and runs the test command that the README's quick start gives."""
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in quick_start.splitlines() if line.strip().startswith("scripts/")]
    assert commands == ["scripts/demo", "scripts/test"]
    script = ci.read_text()
    assert "set -euo pipefail" in script and 'scripts/test "$@"' in script


def test_the_test_command_given_test_files_runs_only_those_without_the_checks() -> None:
    """`scripts/test FILE` (or a node id) skips ruff and pyright, says so, and runs just what was named."""
    env = {**os.environ, "DOLMEN_TEST_WORKERS": "0"}
    env.pop("DOLMEN_TEST_LINT", None)
    node = "tests/test_backoff.py::test_another_factor_grows_by_it"
    ran = subprocess.run(
        [str(REPO / "scripts" / "test"), node, "-q", "-p", "no:cacheprovider"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ruff and pyright skipped" in ran.stderr and "ruff check (lint" not in ran.stderr
    assert "1 passed" in ran.stdout
