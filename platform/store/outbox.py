"""Cross-slot side effects, carried out only after the write that asks for them succeeded.

A Lua script may only touch its own execution tree, so what must happen
elsewhere (enqueue an execution in its function's queue, arm a timer, add
it to the indexes, create a top-level execution in another tree) is written
into the tree's outbox by the same script. Only once the script answered ok
does the writer carry the messages out and remove them: a refused write
leaves no trace in queues, timers or indexes.

Before the script runs, the writer marks the tree in `dolmen:dirty`. That
mark is a recovery hint, not an effect: if the writer dies between the
script and the delivery, the scheduler's sweep finds the mark and delivers
what is left; if the script was refused, the sweep finds an empty outbox and
drops the mark. Delivering twice is harmless: a runner locks an execution
before running it, timers and indexes are sets, and creation is idempotent
by id.

Each write has a mark of its own, `ROOT|TOKEN` (`dirty_mark`), and removes it
in the pipeline that delivers its messages (`Effects.mark`), so the index
holds only writes in flight, however many writes a second there are; the
sweep is left with the marks of writers that died or whose write was
refused. A mark per tree, removed by whichever writer came last, could drop
the mark of a writer whose script had not run yet.

All of this is a cluster's need: there a script may only touch its own slot.
On one server with one shard (`Scripts.direct`) a script carries out the
messages it knows itself (enqueue, index, expire, timer: `applies_directly`),
in the same atomic write, and only the others (a creation in another tree, a
chain's head) reach the outbox; the writer leaves the applied ones out of
what it delivers (`left_in_outbox`) and marks the tree dirty only for the
others (`needs_mark`). One the script cannot carry out after all (the server
refused its effect) goes to the outbox with a mark the script writes itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..priorities import DEFAULT, queue_name
from ..tags import members as tag_members
from . import keys
from .connection import map_redis_errors
from .scripts import DIRECT_PREFIXES, Pipeline, Scripts, write_id
from .shards import Shards


# Every message carries a nonce ("n") unique across processes, so that removing one
# delivered message from an outbox list never removes an identical one written by
# another write. A write id is such a value, and costs no system call.


def enqueue_msg(ffqn: str, execution_id: str, priority: str = DEFAULT) -> str:
    """Message: put `execution_id` in the queue of `ffqn` of class `priority` (see platform/priorities.py)."""
    data: dict[str, Any] = {"op": "enqueue", "ffqn": ffqn, "id": execution_id, "n": write_id()}
    if priority != DEFAULT:
        data["p"] = priority
    return json.dumps(data)


def enqueue_member(ffqn: str, execution_id: str, priority: str = DEFAULT) -> dict[str, Any]:
    """A timer member that enqueues `execution_id` when it fires (see the scheduler)."""
    return timer_member("enqueue", ffqn=ffqn, id=execution_id, **({"p": priority} if priority != DEFAULT else {}))


def timer_msg(at_ms: int, member: dict[str, Any]) -> str:
    """Message: arm a timer that fires `member` at `at_ms`.

    `k` is the member as the timers' sorted set holds it (JSON, sorted keys),
    so that a script that carries the message out itself (lua/_prelude.lua
    `emit`) writes the very member the repair sweep and `clear_timer` name.
    """
    return json.dumps({"op": "timer", "k": _timer_key(member), "at": at_ms, "m": member, "n": write_id()})


def _timer_key(member: dict[str, Any]) -> str:
    return json.dumps(member, sort_keys=True)


def applies_directly(message: str) -> bool:
    """Whether a write script carries out `message` itself when it may touch any key (`Scripts.direct`).

    Such a message never reaches the outbox, so the writer must not deliver
    it again; the others (creations elsewhere, chain heads) still go through
    the outbox.
    """
    return message.startswith(DIRECT_PREFIXES)


def left_in_outbox(direct: bool, messages: list[str]) -> list[str]:
    """Of the messages a write script was given, those it puts in the outbox (all, unless `direct`)."""
    if not direct:
        return messages
    return [m for m in messages if not applies_directly(m)]


def needs_mark(direct: bool, messages: Iterable[str]) -> bool:
    """Whether a write that may put these messages ('' for none) in its outbox needs a dirty mark first.

    Not when every one of them is carried out by the script itself (`direct`):
    then nothing is left for a sweep to find.
    """
    return any(m and not (direct and applies_directly(m)) for m in messages)


def mark_for(direct: bool, root: str, messages: Iterable[str]) -> str | None:
    """A fresh dirty mark for a write into `root` that may put these messages in its outbox, or None when it needs none."""
    return dirty_mark(root) if needs_mark(direct, messages) else None


def index_msg(
    execution_id: str,
    created_ms: int,
    *,
    finished: bool = False,
    replaces: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Message: list a new execution in the `executions` and (unless created `finished`) `active` indexes.

    `replaces` is the execution it continues as new: it leaves the `active`
    index only once this one is in it, so that an unfinished chain is always
    listed there (`platform gc` keeps what the listed executions run on).
    `tags` list it in each of its tags' indexes too (see `Shards.tag`).
    """
    data: dict[str, Any] = {"op": "index", "id": execution_id, "at": created_ms}
    if finished:
        data["done"] = 1
    elif replaces:
        data["replaces"] = replaces
    if tags:
        data["tags"] = tag_members(tags)
    return json.dumps(data)


