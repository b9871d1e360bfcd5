"""A fault-injection TCP proxy for tests: put it between a client and a real Valkey.

`FaultProxy(host, port)` listens on a free 127.0.0.1 port and forwards every
connection to the upstream server. It runs asyncio in a background thread of
its own, so synchronous tests and subprocesses (given `proxy.url`) can use it.
Faults are switched on and off from any thread while traffic flows:

- `drop_next_reply(match)`: the lost reply — the command runs, the client never hears;
- `cut_all()` / `cut_randomly(rate, seed)`: connections closed under the client;
- `set_latency(seconds)`: every chunk delayed, in both directions;
- `pause()` / `resume()`: data (and new upstream connections) held;
- `hold_replication()` / `release_replication()`: a replica in front of which the proxy
  stands (it sent PSYNC through it) gets nothing more from its master; what it misses is
  kept and handed over, so a test knows exactly what a replica lacks when its master dies.

    with FaultProxy("127.0.0.1", 6379) as proxy:
        client = redis.Redis.from_url(proxy.url)
        proxy.drop_next_reply(b"EVALSHA")
"""

from __future__ import annotations

import asyncio
import random
import threading
from urllib.parse import urlparse
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
P = TypeVar("P", bound="FaultProxy")
_Chunk = tuple[float, bytes] | None  # (when it may be forwarded, data) or None for EOF
_READ_SIZE = 65536
_CUT_TICK = 0.02


