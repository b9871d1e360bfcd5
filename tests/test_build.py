"""`platform build`'s WIT handling: the packages it adds to `wit/deps/`, and links that lead nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from dolmen.platform.build import build_key, provided_packages
from dolmen.platform.errors import ConfigError

WORLD = """package my:app@1.0.0;
interface api { get: func(url: string) -> result<string, string>; }
world app {
  import wasi:http/outgoing-handler@0.2.0;
  export api;
}
"""


def _wit(tmp_path: Path, text: str) -> Path:
    wit = tmp_path / "src" / "wit"
    wit.mkdir(parents=True)
    (wit / "world.wit").write_text(text)
    (tmp_path / "src" / "app.py").write_text("")
    return wit


def test_a_world_importing_wasi_gets_the_wasi_packages(tmp_path: Path) -> None:
    added = provided_packages(_wit(tmp_path, WORLD))
    assert {"http@0.2.0", "io@0.2.0", "clocks@0.2.0", "random@0.2.0", "cli@0.2.0"} <= set(added)
    assert "dolmen-workflow" not in added
    assert any("interface outgoing-handler" in text for text in added["http@0.2.0"].values())


def test_a_world_that_ships_its_own_wasi_gets_none_added(tmp_path: Path) -> None:
    wit = _wit(tmp_path, WORLD)
    (wit / "deps" / "io").mkdir(parents=True)
    (wit / "deps" / "io" / "poll.wit").write_text("package wasi:io@0.2.0;\ninterface poll {}\n")
    assert provided_packages(wit) == {}


def test_a_workflow_world_gets_the_host_package_only(tmp_path: Path) -> None:
    wit = _wit(tmp_path, "package my:wf@1.0.0;\nworld w { import dolmen:workflow/host@1.0.0; export run: func(); }\n")
    assert set(provided_packages(wit)) == {"dolmen-workflow"}


def test_a_link_to_nothing_in_the_guest_is_a_one_line_error(tmp_path: Path) -> None:
    wit = _wit(tmp_path, WORLD)
    (wit / "deps").mkdir()
    (wit / "deps" / "http@0.2.0").symlink_to("../../../wasi-wit/http@0.2.0")
    with pytest.raises(ConfigError, match=r"is a symbolic link to \.\./\.\./\.\./wasi-wit/http@0\.2\.0, which does not exist; copy"):
        build_key(tmp_path / "src", wit, "app", "app")
