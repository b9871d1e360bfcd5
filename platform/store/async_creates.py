"""Creating executions from the event loop.

The same write as `ExecutionStore.create`: the tree's dirty mark and the
`create` script in one round trip; once the script answered, its outbox
messages (enqueue, index) are carried out and removed. Both go through the
process's `AsyncBatcher`, so the creates, effects and reads of one loop tick
share round trips (group commit).

Effects are write-behind, as the gateway's `Deliveries` thread made them: a
create is answered once its script is, and its effects follow in the next
round trip, also when the caller has gone meanwhile. If the process dies
before, the dirty mark makes the scheduler's sweep deliver them (outbox.py).
"""

from __future__ import annotations

from typing import Any

import structlog

from ..errors import StoreError
from . import keys, outbox
from .async_batch import AsyncBatcher
from .connection import map_redis_errors
from .creates import IDEMPOTENCY_TTL_S, Created, CreateCall, NewExecution
from .outbox import Effects, queue_all

log = structlog.get_logger("dolmen.store")

# How long accepted creates' effects wait for another round trip to ride along with
# (a create, a read) before they go on their own, as the `Deliveries` thread lingered.
EFFECTS_LINGER_S = 0.002


def _store_error(exc: BaseException) -> BaseException:
    """`exc` as the `StoreError` that `map_redis_errors` makes of it (other exceptions as they are)."""
    try:
        with map_redis_errors():
            raise exc
    except StoreError as translated:
        return translated
    except BaseException as other:  # noqa: BLE001 - handed to the caller as it is
        return other


class AsyncCreates:
    """Create executions and claim idempotency keys without leaving the event loop."""

    def __init__(self, batcher: AsyncBatcher) -> None:
        self.batcher = batcher
        # Observable by tests and metrics.
        self.created = 0

    async def claim_idempotency_key(self, key: str, candidate_id: str, ttl_s: int = IDEMPOTENCY_TTL_S) -> str:
        """The execution id bound to `key`: `candidate_id` if the key is new."""
        commands = self.batcher.commands()
        commands.execute_command("SET", keys.idempotency(key), candidate_id, "NX", "EX", ttl_s)
        commands.execute_command("GET", keys.idempotency(key))
        _, bound = _replies(await self.batcher.execute(commands))
        return bound.decode()

    async def create(self, new: NewExecution) -> Created:
        """Create and enqueue an execution; idempotent by id, as `ExecutionStore.create`.

        Raises `ConflictError` when the id exists with another function or params.
        """
        call = CreateCall.of(new)
        await self.batcher.ready()
        commands = self.batcher.commands()
        mark = outbox.mark_for(commands.direct, call.root, call.messages)
        if mark is not None:
            outbox.mark_dirty(commands, mark)
        position = commands.script("create", call.keys, call.args)
        replies = await self.batcher.execute(commands, lambda outcome: self._accepted(call, mark, commands.direct, position, outcome))
        return call.result(_replies(replies)[position])

    def _accepted(
        self, call: CreateCall, mark: str | None, direct: bool, position: int, outcome: list[Any] | BaseException
    ) -> None:
        """After the script answered: queue its effects and its mark's removal (also when the caller has gone).

        `direct`: the script carried out the messages it could itself (see `outbox.left_in_outbox`).
        """
        if isinstance(outcome, BaseException) or isinstance(outcome[position], BaseException):
            return
        created = outcome[position][0] == b"created"
        self.created += created
        effects = Effects(call.root, outbox.left_in_outbox(direct, call.messages) if created else [], mark=mark)
        if not effects.empty:
            self.deliver([effects])

    def deliver(self, batch: list[Effects]) -> None:
        """Carry out accepted writes' effects in the next round trip; failures are left to the sweeps."""
        commands = self.batcher.commands()
        more = queue_all(commands, batch)  # type: ignore[arg-type]  # the same recording interface as Pipeline

        def sent(outcome: list[Any] | BaseException) -> None:
            failed = outcome if isinstance(outcome, BaseException) else next(
                (r for r in outcome if isinstance(r, BaseException)), None
            )
            if failed is not None:
                log.warning("effects left to the sweeps", writes=len(batch), error=str(_store_error(failed)))
            elif more:
                self.deliver(more)

        self.batcher.send(commands, sent, linger_s=EFFECTS_LINGER_S)


def _replies(replies: list[Any]) -> list[Any]:
    """The replies, raising the first error reply as a `StoreError`."""
    for reply in replies:
        if isinstance(reply, BaseException):
            raise _store_error(reply)
    return replies


__all__ = ["AsyncCreates"]
