"""The code's layers point one way: every module imports only its own layer's packages and those below.

From the bottom: the core model (errors, ids, names, the resolved deployment,
WIT types) imports nothing else of Dolmen; then the WIT codec and small
helpers; the wasm host and settings; the store and the OCI registry; what the
engine shares (components, retry decisions); the workflow replayer; the
runner and deployments; the services (scheduler, external tasks, supervisor);
the gateway; the CLI on top. Imports are read with `ast`, so a lazy import
inside a function counts as much as one at the top. Above the store, the
store's client is only handed to store functions: no redis-py method is called
on it (calls read with `ast` too, the receiver's type from the annotations).
"""

from __future__ import annotations

import ast
import functools
import textwrap
from dataclasses import dataclass
from pathlib import Path

from tests.support.client_calls import ClientCalls

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"platform": "dolmen.platform", "registry": "dolmen.registry", "gateway": "dolmen.gateway"}

# Lowest first. A unit is a subpackage (`dolmen.platform.store`), a single module
# (`dolmen.platform.errors`) or a top folder (`dolmen.registry`); the longest prefix wins.
LAYERS: list[tuple[str, ...]] = [
    (  # the core model
        "dolmen.platform._version", "dolmen.platform.errors", "dolmen.platform.ids", "dolmen.platform.ffqn",
        "dolmen.platform.cron", "dolmen.platform.backoff", "dolmen.platform.model", "dolmen.platform.wit.types",
        "dolmen.platform.surface", "dolmen.platform._lazy", "dolmen.platform.times",
    ),
    (  # WIT values and small helpers over the core
        "dolmen.platform.wit", "dolmen.platform.priorities", "dolmen.platform.tags", "dolmen.platform.log",
        "dolmen.platform.metrics", "dolmen.platform.maxmemory", "dolmen.platform.shutdown",
    ),
    ("dolmen.platform.config", "dolmen.platform.wasm", "dolmen.platform.build"),
    ("dolmen.platform.store", "dolmen.registry", "dolmen.platform.stub_build"),
    ("dolmen.platform.execution",),
    ("dolmen.platform.workflow", "dolmen.platform.client"),
    ("dolmen.platform.runner", "dolmen.platform.deploy", "dolmen.platform.cron_firing"),
    ("dolmen.platform.external", "dolmen.platform.scheduler", "dolmen.platform.supervisor"),
    ("dolmen.gateway", "dolmen.platform.embedded"),
    ("dolmen.platform.cli",),
]  # fmt: skip

# Third-party libraries that only their adapter layer may import.
ADAPTERS = {"redis": ("dolmen.platform.store",)}

# redis-py's client types under the store's own names: above `store/`, the handle is `StoreClient`/`AsyncStoreClient`.
REDIS_TYPES = {
    f"dolmen.platform.store.{path}"
    for name in ("Redis", "AsyncRedis")
    for path in (name, f"connection.{name}")
}


