"""Cancellation requests of running executions, as they happen (`keys.CANCEL_CHANNEL`).

`cancel.lua` publishes the id of every running execution whose cancellation
is requested. A runner subscribes once and hands each id to a callback that
stops the attempt if it runs there. A message is a hint: one lost while the
connection was down is made up for by the runner's next lock extension, which
answers `cancel` for the same request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis
import structlog

from . import keys
from .connection import Redis

log = structlog.get_logger("dolmen.store")

# How long a read waits for a message before looking at `stop` again, in seconds.
_POLL_S = 1.0


class CancelWatcher:
    """Calls `on_cancel(execution_id)` for each cancellation request, from a daemon thread, until stopped."""

    def __init__(self, client: Redis, on_cancel: Callable[[str], object]) -> None:
        self._client = client
        self._on_cancel = on_cancel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dolmen-cancel-watch", daemon=True)

    def start(self) -> CancelWatcher:
        """Subscribe to `keys.CANCEL_CHANNEL` on a daemon thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, waiting for it up to three polls (3 s)."""
        self._stop.set()
        self._thread.join(timeout=_POLL_S * 3)

    def _run(self) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(keys.CANCEL_CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=_POLL_S)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message["data"])
            except redis.RedisError as exc:
                log.warning("cancel notifications interrupted; lock extensions still carry them", error=str(exc))
                self._stop.wait(_POLL_S)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass

    def _deliver(self, data: bytes | str) -> None:
        execution_id = data.decode() if isinstance(data, bytes) else data
        try:
            self._on_cancel(execution_id)
        except Exception:  # noqa: BLE001 - one bad callback must not end the subscription
            log.exception("cancel notification not handled", execution_id=execution_id)
