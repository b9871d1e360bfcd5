"""The Lua scripts that perform every write to an execution, as redis-py `Script` objects.

A call on its own is redis-py's `Script.__call__` (EVALSHA, and after
NOSCRIPT a SCRIPT LOAD and the call again). In pipelines the scripts are
called with EVALSHA by their `Script.sha` but not through `Script.__call__`:
redis-py then sends SCRIPT EXISTS for the pipeline's scripts ahead of every
pipeline, a round trip per write on the hot path. Instead they are loaded once
per client, and when the server answers NOSCRIPT (it was restarted or
flushed) the failed calls are repeated through their `Script`; the other
commands of a pipeline are not sent twice.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
from importlib.resources import files
from typing import Any

import redis
from redis.commands.core import Script
from redis.connection import AbstractConnection
from redis.exceptions import NoScriptError, ResponseError

from ..config import env_int
from ..priorities import SEPARATOR
from . import plain_pipeline
from .keys import PRIORITIES
from . import shards as sharding
from .connection import Redis
from .shards import Shards

NAMES = (
    "create", "lock", "extend", "finish", "fail", "commit", "block", "deliver", "cancel", "complete", "upgrade", "fork",
    "pause", "resume",
    "zrem_unchanged", "repair", "remove_tree", "del_if_equal", "cron_record", "permit",
)
# Scripts on keys outside any execution tree need none of the shared functions.
_STANDALONE = frozenset({"zrem_unchanged", "repair", "remove_tree", "del_if_equal", "cron_record", "permit"})

# When Redis is over maxmemory, Valkey refuses every other script at its first
# command that may grow memory, and none writes anything before its first such
# command: a refused write changes nothing (tests/store/test_store_full.py). These run anyway
# (`#!lua flags=allow-oom`), by the file each runs: the effects of writes it
# already accepted (outbox messages, and the top-level executions they
# create), the recovery mark written ahead of every write, and lease
# extensions, so a runner waiting to write a result keeps its lease. Each adds
# a few bytes. See README "When Valkey is full".
_ALLOW_OOM = {
    "effects": "effects", "create_effect": "create", "mark_dirty": "mark_dirty", "extend": "extend",
    "chain_head": "chain_head",
}  # fmt: skip
# The removal of a finished tree (store/trees.py) frees far more than its tombstone takes: above all when full.
_ALLOW_OOM["remove_tree"] = "remove_tree"
NAMES += ("effects", "create_effect", "mark_dirty", "chain_head")
_STANDALONE |= {"effects", "mark_dirty", "chain_head"}


# Write ids: 96 random bits per process, then a counter (no syscall per write).
_WRITE_ID_PREFIX = os.urandom(12).hex()
_write_ids = itertools.count(1)


def write_id() -> str:
    """A fresh write id, unique across processes and writes: scripts remember the last
    one they accepted, so a re-sent write is recognised (see lua/_prelude.lua)."""
    return f"{_WRITE_ID_PREFIX}{next(_write_ids):x}"


# The outbox messages a write script carries out itself on one server with one shard (lua/_prelude.lua `emit`,
# outbox.py `applies_directly`): each starts with one of these, as outbox.py's `json.dumps` writes them
# (a timer only with its member's key, `k`). Given to the scripts in their `DIRECT` header.
DIRECT_PREFIXES = ('{"op": "enqueue"', '{"op": "index"', '{"op": "expire"', '{"op": "timer", "k": ')


def source(name: str, direct: bool = False) -> str:
    """The Lua source sent for script `name`: its flags, the shared prelude, then the script's file.

    `direct`: the prelude's `emit` carries out outbox messages itself (one
    server, one shard: see `Scripts.direct`), naming keys as `Shards(1)` does.
    """
    lua = files("dolmen.platform.store").joinpath("lua")
    shebang = "#!lua flags=allow-oom\n" if name in _ALLOW_OOM else ""
    if name in _STANDALONE:
        prelude = ""
    else:
        prelude = _direct_header(direct) + lua.joinpath("_prelude.lua").read_text()
    return shebang + prelude + "\n" + lua.joinpath(f"{_ALLOW_OOM.get(name, name)}.lua").read_text()


def _direct_header(direct: bool) -> str:
    """The prelude's `DIRECT` (lua/_prelude.lua): nil, or what `emit` needs to name the single shard's keys."""
    if not direct:
        return "local DIRECT = nil\n"
    fields = {"shard": Shards(1).key(0, ""), "priorities": PRIORITIES, "separator": SEPARATOR}
    # JSON strings of ASCII text are Lua string literals.
    values = [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    values.append("prefixes = {" + ", ".join(json.dumps(p) for p in DIRECT_PREFIXES) + "}")
    return "local DIRECT = {" + ", ".join(values) + "}\n"


def direct_effects(cluster: bool, shards: Shards) -> bool:
    """Whether write scripts may carry out their effects themselves: one server, one shard, `DOLMEN_DIRECT_EFFECTS` on.

    Raises `ConfigError` for a malformed `DOLMEN_DIRECT_EFFECTS`.
    """
    return not cluster and shards.count == 1 and env_int("DOLMEN_DIRECT_EFFECTS") == 1


def is_noscript(value: object) -> bool:
    """Whether a reply or exception is the server's NOSCRIPT (it does not know the script)."""
    return isinstance(value, NoScriptError) or (isinstance(value, ResponseError) and str(value).startswith("NOSCRIPT"))