@dataclass(frozen=True, slots=True)
class Import:
    """One import of a Dolmen module (or of a third-party top-level package) by a module."""

    module: str
    imported: str
    line: int


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = FOLDERS[parts[0]].split(".") + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            # `from . import keys` imports the module `keys`; `from .keys import state` the module `.keys`.
            found += [Import(module, f"{target}.{alias.name}", node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
    return found


def _all_imports() -> list[Import]:
    return [imp for folder in FOLDERS for path in sorted((ROOT / folder).rglob("*.py")) for imp in _imports(path)]


def _unit(module: str) -> str | None:
    """The layer unit `module` belongs to: the longest prefix in `LAYERS`, None outside Dolmen."""
    units = [unit for layer in LAYERS for unit in layer if module == unit or module.startswith(unit + ".")]
    return max(units, key=len) if units else None


def _rank(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def test_every_module_has_a_layer() -> None:
    """Each module of the three folders belongs to a unit of `LAYERS` (a new package must be placed)."""
    missing = sorted({imp.module for imp in _all_imports() if _unit(imp.module) is None})
    assert missing == [], f"add these modules' package to LAYERS in {__file__}: {missing}"


def test_imports_point_down() -> None:
    """A module imports only its own unit, other units of its layer below, and layers below its own.

    Two units of the same layer never import each other (store and registry, runner and deploy), except
    in the core, whose modules are one unit split by concept.
    """
    wrong: list[str] = []
    for imp in _all_imports():
        mine, theirs = _unit(imp.module), _unit(imp.imported)
        if mine is None or theirs is None or mine == theirs:
            continue
        if _rank(theirs) >= _rank(mine) and not {mine, theirs} <= set(LAYERS[0]):
            wrong.append(f"{imp.module}:{imp.line} imports {imp.imported} ({theirs} is not below {mine})")
    assert wrong == [], "\n".join(wrong)


def test_core_model_imports_only_the_core() -> None:
    """The core model (errors, ids, ffqn, cron, model, wit.types) imports nothing else of Dolmen."""
    core = LAYERS[0]
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        if _unit(imp.module) in core and (unit := _unit(imp.imported)) is not None and unit not in core
    ]
    assert wrong == [], "\n".join(wrong)


def test_workflow_never_imports_the_runner() -> None:
    """workflow/ reaches the runner only through its ports (`Spawner`, `InlineRunner`), never by import."""
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        if _unit(imp.module) == "dolmen.platform.workflow" and _unit(imp.imported) == "dolmen.platform.runner"
    ]
    assert wrong == [], "\n".join(wrong)


def test_registry_imports_only_the_core_and_wasm() -> None:
    """registry/ does OCI: below it only the core model and the wasm host (compiled-artifact cache, loading)."""
    allowed = {*LAYERS[0], "dolmen.platform.wasm", "dolmen.registry"}
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        if _unit(imp.module) == "dolmen.registry" and (unit := _unit(imp.imported)) is not None and unit not in allowed
    ]
    assert wrong == [], "\n".join(wrong)


def test_third_party_adapters_stay_in_their_layer() -> None:
    """Only store/ imports redis: nothing above it sees a Redis type or exception."""
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported}"
        for imp in _all_imports()
        for library, owners in ADAPTERS.items()
        if imp.imported.split(".")[0] == library and not any(imp.module.startswith(owner) for owner in owners)
    ]
    assert wrong == [], "\n".join(wrong)


def test_above_the_store_the_handle_has_the_stores_name() -> None:
    """Above store/, the client is a `StoreClient` (or `AsyncStoreClient`): no module imports the Redis-named aliases."""
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.imported} (use dolmen.platform.store.connection.StoreClient)"
        for imp in _all_imports()
        if imp.imported in REDIS_TYPES and not imp.module.startswith("dolmen.platform.store")
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_layer_check_sees_a_wrong_import() -> None:
    """The check itself works: an import from store into the runner is reported as pointing up."""
    assert _rank(_unit("dolmen.platform.runner.process") or "") > _rank(_unit("dolmen.platform.store.leases") or "")
    assert _unit("dolmen.platform.wit.types") == "dolmen.platform.wit.types"
    assert _unit("dolmen.platform.wit.codec") == "dolmen.platform.wit"


@functools.cache
def _client_calls() -> ClientCalls:
    return ClientCalls(ROOT, FOLDERS)


def test_above_the_store_nothing_calls_redis_py_on_the_client() -> None:
    """Above store/, no module calls a redis-py method on a store client: it hands the client to store functions.

    The methods are every public method of redis-py's clients, read from redis-py itself: the commands
    of `redis.commands`' core and cluster command classes (sync and async) and what the client classes
    add (`pipeline`, `execute_command`, `pubsub`, `lock`, `close`, ...). A name alone is no evidence:
    `path.unlink`, `hashlib.sha256(...).digest`, `selector.select`, `dict.get`, `Event.set` and
    `Client.get` are redis command names too. So a call counts only when its receiver is a store client
    by the code's own annotations (`StoreClient`, `AsyncStoreClient`), followed through variables,
    attributes, properties, base classes, return types and imports (tests/support/client_calls.py).
    It reports no other object; what the annotations do not type it does not see (a client kept in a
    container, a lambda's parameter, `getattr`), so such a call would pass.
    """
    wrong = [
        f"{call.module}:{call.line} calls {call.source}() on the store's client (put it behind a store function)"
        for call in _client_calls().calls(skip=("dolmen.platform.store",))
    ]
    assert wrong == [], "\n".join(wrong)


