"""The platform's processes under fire: the `Fleet` that starts, kills and stalls them by role, and the
`Chaos` thread that picks what to do to them (and to the store and its proxies) every second or so."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter

import httpx

from tests.chaos.settings import ACTIONS, LOCK_TTL_MS, PROXIED_RUNNERS, RUNNERS, SEED
from tests.chaos.stores import Store
from tests.support.platform import Processes


class Fleet:
    """The platform's processes by role (runner-N, scheduler, gateway), killed and restarted by name."""

    def __init__(self, direct: Processes, proxied: Processes, gateway_port: int) -> None:
        self.roles: dict[str, tuple[Processes, str, tuple[str, ...]]] = {}
        for i in range(RUNNERS):
            self.roles[f"runner-{i}"] = (proxied if i < PROXIED_RUNNERS else direct, "runner", ("--concurrency", "8"))
        self.roles["scheduler"] = (proxied, "scheduler", ())
        self.roles["gateway"] = (direct, "gateway", ("--port", str(gateway_port)))
        self.current: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: Counter[str] = Counter()
        self.starts: Counter[str] = Counter()
        self.died: list[str] = []  # processes that exited without being killed, with their log's tail
        self.lock = threading.Lock()

    def start(self, role: str) -> subprocess.Popen[bytes]:
        procs, command, args = self.roles[role]
        with self.lock:
            proc = procs._start(command, *args)  # noqa: SLF001 - the helper's generic starter
            self.current[role] = proc
            self.starts[role] += 1
        return proc

    def kill(self, role: str) -> int:
        with self.lock:
            proc = self.current[role]
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
            self.kills[role] += 1
            return proc.pid

    def stall(self, role: str, seconds: float) -> int:
        """SIGSTOP the process for `seconds`, then SIGCONT."""
        with self.lock:
            proc = self.current[role]
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        return proc.pid

    def revive(self) -> list[str]:
        """Restart every process that exited on its own; returns what happened."""
        notes = []
        for role, proc in list(self.current.items()):
            if proc.poll() is None:
                continue
            procs = self.roles[role][0]
            tail = procs.log_of(proc)[-1500:]
            self.died.append(f"{role} pid {proc.pid} exit {proc.returncode}:\n{tail}")
            notes.append(f"{role} (pid {proc.pid}) exited on its own with {proc.returncode}; restarted")
            self.start(role)
        return notes

    def alive(self) -> list[str]:
        return [role for role, proc in self.current.items() if proc.poll() is None]


class Chaos(threading.Thread):
    """Every 1-3 s: SIGKILL a random runner, the scheduler or the gateway and restart it, or stall a
    runner past its leases (SIGSTOP), or hold or cut the proxied connections; disrupt the store (restart
    Valkey, kill or fail over a master) at the planned moments; meanwhile lose replies."""

    def __init__(self, fleet: Fleet, store: Store, t0: float, disrupt_at: list[float]) -> None:
        super().__init__(name="chaos-killer", daemon=True)
        self.fleet = fleet
        self.store = store
        self.rng = random.Random(SEED + 1)
        self.t0 = t0
        self.disrupt_at = sorted(disrupt_at)
        self.stopping = threading.Event()
        self.timeline: list[str] = []
        self.disrupted = 0
        self.cut_alls = 0
        self.stalls = 0
        self.deck: list[str] = []
        self.partitions = 0
        self.drops_armed = 0
        self.error: BaseException | None = None

    def note(self, text: str) -> None:
        self.timeline.append(f"t+{time.monotonic() - self.t0:6.1f}s  {text}")

    def run(self) -> None:
        dropper = threading.Thread(target=self._guarded_drops, name="chaos-dropper", daemon=True)
        dropper.start()
        try:
            while not self.stopping.wait(self.rng.uniform(1.0, 3.0)):
                self.step()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.note(f"the killer thread failed: {exc!r}")
        dropper.join(timeout=10)

    def step(self) -> None:
        for note in self.fleet.revive():
            self.note(note)
        if self.disrupt_at and time.monotonic() - self.t0 >= self.disrupt_at[0]:
            self.disrupt_at.pop(0)
            self.disrupt()
            return
        if not self.deck:
            self.deck = list(ACTIONS)
            self.rng.shuffle(self.deck)
        action = self.deck.pop()
        if action == "cut":
            proxies, where = self.store.pick_proxies(self.rng)
            cut = sum(proxy.cut_all() for proxy in proxies)
            self.cut_alls += 1
            self.note(f"{where}: cut all {cut} connections")
            return
        if action == "stall":
            # A stalled runner outlives its leases: once resumed, its writes must be refused.
            victim = self.rng.choice([f"runner-{i}" for i in range(RUNNERS)])
            stall = self.rng.uniform(1.0, 2.5) * LOCK_TTL_MS / 1000
            pid = self.fleet.stall(victim, stall)
            self.stalls += 1
            self.note(f"SIGSTOP {victim} (pid {pid}) for {stall:.1f}s, then SIGCONT")
            return
        if action == "partition":
            # A partition: whoever goes through these proxies hears nothing from Valkey, nor it from them.
            pause = self.rng.uniform(1.0, 2.5) * LOCK_TTL_MS / 1000
            proxies, where = self.store.pick_proxies(self.rng)
            for proxy in proxies:
                proxy.pause()
            try:
                time.sleep(pause)
            finally:
                for proxy in proxies:
                    proxy.resume()
            self.partitions += 1
            self.note(f"{where}: traffic held for {pause:.1f}s")
            return
        victim = self.rng.choice([f"runner-{i}" for i in range(RUNNERS)]) if action == "runner" else action
        pid = self.fleet.kill(victim)
        down = self.rng.uniform(0.0, 0.6)
        time.sleep(down)
        new = self.fleet.start(victim)
        self.note(f"SIGKILL {victim} (pid {pid}), restarted {down:.1f}s later as pid {new.pid}")

    def _guarded_drops(self) -> None:
        try:
            self.drop_replies()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.note(f"the dropper thread failed: {exc!r}")

    def drop_replies(self) -> None:
        """Every 0.2-1 s, lose the reply to the next script call (or, one time in four, to any command)
        through one of the proxies in front of the servers that answer clients; one armed at a time
        per proxy (one that never fires, on a master that stopped being one, blocks only its own)."""
        rng = random.Random(SEED + 3)
        armed: Counter[int] = Counter()  # by index in store.proxies
        while not self.stopping.wait(rng.uniform(0.2, 1.0)):
            serving = self.store.serving_proxies()
            ready = [i for i, p in enumerate(self.store.proxies) if p in serving and p.dropped_replies >= armed[i]]
            if ready:
                i = rng.choice(ready)
                self.store.proxies[i].drop_next_reply(None if rng.random() < 0.25 else b"EVALSHA")
                armed[i] += 1
                self.drops_armed += 1

    def disrupt(self) -> None:
        self.store.disrupt(self.rng, self.note)
        self.disrupted += 1

    def finish(self) -> None:
        """Stop killing; carry out the store's disruptions still due (all of them always happen)."""
        self.stopping.set()
        self.join(timeout=120)
        while self.disrupt_at:
            self.disrupt_at.pop(0)
            self.disrupt()



def wait_healthy(url: str, timeout: float) -> bool:
    """Whether the gateway at `url` answers `/healthz` with 200 within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(f"{url}/healthz").status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return False