class Pipeline:
    """A non-transactional pipeline that knows which of its commands are script calls.

    Any redis-py command method queues that command (`pipe.zadd(...)`);
    `execute` raises redis-py's own exceptions, which the store's callers
    translate (`map_redis_errors`).
    """

    def __init__(self, scripts: Scripts) -> None:
        self.scripts = scripts
        self.pipe = scripts.client.pipeline(transaction=False)
        self._calls: dict[int, tuple[str, list[str], list[Any]]] = {}
        self._count = 0
        # On a cluster: script calls that must have run before any other command is sent (see `script`).
        self._first: Pipeline | None = None
        self._first_at: list[int] = []

    def __getattr__(self, name: str) -> Any:
        command = getattr(self.pipe, name)

        def queue(*args: Any, **kwargs: Any) -> Pipeline:
            command(*args, **kwargs)
            self._count += 1
            return self

        return queue

    def __len__(self) -> int:
        """How many commands are queued (the position the next one gets)."""
        return self._count

    @property
    def shards(self) -> Shards:
        """The store's shards of the cross-tree keys (see `store.shards`)."""
        return self.scripts.shards

    @property
    def direct(self) -> bool:
        """Whether its write scripts carry out their outbox messages themselves (`Scripts.direct`)."""
        return self.scripts.direct

    @property
    def ordered(self) -> bool:
        """Whether the commands run in the order queued: not on a cluster, which sends each node its part at once."""
        return not self.scripts.cluster

    def script(self, name: str, keys: list[str], args: list[Any], *, first: bool = False) -> int:
        """Queue a script call; returns its position in the results.

        `first`: the call must have run before any command queued after it
        does. A single server runs a pipeline in order anyway; a cluster
        sends each node its part at once, so there such calls go in a round
        trip of their own, ahead of the rest, which is not sent if one failed.
        """
        if first and not self.ordered:
            if self._first is None:
                self._first = Pipeline(self.scripts)
            self._first.script(name, keys, args)
            self._first_at.append(self._count)
            self._count += 1
            return self._count - 1
        # execute_command, not evalsha: redis-py's cluster pipeline refuses the method (not the command).
        self.pipe.execute_command("EVALSHA", self.scripts.sha(name), len(keys), *keys, *args)
        self._calls[self._count] = (name, keys, args)
        self._count += 1
        return self._count - 1

    def execute(self, *, raise_errors: bool = True, connection: AbstractConnection | None = None) -> list[Any]:
        """Run the pipeline; script calls that hit NOSCRIPT are reloaded and repeated.

        With `raise_errors=False`, a command's error is its result instead of raised. `connection`: a single
        server's connection the caller holds for its round trips (`plain_pipeline.HeldConnection`).
        """
        if self._first is not None:
            first = self._first.execute(raise_errors=False)
            failed = next((r for r in first if isinstance(r, Exception)), None)
            if failed is not None:
                self.pipe.reset()  # not sent: what needed those calls first gets their error
                rest = [failed] * (self._count - len(first))
            else:
                rest = self._execute(connection)
            firsts, others, at = iter(first), iter(rest), set(self._first_at)
            results = [next(firsts) if i in at else next(others) for i in range(self._count)]
        else:
            results = self._execute(connection)
        if raise_errors:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results

    def _execute(self, connection: AbstractConnection | None = None) -> list[Any]:
        """The replies of the commands queued in `pipe` (all but the `first` ones), NOSCRIPT calls repeated."""
        # A single server's pipeline skips redis-py's own bookkeeping (see plain_pipeline.py).
        results = plain_pipeline.execute_any(self.pipe, connection)
        for position, (name, keys, args) in self._calls.items():
            if self._first_at:
                position -= bisect.bisect_left(self._first_at, position)  # positions in `pipe` skip the `first` calls
            if is_noscript(results[position]):
                try:
                    results[position] = self.scripts(name, keys, args)
                except ResponseError as exc:
                    results[position] = exc
        return results