def test_the_client_call_check_sees_the_real_handles() -> None:
    """The check types the clients the code above store/ really holds: a parameter, an attribute, a chain of them
    (`self.gw.client.redis`), a function's result (`_redis(ctx)`); and inside store/ it finds redis-py calls."""
    handles = {(call.module, call.source) for call in _client_calls().handles(skip=("dolmen.platform.store",))}
    assert {
        ("dolmen.gateway.operations", "self.gw.client.redis"),
        ("dolmen.gateway.app", "redis"),
        ("dolmen.platform.client", "self.redis"),
        ("dolmen.platform.cli.deploy", "_redis(ctx)"),
        ("dolmen.platform.cli.status", "client"),
        ("dolmen.platform.deploy.upgrade_checks", "self.client"),
    } <= handles
    assert all(not module.startswith("dolmen.platform.store") for module, _ in handles)
    inside = {call.source for call in _client_calls().calls() if call.module == "dolmen.platform.store.executions"}
    assert {"self.client.hgetall", "self.client.xrange", "self.client.xread", "self.client.pipeline"} <= inside


_FAKE = {
    "platform/store/__init__.py": """
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from .connection import StoreClient, connect
    """,
    "platform/store/connection.py": """
        from typing import TypeAlias
        import redis
        Redis: TypeAlias = "redis.Redis | redis.RedisCluster"
        StoreClient: TypeAlias = Redis
        def connect(url: str) -> Redis:
            return redis.Redis.from_url(url)
        def ping(client: Redis) -> None:
            client.ping()  # inside store/: allowed
    """,
    "platform/client.py": """
        from .store import StoreClient, connect
        class Client:
            def __init__(self, client: StoreClient) -> None:
                self.redis = client
                self.cache: dict[str, str] = {}
            @classmethod
            def connect(cls, url: str) -> "Client":
                return cls(connect(url))
            def get(self, key: str) -> str | None:
                return self.cache.get(key)
    """,
    "gateway/app.py": """
        import threading
        from ..platform.client import Client
        from ..platform.store.connection import StoreClient, connect
        class Base:
            client: Client
        class Gateway(Base):
            def __init__(self, url: str) -> None:
                self.stop = threading.Event()
        def handle(gw: Gateway, raw: StoreClient | None, cache: dict[str, int]) -> None:
            gw.client.redis.hset("k", "f", "v")
            gw.client.get("k")
            gw.stop.set()
            cache.get("k")
            if raw is not None:
                raw.xadd("s", {"a": 1})
            pipe = connect("redis://x").pipeline()
            local = gw.client.redis
            local.execute_command("PING")
            maybe = local if cache else None
            maybe.delete("k")
            other = local
            other = Client.connect("redis://x")
            other.get("k")
            (lambda c: c.get("k"))(local)
            for each in [local]:
                each.get("k")
    """,
}


def test_the_client_call_check_tells_clients_from_lookalikes(tmp_path: Path) -> None:
    """In a small tree, the check reports the redis-py calls on clients (through an inherited attribute chain, an
    optional parameter, a call's result, variables) and none of the same names on a dict, an Event, a Dolmen
    `Client`, a name also bound to something else, nor inside store/; it misses a lambda's and a loop's."""
    for relative, text in _FAKE.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(textwrap.dedent(text))
    calls = ClientCalls(tmp_path, {"platform": "dolmen.platform", "gateway": "dolmen.gateway"})
    found = [(call.module, call.source) for call in calls.calls(skip=("dolmen.platform.store",))]
    assert found == [
        ("dolmen.gateway.app", "gw.client.redis.hset"),
        ("dolmen.gateway.app", "raw.xadd"),
        ("dolmen.gateway.app", "connect('redis://x').pipeline"),
        ("dolmen.gateway.app", "local.execute_command"),
        ("dolmen.gateway.app", "maybe.delete"),
    ]
    assert [call.source for call in calls.calls() if call.module.startswith("dolmen.platform.store")] == ["client.ping"]