def chain_msg(first: str, index: int, execution_id: str, ttl_ms: int) -> str:
    """Message: the chain that starts at `first` has reached `execution_id`, its `index`-th continuation."""
    return json.dumps({"op": "chain", "first": first, "index": index, "id": execution_id, "ttl": ttl_ms})


def expire_msg(root: str, at_ms: int) -> str:
    """Message: list the finished root `root` in `dolmen:expiry`, due at `at_ms` (see store/retention.py)."""
    return json.dumps({"op": "expire", "id": root, "at": at_ms})


def create_msg(execution_id: str, created_event: str, fields: list[str], messages: list[str], wid: str) -> str:
    """Message: create a top-level execution in its own tree (idempotent by id and `wid`).

    `messages` are the new execution's own outbox messages (enqueue, index).
    """
    return json.dumps(
        {"op": "create", "id": execution_id, "created": created_event, "fields": fields, "msgs": messages, "wid": wid}
    )


def timer_member(op: str, **fields: Any) -> dict[str, Any]:
    """What a timer does when it fires (see the scheduler)."""
    return {"op": op, **fields}


def delay_member(
    execution_id: str, ffqn: str, delay_id: str, join_set: str | None, priority: str = DEFAULT
) -> dict[str, Any]:
    """The timer of a workflow's delay: it delivers the delay's response when it fires.

    The repair sweep builds it again from the `delay_requested` event to re-arm a lost timer
    (store/repair.py): the same fields make the same member (`Effects` writes it with sorted keys).
    """
    return timer_member(
        "deliver", id=execution_id, ffqn=ffqn, delay_id=delay_id, response={"delay_id": delay_id, "join_set": join_set},
        **({"p": priority} if priority != DEFAULT else {}),
    )


def dirty_mark(root: str) -> str:
    """A fresh mark for one write into `root`'s outbox: `ROOT|TOKEN`."""
    return f"{root}|{write_id()}"


def root_of_mark(mark: str) -> str:
    """The tree a mark names (marks written before per-write marks are the bare root)."""
    return mark.partition("|")[0]


def mark_dirty(pipe: Any, mark: str) -> None:
    """Recovery hint before a write: the tree may soon have outbox messages (µs as the score).

    `mark` comes from `dirty_mark`. Written also over maxmemory
    (lua/mark_dirty.lua), so a write Redis accepts never lacks it.
    """
    # First: the mark must be in before the write it covers runs, also on a cluster (see `Pipeline.script`).
    pipe.script("mark_dirty", [pipe.shards.dirty(root_of_mark(mark))], [mark, time.time_ns() // 1000], first=True)


# The most items one `effects` script call carries (it blocks Redis while it runs).
EFFECTS_PER_CALL = 1000


class _Grouped:
    """Effects of many messages, grouped per key and command: one `effects` script call each (lua/effects.lua).

    Sent one command per message, a fan-out's thousand children cost
    thousands of pipelined commands to pack, send and parse.
    """

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], list[Any]] = {}
        # Commands that must follow the grouped effects (a ZREM after its ZADD), or that are scripts of their own.
        self.after: list[Callable[[Any], None]] = []
        # Commands that must only run once the effects are in (a ZREM of one shard after a ZADD of another):
        # right after them on a pipeline that runs in order, else in the next round trip (see `queue_all`).
        self.follow: list[Callable[[Any], None]] = []

    def add(self, key: str, mode: str, *args: Any) -> None:
        self.items.setdefault((key, mode), []).extend(args)

    def queue(self, pipe: Any) -> None:
        for (key, mode), args in self.items.items():
            head = mode.split()
            step = 2 if head[0] == "ZADD" else 1
            for i in range(0, len(args), EFFECTS_PER_CALL * step):
                pipe.script("effects", [key], [*head, *args[i : i + EFFECTS_PER_CALL * step]])
        for command in self.after:
            command(pipe)


