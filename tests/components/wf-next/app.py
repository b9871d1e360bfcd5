"""The next version of wf-basic (same WIT, `testing:wf/flows@1.0.0`), for upgrade tests.

Everything is as in wf-basic except `fetch-all`:
- for URLs without "diverge" in them it makes the same calls in the same order
  and marks each value with " [v2]": logs of wf-basic replay on it cleanly, and
  the result shows which version finished the execution;
- when the first URL contains "diverge" it fetches the URLs in reverse order:
  logs of wf-basic diverge at the first `child_submitted`.
"""

import json
import random
import time

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host, testing_act_basic as act, testing_act_dolmen_ext_basic as ext
from wit_world.imports.types import ClosingStrategy, LogLevel, ResponseId_Delay, ScheduleAt_In


class Flows(exports.Flows):
    def serial(self, n: int) -> int:
        return sum(act.double(i) for i in range(1, n + 1))

    def fan_out(self, n: int) -> int:
        js = host.new_join_set(ClosingStrategy.COMPLETE)
        for i in range(1, n + 1):
            ext.double_submit(js, i)
        total = 0
        for _ in range(n):
            _, value = ext.double_await_next(js)
            total += value
        return total

    def sleepy(self, ms: int) -> int:
        before = host.now_ms()
        host.sleep(ms)
        return host.now_ms() - before

    def nondet(self) -> str:
        seen = {"b": 2, "a": 1, "c": 3}
        host.log(LogLevel.INFO, "nondet running")
        act.double(1)  # a replay point between the reads
        return json.dumps(
            {
                "random": random.random(),
                "randint": random.randint(0, 10**9),
                "time": time.time(),
                "order": list(seen),
                "set": sorted({"x", "y", "z"}),
                "id": host.current_id(),
            }
        )

    def fetch_all(self, urls: list[str]) -> list:
        js = host.new_join_set(ClosingStrategy.COMPLETE)
        order = list(reversed(urls)) if urls and "diverge" in urls[0] else urls
        for url in order:
            ext.fetch_submit(js, url)
        results = []
        for _ in urls:
            try:
                _, value = ext.fetch_await_next(js)
                results.append(Ok(value.value + " [v2]") if isinstance(value, Ok) else value)
            except Err as failed:
                results.append(Err(str(failed.value)))
        return results

    def failing_child(self) -> str:
        act.crash("boom")
        return "unreachable"

    def cancellable(self, ms: int) -> str:
        js = host.new_join_set(ClosingStrategy.COMPLETE)
        ext.slow_submit(js, ms, "a")
        ext.slow_submit(js, ms, "b")
        host.sleep(3_600_000)
        return "slept"

    def race(self, delay_ms: int, work_ms: int) -> str:
        js = host.new_join_set_named("race", ClosingStrategy.CANCEL)
        host.submit_delay(js, delay_ms)
        ext.slow_submit(js, work_ms, "work")
        first = host.join_next(js)
        return "delay" if isinstance(first, ResponseId_Delay) else "work"

    def abandon(self, ms: int) -> int:
        js = host.new_join_set(ClosingStrategy.CANCEL)
        ext.slow_submit(js, ms, "x")
        ext.slow_submit(js, ms, "y")
        return 2

    def schedule_then_sleep(self, x: int, delay_ms: int, sleep_ms: int) -> str:
        scheduled = ext.double_schedule(ScheduleAt_In(delay_ms), x)
        host.sleep(sleep_ms)
        return scheduled

    def seeded(self) -> str:
        drawn = host.random_u64()
        picked = random.randint(0, 10**9)
        order = list({"alpha", "beta", "gamma", "delta", "epsilon"})  # iteration order follows the hash seed
        act.double(drawn % 1_000_000)  # events 1 (request) and 2 (response)
        message = json.dumps({"u64": drawn, "random": picked, "order": order})
        act.shout(message)  # event 3: a fork at 3 asks for it again
        return message
