"""Runner-side operations: read queues, lock executions, and write fenced results (values in `lease_values`, sending in `sending`).

A lock is a lease with an expiry; `version` in the state is the fencing
token. Every write below passes the owner and version it locked with, and the
Lua script refuses it (`FencedError`) if another runner took over since.
Queue entries stay pending in the consumer group until the execution is done
with, so the entries of a runner that died are reclaimed by the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from ..errors import FencedError, StoreError, StoreFullError, StoreUnavailableError
from . import keys, outbox, plain_pipeline
from .connection import map_redis_errors, translated
from .creates import NewExecution
from .clock import now_ms
from .records import Event, Outcome
from .write_calls import FinishWrite, commit_call, finish_effects, finish_write
from .lease_values import (
    Lease,
    LockRefused,
    PendingCommit,
    QueueEntry,
    ack_entries,
    lease_from_lock,
    queue_entries,
)
from .starts import start_messages
from .scripts import write_id
from .sending import Sender, check_reply, reply_status
from .shards import Shards

# How long a runner's read waits on one shard of a cluster before looking at all of them again (see `Leases.read`).
CLUSTER_BLOCK_MS = 50


class Leases(Sender):
    """The runner's view of the store: queues, locks and fenced writes.

    How the writes are sent (resent, checked, grouped) is `Sender`'s, and so is the constructor.
    """

    # What a Leases learns while it reads, set on the instance at the first change (values, never mutated in
    # place, so no two instances share one): the functions whose consumer groups it has created on every
    # shard (emptied when the store lost one), and the shard a cluster's blocking read waits on next (see `read`).
    _groups: frozenset[str] = frozenset()
    _turn: int = 0

    # ----------------------------------------------------------------- queues

    def ensure_groups(self, ffqns: list[str]) -> None:
        """Create the runners' consumer group on every shard's queue of each function (once per process).

        XGROUP CREATE ... MKSTREAM from id 0; a group that exists already (BUSYGROUP) is left as it is.
        """
        missing = [ffqn for ffqn in dict.fromkeys(ffqns) if ffqn not in self._groups]
        if not missing:
            return
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for ffqn in missing:
                for stream in self.shards.queues(ffqn):
                    pipe.xgroup_create(stream, keys.QUEUE_GROUP, id="0", mkstream=True)
            for reply in pipe.execute(raise_on_error=False):
                if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                    raise reply
        self._groups = self._groups | frozenset(missing)

    @property
    def shards(self) -> Shards:
        """How the store's queue, timer and index keys are split in shards (`Scripts.shards`)."""
        return self.scripts.shards

    def _reads(self, ffqns: list[str]) -> list[dict[str, str]]:
        """XREADGROUP's streams argument for new entries of `ffqns`: one read over every shard on one server, one per shard on a cluster."""
        if not self.scripts.cluster:
            return [{stream: ">" for ffqn in ffqns for stream in self.shards.queues(ffqn)}]
        return [{self.shards.queue_in(shard, ffqn): ">" for ffqn in ffqns} for shard in range(self.shards.count)]

    def read(self, consumer: str, ffqns: list[str], count: int, block_ms: int) -> list[QueueEntry]:
        """New entries for this consumer from any of the queues (queue names, see `priorities.queue_name`): up to
        `count` in all, waiting up to `block_ms` ms for one (XREADGROUP ... `>`).

        A cluster cannot wait on keys of several slots at once: when nothing
        is there now in any shard, this waits on one shard, a different one
        each time, for at most `CLUSTER_BLOCK_MS`, so an entry written to
        another shard meanwhile is read within that time. [] when a queue's
        consumer group is gone (NOGROUP: a store that lost it); the next read
        creates it again.
        """
        if not ffqns or count <= 0:
            return []
        self.ensure_groups(ffqns)
        reads = self._reads(ffqns)
        if len(reads) > 1:
            entries = self.read_now([(ffqns, count)], consumer)
            if entries:
                return entries
            self._turn = (self._turn + 1) % len(reads)
            reads, block_ms = [reads[self._turn]], min(block_ms, CLUSTER_BLOCK_MS)
        with map_redis_errors():
            try:
                reply = self.client.xreadgroup(keys.QUEUE_GROUP, consumer, reads[0], count=count, block=block_ms)  # type: ignore[arg-type]
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self._groups = frozenset()
                    return []
                raise
        return queue_entries(reply)

    def read_now(self, reads: list[tuple[list[str], int]], consumer: str) -> list[QueueEntry]:
        """What is there now, without waiting: per (ffqns, count), up to `count` new entries from each of those queues.

        One round trip for reads that take different counts from different
        queues (more from those of short activities, see `runner.batching`).
        """
        reads = [(ffqns, count) for ffqns, count in reads if ffqns and count > 0]
        if not reads:
            return []
        self.ensure_groups([ffqn for ffqns, _ in reads for ffqn in ffqns])
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for ffqns, count in reads:
                for streams in self._reads(ffqns):
                    pipe.xreadgroup(keys.QUEUE_GROUP, consumer, streams, count=count)  # type: ignore[arg-type]
            replies = plain_pipeline.execute_any(pipe)
        return self._entries(replies, queue_entries)

    def reclaim(self, consumer: str, ffqn: str, min_idle_ms: int, count: int = 50) -> list[QueueEntry]:
        """Take over entries another consumer read but never finished (up to `count` from each shard's queue).

        XAUTOCLAIM of the entries pending for at least `min_idle_ms` ms; entries deleted meanwhile are left out.
        A queue whose consumer group is gone (NOGROUP: a failover lost it) has nothing pending to take over;
        the next read or reclaim creates the group again, as `read` does.
        """
        self.ensure_groups([ffqn])
        with map_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for stream in self.shards.queues(ffqn):
                pipe.xautoclaim(stream, keys.QUEUE_GROUP, consumer, min_idle_ms, "0-0", count=count)
            replies: list[Any] = plain_pipeline.execute_any(pipe)

        def claimed(reply: Any) -> list[QueueEntry]:
            # Entries deleted meanwhile come back empty.
            return [QueueEntry(ffqn, sid.decode(), fields[b"id"].decode()) for sid, fields in reply[1] if fields] if reply else []

        return self._entries(replies, claimed)

    def _entries(self, replies: list[Any], decode: Callable[[Any], list[QueueEntry]]) -> list[QueueEntry]:
        """The entries of a pipeline of group reads (XREADGROUP, XAUTOCLAIM), each reply decoded by `decode`.

        A NOGROUP reply has none, and this instance forgets the groups it
        created, so that its next read creates them again (a flushed or
        failed-over store lost them); any other error is raised, translated.
        """
        entries: list[QueueEntry] = []
        for reply in replies:
            if isinstance(reply, ResponseError) and "NOGROUP" in str(reply):
                self._groups = frozenset()
            elif isinstance(reply, Exception):
                raise translated(reply)
            else:
                entries += decode(reply)
        return entries

    def ack(self, entries: list[QueueEntry]) -> None:
        """Done with these entries: remove them from the queue (XACK and XDEL, one round trip)."""
        if not entries:
            return
        with map_redis_errors():
            pipe = self.scripts.pipeline()
            ack_entries(pipe, entries)
            pipe.execute()

    # ------------------------------------------------------------------ locks

    def lock(
        self, execution_id: str, owner: str, ttl_ms: int, *, known: Sequence[Event] | None = None
    ) -> Lease | LockRefused:
        """Lock an execution for one attempt of `ttl_ms` ms; a workflow's lease carries its log.

        A `LockRefused` says why not (finished, locked, blocked, early, paused, missing). A full store
        raises `StoreFullError` at once (nothing is held yet); an unreachable one is retried for
        `resend_s`, then `StoreUnavailableError`.

        `known` is the start of the log as this runner already holds it (its
        last run of the execution): then only the entries after it are read
        and decoded, and the lease's events are `known` plus those. Without
        it, or when it is not the log's start any more, the whole log is read.
        """
        # Re-sent with the same write id while the store is unreachable: a lock
        # whose reply was lost is recognised, not abandoned until it expires.
        # A full store refuses it at once: nothing is held yet, and the entry stays pending.
        reply = self._send(None, *_lock_call(execution_id, owner, ttl_ms, known), wait_when_full=False)
        return lease_from_lock(reply, owner, known)

    def lock_many(
        self, requests: list[tuple[str, Sequence[Event] | None]], owner: str, ttl_ms: int
    ) -> list[Lease | LockRefused | StoreError]:
        """`lock` for each (execution id, known log) in one round trip; a lock the store refused is its `StoreError`.

        Each lock is its own script, so one refusal (a full store) leaves the others held.
        """
        calls = [_lock_call(execution_id, owner, ttl_ms, known) for execution_id, known in requests]
        replies = self._send_each(calls)
        return [
            reply if isinstance(reply, StoreError) else lease_from_lock(reply, owner, known)
            for reply, (_, known) in zip(replies, requests)
        ]

    def extend(self, leases: list[Lease], ttl_ms: int) -> dict[str, str]:
        """Extend locks to now + `ttl_ms` ms; returns per id 'ok', 'cancel' (extended, and a cancellation was
        requested), why it was lost ('fenced', 'finished', 'missing'), or 'error' when the store refused the script."""
        if not leases:
            return {}
        at = now_ms()
        with map_redis_errors():
            pipe = self.scripts.pipeline()
            for lease in leases:
                pipe.script("extend", [keys.state(lease.id)], [lease.owner, lease.version, at, ttl_ms])
            replies = pipe.execute()
        out: dict[str, str] = {}
        for lease, reply in zip(leases, replies):
            if isinstance(reply, Exception):
                out[lease.id] = "error"
            elif reply[0] == b"ok":
                out[lease.id] = "cancel" if reply[1] == b"1" else "ok"
            else:
                out[lease.id] = reply[0].decode()
        return out

    # ----------------------------------------------------------------- writes

    def finish(
        self,
        lease: Lease,
        outcome: Outcome,
        *,
        entries: list[QueueEntry] = (),  # type: ignore[assignment]
        extra: dict[str, Any] | None = None,
        unless_cancelled: bool = False,
        clear_timer: dict[str, Any] | None = None,
        parent_tail_after: str | None = None,
        parent_commit: PendingCommit | None = None,
        continue_with: NewExecution | None = None,
        log_seen: tuple[str, int] | None = None,
    ) -> list[Any]:
        """Write `finished` (fenced), answer the parent, then ack queue entries.

        `log_seen` (a workflow's): the last stream id of its log its runner
        read and how many entries that is. If the log no longer holds them
        (a failover took it back), nothing is written, the lease is released
        and the execution queued to replay, and `LogWentBackError` is raised.

        With `continue_with` (a top-level workflow that continues as new), the
        same write puts that execution's creation in the outbox, unless a
        cancellation won (`unless_cancelled`): then the chain ends here.

        With `unless_cancelled`, a cancellation requested while it ran wins: the
        execution finishes as cancelled and `outcome` is discarded. With
        `parent_tail_after` (a stream id), returns the parent's raw log entries
        after it, else an empty list. With `parent_commit`, the parent's held-back
        commit that creates this execution is written first, in the same round
        trip. Raises `FencedError` when a lease was lost (`check_reply`).
        """
        write = finish_write(
            lease, outcome, entries=entries, extra=extra, unless_cancelled=unless_cancelled,
            clear_timer=clear_timer, parent_tail_after=parent_tail_after, continue_with=continue_with,
            log_seen=log_seen,
        )  # fmt: skip
        root, direct = write.root, self.scripts.direct
        before: list[str] = []  # the parent's commit's messages, delivered with this write's
        if parent_commit is None:
            mark = write.mark if outbox.needs_mark(direct, write.messages) else None
            reply = self._send(mark, *write.call.as_args())
        else:
            commit = commit_call(
                parent_commit.lease, parent_commit.events, parent_commit.creates,
                last_seen=parent_commit.last_seen, finished_inline=lease.id, at=parent_commit.at,
                seen_length=parent_commit.seen_length,
            )  # fmt: skip
            mark = write.mark if outbox.needs_mark(direct, [*commit.messages, *write.messages]) else None
            committed, reply = self._send_many(mark, [commit.as_args(), write.call.as_args()])
            self._check(committed, parent_commit.lease)
            if reply_status(reply) != "ok":
                # Not expected (the child was created locked by us a moment ago),
                # but then it must be recoverable like any pre-locked child, and
                # the parent must know its request was written.
                starts = [m for new in parent_commit.creates for m in start_messages(new, now_ms())]
                self._after(root, commit.messages, mark=mark, unwritten=starts)
                return list(committed[1])
            before = commit.messages
        try:
            self._check(reply, lease)
        except FencedError:
            self._after(root, before, mark=mark)
            raise
        messages, also = finish_effects(write, reply, with_parent_commit=parent_commit is not None)
        self._after(root, before + messages, also, mark=mark)
        return list(reply[3]) if len(reply) > 3 else []

    def finish_many(self, writes: list[FinishWrite]) -> list[StoreError | None]:
        """Send prepared `finish` writes (`write_calls.finish_write`) in one round trip; per write None, or why it failed.

        Each is its own fenced script, so one refusal (`FencedError`) leaves
        the others written. A write the store could not take (unreachable,
        full) is sent again on its own, as `finish` sends it, with the same
        write id.
        """
        sent: list[Any] = [None] * len(writes)  # None: sent below on its own
        if self.group is not None and len(writes) > 1:
            sent = self.group.send_all([(self._mark(write), [write.call.as_args()]) for write in writes])
        out: list[StoreError | None] = []
        for write, replies in zip(writes, sent):
            try:
                if replies is None or isinstance(replies, (StoreUnavailableError, StoreFullError)):
                    reply = self._send(self._mark(write), *write.call.as_args())
                elif isinstance(replies, BaseException):
                    raise replies
                else:
                    reply = replies[0]
                check_reply(reply, write.lease)
            except StoreError as exc:  # FencedError among them
                out.append(exc)
                continue
            messages, also = finish_effects(write, reply, with_parent_commit=False)
            self._after(write.root, messages, also, mark=self._mark(write))
            out.append(None)
        return out

    def _mark(self, write: FinishWrite) -> str | None:
        """The dirty mark a `finish` write needs, if any (see `outbox.needs_mark`)."""
        return write.mark if outbox.needs_mark(self.scripts.direct, write.messages) else None

    def fail_attempt(self, lease: Lease, error: dict[str, Any], retry_at: int, *, entries: list[QueueEntry] = ()) -> None:  # type: ignore[assignment]
        """Record a failed attempt and arm the retry timer (fenced; raises `FencedError`).

        `error` holds the `attempt_failed` event's fields (`{"error": Failure.to_json(), ...}`); `retry_at` is ms
        since the epoch. `entries` are acked once it is written.
        """
        state = lease.state
        timer = outbox.timer_msg(retry_at, outbox.enqueue_member(state.ffqn, state.id, state.priority))
        event = {"attempt": state.attempt, **error, "retry_at": retry_at}
        mark = outbox.mark_for(self.scripts.direct, lease.root, [timer])
        reply = self._send(
            mark,
            "fail",
            [keys.state(state.id), keys.log(state.id), keys.outbox(lease.root)],
            [write_id(), lease.owner, lease.version, now_ms(), json.dumps(event), retry_at, timer],
        )
        check_reply(reply, lease)
        self._after(lease.root, [timer], lambda pipe: ack_entries(pipe, entries), mark=mark)

    def commit(
        self,
        lease: Lease,
        events: list[tuple[str, dict[str, Any], int]],
        creates: list[NewExecution],
        *,
        last_seen: str,
        first_index: int,
        messages: list[str] = (),  # type: ignore[assignment]
        state_fields: dict[str, str] | None = None,
    ) -> list[Event]:
        """Append workflow requests `(type, data, at)` and create the executions they start.

        Children (same tree) are created by the script itself; top-level
        executions (scheduled ones, with a root of their own) through the
        outbox once the commit is accepted. Returns the log's entries after
        `last_seen`: the new requests and any response appended by others in
        between, indexed from `first_index`. Each request's `at` is ms since the epoch. Raises
        `FencedError` when the lease was lost, `LogWentBackError` when the log no
        longer holds `last_seen` (the execution is queued to replay).
        """
        call = commit_call(
            lease, events, creates, last_seen=last_seen, messages=messages, state_fields=state_fields, seen_length=first_index
        )
        mark = outbox.mark_for(self.scripts.direct, lease.root, call.messages)
        reply = self._send(mark, call.name, call.keys, call.args)
        self._check(reply, lease)
        self._after(lease.root, call.messages, mark=mark)
        return [Event.from_stream(first_index + i, sid, fields) for i, (sid, fields) in enumerate(reply[1])]

    def write_pending(self, pending: PendingCommit) -> list[Any]:
        """Write a held-back commit on its own; the parent's raw log entries after its `last_seen`.

        Raises `FencedError` or `LogWentBackError` as `commit` does.
        """
        call = commit_call(
            pending.lease, pending.events, pending.creates, last_seen=pending.last_seen, at=pending.at,
            seen_length=pending.seen_length,
        )  # fmt: skip
        mark = outbox.mark_for(self.scripts.direct, pending.lease.root, call.messages)
        reply = self._send(mark, call.name, call.keys, call.args)
        self._check(reply, pending.lease)
        self._after(pending.lease.root, call.messages, mark=mark)
        return list(reply[1])

    def block(
        self, lease: Lease, seen_length: int, *, wake_at: int | None = None, last_seen: str = "", paused: bool = False
    ) -> str:
        """Release a waiting workflow: 'blocked', or 'requeued' when its log grew meanwhile (or went back).

        `wake_at` (ms): when the first delay it waits for fires, recorded for the repair sweep.
        `last_seen`: the last stream id of the `seen_length` entries read ('' = unchecked).
        `paused`: it unloads because it was paused; released pending, and 'paused' when
        it still is (not queued: resuming queues it). Raises `FencedError` when the
        lease was lost.
        """
        requeue = outbox.enqueue_msg(lease.state.ffqn, lease.id, lease.state.priority)
        mark = outbox.mark_for(self.scripts.direct, lease.root, [requeue])
        reply = self._send(
            mark,
            "block",
            [keys.state(lease.id), keys.log(lease.id), keys.outbox(lease.root)],
            [write_id(), lease.owner, lease.version, now_ms(), seen_length, requeue, "" if wake_at is None else wake_at,
             last_seen, "1" if paused else ""],
        )
        check_reply(reply, lease)
        result = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        self._after(lease.root, [requeue] if result == "requeued" else [], mark=mark)
        return result


def _lock_call(execution_id: str, owner: str, ttl_ms: int, known: Sequence[Event] | None) -> tuple[str, list[str], list[Any]]:
    after = [known[-1].stream_id, len(known)] if known else []
    return "lock", [keys.state(execution_id), keys.log(execution_id)], [write_id(), owner, now_ms(), ttl_ms, *after]