class _Link:
    """One proxied connection: the client's streams, the upstream's, and the four pump tasks."""

    def __init__(self, ident: int, client_w: asyncio.StreamWriter) -> None:
        self.ident = ident
        self.client_w = client_w
        self.server_w: asyncio.StreamWriter | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.drop_armed = False  # the next server→client data is swallowed and the link cut
        self.replication = False  # a replica's link to its master (it sent PSYNC or SYNC)
        self.tail = b""  # end of the last client→server chunk, to match across chunk boundaries
        self.closed = False

    def close(self, graceful: bool = False) -> None:
        """Abort both sockets at once (or flush and close them) and cancel the pumps but the caller."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client_w, self.server_w):
            if writer is not None and graceful:
                writer.close()
            elif writer is not None:
                writer.transport.abort()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


class FaultProxy:
    """A TCP proxy from 127.0.0.1:`port` to `upstream_host:upstream_port` with switchable faults.

    Counters (read them from any thread): `connections_accepted`, `bytes_to_server`,
    `bytes_to_client` (bytes actually forwarded), `cuts` (connections closed by
    `cut_all` or `cut_randomly`) and `dropped_replies`.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.connections_accepted = 0
        self.bytes_to_server = 0
        self.bytes_to_client = 0
        self.cuts = 0
        self.dropped_replies = 0
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._links: dict[int, _Link] = {}
        self._next_ident = 0
        self._drop_requests: list[bytes | None] = []
        self._latency = 0.0
        self._flowing = asyncio.Event()  # cleared while paused
        self._flowing.set()
        self._cutter: asyncio.Task[None] | None = None
        self._holding = False  # replication held: what masters send to replicas goes to `_held`
        self._held = bytearray()

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start the event loop thread and listen on a free port; returns self."""
        if self._thread is not None:
            raise RuntimeError("FaultProxy already started")
        loop = self._loop = asyncio.new_event_loop()
        flowing, self._flowing = self._flowing.is_set(), asyncio.Event()  # bound to the new loop
        if flowing:  # (a pause() before start() holds)
            self._flowing.set()
        self._thread = threading.Thread(target=loop.run_forever, name="faultproxy", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), loop).result(timeout=5)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, cancel every task, end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the proxy listens on (127.0.0.1)."""
        if self._port is None:
            raise RuntimeError("FaultProxy not started")
        return self._port

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT`: the proxy's address for a Redis client."""
        return f"redis://127.0.0.1:{self.port}"

    # -- faults (callable from any thread) -----------------------------------------------

    def drop_next_reply(self, match: bytes | None = None) -> None:
        """Lose one reply: the next client→server chunk containing `match` (any chunk if None)
        is forwarded, so the server runs the command; the next server→client data on that
        connection is then discarded and both sides are closed. One-shot per call (calls
        queue up); each time it fires, `dropped_replies` grows by one. `match` is a plain
        substring of the raw RESP bytes (b"INCR" also matches INCRBY). With pipelined requests
        the data discarded is whatever the server sends next on that connection.
        """
        self._call(lambda: self._drop_requests.append(match))

    def cut_all(self) -> int:
        """Close every open connection now (both sides, abruptly); returns how many, added to `cuts`."""
        return self._call(self._cut_all)

    def cut_randomly(self, probability_per_second: float, seed: int) -> None:
        """Until `stop_cutting()`, cut each open connection with this probability per second
        (checked every 20 ms, from a `random.Random(seed)`); every cut is added to `cuts`.
        """
        self.stop_cutting()
        rng = random.Random(seed)
        chance = min(1.0, max(0.0, probability_per_second * _CUT_TICK))

        def begin() -> None:
            self._cutter = asyncio.get_running_loop().create_task(self._cut_randomly(chance, rng))

        self._call(begin)

    def stop_cutting(self) -> None:
        """Stop `cut_randomly`; no random cut happens once this returns."""

        def end() -> None:
            if self._cutter is not None:
                self._cutter.cancel()
                self._cutter = None

        self._call(end)

    def set_latency(self, seconds: float) -> None:
        """Delay every chunk forwarded in either direction by `seconds` (0 clears), keeping order.

        A chunk's delay starts when the proxy reads it, so a round trip costs twice `seconds`.
        """
        self._call(lambda: setattr(self, "_latency", max(0.0, seconds)))

    def pause(self) -> None:
        """Hold traffic: read data is kept, not forwarded, and accepted connections are not
        connected upstream, until `resume()`."""
        self._call(self._flowing.clear)

    def resume(self) -> None:
        """Forward everything held by `pause()`, in order, and carry on."""
        self._call(self._flowing.set)

    def hold_replication(self) -> None:
        """From now on, what the server sends on replication links (connections on which a replica
        sent PSYNC or SYNC) is kept here instead of reaching the replica, until `release_replication()`.

        The replica falls behind while its master goes on answering its clients: what asynchronous
        replication leaves at risk. Held links are spared random cuts and lost replies meanwhile, so
        that the replica does not reconnect and ask for the same bytes again.
        """
        self._call(self._hold)

    def held_bytes(self) -> int:
        """How many bytes `hold_replication` has kept so far."""
        return self._call(lambda: len(self._held))

    def release_replication(self) -> bytes:
        """Stop holding; cut the held replication links (a replica reconnects and asks its master for
        what it lacks, if the master still runs) and return the bytes kept, in the order sent."""

        def release() -> bytes:
            held, self._held, self._holding = bytes(self._held), bytearray(), False
            for link in list(self._links.values()):
                if link.replication and not link.closed:
                    link.close()
                    self.cuts += 1
            return held

        return self._call(release)

    # -- inside the loop -----------------------------------------------------------------

    def _hold(self) -> None:
        self._holding = True
        self._held = bytearray()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the proxy's loop and wait for it (directly when not started)."""
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            return fn()

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=5)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._cutter is not None:
            self._cutter.cancel()
        for link in list(self._links.values()):
            link.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=2.0)

    def _cut_all(self) -> int:
        links = [link for link in self._links.values() if not link.closed]
        for link in links:
            link.close()
        self.cuts += len(links)
        return len(links)

    async def _cut_randomly(self, chance: float, rng: random.Random) -> None:
        while True:
            await asyncio.sleep(_CUT_TICK)
            for ident in sorted(self._links):
                link = self._links[ident]
                if link.replication and self._holding:
                    continue
                if not link.closed and rng.random() < chance:
                    link.close()
                    self.cuts += 1

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections_accepted += 1
        self._next_ident += 1
        link = _Link(self._next_ident, client_w)
        self._links[link.ident] = link
        try:
            await self._flowing.wait()
            server_r, server_w = await asyncio.open_connection(self.upstream_host, self.upstream_port)
            link.server_w = server_w
            if link.closed:  # cut while connecting
                server_w.transport.abort()
                return
            to_server: asyncio.Queue[_Chunk] = asyncio.Queue()
            to_client: asyncio.Queue[_Chunk] = asyncio.Queue()
            loop = asyncio.get_running_loop()
            for coro in (
                self._read(link, client_r, to_server, upstream=True),
                self._send(link, server_w, to_server, upstream=True),
                self._read(link, server_r, to_client, upstream=False),
                self._send(link, client_w, to_client, upstream=False),
            ):
                link.tasks.add(loop.create_task(coro))
            await asyncio.gather(*link.tasks, return_exceptions=True)
        except (OSError, asyncio.CancelledError):  # upstream refused, or stop(): end quietly
            pass  # (a cancelled handler makes Python 3.11's streams log an error)
        finally:
            link.close(graceful=True)  # after both EOFs: flush what is left; else already aborted
            self._links.pop(link.ident, None)

    async def _read(self, link: _Link, reader: asyncio.StreamReader, queue: asyncio.Queue[_Chunk], upstream: bool) -> None:
        """Read one direction into its queue, stamping when each chunk may be forwarded."""
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    queue.put_nowait(None)
                    return
                if not upstream and link.drop_armed:  # the lost reply
                    self.dropped_replies += 1
                    link.close()
                    return
                if not upstream and link.replication and self._holding:
                    self._held += data
                    continue
                queue.put_nowait((asyncio.get_running_loop().time() + self._latency, data))
        except OSError:
            link.close()

    async def _send(self, link: _Link, writer: asyncio.StreamWriter, queue: asyncio.Queue[_Chunk], upstream: bool) -> None:
        """Forward one direction in order, after its latency and while not paused; pass EOF on."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await queue.get()
                if item is None:  # half-close: pass the EOF on, keep the other direction
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                due, data = item
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                await self._flowing.wait()
                if upstream:
                    self._arm_drop(link, data)
                    self.bytes_to_server += len(data)
                else:
                    self.bytes_to_client += len(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            link.close()

    def _arm_drop(self, link: _Link, data: bytes) -> None:
        """Mark `link` if this client→server chunk fires a pending `drop_next_reply` (never on a
        replica's link: its replies are the replication stream)."""
        window = link.tail + data
        link.tail = data[-64:]
        if b"PSYNC" in window or b"SYNC\r\n" in window:
            link.replication = True
        if link.replication:
            return
        for i, match in enumerate(self._drop_requests):
            if match is None or match in window:
                del self._drop_requests[i]
                link.drop_armed = True
                link.tail = b""
                return


class ReopenableProxy(FaultProxy):
    """A FaultProxy that listens on the same port again after `stop()` + `start()`.

    In between, connecting is refused: a store outage, not a delay.
    """

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._port or 0, reuse_address=True)
        self._port = int(self._server.sockets[0].getsockname()[1])


def proxy_to(redis_url: str, kind: type[P] = FaultProxy) -> P:  # type: ignore[assignment]  # FaultProxy is a P
    """A proxy of `kind` (not started) in front of the single server at `redis_url`.

    Skips the calling test when that server is a cluster node: a cluster
    client learns the nodes' own addresses and would go around the proxy.
    """
    import pytest  # tests only; this module is also imported by the chaos fleet's processes

    from dolmen.platform.store.connection import is_cluster

    if is_cluster(redis_url):
        pytest.skip("the fault proxy fronts one server; a cluster client goes around it to the nodes")
    url = urlparse(redis_url)
    return kind(url.hostname or "127.0.0.1", url.port or 6379)