class Scripts:
    """The scripts, by name (`NAMES`; lua/NAME.lua), each a redis-py `Script` registered with the client.

    Calls raise redis-py's own exceptions: the store's functions that make
    them translate them (`map_redis_errors`).
    """

    def __init__(self, client: Redis, *, shards: Shards | None = None, direct: bool | None = None) -> None:
        """`direct`: whether the write scripts carry out their effects themselves (None: see `direct`)."""
        self.client = client
        # Whether `client` is a cluster's; asked on every pipeline, and isinstance() of redis-py's
        # cluster class goes through typing's slow Protocol check.
        self.cluster = isinstance(client, redis.RedisCluster)
        self._shards = shards
        self._direct = direct
        # Registered on first need, once `direct` is known: its source depends on it.
        self._chosen: dict[str, Script] | None = None
        self._loaded = False

    @property
    def direct(self) -> bool:
        """Whether the write scripts carry out outbox messages themselves (lua/_prelude.lua `emit`).

        Only on one server with one shard, where a script may touch keys
        outside its execution tree and every shard key is known to it; unless
        `DOLMEN_DIRECT_EFFECTS=0`. Then a write's queue entries, timers and
        index entries are in with the write itself: no dirty mark, no outbox
        round trip. Reads the shard count on first need (see `shards`).
        """
        if self._direct is None:
            self._direct = direct_effects(self.cluster, self.shards)
        return self._direct

    @property
    def _scripts(self) -> dict[str, Script]:
        scripts = self._chosen
        if scripts is None:
            direct = self.direct
            scripts = self._chosen = {name: self.client.register_script(source(name, direct)) for name in NAMES}
        return scripts

    def sha(self, name: str) -> str:
        """The SHA-1 of script `name`'s source, as EVALSHA takes it."""
        return self._scripts[name].sha

    @property
    def shards(self) -> Shards:
        """The store's shards of the cross-tree keys, read (or set, at the store's first use) on first need."""
        if self._shards is None:
            self._shards = sharding.load(self.client)
        return self._shards

    def load(self) -> None:
        """SCRIPT LOAD every script (once per server start; on every master of a cluster)."""
        if isinstance(self.client, redis.RedisCluster):
            # Sent to all primaries; a replica promoted later answers NOSCRIPT, and the callers reload.
            for script in self._scripts.values():
                self.client.script_load(script.script)
            self._loaded = True
            return
        pipe = self.client.pipeline(transaction=False)
        for script in self._scripts.values():
            pipe.script_load(script.script)
        pipe.execute()
        self._loaded = True

    def ensure_loaded(self) -> None:
        """Load the scripts unless this client did already (before EVALSHA in a raw pipeline)."""
        if not self._loaded:
            self.load()

    def __call__(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Call one script now (loaded again by redis-py after NOSCRIPT)."""
        return self._scripts[name](keys=keys, args=args)

    def pipeline(self) -> Pipeline:
        """A pipeline whose script calls need no SCRIPT EXISTS round trip."""
        if not self._loaded:
            self.load()
        return Pipeline(self)