def queue_effects(grouped: _Grouped, message: str, shards: Shards) -> tuple[str, str] | None:
    """Add the effects of one message to `grouped`; returns the root it creates into and its mark, if any."""
    data = json.loads(message)
    op = data["op"]
    if op == "enqueue":
        priority = data.get("p", DEFAULT)
        grouped.add(shards.queue(queue_name(data["ffqn"], priority), data["id"]), "XADD", data["id"])
        if priority != DEFAULT:
            # Named before its entry is read: readers then read this class's queues too (platform/priorities.py).
            grouped.add(keys.PRIORITIES, "SADD", priority)
    elif op == "timer":
        grouped.add(shards.timers(data["m"]["id"]), "ZADD -", data["at"], data.get("k") or _timer_key(data["m"]))
    elif op == "index":
        grouped.add(shards.executions(data["id"]), "ZADD NX", data["at"], data["id"])
        if not data.get("done"):
            grouped.add(shards.active(data["id"]), "ZADD NX", data["at"], data["id"])
        for tag in data.get("tags") or ():
            grouped.add(shards.tag(tag, data["id"]), "ZADD NX", data["at"], data["id"])
        if data.get("replaces"):
            replaced = data["replaces"]
            # Once the successor's ZADD is in: never neither listed (the two may be on different masters).
            grouped.follow.append(lambda pipe: pipe.zrem(shards.active(replaced), replaced))
    elif op == "chain":
        head_key, args = keys.chain_head(data["first"]), [data["index"], data["id"], data["ttl"]]
        grouped.after.append(lambda pipe: pipe.script("chain_head", [head_key], args))
    elif op == "expire":
        grouped.add(shards.expiry(data["id"]), "ZADD -", data["at"], data["id"])
    elif op == "create":
        root = keys.root_of(data["id"])
        mark = dirty_mark(root)
        create_keys = [keys.state(data["id"]), keys.log(data["id"]), keys.outbox(root)]
        create_args = [data["wid"], data["created"], time.time_ns() // 1_000_000, len(data["msgs"]), *data["msgs"], *data["fields"]]

        def create(pipe: Any) -> None:
            mark_dirty(pipe, mark)
            # create.lua, also over maxmemory: the write that asked for it was accepted.
            pipe.script("create_effect", create_keys, create_args)

        grouped.after.append(create)
        return root, mark
    else:  # pragma: no cover - written only by this module
        raise ValueError(f"unknown outbox message {message!r}")
    return None


Also = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class Effects:
    """What one accepted write asks for: messages from `root`'s outbox, commands of its own, and its dirty mark to remove."""

    root: str
    messages: list[str]
    also: Also | None = None
    mark: str | None = None

    @property
    def empty(self) -> bool:
        """Whether there is nothing to send: no message, no command, no mark."""
        return not self.messages and self.also is None and self.mark is None


def queue_all(pipe: Pipeline, batch: list[Effects]) -> list[Effects]:
    """Queue every write's effects and their outbox removals into `pipe`.

    In this order: the effects of all messages (grouped per key, see
    `_Grouped`), the removal of the delivered messages from their outboxes,
    each write's own commands (`also`), then the writes' dirty marks.
    Returns what to deliver once `pipe` has executed without an error: the
    effects of the executions that `create` messages make in other trees
    (their own messages), and, when `pipe` does not keep its commands in
    order (`pipe.ordered` is False: a cluster sends each node its part at
    once), the removals, so that a message never leaves its outbox before
    its effect was carried out.
    """
    created: list[Effects] = []
    grouped = _Grouped()
    delivered = _Grouped()
    ordered = getattr(pipe, "ordered", True)
    later: list[Effects] = []
    for effects in batch:
        for message in effects.messages:
            other = queue_effects(grouped, message, pipe.shards)
            if other is not None:
                # create.lua carries out the new execution's own messages as any write script does.
                made = left_in_outbox(getattr(pipe, "direct", False), json.loads(message)["msgs"])
                created.append(Effects(other[0], made, mark=other[1]))
            if ordered:
                delivered.add(keys.outbox(effects.root), "LREM", message)
        if not ordered and effects.messages:
            later.append(Effects(effects.root, [], _removal(effects), effects.mark))
    grouped.queue(pipe)
    if grouped.follow:
        follow = grouped.follow

        def then(p: Any) -> None:
            for command in follow:
                command(p)

        if ordered:
            then(pipe)
        else:
            later.append(Effects("", [], then))
    delivered.queue(pipe)
    now = batch if ordered else [effects for effects in batch if not effects.messages]
    for effects in now:
        if effects.also is not None:
            effects.also(pipe)
    for effects in now:
        if effects.mark is not None:
            # Last: after every command it follows (a pipeline runs in order).
            pipe.zrem(pipe.shards.dirty(root_of_mark(effects.mark)), effects.mark)
    return created + later


def _removal(effects: Effects) -> Also:
    """The commands that follow a write's effects: its messages out of its outbox, then its own `also`."""
    outbox_key, messages, also = keys.outbox(effects.root), effects.messages, effects.also

    def remove(pipe: Any) -> None:
        removal = _Grouped()
        removal.add(outbox_key, "LREM", *messages)
        removal.queue(pipe)
        if also is not None:
            also(pipe)

    return remove


def deliver_all(scripts: Scripts, batch: list[Effects]) -> None:
    """Carry out accepted writes' effects in one round trip (plus one for executions they create).

    Raises redis-py's exceptions: callers translate them (`map_redis_errors`).
    """
    batch = [e for e in batch if not e.empty]
    if not batch:
        return
    pipe = scripts.pipeline()
    created = queue_all(pipe, batch)
    pipe.execute()
    deliver_all(scripts, created)


def deliver(scripts: Scripts, root: str, messages: list[str], *, also: Also | None = None, mark: str | None = None) -> None:
    """Carry out messages an accepted write put in `root`'s outbox, then remove them (and the write's `mark`).

    `messages` are those the write script was given: the ones it carried out
    itself (`Scripts.direct`) are left out. `also(pipe)` may queue more
    commands that must only follow an accepted write (queue acks, index
    removals) into the same round trip.
    """
    deliver_all(scripts, [Effects(root, left_in_outbox(scripts.direct, messages), also, mark)])


def flush(scripts: Scripts, roots: list[str], *, marks: list[str] = ()) -> int:  # type: ignore[assignment]
    """Deliver whatever these trees' outboxes hold now, then remove `marks` (of writes into them); returns how many messages."""
    if not roots:
        return 0
    pipe = scripts.client.pipeline(transaction=False)
    for root in roots:
        pipe.lrange(keys.outbox(root), 0, -1)
    held: list[list[bytes]] = pipe.execute()
    batch = [Effects(root, [m.decode() for m in raw]) for root, raw in zip(roots, held)]
    if marks:
        # After every delivery of the same pipeline.
        batch.append(Effects(roots[0], [], lambda p: remove_marks(p, marks)))
    deliver_all(scripts, batch)
    return sum(len(raw) for raw in held)


def remove_marks(pipe: Any, marks: list[str]) -> None:
    """Queue the removal of dirty marks (each from its shard's index)."""
    by_key: dict[str, list[str]] = {}
    for mark in marks:
        by_key.setdefault(pipe.shards.dirty(root_of_mark(mark)), []).append(mark)
    for key, members in by_key.items():
        pipe.zrem(key, *members)


def sweep(scripts: Scripts, older_than_ms: int = 2000, limit: int = 500, shards: list[int] | None = None) -> int:
    """Deliver outbox messages left behind by writers that died, from the dirty index of `shards` (all by default).

    Returns how many messages were delivered; raises `StoreError`.
    """
    with map_redis_errors():
        return _sweep(scripts, older_than_ms, limit, shards)


def _sweep(scripts: Scripts, older_than_ms: int, limit: int, shards: list[int] | None) -> int:
    horizon = (time.time_ns() // 1000) - older_than_ms * 1000
    dirty = [scripts.shards.key(shard, "dirty") for shard in (range(scripts.shards.count) if shards is None else shards)]
    read = scripts.client.pipeline(transaction=False)
    for key in dirty:
        read.zrangebyscore(key, "-inf", horizon, start=0, num=limit, withscores=True)
    found: list[list[tuple[bytes, float]]] = read.execute()
    entries = [(key, raw.decode(), score) for key, part in zip(dirty, found) for raw, score in part]
    if not entries:
        return 0
    delivered = flush(scripts, list(dict.fromkeys(root_of_mark(mark) for _, mark, _ in entries)))
    pipe = scripts.pipeline()
    for key, mark, score in entries:
        pipe.script("zrem_unchanged", [key], [mark, repr(int(score))])
    pipe.execute()
    return delivered
