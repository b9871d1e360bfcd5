"""The Lua scripts that perform every write to an execution, loaded once per client."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import redis
from redis.commands.core import Script

_NAMES = ("create", "lock", "extend", "finish", "fail", "commit", "block", "deliver", "cancel", "upgrade", "unmark")


def _source(name: str) -> str:
    lua = files("dolmen.platform.store").joinpath("lua")
    prelude = lua.joinpath("_prelude.lua").read_text() if name != "unmark" else ""
    return prelude + "\n" + lua.joinpath(f"{name}.lua").read_text()


class Scripts:
    """Registered scripts; call them with keys and args, or queue them on a pipeline."""

    def __init__(self, client: redis.Redis) -> None:
        self._scripts: dict[str, Script] = {name: client.register_script(_source(name)) for name in _NAMES}

    def __call__(self, name: str, keys: list[str], args: list[Any], client: Any = None) -> Any:
        return self._scripts[name](keys=keys, args=args, client=client)

    def on(self, pipe: Any, name: str, keys: list[str], args: list[Any]) -> None:
        """Queue a script call on a pipeline (EVALSHA, with the script loaded first)."""
        self._scripts[name](keys=keys, args=args, client=pipe)
