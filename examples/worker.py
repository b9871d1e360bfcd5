"""An external worker for Dolmen: runs `kind: external` functions in plain Python (see README "External workers").

    pip install httpx
    python examples/worker.py http://127.0.0.1:8400 shop:approvals/approvals@1.0.0

It claims executions over HTTP, heartbeats while it works, and completes or
fails each one. Killed mid-task, its lease expires and another worker gets
the execution again (attempt 2). DOLMEN_TOKEN is an `invoke` token, if the
gateway wants one; --hold makes each task take that many seconds.
"""

import argparse
import os
import threading
import time

import httpx

LEASE_MS = int(os.environ.get("LEASE_MS", "10000"))
FUNCTIONS = {  # WIT function name -> Python; results in the JSON form of the WIT result type
    "approve": lambda request: {"err": "too expensive"} if "expensive" in request else {"ok": f"worker {os.getpid()}"},
    "score": lambda key: len(key),
}


def work(http: httpx.Client, task: dict, hold: float) -> None:
    url, token = f"/v1/workers/tasks/{task['execution_id']}", task["lease"]["token"]
    done = threading.Event()

    def heartbeat() -> None:  # keeps the lease; a 409 means it is lost (taken over, cancelled, timed out)
        while not done.wait(LEASE_MS / 3000):
            if http.post(f"{url}/heartbeat", json={"token": token}).status_code == 409:
                return

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        time.sleep(hold)
        result = FUNCTIONS[task["ffqn"].rsplit(".", 1)[1]](*task["params"])
    except Exception as exc:  # a failed attempt: retried per the function's retry policy
        http.post(f"{url}/fail", json={"token": token, "error": f"{type(exc).__name__}: {exc}"})
    else:
        answer = http.post(f"{url}/complete", json={"token": token, "result": result})
        print(f"completed {task['execution_id']}: {answer.status_code}", flush=True)
    finally:
        done.set()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the functions of FUNCTIONS for a Dolmen gateway.")
    parser.add_argument("gateway", help="the gateway's URL")
    parser.add_argument("interface", help="the WIT interface the functions are in, e.g. shop:approvals/approvals@1.0.0")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds each task takes (slow work, to watch leases)")
    opts = parser.parse_args()
    headers = {"Authorization": f"Bearer {os.environ['DOLMEN_TOKEN']}"} if os.environ.get("DOLMEN_TOKEN") else {}
    ffqns = [f"{opts.interface}.{name}" for name in FUNCTIONS]
    with httpx.Client(base_url=opts.gateway, headers=headers, timeout=30, trust_env=False) as http:
        while True:  # long-poll: the claim answers once there is work, or after wait_s with none
            claim = {"ffqns": ffqns, "lease_ms": LEASE_MS, "wait_s": 10, "worker": f"py-{os.getpid()}"}
            for task in http.post("/v1/workers/claim", json=claim).raise_for_status().json()["tasks"]:
                print(f"claimed {task['execution_id']} attempt {task['attempt']}", flush=True)
                work(http, task, opts.hold)


if __name__ == "__main__":
    main()
