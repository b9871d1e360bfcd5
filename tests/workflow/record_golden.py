"""Record the golden workflow histories in tests/workflow/golden/ (run by hand, then commit).

    .venv/bin/python -m tests.workflow.record_golden

Each file holds the execution's ffqn and its complete event log as the
platform wrote it; test_golden.py replays them against the current
wf-basic component in CI.
"""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

from dolmen.platform.client import Client
from dolmen.platform.runner.process import Runner
from dolmen.platform.runner.settings import RunnerSettings
from dolmen.platform.scheduler import SchedulerSettings, serve_scheduler
from tests.support.guests import DATA_DIR
from tests.support.platform import activity, deploy, workflow
from tests.support.servers import ValkeyForTests

GOLDEN = Path(__file__).parent / "golden"
F = "testing:wf/flows@1.0.0"
CASES = {
    "serial-3": ("serial", [3]),
    "fan-out-4": ("fan-out", [4]),
    "sleepy": ("sleepy", [100]),
    "race": ("race", [50, 2000]),
    "nondet": ("nondet", []),
}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ValkeyForTests(Path(tmp))
        url = server.start()
        stop = threading.Event()
        try:
            deploy(url, [activity(), workflow()])
            threading.Thread(target=Runner(RunnerSettings(url, DATA_DIR)).serve, args=(stop,), daemon=True).start()
            threading.Thread(target=serve_scheduler, args=(SchedulerSettings(url, DATA_DIR), stop), daemon=True).start()
            client = Client.connect(url)
            GOLDEN.mkdir(exist_ok=True)
            for name, (function, params) in CASES.items():
                ffqn = f"{F}.{function}"
                execution_id = client.submit(ffqn, params).execution_id
                state = client.wait(execution_id, 60)
                assert state.status == "finished", state
                events = [e.to_json() for e in client.executions.events(execution_id)]
                record = {"execution_id": execution_id, "ffqn": ffqn, "events": events}
                (GOLDEN / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
                print(f"{name}: {len(events)} events")
        finally:
            stop.set()
            server.stop()


if __name__ == "__main__":
    main()
